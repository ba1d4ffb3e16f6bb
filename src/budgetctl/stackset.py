"""Roll template-spoke.yaml out to the organisation with CloudFormation StackSets.

    python -m budgetctl.stackset --ous ou-abcd-11111111 --region eu-west-1 \\
        --parameter-overrides ManagementAccountId=123456789012 AlertEmail1=finops@example.com

Service-managed (the default; needs trusted access for StackSets in AWS Organizations):
creates the StackSet ``budget-sync-spoke`` if it does not exist, updates it otherwise, then
creates stack instances for the OUs (idempotent: existing instances are left alone), in ONE region (IAM roles and budgets
are global to an account: a second region would collide on the role and budget names).

* Automatic deployment is on: an account that joins a target OU gets the spoke stack.
* ``RetainStacksOnAccountRemoval=true``: an account that leaves the OU (or the
  organisation) keeps its stack, so it keeps its budget and its alerts. The retained stack
  is no longer managed by the StackSet; delete it in that account if it should go.
  With ``false``, moving an account between OUs would silently delete its budget.
* Capabilities ``CAPABILITY_NAMED_IAM`` (the template names its roles).
* Operation preferences: failure tolerance and max concurrency as percentages.
* ``ManagedExecution`` active: CloudFormation queues a second operation instead of
  refusing it while one runs.

``--self-managed`` is for organisations without trusted access: the administration role
in this account and the execution role in each target account must exist (AWS's
``AWSCloudFormationStackSetAdministrationRole`` / ``AWSCloudFormationStackSetExecutionRole``
templates), and targets are account ids (``--accounts``).

StackSets never deploy to the management account itself. If it should have a budget,
give it the same template as a plain stack (``--dry-run`` prints that command as well).

``--dry-run`` prints the AWS CLI commands that do the same, and calls nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_cloudformation.type_defs import StackSetOperationPreferencesTypeDef

STACK_SET_NAME = "budget-sync-spoke"
TEMPLATE = Path(__file__).resolve().parents[2] / "template-spoke.yaml"
CAPABILITIES = ["CAPABILITY_NAMED_IAM"]
ADMIN_ROLE_NAME = "AWSCloudFormationStackSetAdministrationRole"
EXECUTION_ROLE_NAME = "AWSCloudFormationStackSetExecutionRole"
_DONE = {"SUCCEEDED", "FAILED", "STOPPED"}


class StackSetError(Exception):
    pass


@dataclass(frozen=True)
class Preferences:
    failure_tolerance_percentage: int = 10
    max_concurrent_percentage: int = 25

    def as_api(self) -> StackSetOperationPreferencesTypeDef:
        return {
            "FailureTolerancePercentage": self.failure_tolerance_percentage,
            "MaxConcurrentPercentage": self.max_concurrent_percentage,
            "RegionConcurrencyType": "SEQUENTIAL",
        }


@dataclass(frozen=True)
class Rollout:
    """What to deploy where. ``accounts`` only for self-managed; ``ous`` only for service-managed."""

    region: str
    parameters: Mapping[str, str]
    ous: Sequence[str] = ()
    accounts: Sequence[str] = ()
    self_managed: bool = False
    admin_role_name: str = ADMIN_ROLE_NAME
    execution_role_name: str = EXECUTION_ROLE_NAME
    name: str = STACK_SET_NAME
    call_as: str = "SELF"
    preferences: Preferences = field(default_factory=Preferences)

    def __post_init__(self) -> None:
        if self.self_managed and not self.accounts:
            raise StackSetError("--self-managed needs --accounts (target account ids)")
        if not self.self_managed and not self.ous:
            raise StackSetError("a service-managed StackSet needs --ous (organisational unit ids)")
        if self.self_managed and self.ous:
            raise StackSetError(
                "--ous applies to service-managed StackSets; use --accounts with --self-managed"
            )

    def api_parameters(self) -> list[dict[str, str]]:
        return [{"ParameterKey": k, "ParameterValue": v} for k, v in self.parameters.items()]


@dataclass(frozen=True)
class Result:
    created: bool
    operation_ids: tuple[str, ...]
    targets: tuple[str, ...]


def parse_overrides(tokens: Sequence[str]) -> dict[str, str]:
    """``Key=Value`` tokens (as ``sam deploy --parameter-overrides``) -> a dict."""
    overrides: dict[str, str] = {}
    for token in tokens:
        key, sep, value = token.partition("=")
        if not sep or not key:
            raise StackSetError(f"parameter override {token!r} is not Key=Value")
        overrides[key] = value
    return overrides


def _admin_role_arn(session: boto3.Session, name: str, endpoint_url: str | None = None) -> str:
    arn = session.client("sts", endpoint_url=endpoint_url).get_caller_identity()["Arn"]
    partition, account = arn.split(":")[1], arn.split(":")[4]
    return f"arn:{partition}:iam::{account}:role/{name}"


def _stack_set_arguments(rollout: Rollout, template_body: str, admin_role_arn: str | None) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "StackSetName": rollout.name,
        "TemplateBody": template_body,
        "Parameters": rollout.api_parameters(),
        "Capabilities": CAPABILITIES,
        "ManagedExecution": {"Active": True},
        "CallAs": rollout.call_as,
    }
    if rollout.self_managed:
        arguments["PermissionModel"] = "SELF_MANAGED"
        arguments["AdministrationRoleARN"] = admin_role_arn
        arguments["ExecutionRoleName"] = rollout.execution_role_name
    else:
        arguments["PermissionModel"] = "SERVICE_MANAGED"
        arguments["AutoDeployment"] = {"Enabled": True, "RetainStacksOnAccountRemoval": True}
    return arguments


def _targets(rollout: Rollout, targets: Sequence[str]) -> dict[str, Any]:
    if rollout.self_managed:
        return {"Accounts": list(targets)}
    return {"DeploymentTargets": {"OrganizationalUnitIds": list(targets)}}


def wait(
    client: CloudFormationClient,
    rollout: Rollout,
    operation_id: str,
    timeout_s: float = 3600,
    poll_s: float = 10,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Wait for a StackSet operation; raise StackSetError unless it succeeded."""
    deadline = time.monotonic() + timeout_s
    while True:
        operation = client.describe_stack_set_operation(
            StackSetName=rollout.name,
            OperationId=operation_id,
            CallAs=rollout.call_as,  # type: ignore[arg-type]
        )["StackSetOperation"]
        status = str(operation.get("Status", ""))
        if status in _DONE:
            if status != "SUCCEEDED":
                reason = operation.get("StatusReason", "see list-stack-set-operation-results")
                raise StackSetError(f"operation {operation_id} {status}: {reason}")
            return status
        if time.monotonic() > deadline:
            raise StackSetError(f"operation {operation_id} still {status} after {timeout_s:.0f} s")
        sleep(poll_s)


