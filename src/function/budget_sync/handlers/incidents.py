"""IncidentFunction (optional: template-management.yaml, condition IncidentsEnabled): budget alerts
-> ServiceNow incidents. Its logic: incidents/lifecycle.py; its adapters: incidents/servicenow.py
(ServiceNow), incidents/table.py (the incidents table), incidents/budget_alarms.py (the spoke
budget's state), incidents/accounts.py (the accounts and their settings), alarm_topic.py (failure
notices).

Two event sources:

- The incident queue (SQS, ``ReportBatchItemFailures``): each message is an SNS notification
  from a spoke's alert topic (AWS Budgets published to it; the spoke stack subscribes the
  queue). The message says only *which account* to look at (the topic's account, from
  ``TopicArn``); what the incident says and whether it is opened, updated or resolved comes
  from the budget's notifications' state read now (incidents/budget_alarms.py), so a duplicate, late or
  reordered message cannot open a second incident or resolve the wrong one. A message that
  cannot be handled yet (ServiceNow unavailable, a concurrent delivery still opening the
  incident) is returned to the queue and delivered again after its visibility timeout; after
  ``maxReceiveCount`` receives it moves to the incident dead-letter queue (alarmed). An SNS
  ``SubscriptionConfirmation`` (the queue is in another account than the topic) is confirmed
  by fetching its ``SubscribeURL``, once its host is SNS's own. Any other message is logged,
  counted (``IncidentMessageRefused``) and dropped.
- The hourly schedule (``Scheduled Event``): the authority (``sweep``). First every incident
  whose period has ended is resolved, then every account with a budgets-table item is read and
  its incident opened, updated or resolved. An alert whose message never arrived is found
  here. The day is the event's ``time`` (when the schedule fired), so a run on the first of a
  month ends the month before. Up to ``INCIDENT_SWEEP_CONCURRENCY`` of these (ended periods
  first, then accounts) run at once in a thread pool; no new one is started once less than
  ``SWEEP_RESERVE_MS`` of the invocation's time remains (``get_remaining_time_in_millis``):
  those not started are logged and counted (``IncidentSweepSkipped``) and left to the next
  hour. Each run starts at another place in the list of accounts (``rotated``), so a run cut
  short skips other accounts than the last one did.

A refusal by ServiceNow (a bad credential, a missing role) is published once to the alarm
topic (incidents/lifecycle.py) and not retried; a spoke that cannot be read is logged and counted
(``IncidentFailed``) and looked at again by the next schedule.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache, partial
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from budget_sync.alarm_topic import SnsAlarmTopic
from budget_sync.config import CLIENT_CONFIG
from budget_sync.errors import ConfigError, PermanentError, TransientError
from budget_sync.handlers.results import reject
from budget_sync.incidents.accounts import TableAccountDirectory
from budget_sync.incidents.budget_alarms import SpokeBudgetAlarms
from budget_sync.incidents.config import DEFAULT_SWEEP_CONCURRENCY, IncidentFunctionSettings
from budget_sync.incidents.lifecycle import AccountDirectory, AlarmReader, Incidents, Outcome, observe_account
from budget_sync.incidents.servicenow import Credentials, ServiceNowDesk, Transport, Urllib3Transport
from budget_sync.incidents.table import DynamoIncidentStore
from budget_sync.notices import AlarmTopic
from budget_sync.observability import logger, metrics, traced_handler
from budget_sync.organizations import OrganizationsReader

_TOPIC_ARN = re.compile(r"arn:[a-z-]+:sns:[a-z0-9-]+:(?P<account>[0-9]{12}):[\w-]{1,256}")
_SNS_HOST = re.compile(r"sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?")

#: The sweep starts nothing more once less than this remains of the invocation's time: what is
#: in flight may still wait for ServiceNow's retries (up to 3 waits of at most 20 s,
#: incidents/servicenow.py) before the function's timeout.
SWEEP_RESERVE_MS = 60_000
#: The golden ratio's fractional part: each hour's sweep starts this much further round the
#: list of accounts, so the starts spread evenly over it (``rotated``).
_GOLDEN = (5**0.5 - 1) / 2


@dataclass(frozen=True)
class IncidentContext:
    incidents: Incidents
    alarms: AlarmReader
    directory: AccountDirectory
    confirm: Callable[[str], None]
    #: accounts the hourly sweep looks at at once (INCIDENT_SWEEP_CONCURRENCY)
    concurrency: int = DEFAULT_SWEEP_CONCURRENCY


class _NoTopic:
    """No alarm topic configured: a refusal is logged only."""

    def publish(self, subject: str, message: str) -> None:
        logger.error("incident refused (no alarm topic)", extra={"subject": subject, "notice": message})


def _confirm_with_urllib3(url: str) -> None:
    import urllib3

    response = urllib3.PoolManager(timeout=urllib3.Timeout(connect=5, read=10), retries=False).request(
        "GET", url, redirect=False
    )
    if response.status != 200:
        raise TransientError(f"subscription confirmation answered {response.status}")


@cache
def build() -> IncidentContext:
    """Everything the function needs, built once per execution environment. The secret is read
    here: a new value reaches new execution environments (docs/itsm.md, rotation)."""
    return build_context(IncidentFunctionSettings.from_env(), boto3.Session())


def build_context(
    settings: IncidentFunctionSettings, session: boto3.Session, transport: Transport | None = None
) -> IncidentContext:
    """The function's context from its settings and a session (``transport``: ServiceNow's,
    urllib3 if None; a benchmark passes a modelled one)."""
    try:
        secret = session.client("secretsmanager", config=CLIENT_CONFIG).get_secret_value(
            SecretId=settings.secret_arn
        )
    except (ClientError, BotoCoreError) as exc:  # the secret's name, never its value
        raise ConfigError(
            f"cannot read the secret SERVICENOW_SECRET_ARN {settings.secret_arn} ({type(exc).__name__})"
        ) from None
    credentials = Credentials.from_secret(secret.get("SecretString", ""), f"secret {settings.secret_arn}")
    desk = ServiceNowDesk(
        settings.instance_url, credentials, transport or Urllib3Transport(maxsize=settings.sweep_concurrency)
    )
    dynamodb = session.client("dynamodb", config=CLIENT_CONFIG)
    topic: AlarmTopic = (
        SnsAlarmTopic(session.client("sns", config=CLIENT_CONFIG), settings.alarm_topic_arn)
        if settings.alarm_topic_arn
        else _NoTopic()
    )
    incidents = Incidents(
        desk,
        DynamoIncidentStore(dynamodb, settings.incidents_table_name),
        topic,
        close_code=settings.close_code,
    )
    partition = session.get_partition_for_region(session.region_name or settings.spoke_region)
    alarms = SpokeBudgetAlarms(
        session,
        session.client("sts", config=CLIENT_CONFIG),
        f"arn:{partition}:iam::{{account_id}}:role/{settings.spoke_role_name}",
        settings.budget_name,
        CLIENT_CONFIG,
    )
    directory = TableAccountDirectory(
        dynamodb,
        settings.budgets_table_name,
        settings.defaults_table_name,
        OrganizationsReader(session.client("organizations", config=CLIENT_CONFIG)),
        settings.stack,
    )
    return IncidentContext(
        incidents, alarms, directory, _confirm_with_urllib3, concurrency=settings.sweep_concurrency
    )


def _observe(account_id: str, ctx: IncidentContext, today: date | None = None) -> Outcome:
    return _reported(account_id, observe_account(account_id, ctx.incidents, ctx.alarms, ctx.directory, today))


def _reported(account_id: str, outcome: Outcome) -> Outcome:
    """Log the outcome and count it (``Incident<Action>``)."""
    log = logger.error if outcome.action == "failed" else logger.info
    log(
        "incident " + outcome.action,
        extra={
            "account_id": account_id,
            "correlation_id": outcome.correlation_id,
            "number": outcome.number,
            "reason": outcome.failure,
        },
    )
    metrics.add_metric(name=f"Incident{outcome.action.capitalize()}", unit="Count", value=1)
    return outcome


def _account_of(body: str, ctx: IncidentContext) -> str | None:
    """The account a queue message is about (None: nothing to do for it)."""
    try:
        message: Any = json.loads(body)
    except ValueError:
        message = None
    if not isinstance(message, Mapping):
        message = {}
    kind, topic = message.get("Type"), str(message.get("TopicArn", ""))
    matched = _TOPIC_ARN.fullmatch(topic)
    if kind == "Notification" and matched:
        return matched["account"]
    if kind == "SubscriptionConfirmation" and matched:
        url = str(message.get("SubscribeURL", ""))
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme == "https" and _SNS_HOST.fullmatch(parsed.hostname or ""):
            ctx.confirm(url)
            logger.info("alert topic subscription confirmed", extra={"topic_arn": topic})
            return None
    logger.error(
        "queue message refused: not an SNS notification from an alert topic",
        extra={"type": kind, "topic_arn": topic[:256]},
    )
    metrics.add_metric(name="IncidentMessageRefused", unit="Count", value=1)
    return None


def deliver(records: list[Mapping[str, Any]], ctx: IncidentContext) -> dict[str, Any]:
    """A batch of the incident queue: each account looked at once; a message whose account
    cannot be handled yet goes back to the queue."""
    retry: list[dict[str, str]] = []
    done: dict[str, bool] = {}  # account -> handled (a batch may name one account twice)
    for record in records:
        account = _account_of(str(record.get("body", "")), ctx)
        if account is None:
            continue
        if account not in done:
            try:
                _observe(account, ctx)
                done[account] = True
            except TransientError as exc:
                logger.warning(
                    "incident not handled yet, will retry", extra={"account_id": account, "reason": str(exc)}
                )
                done[account] = False
                metrics.add_metric(name="IncidentDeferred", unit="Count", value=1)
            except PermanentError as exc:
                logger.error("incident not handled", extra={"account_id": account, "reason": str(exc)})
                metrics.add_metric(name="IncidentFailed", unit="Count", value=1)
                done[account] = True  # the next schedule looks again
        if not done[account]:
            retry.append({"itemIdentifier": str(record["messageId"])})
    return {"batchItemFailures": retry}


def rotated(accounts: Sequence[str], moment: datetime) -> list[str]:
    """The accounts in the order the sweep of ``moment``'s hour starts them: the sorted list
    begun at a place that moves round it by the golden ratio every hour, so the starts spread
    evenly over it and a run cut short never skips the same accounts hour after hour."""
    ordered = sorted(accounts)
    if not ordered:
        return ordered
    hour = int(moment.timestamp() // 3600)
    start = int((hour * _GOLDEN) % 1.0 * len(ordered))
    return ordered[start:] + ordered[:start]


def _attempt(work: Callable[[], Outcome]) -> Outcome | Exception:
    """Run in a worker thread: the outcome, or the project's error (the main thread reports
    either; anything else is a bug and is raised where the result is read)."""
    try:
        return work()
    except (TransientError, PermanentError) as exc:
        return exc


def _bounded(
    jobs: Sequence[tuple[str, Callable[[], Outcome]]],
    concurrency: int,
    time_left: Callable[[], bool],
    report: Callable[[str, Outcome | Exception], None],
) -> list[str]:
    """Run the jobs in order, at most ``concurrency`` at once, starting none once ``time_left``
    says no; ``report`` (called in this thread) gets each result. The keys of the jobs never
    started."""
    running: dict[Future[Outcome | Exception], str] = {}

    def harvest(block_until_one: bool) -> None:
        done, _ = wait(running, return_when=FIRST_COMPLETED) if block_until_one else wait(running)
        for future in done:
            report(running.pop(future), future.result())

    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="sweep") as pool:
        for index, (key, work) in enumerate(jobs):
            while len(running) >= max(1, concurrency):
                harvest(block_until_one=True)
            if not time_left():
                harvest(block_until_one=False)
                return [k for k, _ in jobs[index:]]
            running[pool.submit(_attempt, work)] = key
        harvest(block_until_one=False)
    return []


def sweep(
    ctx: IncidentContext, now: datetime | None = None, remaining_ms: Callable[[], int] | None = None
) -> dict[str, Any]:
    """The schedule: every ended period resolved, then every account looked at, up to
    ``ctx.concurrency`` at once, none started once less than SWEEP_RESERVE_MS remains
    (``remaining_ms``: the invocation's remaining time; None: no limit)."""
    moment = now or datetime.now(UTC)
    today = moment.date()
    actions: dict[str, int] = {}
    unfinished: list[str] = []
    unread: list[str] = []
    try:
        ended = ctx.incidents.ended(today)
    except TransientError as exc:  # the accounts are still looked at; the next hour tries again
        logger.error("incident sweep: cannot list the ended periods", extra={"reason": str(exc)})
        ended, unread = [], [*unread, str(exc)]
    try:
        accounts = rotated(ctx.directory.accounts(), moment)
    except TransientError as exc:  # the ended periods are still resolved
        logger.error("incident sweep: cannot list the accounts", extra={"reason": str(exc)})
        accounts, unread = [], [*unread, str(exc)]

    def report(key: str, result: Outcome | Exception) -> None:
        account = key.partition("/")[0]
        if isinstance(result, Exception):
            logger.error(
                "incident not handled", extra={"account_id": account, "key": key, "reason": str(result)}
            )
            metrics.add_metric(name="IncidentFailed", unit="Count", value=1)
            unfinished.append(key)
            return
        _reported(account, result)
        actions[result.action] = actions.get(result.action, 0) + 1

    jobs: list[tuple[str, Callable[[], Outcome]]] = [
        (cid, partial(ctx.incidents.resolve_ended, cid)) for cid in ended
    ]
    jobs += [
        (account, partial(observe_account, account, ctx.incidents, ctx.alarms, ctx.directory, today))
        for account in accounts
    ]

    def time_left() -> bool:
        return remaining_ms is None or remaining_ms() > SWEEP_RESERVE_MS

    skipped = _bounded(jobs, ctx.concurrency, time_left, report)
    skipped_ended = [k for k in skipped if "/" in k]
    skipped_accounts = [k for k in skipped if "/" not in k]
    summary: dict[str, Any] = {
        "actions": actions,
        "unfinished": unfinished,
        "skipped": skipped_accounts,
        "skipped_ended": skipped_ended,
    }
    metrics.add_metric(name="IncidentSweepSkipped", unit="Count", value=len(skipped))
    if skipped:
        logger.warning(
            "incident sweep cut short: not started before the time ran out, left to the next hour",
            extra={"accounts": len(skipped_accounts), "ended_periods": len(skipped_ended)},
        )
    logger.info("incident sweep", extra=summary)
    if unread:
        raise TransientError("incident sweep: " + "; ".join(unread))
    return summary


def _event_time(event: Mapping[str, Any]) -> datetime | None:
    """When the schedule fired (the event's ``time``, ISO 8601 UTC, as EventBridge sets it);
    None if it has none or it is not a time."""
    try:
        return datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00")).astimezone(UTC)
    except (KeyError, ValueError):
        return None


@logger.inject_lambda_context
@metrics.log_metrics
def _incidents(
    event: dict[str, Any], context: LambdaContext, ctx: IncidentContext | None = None
) -> dict[str, Any]:
    records = event.get("Records")
    if (
        isinstance(records, list)
        and records
        and all(isinstance(r, dict) and r.get("eventSource") == "aws:sqs" for r in records)
    ):
        return deliver(records, ctx or build())
    if event.get("source") == "aws.events" and event.get("detail-type") == "Scheduled Event":
        return sweep(
            ctx or build(), _event_time(event), getattr(context, "get_remaining_time_in_millis", None)
        )
    reject(event, "a batch of SQS messages from the incident queue, or a Scheduled Event")


handler = traced_handler(_incidents)
"""IncidentFunction: the incident queue and the hourly schedule."""
