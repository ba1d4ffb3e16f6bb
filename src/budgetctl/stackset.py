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

On update, every template parameter not given keeps the StackSet's current value
(``UsePreviousValue``), never its template default: re-running a rollout with fewer
``--parameter-overrides`` than the first one must not drop ``OrganizationId`` from every
spoke role, delete the alert topics or reset every account's parameter. The parameter
changes are printed before anything is applied.

An operation that ends SUCCEEDED may still have failed instances (within the failure
tolerance): each failed account is listed with its reason (ListStackSetOperationResults)
and the command exits 1.

``--dry-run`` prints the parameter changes (reading the StackSet, if it exists) and the
AWS CLI commands that do the same, and changes nothing.

Exit codes: 0 done; 1 some stack instances failed; 2 usage error or a failed operation;
4 an AWS call failed (credentials, permissions, throttling), in one line.
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
from botocore.exceptions import BotoCoreError, ClientError

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


class InstancesFailed(StackSetError):
    """The operation succeeded within its failure tolerance, but these instances failed."""

    def __init__(self, operation_id: str, failed: Sequence[Mapping[str, Any]]) -> None:
        self.failed = list(failed)
        lines = [
            f"  {f.get('Account', '?')} {f.get('Region', '?')}: {f.get('StatusReason') or 'no reason given'}"
            for f in self.failed
        ]
        super().__init__(
            f"operation {operation_id} SUCCEEDED but {len(self.failed)} stack instance(s) failed:\n"
            + "\n".join(lines)
        )


@dataclass(frozen=True)
class ParameterChange:
    """One template parameter on this rollout: ``before`` the StackSet's value (None: not
    set), ``after`` the value sent (None: the StackSet's value is kept, or the default)."""

    key: str
    before: str | None
    after: str | None
    default: str | None = None

    def describe(self) -> str:
        if self.after is None and self.before is not None:
            return f"{self.key}: {self.before!r} (kept)"
        if self.after is None:
            return f"{self.key}: template default {self.default!r}"
        if self.before is None:
            return f"{self.key}: {self.after!r} (new)"
        if self.before == self.after:
            return f"{self.key}: {self.after!r} (unchanged)"
        return f"{self.key}: {self.before!r} -> {self.after!r}"


def plan_parameters(
    given: Mapping[str, str], previous: Mapping[str, str] | None, template: Mapping[str, str | None]
) -> tuple[list[dict[str, Any]], list[ParameterChange]]:
    """The Parameters to send and the changes they make.

    ``previous`` is the StackSet's current parameters (None: it does not exist yet);
    ``template`` maps the new template's parameters to their defaults. A parameter not given
    that the StackSet has keeps its value (UsePreviousValue); one it lacks gets its default.
    """
    unknown = sorted(set(given) - set(template))
    if unknown:
        raise StackSetError(f"the template has no parameter(s) {', '.join(unknown)}")
    api: list[dict[str, Any]] = []
    changes: list[ParameterChange] = []
    for key in [*given, *sorted(k for k in template if k not in given)]:
        before = None if previous is None else previous.get(key)
        if key in given:
            api.append({"ParameterKey": key, "ParameterValue": given[key]})
            changes.append(ParameterChange(key, before, given[key]))
        elif before is not None:
            api.append({"ParameterKey": key, "UsePreviousValue": True})
            changes.append(ParameterChange(key, before, None))
        else:
            changes.append(ParameterChange(key, None, None, template[key]))
    return api, changes


def current_parameters(client: CloudFormationClient, rollout: Rollout) -> dict[str, str] | None:
    """The StackSet's parameters now, or None if there is no such StackSet."""
    try:
        stack_set = client.describe_stack_set(StackSetName=rollout.name, CallAs=rollout.call_as)  # type: ignore[arg-type]
    except client.exceptions.StackSetNotFoundException:
        return None
    return {
        str(p["ParameterKey"]): str(p.get("ParameterValue", ""))
        for p in stack_set["StackSet"].get("Parameters", [])
    }


