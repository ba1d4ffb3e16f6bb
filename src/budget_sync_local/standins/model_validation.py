"""Server-side validation of a request against botocore's own service model.

botocore's client-side ``ParamValidator`` checks required members, types and minimums
only, and not at all with ``Config(parameter_validation=False)``; a service checks the
rest on its side. This module does what the service does with the model's constraints:
required members, types, ``enum``, ``min``/``max`` (the value of a number, the length of a
string, the number of items of a list or map), ``pattern`` (a Java regular expression,
matched against the whole string as AWS's validation does), for every nested structure,
list and map. Members the model does not know are ignored, as the JSON protocols do.

It knows nothing of a particular service: ``request_problems(operation_model, params)``
lists what is wrong, each problem in AWS's own wording (``Value '...' at 'Member.Path'
failed to satisfy constraint: ...``), and ``validation_message`` joins them as AWS does
(``2 validation errors detected: ...; ...``). The stand-ins answer it with the error the
service's model names for bad input (Budgets: ``InvalidParameterException``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

from botocore.model import ListShape, MapShape, OperationModel, Shape, StringShape, StructureShape

from budget_sync_local.java_regex import python_pattern

_NUMBER_TYPES = ("integer", "long", "double", "float")


@functools.cache
def _compiled(java: str) -> re.Pattern[str]:
    # Java's \w, \d and \s are ASCII unless asked otherwise
    return re.compile(python_pattern(java), re.ASCII)


def _shown(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 200 else text[:197] + "..."


def _problem(value: Any, path: str, constraint: str) -> str:
    if value is None:
        return f"Value null at '{path}' failed to satisfy constraint: {constraint}"
    return f"Value '{_shown(value)}' at '{path}' failed to satisfy constraint: {constraint}"


def _type_ok(shape: Shape, value: Any) -> bool:
    kind = shape.type_name
    if kind in ("structure", "map"):
        return isinstance(value, Mapping)
    if kind == "list":
        return isinstance(value, list)
    if kind in ("string", "blob"):
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind in ("integer", "long"):
        return isinstance(value, int) and not isinstance(value, bool)
    if kind in _NUMBER_TYPES or kind == "timestamp":  # JSON protocols send epoch seconds
        return isinstance(value, int | float) and not isinstance(value, bool)
    return True


def _range_problems(shape: Shape, value: Any, path: str) -> list[str]:
    metadata = shape.metadata
    low, high = metadata.get("min"), metadata.get("max")
    if shape.type_name in _NUMBER_TYPES:
        measured, what = value, "value"
    elif shape.type_name in ("string", "list", "map"):
        measured, what = len(value), "length"
    else:
        return []
    problems = []
    if low is not None and measured < low:
        problems.append(_problem(value, path, f"Member must have {what} greater than or equal to {low}"))
    if high is not None and measured > high:
        problems.append(_problem(value, path, f"Member must have {what} less than or equal to {high}"))
    return problems


def shape_problems(shape: Shape, value: Any, path: str) -> list[str]:
    """Everything the model's constraints find wrong with ``value`` at ``path``."""
    if not _type_ok(shape, value):
        return [_problem(value, path, f"Member must be of type {shape.type_name}")]
    problems = _range_problems(shape, value, path)
    if isinstance(shape, StringShape):
        if shape.enum and value not in shape.enum:
            problems.append(
                _problem(value, path, f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")
            )
        pattern = shape.metadata.get("pattern")
        if pattern is not None and not _compiled(pattern).fullmatch(value):
            problems.append(
                _problem(value, path, f"Member must satisfy regular expression pattern: {pattern}")
            )
    elif isinstance(shape, StructureShape):
        problems += structure_problems(shape, value, path)
    elif isinstance(shape, ListShape):
        for index, item in enumerate(value):
            problems += shape_problems(shape.member, item, f"{path}.{index + 1}.member")
    elif isinstance(shape, MapShape):
        for key, item in value.items():
            problems += shape_problems(shape.key, key, f"{path}.{key}.key")
            problems += shape_problems(shape.value, item, f"{path}.{key}.value")
    return problems


def structure_problems(shape: StructureShape, value: Mapping[str, Any], path: str = "") -> list[str]:
    prefix = f"{path}." if path else ""
    problems = [
        _problem(None, prefix + name, "Member must not be null")
        for name in shape.required_members
        if value.get(name) is None
    ]
    for name, member in shape.members.items():
        if value.get(name) is not None:
            problems += shape_problems(member, value[name], prefix + name)
    return problems


def request_problems(operation: OperationModel, params: Any) -> list[str]:
    """What the operation's input shape finds wrong with a request's parameters."""
    shape = operation.input_shape
    if shape is None:
        return []
    if not isinstance(params, Mapping):
        return [_problem(params, "", "the request must be a JSON object")]
    return structure_problems(shape, params)


def validation_message(problems: list[str]) -> str:
    """The problems as AWS words them: ``N validation error(s) detected: a; b``."""
    plural = "error" if len(problems) == 1 else "errors"
    return f"{len(problems)} validation {plural} detected: {'; '.join(problems)}"
