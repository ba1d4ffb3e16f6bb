"""BlogBudgetsOrgResolver: every account's effective budget, from the organisation's tree.

Lambda calls ``handler`` with one of:

* the defaults table's stream (a default set, changed or removed): the accounts under each
  changed root or OU are resolved;
* the budgets table's stream, REMOVE records only (an operator deleted an item): the
  account falls back to its default, if any;
* ``AWS API Call via CloudTrail`` / ``AWS Service Event via CloudTrail`` from
  ``aws.organizations`` (CreateAccountResult, AcceptHandshake, MoveAccount): the account
  concerned. Organizations events reach EventBridge in us-east-1 only;
* ``CloudFormation StackSet StackInstance Status Change`` of the spoke StackSet (in the
  StackSet's region): the account whose spoke stack now exists;
* the schedule (or anything else): the whole organisation (level-triggered).

A failure raises: Lambda retries the event (every resolution is idempotent).
"""

from __future__ import annotations

import re
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from budget_sync.config import CLIENT_CONFIG
from budget_sync.domain import ACCOUNT_ID_FIELD
from budget_sync.effective_budget import TARGET_ID_FIELD, Action
from budget_sync.observability import logger, metrics, traced_handler
from budget_sync.organizations import OrganizationsReader, StackSetReadiness
from budget_sync.resolve import Resolver, ResolverSettings, ResolveSummary
from budget_sync.resolve_tables import DynamoDBResolverTables

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_ACCOUNT = re.compile(r"[0-9]{12}")
#: Organizations events that change which accounts exist, or where they sit.
ACCOUNT_EVENTS = ("CreateAccountResult", "AcceptHandshake", "MoveAccount")


@cache
def build() -> tuple[ResolverSettings, DynamoDBClient, boto3.Session]:
    settings = ResolverSettings.from_env()
    session = boto3.Session()
    dynamodb: DynamoDBClient = session.client("dynamodb", config=CLIENT_CONFIG)
    return settings, dynamodb, session


def new_resolver(actor: str) -> Resolver:
    """Per invocation: a reader whose call counter starts at zero."""
    settings, dynamodb, session = build()
    # Organizations is a global service with one endpoint; botocore picks it for the partition.
    organizations = OrganizationsReader(
        session.client("organizations", config=CLIENT_CONFIG), settings.max_rps
    )
    readiness = None
    if settings.stack_set_name:
        cloudformation = session.client("cloudformation", config=CLIENT_CONFIG)
        readiness = StackSetReadiness(
            cloudformation, settings.stack_set_name, settings.spoke_region, settings.call_as
        )
    tables = DynamoDBResolverTables(
        dynamodb, settings.budgets_table_name, settings.defaults_table_name, settings.status_table_name
    )
    return Resolver(tables, organizations, readiness, actor)


def targets_of(event: dict[str, Any]) -> tuple[set[str], set[str], bool]:
    """(changed default targets, accounts to look at, whole organisation?) for one event."""
    records = event.get("Records")
    if isinstance(records, list):
        return _targets_of_records(records)
    if event.get("source") == "aws.organizations":
        return _targets_of_organizations_event(event.get("detail") or {})
    if event.get("detail-type") == "CloudFormation StackSet StackInstance Status Change":
        return set(), set(), False  # handled by stack_instance_ready
    return set(), set(), True


def _targets_of_records(records: list[Any]) -> tuple[set[str], set[str], bool]:
    """The defaults table's stream: the changed targets; the budgets table's: removed accounts."""
    targets: set[str] = set()
    accounts: set[str] = set()
    for record in records:
        stream = record.get("dynamodb", {})
        keys = stream.get("Keys", {})
        if TARGET_ID_FIELD in keys:
            targets.add(str(keys[TARGET_ID_FIELD].get("S", "")))
        elif ACCOUNT_ID_FIELD in keys and record.get("eventName") == "REMOVE":
            accounts.add(str(keys[ACCOUNT_ID_FIELD].get("S", "")))
    return targets, {a for a in accounts if _ACCOUNT.fullmatch(a)}, False


def _targets_of_organizations_event(detail: dict[str, Any]) -> tuple[set[str], set[str], bool]:
    """An Organizations event: the account created or moved; anything else, everything."""
    name = detail.get("eventName")
    account = ""
    if name == "CreateAccountResult":
        status = detail.get("serviceEventDetails", {}).get("createAccountStatus", {})
        if status.get("state") != "SUCCEEDED":
            return set(), set(), False
        account = str(status.get("accountId", ""))
    elif name == "MoveAccount":
        account = str((detail.get("requestParameters") or {}).get("accountId", ""))
    if _ACCOUNT.fullmatch(account):
        return set(), {account}, False
    return set(), set(), True  # AcceptHandshake and anything unexpected: look at everything


def stack_instance_ready(event: dict[str, Any], stack_set_name: str) -> str | None:
    """The account whose spoke stack instance just succeeded, from a StackSet event."""
    if event.get("detail-type") != "CloudFormation StackSet StackInstance Status Change":
        return None
    detail = event.get("detail") or {}
    arn = str(detail.get("stack-set-arn", ""))
    if not stack_set_name or f":stackset/{stack_set_name}:" not in arn:
        return None
    if (detail.get("status-details") or {}).get("detailed-status") != "SUCCEEDED":
        return None
    # stack-id: arn:<partition>:cloudformation:<region>:<account>:stack/<name>/<uuid>
    parts = str(detail.get("stack-id", "")).split(":")
    account = parts[4] if len(parts) > 5 else ""
    return account if _ACCOUNT.fullmatch(account) else None


@logger.inject_lambda_context
@metrics.log_metrics
def _handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings, _, _ = build()
    resolver = new_resolver(f"budget-sync resolver ({context.function_name})")
    summaries: list[ResolveSummary] = []
    ready_account = stack_instance_ready(event, settings.stack_set_name)
    if ready_account is not None:
        summaries.append(resolver.resolve_account(ready_account, spoke_ready=True))
    else:
        targets, accounts, everything = targets_of(event)
        if everything:
            summaries.append(resolver.resolve_all())
        for target in sorted(targets):
            summaries.append(resolver.resolve_target(target))
        for account in sorted(accounts):
            summaries.append(resolver.resolve_account(account))
    totals: dict[str, int] = {}
    for summary in summaries:
        for action, count in summary.counts.items():
            totals[action] = totals.get(action, 0) + count
    for action in (Action.WRITE, Action.DELETE, Action.WAIT, Action.SKIP):
        metrics.add_metric(name=action.value, unit="Count", value=totals.get(action.value, 0))
    calls = sum(resolver.organizations.calls.values())
    metrics.add_metric(name="OrganizationsCalls", unit="Count", value=calls)
    result = {
        "scopes": [s.scope for s in summaries],
        "actions": dict(sorted(totals.items())),
        "conflicts": sum(s.conflicts for s in summaries),
        "stale": sum(s.stale for s in summaries),
        "organizations_calls": calls,
    }
    logger.info("resolver finished", extra=result)
    return result


handler = traced_handler(_handler)