def template_parameters(client: CloudFormationClient, template_body: str) -> dict[str, str | None]:
    """The template's parameters and their defaults, as CloudFormation itself reads them."""
    summary = client.get_template_summary(TemplateBody=template_body)
    return {str(p["ParameterKey"]): p.get("DefaultValue") for p in summary.get("Parameters", [])}


def failed_instances(
    client: CloudFormationClient, rollout: Rollout, operation_id: str
) -> list[dict[str, Any]]:
    """Every instance of the operation that did not succeed, with its reason."""
    failed: list[dict[str, Any]] = []
    pages = client.get_paginator("list_stack_set_operation_results").paginate(
        StackSetName=rollout.name,
        OperationId=operation_id,
        CallAs=rollout.call_as,  # type: ignore[arg-type]
    )
    for page in pages:
        failed.extend(
            dict(s) for s in page.get("Summaries", []) if s.get("Status") in ("FAILED", "CANCELLED")
        )
    return failed


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
            failed = failed_instances(client, rollout, operation_id)
            if failed:
                raise InstancesFailed(operation_id, failed)
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
    say: Callable[[str], None] = print,
) -> Result:
    """Create or update the StackSet, then create instances for the targets in one region.

    The parameter changes are printed (``say``) before anything is changed."""
    arguments = _stack_set_arguments(rollout, template_body, admin_role_arn)
    previous = current_parameters(client, rollout)
    exists = previous is not None
    arguments["Parameters"], changes = plan_parameters(
        rollout.parameters, previous, template_parameters(client, template_body)
    )
    say(_changes_text(rollout, changes, exists))
    operations: list[str] = []
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


def _changes_text(rollout: Rollout, changes: Sequence[ParameterChange], exists: bool) -> str:
    verb = "update of" if exists else "new"
    return f"parameters ({verb} StackSet {rollout.name}):\n" + "\n".join(
        "  " + change.describe() for change in changes
    )


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
        session = boto3.Session(profile_name=args.profile, region_name=args.region)
        client: CloudFormationClient = session.client("cloudformation", endpoint_url=args.endpoint_url)
        if args.dry_run:
            return _dry_run(client, rollout)
        admin_role_arn = (
            _admin_role_arn(session, args.admin_role_name, args.endpoint_url) if args.self_managed else None
        )
        result = deploy(client, rollout, TEMPLATE.read_text(), admin_role_arn)
    except InstancesFailed as exc:
        print(f"stackset: {exc}", file=sys.stderr)
        return 1
    except StackSetError as exc:
        print(f"stackset: {exc}", file=sys.stderr)
        return 2
    except ClientError as exc:
        error = exc.response.get("Error", {})
        print(
            f"stackset: {exc.operation_name}: {error.get('Code', '?')}: {error.get('Message', '')}",
            file=sys.stderr,
        )
        return 4
    except BotoCoreError as exc:
        print(f"stackset: {exc}", file=sys.stderr)
        return 4
    verb = "created" if result.created else "updated"
    print(
        f"StackSet {rollout.name} {verb}; targets: {', '.join(result.targets)} in {rollout.region}; "
        f"operations: {', '.join(result.operation_ids) or 'none'}"
    )
    return 0


def _dry_run(client: CloudFormationClient, rollout: Rollout) -> int:
    """The parameter changes (the StackSet is read, nothing is changed) and the CLI commands."""
    previous = current_parameters(client, rollout)
    _, changes = plan_parameters(
        rollout.parameters, previous, template_parameters(client, TEMPLATE.read_text())
    )
    print(_changes_text(rollout, changes, previous is not None))
    if previous is not None:
        kept = [c.key for c in changes if c.after is None and c.before is not None]
        print(
            "# update-stack-set keeps these with ParameterKey=KEY,UsePreviousValue=true: "
            + (", ".join(kept) or "none")
        )
    print("\n".join(cli_commands(rollout)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
