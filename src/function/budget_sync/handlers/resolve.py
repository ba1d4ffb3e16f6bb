"""The resolver: every account's effective budget, from the organisation's tree. Five functions
of the management stack, one per event source, each with its own role (only what its path
calls), log group and errors alarm (template-management.yaml):

* ``schedule_handler`` (ResolverFunction, BlogBudgetsOrgResolver), the schedule
  (``ResolveSchedule``, a ``Scheduled Event`` from ``aws.events``): the whole organisation
  (level-triggered). Operators and ``budgetctl parked --reapply`` invoke it with the same event;
* ``defaults_handler`` (DefaultsResolverFunction), the defaults table's stream (a default set,
  changed or removed): the accounts under each changed root or OU;
* ``item_removed_handler`` (ItemRemovedResolverFunction), the budgets table's stream filtered
  to REMOVE records (an operator deleted an item): the account falls back to its default;
* ``organizations_handler`` (OrgEventsResolverFunction), ``AWS API Call via CloudTrail`` /
  ``AWS Service Event via CloudTrail`` from ``aws.organizations``: the account created
  (CreateAccountResult SUCCEEDED; another state: nothing) or moved (MoveAccount), and the whole
  organisation for AcceptHandshake (its event names no account). Organizations events reach
  EventBridge in us-east-1 only;
* ``stack_instance_handler`` (StackInstanceResolverFunction), ``CloudFormation StackSet
  StackInstance Status Change`` of the spoke StackSet (in the StackSet's region): the account
  whose spoke stack now exists (another StackSet's, or not SUCCEEDED: nothing).

An event that its function's source does not send (a stream batch given to the schedule's
function, an Organizations event the rule does not match, a record without its table's key)
is rejected: logged, counted in the metric ``UnrecognisedEvent`` and raised
(``errors.UnrecognisedEvent``), never taken for "resolve everything".
A failure raises: Lambda retries the event (every resolution is idempotent).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any, NoReturn

import boto3
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent, EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from budget_sync.config import CLIENT_CONFIG, ResolverSettings
from budget_sync.domain import ACCOUNT_ID_FIELD
from budget_sync.effective_budget import TARGET_ID_FIELD, Action
from budget_sync.errors import UnrecognisedEvent
from budget_sync.observability import logger, metrics, traced_handler
from budget_sync.organizations import OrganizationsReader, StackSetReadiness
from budget_sync.resolve import Resolver, ResolveSummary
from budget_sync.resolve_tables import DynamoDBResolverTables

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_ACCOUNT = re.compile(r"[0-9]{12}")
#: Organizations events that change which accounts exist, or where they sit.
ACCOUNT_EVENTS = ("CreateAccountResult", "AcceptHandshake", "MoveAccount")
ORGANIZATIONS_DETAIL_TYPES = ("AWS API Call via CloudTrail", "AWS Service Event via CloudTrail")
STACK_INSTANCE_DETAIL_TYPE = "CloudFormation StackSet StackInstance Status Change"
#: The correlation id of a stream batch: its first record's event id.
_STREAM_CORRELATION = "Records[0].eventID"


Built = tuple[ResolverSettings, "DynamoDBClient", boto3.Session]


def _build() -> Built:
    settings = ResolverSettings.from_env()
    session = boto3.Session()
    dynamodb: DynamoDBClient = session.client("dynamodb", config=CLIENT_CONFIG)
    return settings, dynamodb, session


# One builder per function, each cached: built once per execution environment, with that
# function's own role (the local organisation runs the five in one process, as one module).
build_schedule = cache(_build)
build_defaults = cache(_build)
build_item_removed = cache(_build)
build_organizations = cache(_build)
build_stack_instance = cache(_build)


def new_resolver(actor: str, build: Callable[[], Built]) -> Resolver:
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


def reject(event: Mapping[str, Any], expected: str) -> NoReturn:
    """An event this function's source does not send: logged, counted (``UnrecognisedEvent``)
    and raised, so that it is never taken for something else."""
    logger.error(
        "unrecognised event rejected",
        extra={"expected": expected, "source": event.get("source"), "detail_type": event.get("detail-type")},
    )
    metrics.add_metric(name="UnrecognisedEvent", unit="Count", value=1)
    shown = {k: event.get(k) for k in ("source", "detail-type")} if "Records" not in event else "Records"
    raise UnrecognisedEvent(f"event {str(shown)[:200]} is not {expected}")


# -- what each source's event names ------------------------------------------------------


def is_schedule(event: Mapping[str, Any]) -> bool:
    return event.get("source") == "aws.events" and event.get("detail-type") == "Scheduled Event"


def stream_keys(event: DynamoDBStreamEvent, key: str, expected: str) -> list[str]:
    """The ``key`` of each record of a DynamoDB stream batch, or a rejection naming ``expected``."""
    records = event.get("Records")
    if not isinstance(records, list) or not records:
        reject(event.raw_event, expected)
    keys: list[str] = []
    for record in records:
        if not isinstance(record, dict) or record.get("eventSource") != "aws:dynamodb":
            reject(event.raw_event, expected)
        value = ((record.get("dynamodb") or {}).get("Keys") or {}).get(key)
        if not isinstance(value, dict) or not isinstance(value.get("S"), str):
            reject(event.raw_event, expected)
        keys.append(value["S"])
    return keys


def removed_accounts(event: DynamoDBStreamEvent) -> set[str]:
    """The accounts of a batch of the budgets table's stream (REMOVE records, as its filter
    passes them; another record, or a key that is no account id, names none)."""
    keys = stream_keys(event, ACCOUNT_ID_FIELD, "a batch of the budgets table's stream")
    names = [record.event_name.name if record.event_name else "" for record in event.records]
    return {a for a, name in zip(keys, names, strict=True) if name == "REMOVE" and _ACCOUNT.fullmatch(a)}


def organizations_targets(event: EventBridgeEvent) -> tuple[set[str], bool]:
    """(accounts to look at, whole organisation?) for an Organizations event of the rule."""
    detail = event.get("detail") or {}
    name = detail.get("eventName") if isinstance(detail, dict) else None
    if (
        event.get("source") != "aws.organizations"
        or event.get("detail-type") not in ORGANIZATIONS_DETAIL_TYPES
        or name not in ACCOUNT_EVENTS
    ):
        reject(event.raw_event, f"an Organizations event ({', '.join(ACCOUNT_EVENTS)})")
    if name == "AcceptHandshake":  # an account joined; the event names the handshake, not it
        return set(), True
    account = ""
    if name == "CreateAccountResult":
        status = (detail.get("serviceEventDetails") or {}).get("createAccountStatus") or {}
        if status.get("state") != "SUCCEEDED":
            return set(), False
        account = str(status.get("accountId", ""))
    else:  # MoveAccount
        account = str((detail.get("requestParameters") or {}).get("accountId", ""))
    if not _ACCOUNT.fullmatch(account):
        reject(event.raw_event, f"a {name} event naming a 12-digit account id")
    return {account}, False


def stack_instance_ready(event: Mapping[str, Any], stack_set_name: str) -> str | None:
    """The account whose spoke stack instance just succeeded, from a StackSet event (None: an
    event of another StackSet, or of another status)."""
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


# -- the handlers ------------------------------------------------------------------------


def _run(
    context: LambdaContext, build: Callable[[], Built], work: Callable[[Resolver], Iterable[ResolveSummary]]
) -> dict[str, Any]:
    """Run the resolutions ``work`` asks for; metrics and the result, as every handler does."""
    resolver = new_resolver(f"budget-sync resolver ({context.function_name})", build)
    summaries = list(work(resolver))
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


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def _schedule(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    """The schedule (``FullResolution``): the whole organisation."""
    if not is_schedule(event.raw_event):
        reject(event.raw_event, "a Scheduled Event from aws.events")
    return _run(context, build_schedule, lambda resolver: [resolver.resolve_all()])


@logger.inject_lambda_context(correlation_id_path=_STREAM_CORRELATION)
@metrics.log_metrics
@event_source(data_class=DynamoDBStreamEvent)
def _defaults(event: DynamoDBStreamEvent, context: LambdaContext) -> dict[str, Any]:
    """The defaults table's stream (``DefaultsStream``): each changed default's accounts."""
    targets = sorted(set(stream_keys(event, TARGET_ID_FIELD, "a batch of the defaults table's stream")))
    return _run(context, build_defaults, lambda resolver: [resolver.resolve_target(t) for t in targets])


@logger.inject_lambda_context(correlation_id_path=_STREAM_CORRELATION)
@metrics.log_metrics
@event_source(data_class=DynamoDBStreamEvent)
def _item_removed(event: DynamoDBStreamEvent, context: LambdaContext) -> dict[str, Any]:
    """The budgets table's stream, REMOVE records (``ItemRemoved``): each account's default."""
    accounts = sorted(removed_accounts(event))
    return _run(context, build_item_removed, lambda resolver: [resolver.resolve_account(a) for a in accounts])


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def _organizations(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    """Organizations' events (``OrganizationsEventsRule``): the account created or moved."""
    accounts, everything = organizations_targets(event)

    def work(resolver: Resolver) -> list[ResolveSummary]:
        summaries = [resolver.resolve_all()] if everything else []
        return summaries + [resolver.resolve_account(a) for a in sorted(accounts)]

    return _run(context, build_organizations, work)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def _stack_instance(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    """The spoke StackSet's instance events (``StackInstanceRule``): the account now enrolled."""
    if event.get("source") != "aws.cloudformation" or event.get("detail-type") != STACK_INSTANCE_DETAIL_TYPE:
        reject(event.raw_event, f"a {STACK_INSTANCE_DETAIL_TYPE} event from aws.cloudformation")
    settings, _, _ = build_stack_instance()
    account = stack_instance_ready(event.raw_event, settings.stack_set_name)
    if account is None:
        logger.info("stack instance event of another StackSet or status: nothing to do")
    ready = [account] if account is not None else []
    return _run(
        context,
        build_stack_instance,
        lambda resolver: [resolver.resolve_account(a, spoke_ready=True) for a in ready],
    )


schedule_handler = traced_handler(_schedule)
"""ResolverFunction: the schedule (and operators' invocations)."""
defaults_handler = traced_handler(_defaults)
"""DefaultsResolverFunction: the defaults table's stream."""
item_removed_handler = traced_handler(_item_removed)
"""ItemRemovedResolverFunction: the budgets table's stream, REMOVE records."""
organizations_handler = traced_handler(_organizations)
"""OrgEventsResolverFunction: Organizations' events."""
stack_instance_handler = traced_handler(_stack_instance)
"""StackInstanceResolverFunction: the spoke StackSet's instance events."""
