"""Read the project's CloudFormation templates the way CloudFormation does.

Templates are parsed with PyYAML and the constructors for CloudFormation's short-form
intrinsic functions (``_TemplateLoader``): the same plain data as cfn-lint's decoder
(``cfnlint.decode``), which ``tests/template/test_template_loader.py`` checks for every template
of the repository, without cfn-lint's seconds of import (it stays the linter, ``make lint``).
``Resolver`` evaluates the few intrinsic functions that the local
organisation needs to know a resource's settings (Ref, Sub, If, conditions, GetAtt of
names), from the parameters' defaults plus any overrides.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
MANAGEMENT_TEMPLATE = ROOT / "template-management.yaml"
SPOKE_TEMPLATE = ROOT / "template-spoke.yaml"
#: The us-east-1 stack that forwards Organizations events to a management stack elsewhere.
ORG_EVENTS_TEMPLATE = ROOT / "template-org-events.yaml"

#: The resource property that holds each type's physical name (what Ref returns).
_NAME_PROPERTY = {
    "AWS::DynamoDB::Table": "TableName",
    "AWS::IAM::Role": "RoleName",
    "AWS::Serverless::Function": "FunctionName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::SSM::Parameter": "Name",
    "AWS::SSM::Document": "Name",
    "AWS::Events::Rule": "Name",
    "AWS::Events::EventBus": "Name",
    "AWS::Logs::LogGroup": "LogGroupName",
}
_SUB_REFERENCE = re.compile(r"\$\{([^}!][^}]*)\}")


class TemplateError(Exception):
    pass


@cache
def load(path: Path) -> dict[str, Any]:
    """The template as plain data (cached: templates do not change during a run)."""
    return _parse(path.read_text(encoding="utf-8"), path.name)


def load_text(text: str) -> dict[str, Any]:
    """A template given as text (another version of one, e.g. an upgrade test's old template)."""
    return _parse(text, "the template")


class _TemplateLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML as CloudFormation reads it, hand-written on PyYAML because it is small and the
    maintained alternative, cfn-flip, is not a dependency: PyYAML's safe loader plus

    - each short-form intrinsic function, ``!Name value`` -> ``{"Fn::Name": value}`` (``!Ref``
      and ``!Condition`` keep their names), the value read as its node is (a scalar stays a
      string, ``!Ref 5`` -> ``{"Ref": "5"}``), ``!GetAtt a.b`` -> ``{"Fn::GetAtt": ["a", "b"]}``
      (split at the first dot) (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/intrinsic-function-reference.html);
    - a key given twice in one mapping, or a null key, is an error (PyYAML would keep the last
      value and lose the first), as in cfn-lint's decoder.

    These are the rules of cfn-lint's ``cfnlint.decode.cfn_yaml``; JSON templates (cfn-lint's
    fallback for a tab) are not read: the repository's templates are YAML.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if not any(key_node.tag == "tag:yaml.org,2002:merge" for key_node, _ in node.value):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                line = key_node.start_mark.line + 1
                if key is None:
                    raise TemplateError(f"null key {key_node.value!r} (line {line})")
                if key in seen:
                    raise TemplateError(f"duplicate key {key!r} (lines {seen[key]} and {line})")
                seen[key] = line
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


