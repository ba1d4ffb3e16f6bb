"""The names every command uses (the templates' defaults), the checks of what the user typed, and
the AWS context: clients built on first use."""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, ProfileNotFound

from budget_sync.alerts import alert_attributes
from budget_sync.config import CLIENT_CONFIG, DEFAULT_BUDGET_NAME, TABLE_NAME
from budget_sync.cost_basis import cost_basis_attributes
from budget_sync.domain import (
    parse_account_id,
    parse_budget_text,
)
from budget_sync.incidents.lifecycle import incident_attributes
from budget_sync.reconcile import Reconciler
from budget_sync.spoke import SsmSpokeGateway
from budgetctl.budgets_table import BudgetsTable
from budgetctl.errors import AwsError, UsageError
from budgetctl.output import Output

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

#: ``set``'s option (argparse dest) for each ``Incident*`` attribute: --incident-urgency, ...
INCIDENT_OPTIONS = {
    "IncidentUrgency": "incident_urgency",
    "IncidentImpact": "incident_impact",
    "IncidentAssignmentGroup": "incident_assignment_group",
    "IncidentCaller": "incident_caller",
}


#: Why an account must be in the organisation, and how to write anyway (set, import).
OUTSIDE_HINT = (
    "budget-sync reaches an account through the spoke role, which trusts only the organisation; "
    "pass --outside-organization to write it anyway"
)

#: The templates' defaults (tests/ops checks them against both templates).
DEFAULT_TABLE = "BlogBudgetsDynamoDB"
DEFAULT_STATUS_TABLE = "BlogBudgetsStatus"
DEFAULT_ROLE = "BlogBudgetsSpokeRole"
#: Operators read spokes through this role (template-spoke.yaml, SpokeReadRoleName) and ask
#: the reconciler (template-management.yaml, ReconcilerFunctionName) for repairs.
DEFAULT_READ_ROLE = "BlogBudgetsSpokeReadRole"
DEFAULT_RECONCILER = "BlogBudgetsReconciler"
DEFAULT_PARAMETER = "/BlogBudgets/CostThreshold"
DEFAULT_CONCURRENCY = 16
SESSION_NAME = "budgetctl"

_ROLE = re.compile(r"[\w+=,.@-]{1,64}")
_PARAMETER = re.compile(r"/[\w.\-/]{1,1010}")
_BUDGET = re.compile(r"[^:\\]{1,100}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]+")
_STACK = re.compile(r"[a-zA-Z][-a-zA-Z0-9]{0,127}|arn:[a-z-]+:cloudformation:\S+")
_ENDPOINT = re.compile(r"https?://[^\s/]+(/\S*)?")
_FUNCTION = re.compile(
    r"[A-Za-z0-9_-]{1,64}|arn:[a-z-]+:lambda:[a-z0-9-]+:[0-9]{12}:function:[A-Za-z0-9_-]{1,64}"
)


DEFAULTS: dict[str, Any] = {
    "profile": None,
    "region": None,
    "endpoint_url": None,
    "output": "table",
    "debug": False,
    "table": DEFAULT_TABLE,
    "status_table": DEFAULT_STATUS_TABLE,
    "role_name": DEFAULT_ROLE,
    "read_role_name": DEFAULT_READ_ROLE,
    "reconciler_function": DEFAULT_RECONCILER,
    "parameter_name": DEFAULT_PARAMETER,
    "budget_name": DEFAULT_BUDGET_NAME,
    "spoke_region": None,
    "concurrency": DEFAULT_CONCURRENCY,
}


def validate(args: argparse.Namespace) -> None:
    """Everything the user typed, checked before any AWS call. Errors name the option and value."""
    checks: list[tuple[str, str | None, re.Pattern[str]]] = [
        ("--table", args.table, TABLE_NAME),
        ("--status-table", args.status_table, TABLE_NAME),
        ("--role-name", args.role_name, _ROLE),
        ("--read-role-name", args.read_role_name, _ROLE),
        ("--reconciler-function", args.reconciler_function, _FUNCTION),
        ("--parameter-name", args.parameter_name, _PARAMETER),
        ("--budget-name", args.budget_name, _BUDGET),
        ("--region", args.region, _REGION),
        ("--spoke-region", args.spoke_region, _REGION),
        ("--endpoint-url", args.endpoint_url, _ENDPOINT),
        ("--stack-name", getattr(args, "stack_name", None), _STACK),
    ]
    for option, value, pattern in checks:
        if value is not None and not pattern.fullmatch(value):
            raise UsageError(f"{option} {value!r} is not valid")
    if not 1 <= args.concurrency <= 64:
        raise UsageError(f"--concurrency {args.concurrency} must be from 1 to 64")
    if hasattr(args, "account") and isinstance(args.account, str):
        args.account = parse_account_id(args.account)
    if hasattr(args, "amount"):
        args.amount = parse_budget_text(args.amount, args.account)
    if hasattr(args, "alert_emails"):
        args.alerts = alert_attributes(args.alert_emails, args.thresholds, args.forecasted, args.account)
        args.alerts.update(
            cost_basis_attributes(getattr(args, "metric", None), getattr(args, "exclude", None), args.account)
        )
        args.alerts.update(
            incident_attributes(
                {f: getattr(args, option, None) for f, option in INCIDENT_OPTIONS.items()}, args.account
            )
        )
    if getattr(args, "expect", None) is not None:
        args.expect = None if args.expect.strip().lower() == "none" else parse_budget_text(args.expect)
    elif not getattr(args, "force", False):
        args.expect = "read"
    else:
        args.expect = "force"
    if isinstance(getattr(args, "account", None), list):
        args.account = [parse_account_id(a) for a in args.account]