def deploy(
    client: CloudFormationClient,
    rollout: Rollout,
    template_body: str,
    admin_role_arn: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Result:
    """Create or update the StackSet, then create instances for the targets in one region."""
    arguments = _stack_set_arguments(rollout, template_body, admin_role_arn)
    operations: list[str] = []
    try:
        client.describe_stack_set(StackSetName=rollout.name, CallAs=rollout.call_as)  # type: ignore[arg-type]
        exists = True
    except client.exceptions.StackSetNotFoundException:
        exists = False
    if exists:
        update = {k: v for k, v in arguments.items() if k != "PermissionModel"}
        operation_id = client.update_stack_set(**update, OperationPreferences=rollout.preferences.as_api())[
            "OperationId"
        ]
        wait(client, rollout, operation_id, sleep=sleep)
        operations.append(operation_id)
    else:
        client.create_stack_set(**arguments)
    # Idempotent: targets that already have an instance are skipped by CloudFormation, so
    # every run also covers accounts that joined a target since (self-managed: new ids).
    targets = tuple(rollout.accounts if rollout.self_managed else rollout.ous)
    operation_id = client.create_stack_instances(
        StackSetName=rollout.name,
        Regions=[rollout.region],
        OperationPreferences=rollout.preferences.as_api(),
        CallAs=rollout.call_as,  # type: ignore[arg-type]
        **_targets(rollout, targets),
    )["OperationId"]
    wait(client, rollout, operation_id, sleep=sleep)
    operations.append(operation_id)
    return Result(created=not exists, operation_ids=tuple(operations), targets=targets)


def cli_commands(rollout: Rollout, template: Path = TEMPLATE, admin_role_arn: str | None = None) -> list[str]:
    """The AWS CLI commands equivalent to ``deploy`` (first rollout), plus the plain stack
    for the management account, which StackSets never reach."""
    q = shlex.quote
    with contextlib.suppress(ValueError):
        template = template.relative_to(Path.cwd())
    parameters = " ".join(q(f"ParameterKey={k},ParameterValue={v}") for k, v in rollout.parameters.items())
    preferences = ",".join(f"{k}={v}" for k, v in rollout.preferences.as_api().items())
    common = f"--stack-set-name {q(rollout.name)} --call-as {rollout.call_as}"
    if rollout.self_managed:
        permissions = (
            f"--permission-model SELF_MANAGED --administration-role-arn "
            f"{q(admin_role_arn or '<arn of ' + rollout.admin_role_name + '>')} "
            f"--execution-role-name {q(rollout.execution_role_name)}"
        )
        targets = "--accounts " + " ".join(q(a) for a in rollout.accounts)
    else:
        permissions = "--permission-model SERVICE_MANAGED --auto-deployment Enabled=true,RetainStacksOnAccountRemoval=true"
        targets = "--deployment-targets OrganizationalUnitIds=" + ",".join(rollout.ous)
    overrides = " ".join(q(f"{k}={v}") for k, v in rollout.parameters.items())
    return [
        f"aws cloudformation create-stack-set {common} --template-body file://{template} "
        f"{permissions} --capabilities {' '.join(CAPABILITIES)} --managed-execution Active=true "
        f"--parameters {parameters}",
        "# (an existing StackSet: the same with update-stack-set, without --permission-model, "
        f"plus --operation-preferences {preferences})",
        f"aws cloudformation create-stack-instances {common} {targets} --regions {q(rollout.region)} "
        f"--operation-preferences {preferences}",
        "# the management account itself (StackSets skip it), if it should have a budget:",
        f"aws cloudformation deploy --stack-name budget-sync-spoke --template-file {template} "
        f"--region {q(rollout.region)} --capabilities {' '.join(CAPABILITIES)} "
        f"--parameter-overrides {overrides}",
    ]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m budgetctl.stackset",
        description="Create or update the budget-sync spoke StackSet and deploy it to OUs in one region.",
    )
    parser.add_argument("--ous", nargs="*", default=[], help="organisational unit ids (service-managed)")
    parser.add_argument("--accounts", nargs="*", default=[], help="account ids (with --self-managed)")
    parser.add_argument("--region", required=True, help="the ONE region of every spoke stack")
    parser.add_argument(
        "--parameter-overrides",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="template-spoke.yaml parameters, e.g. ManagementAccountId=... AlertEmail1=...",
    )
    parser.add_argument("--self-managed", action="store_true", help="self-managed permissions")
    parser.add_argument("--admin-role-name", default=ADMIN_ROLE_NAME)
    parser.add_argument("--execution-role-name", default=EXECUTION_ROLE_NAME)
    parser.add_argument("--stack-set-name", default=STACK_SET_NAME)
    parser.add_argument("--call-as", choices=["SELF", "DELEGATED_ADMIN"], default="SELF")
    parser.add_argument("--failure-tolerance-percentage", type=int, default=10)
    parser.add_argument("--max-concurrent-percentage", type=int, default=25)
    parser.add_argument("--endpoint-url", help="e.g. the local organisation (make local)")
    parser.add_argument("--profile")
    parser.add_argument("--dry-run", action="store_true", help="print the AWS CLI commands, call nothing")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        rollout = Rollout(
            region=args.region,
            parameters=parse_overrides(args.parameter_overrides),
            ous=tuple(args.ous),
            accounts=tuple(args.accounts),
            self_managed=args.self_managed,
            admin_role_name=args.admin_role_name,
            execution_role_name=args.execution_role_name,
            name=args.stack_set_name,
            call_as=args.call_as,
            preferences=Preferences(args.failure_tolerance_percentage, args.max_concurrent_percentage),
        )
        if args.dry_run:
            print("\n".join(cli_commands(rollout)))
            return 0
        session = boto3.Session(profile_name=args.profile, region_name=args.region)
        client: CloudFormationClient = session.client("cloudformation", endpoint_url=args.endpoint_url)
        admin_role_arn = (
            _admin_role_arn(session, args.admin_role_name, args.endpoint_url) if args.self_managed else None
        )
        result = deploy(client, rollout, TEMPLATE.read_text(), admin_role_arn)
    except StackSetError as exc:
        print(f"stackset: {exc}", file=sys.stderr)
        return 2
    verb = "created" if result.created else "updated"
    print(
        f"StackSet {rollout.name} {verb}; targets: {', '.join(result.targets)} in {rollout.region}; "
        f"operations: {', '.join(result.operation_ids) or 'none'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
