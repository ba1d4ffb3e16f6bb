"""What budgetctl.stackset sends to CloudFormation: every call's parameters recorded before
moto sees them (moto ignores AutoDeployment, ManagedExecution and OperationPreferences), and a
minimal template to roll out."""

from __future__ import annotations

from typing import Any

REGION = "eu-west-1"
MINIMAL_TEMPLATE = (
    '{"Parameters": {"ManagementAccountId": {"Type": "String"}, "AlertEmail1": {"Type": "String"}},'
    ' "Resources": {"P": {"Type": "AWS::SSM::Parameter", "Properties": {"Name": "/t", "Type": "String", "Value": "1"}}}}'
)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.name, dict(params)))

    def named(self, operation: str) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == operation]


def recorded(client: Any) -> Recorder:
    recorder = Recorder()
    client.meta.events.register("provide-client-params.cloudformation.*", recorder)
    return recorder
