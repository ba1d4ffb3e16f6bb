"""SSM Parameter Store: AllowedPattern, and the Parameter Store Change event."""

from __future__ import annotations

import inspect
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from moto.ssm.exceptions import ValidationException
from moto.ssm.models import SimpleSystemManagerBackend
from moto.utilities.utils import get_partition

from budget_sync_local.standins.bus import StandIns


def parameter_arn(partition: str, region: str, account: str, name: str) -> str:
    """A parameter's ARN: ``.../parameter/a/b`` for ``/a/b`` and for ``a/b`` alike."""
    return f"arn:{partition}:ssm:{region}:{account}:parameter/{name.lstrip('/')}"


def parameter_store_change_event(
    account: str,
    region: str,
    name: str,
    operation: str,
    parameter_type: str = "String",
    description: str = "",
) -> dict[str, Any]:
    """The event AWS puts on the default bus when a parameter changes (Create|Update|Delete)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Parameter Store Change",
        "source": "aws.ssm",
        "account": account,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [parameter_arn(get_partition(region), region, account, name)],
        "detail": {
            "name": name,
            "type": parameter_type,
            "operation": operation,
            "description": description or "",
        },
    }


def _pattern_mismatch(pattern: str) -> ValidationException:
    error = ValidationException(f"Parameter value, cannot be validated against allowedPattern: {pattern}")
    error.code = "ParameterPatternMismatchException"
    return error


def _put_parameter(original: Callable[..., Any], stand_ins: StandIns) -> Callable[..., Any]:
    signature = inspect.signature(original)

    def put_parameter(self: SimpleSystemManagerBackend, *args: Any, **kwargs: Any) -> Any:
        arguments = signature.bind(self, *args, **kwargs).arguments
        name, value = arguments["name"], arguments["value"]
        previous = self.get_parameter(name)
        # Checked against the pattern the call brings, else the stored one (as AWS does,
        # for a create as for an overwrite).
        pattern = arguments.get("allowed_pattern") or (previous.allowed_pattern if previous else None)
        if pattern and value is not None and not re.search(pattern, value):
            raise _pattern_mismatch(pattern)
        parameter = original(self, *args, **kwargs)
        operation = "Create" if parameter.version == 1 else "Update"
        stand_ins.publish(
            parameter_store_change_event(
                self.account_id,
                self.region_name,
                parameter.name,
                operation,
                parameter.parameter_type,
                parameter.description or "",
            )
        )
        return parameter

    return put_parameter


def _delete_parameter(original: Callable[..., Any], stand_ins: StandIns) -> Callable[..., Any]:
    def delete_parameter(self: SimpleSystemManagerBackend, name: str) -> None:
        previous = self.get_parameter(name)
        original(self, name)
        stand_ins.publish(_delete_event(self, name, previous))

    return delete_parameter


def _delete_parameters(original: Callable[..., Any], stand_ins: StandIns) -> Callable[..., Any]:
    def delete_parameters(self: SimpleSystemManagerBackend, names: list[str]) -> list[str]:
        previous = {name: self.get_parameter(name) for name in names}
        deleted: list[str] = original(self, names)
        for name in deleted:
            stand_ins.publish(_delete_event(self, name, previous.get(name)))
        return deleted

    return delete_parameters


def _delete_event(backend: SimpleSystemManagerBackend, name: str, previous: Any) -> dict[str, Any]:
    return parameter_store_change_event(
        backend.account_id,
        backend.region_name,
        previous.name if previous is not None else name,
        "Delete",
        previous.parameter_type if previous is not None else "String",
        (previous.description or "") if previous is not None else "",
    )