def _intrinsic(loader: _TemplateLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = suffix if suffix in {"Ref", "Condition"} else f"Fn::{suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if name == "Fn::GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:  # pragma: no cover - PyYAML has no other node
        raise TemplateError(f"!{suffix}: unexpected node {node!r}")
    return {name: value}


_TemplateLoader.add_multi_constructor("!", _intrinsic)


def _parse(text: str, name: str) -> dict[str, Any]:
    try:
        template = yaml.load(text, Loader=_TemplateLoader)  # noqa: S506 - a safe loader
    except TemplateError as error:
        raise TemplateError(f"{name} does not parse: {error}") from None
    except yaml.YAMLError as error:
        raise TemplateError(f"{name} does not parse: {error}") from None
    if template is None:
        template = {}
    if not isinstance(template, dict):
        raise TemplateError(f"{name} does not parse: a template is a mapping, not {type(template).__name__}")
    plain: dict[str, Any] = _plain(template)
    return plain


def _plain(value: Any) -> Any:
    """Keys as strings, str subclasses as str, so that callers compare plain data."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


@dataclass
class Resolver:
    template: dict[str, Any]
    parameters: Mapping[str, str] = field(default_factory=dict)
    account_id: str = "123456789012"
    region: str = "us-east-1"
    partition: str = "aws"
    #: Physical ids of created resources (a deployed stack's), for Refs the template cannot name.
    physical_ids: Mapping[str, str] = field(default_factory=dict)

    def parameter(self, name: str) -> str:
        if name in self.parameters:
            return str(self.parameters[name])
        spec = self.template.get("Parameters", {}).get(name)
        if spec is None:
            raise TemplateError(f"no parameter {name}")
        if "Default" not in spec:
            raise TemplateError(f"parameter {name} has no default: pass a value")
        return str(spec["Default"])

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template["Conditions"][name]))

    def resource(self, logical_id: str) -> dict[str, Any]:
        try:
            resource: dict[str, Any] = self.template["Resources"][logical_id]
        except KeyError:
            raise TemplateError(f"no resource {logical_id}") from None
        return resource

    def properties(self, logical_id: str) -> dict[str, Any]:
        resolved: dict[str, Any] = self.resolve(self.resource(logical_id).get("Properties", {}))
        return resolved

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [r for r in (self.resolve(v) for v in value) if r is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            function = _FUNCTIONS.get(key)
            if function is not None:
                return function(self, argument)
        return {k: r for k, r in ((k, self.resolve(v)) for k, v in value.items()) if r is not _NO_VALUE}

    def ref(self, name: str) -> Any:
        pseudo = {
            "AWS::AccountId": self.account_id,
            "AWS::Region": self.region,
            "AWS::Partition": self.partition,
            "AWS::NoValue": _NO_VALUE,
            "AWS::StackName": "budget-sync",
            "AWS::URLSuffix": "amazonaws.com",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.template.get("Parameters", {}):
            return self.parameter(name)
        if name in self.physical_ids:
            return self.physical_ids[name]
        resource = self.resource(name)
        name_property = _NAME_PROPERTY.get(resource["Type"])
        if name_property and name_property in resource.get("Properties", {}):
            return self.resolve(resource["Properties"][name_property])
        raise TemplateError(f"Ref {name}: the local organisation does not know its physical id")

    def sub(self, argument: Any) -> str:
        if isinstance(argument, list):
            text, variables = argument[0], {k: self.resolve(v) for k, v in argument[1].items()}
        else:
            text, variables = argument, {}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name:
                logical_id, attribute = name.split(".", 1)
                return str(self.get_att(logical_id, attribute))
            return str(self.ref(name))

        return _SUB_REFERENCE.sub(replace, text)

    def get_att(self, logical_id: str, attribute: str) -> Any:
        """The attributes the templates use, as the ARNs CloudFormation would return."""
        kind = self.resource(logical_id)["Type"]
        prefix = f"arn:{self.partition}"
        where = f"{self.region}:{self.account_id}"
        known = {
            ("AWS::IAM::Role", "Arn"): lambda: f"{prefix}:iam::{self.account_id}:role/{self.ref(logical_id)}",
            ("AWS::DynamoDB::Table", "Arn"): lambda: (
                f"{prefix}:dynamodb:{where}:table/{self.ref(logical_id)}"
            ),
            ("AWS::DynamoDB::Table", "StreamArn"): lambda: (
                f"{prefix}:dynamodb:{where}:table/{self.ref(logical_id)}/stream/local"
            ),
            ("AWS::SQS::Queue", "Arn"): lambda: f"{prefix}:sqs:{where}:{logical_id}",
            ("AWS::SQS::Queue", "QueueName"): lambda: logical_id,
            ("AWS::Events::EventBus", "Name"): lambda: f"{self.ref(logical_id)}",
            ("AWS::Events::EventBus", "Arn"): lambda: (
                f"{prefix}:events:{where}:event-bus/{self.ref(logical_id)}"
            ),
            ("AWS::Logs::LogGroup", "Arn"): lambda: (
                f"{prefix}:logs:{where}:log-group:{self.ref(logical_id)}:*"
            ),
        }
        if (kind, attribute) not in known:
            raise TemplateError(f"GetAtt {logical_id}.{attribute} is not known to the local organisation")
        return known[(kind, attribute)]()


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


_NO_VALUE = _NoValue()


def _get_att(resolver: Resolver, argument: Any) -> Any:
    logical_id, attribute = argument.split(".", 1) if isinstance(argument, str) else argument
    return resolver.get_att(logical_id, attribute)


_FUNCTIONS: dict[str, Any] = {
    "Ref": lambda r, a: r.ref(a),
    "Fn::Sub": lambda r, a: r.sub(a),
    "Fn::If": lambda r, a: r.resolve(a[1] if r.condition(a[0]) else a[2]),
    "Fn::Equals": lambda r, a: r.resolve(a[0]) == r.resolve(a[1]),
    "Fn::Not": lambda r, a: not r.resolve(a[0]),
    "Fn::And": lambda r, a: all(r.resolve(v) for v in a),
    "Fn::Or": lambda r, a: any(r.resolve(v) for v in a),
    "Condition": lambda r, a: r.condition(a),
    "Fn::Join": lambda r, a: str(a[0]).join(str(v) for v in r.resolve(a[1])),
    "Fn::Split": lambda r, a: str(r.resolve(a[1])).split(a[0]),
    "Fn::Select": lambda r, a: r.resolve(a[1])[int(r.resolve(a[0]))],
    "Fn::GetAtt": _get_att,
}