class Context:
    """The parsed arguments, the output, and AWS clients built on first use."""

    def __init__(self, args: argparse.Namespace, out: Output, session: boto3.Session | None = None) -> None:
        self.args = args
        self.out = out
        if session is not None:  # embedding (benchmarks): a session with hooks of its own
            self.__dict__["session"] = session

    @cached_property
    def session(self) -> boto3.Session:
        try:
            session = boto3.Session(profile_name=self.args.profile, region_name=self.args.region)
        except ProfileNotFound as exc:
            raise UsageError(f"--profile {self.args.profile!r}: {exc}") from exc
        if not session.region_name:
            raise UsageError("no region: pass --region, or set AWS_REGION or a region in the profile")
        return session

    def client(self, service: str) -> Any:
        endpoint: str | None = self.args.endpoint_url
        return self.session.client(service, endpoint_url=endpoint, config=CLIENT_CONFIG)  # type: ignore[call-overload]

    @cached_property
    def dynamodb(self) -> DynamoDBClient:
        client: DynamoDBClient = self.client("dynamodb")
        return client

    @cached_property
    def caller_arn(self) -> str:
        """Who writes: the ARN of the caller's identity, recorded as UpdatedBy."""
        return str(self.client("sts").get_caller_identity()["Arn"])

    @cached_property
    def table(self) -> BudgetsTable:
        return BudgetsTable(self.dynamodb, self.args.table, lambda: self.caller_arn)

    @cached_property
    def spokes(self) -> SsmSpokeGateway:
        """The spoke accounts through the read-only role (--read-role-name; one client cache for
        every command)."""
        return SsmSpokeGateway(
            parameter_name=self.args.parameter_name,
            role_name=self.args.read_role_name,
            region=self.args.spoke_region or self.session.region_name,
            session_name=SESSION_NAME,
            session=self.session,
            endpoint_url=self.args.endpoint_url,
        )

    def reconciler(self) -> Reconciler:
        """Reads spokes through the read-only role. It never repairs: a repair is the
        reconciler function's (budgetctl.repair)."""
        return Reconciler(
            self.spokes, None, budget_name=self.args.budget_name, max_concurrency=self.args.concurrency
        )

    def organisation_accounts(self) -> dict[str, str]:
        """Active accounts of the organisation: id -> name."""
        accounts: dict[str, str] = {}
        for page in self.client("organizations").get_paginator("list_accounts").paginate():
            for account in page.get("Accounts", []):
                if account.get("Status", "ACTIVE") == "ACTIVE":
                    accounts[account["Id"]] = account.get("Name", "")
        return accounts

    def members(self, wanted: Sequence[str], *, list_all: bool = False) -> set[str]:
        """Which of ``wanted`` are accounts of the organisation (in any state): one DescribeAccount
        for one account, else (or with ``list_all``, for a key that may be no well-formed id) the
        pages of ListAccounts. AwsError (exit 4) saying what to do when the organisation cannot be
        read (not its management account or a delegated administrator, not allowed, no
        organisation): the caller writes nothing then."""
        organizations = self.client("organizations")
        describe = len(wanted) == 1 and not list_all
        operation = "DescribeAccount" if describe else "ListAccounts"
        try:
            if describe:
                try:
                    organizations.describe_account(AccountId=wanted[0])
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") == "AccountNotFoundException":
                        return set()
                    raise
                return set(wanted)
            found = {
                account["Id"]
                for page in organizations.get_paginator("list_accounts").paginate()
                for account in page.get("Accounts", [])
            }
        except (ClientError, BotoCoreError) as exc:
            if isinstance(exc, ClientError):
                error = exc.response.get("Error", {})
                detail = f"{error.get('Code', '?')}: {error.get('Message', '')}"
            else:
                detail = str(exc)
            raise AwsError(
                f"cannot check that the account(s) are in the organisation: organizations:{operation} "
                f"failed ({detail}). Run budgetctl with credentials of the organisation's management "
                f"account (or a delegated administrator) allowed organizations:{operation}, or pass "
                "--outside-organization to write without this check; nothing written"
            ) from exc
        return found & set(wanted)
