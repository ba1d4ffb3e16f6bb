"""The spokes' reports -> the status table; unconfirmed -> FAILED; each new failure -> the
alarm topic, once. Three functions of the management stack, one per event source, each with
its own role, log group and errors alarm (template-management.yaml):

* ``handler`` (ResultFunction, BlogBudgetsResultLambda), the result bus's rule, with one spoke
  event (``Budget Update Result`` from the Automation script, or AWS's ``EC2 Automation
  Execution Status-change Notification`` of a failed, timed-out or cancelled execution):
  recorded in the status table (APPLIED or FAILED), conditionally and in order
  (budget_sync.results);
* ``unconfirmed_handler`` (UnconfirmedCheckFunction), a schedule (``Scheduled Event``): every
  SENT status older than ConfirmTimeoutMinutes becomes FAILED with a reason that says so, and
  so does one whose execution AWS reported ended Failed, TimedOut or Cancelled more than 2
  minutes ago without a report of its own (the notice does not fail the status at once: the
  report may arrive after it);
* ``notices_handler`` (FailureNoticeFunction), the status table's stream (``NewFailures``,
  filtered to records whose new status is FAILED): each account that became FAILED, whichever
  writer recorded it, is published once to the alarm topic and counted in the metric
  ``NewFailure`` (budget_sync.failures). A publish that fails for a reason that may pass is
  reported as the batch's failed item, and Lambda retries from it; a notice SNS refuses as
  such (InvalidParameter) is logged and counted (``NoticeNotPublished``) and the batch goes
  on, so it blocks no later failure.

An event that its function's source does not send (a schedule's function given a stream
batch, ...) is rejected: logged, counted in the metric ``UnrecognisedEvent`` and raised
(``UnrecognisedEvent``), never taken for another source's event.
A transition into FAILED recorded here is also counted in the metric ``SpokeFailed``. An
event that is not a result, or a report about a parameter version no run of budget-sync's
wrote (budget_sync.results), is logged and counted (``InvalidResult``), never retried; a table
that cannot be written raises, so that EventBridge's asynchronous invocation retries it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, NoReturn

import boto3
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent, EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from budget_sync.config import CLIENT_CONFIG, TABLE_NAME, optional_env, required_env
from budget_sync.errors import ConfigError, PermanentError, TransientError, UnrecognisedEvent
from budget_sync.failures import FailureNotifier, new_failures
from budget_sync.observability import logger, metrics, traced_handler
from budget_sync.results import InvalidResult, ResultStore, Transition, parse_event
from budget_sync.status import Status

_TOPIC_ARN = re.compile(r"arn:[a-z-]+:sns:[a-z0-9-]+:[0-9]{12}:[\w-]{1,256}")
DEFAULT_TIMEOUT_MINUTES = 15


@dataclass(frozen=True, slots=True)
class ResultSettings:
    """Environment variables (template-management.yaml: ResultFunction, UnconfirmedCheckFunction,
    FailureNoticeFunction):
    STATUS_TABLE_NAME        the status table
    ALARM_TOPIC_ARN          where a new failure is published (empty: metric and log only)
    CONFIRM_TIMEOUT_MINUTES  a SENT value not confirmed within this becomes FAILED (1 to 1440)
    """

    status_table_name: str
    alarm_topic_arn: str
    confirm_timeout: timedelta

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ResultSettings:
        env = os.environ if env is None else env
        table = required_env(env, "STATUS_TABLE_NAME", TABLE_NAME)
        topic = optional_env(env, "ALARM_TOPIC_ARN", _TOPIC_ARN) or ""
        minutes = env.get("CONFIRM_TIMEOUT_MINUTES", str(DEFAULT_TIMEOUT_MINUTES)).strip()
        if not minutes.isdigit() or not 1 <= int(minutes) <= 1440:
            raise ConfigError(
                f"environment variable CONFIRM_TIMEOUT_MINUTES {minutes!r} must be a whole number from 1 to 1440"
            )
        return cls(table, topic, timedelta(minutes=int(minutes)))


def _store() -> tuple[ResultStore, ResultSettings]:
    settings = ResultSettings.from_env()
    client = boto3.Session().client("dynamodb", config=CLIENT_CONFIG)
    return ResultStore(client, settings.status_table_name), settings


# One builder per function, each cached: built once per execution environment, with that
# function's own role (the local organisation runs the three in one process, as one module).
build_results_store = cache(_store)
"""The status table, for the result function."""
build_unconfirmed_store = cache(_store)
"""The status table, for the unconfirmed-check function."""


@cache
def build_notifier() -> FailureNotifier:
    """The alarm topic, for the failure-notice function: built once per execution environment."""
    settings = ResultSettings.from_env()
    sns = boto3.Session().client("sns", config=CLIENT_CONFIG) if settings.alarm_topic_arn else None
    return FailureNotifier.for_topic(sns, settings.alarm_topic_arn)


def _settled(transition: Transition) -> None:
    log = {"account_id": transition.account_id, "old": transition.old, "new": transition.new}
    if transition.new_failure:
        logger.error("budget not applied", extra={**log, "reason": transition.reason})
        metrics.add_metric(name="SpokeFailed", unit="Count", value=1)
    elif transition.new == Status.APPLIED:
        logger.info("budget confirmed", extra=log)
        metrics.add_metric(name="SpokeConfirmed", unit="Count", value=1)
    else:
        logger.info("spoke result recorded", extra={**log, "reason": transition.reason})


def reject(event: Mapping[str, Any], expected: str) -> NoReturn:
    """An event this function's source does not send: logged, counted (``UnrecognisedEvent``)
    and raised, so that it is not taken for something else (its invocation fails; Lambda's
    asynchronous retries, then the on-failure destination, hold it)."""
    logger.error(
        "unrecognised event rejected",
        extra={"expected": expected, "source": event.get("source"), "detail_type": event.get("detail-type")},
    )
    metrics.add_metric(name="UnrecognisedEvent", unit="Count", value=1)
    shown = {k: event.get(k) for k in ("source", "detail-type")} if "Records" not in event else "Records"
    raise UnrecognisedEvent(f"event {str(shown)[:200]} is not {expected}")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def _results(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    """The result bus's rule (``SpokeResults``): one spoke report, or AWS's notice of a failed
    execution, recorded in the status table."""
    store, _ = build_results_store()
    try:
        result = parse_event(event.raw_event)
        if result is None:
            return {"recorded": False, "reason": "not a terminal failure"}
        recorded = store.record(result)
    except InvalidResult as exc:
        logger.error(
            "not a spoke result",
            extra={"reason": str(exc), "event_id": event.get("id"), "account_id": event.get("account")},
        )
        metrics.add_metric(name="InvalidResult", unit="Count", value=1)
        return {"recorded": False, "reason": str(exc)}
    if recorded is None:
        logger.info("stale spoke result ignored", extra={"account_id": result.account_id})
        metrics.add_metric(name="StaleResult", unit="Count", value=1)
        return {"recorded": False, "reason": "stale"}
    _settled(recorded)
    return {"recorded": True, "account": recorded.account_id, "status": recorded.new}


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def _unconfirmed(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    """The schedule (``UnconfirmedCheck``): SENT values past the bound become FAILED."""
    if event.get("source") != "aws.events" or event.get("detail-type") != "Scheduled Event":
        reject(event.raw_event, "a Scheduled Event from aws.events")
    store, settings = build_unconfirmed_store()
    expired = list(store.expire_unconfirmed(datetime.now(UTC), settings.confirm_timeout))
    for transition in expired:
        _settled(transition)
    metrics.add_metric(name="ConfirmTimeout", unit="Count", value=len(expired))
    logger.info("unconfirmed values checked", extra={"expired": len(expired)})
    return {"expired": [t.account_id for t in expired]}


@logger.inject_lambda_context(correlation_id_path="Records[0].eventID")
@metrics.log_metrics
@event_source(data_class=DynamoDBStreamEvent)
def _notices(event: DynamoDBStreamEvent, context: LambdaContext) -> dict[str, Any]:
    """The status table's stream (``NewFailures``): each new failure to the alarm topic."""
    records = event.get("Records")
    if not isinstance(records, list) or any(
        not isinstance(r, dict) or r.get("eventSource") != "aws:dynamodb" for r in records
    ):
        reject(event.raw_event, "a batch of DynamoDB stream records")
    return _notify([record.raw_event for record in event.records], build_notifier())


def _notify(records: list[dict[str, Any]], notifier: FailureNotifier) -> dict[str, Any]:
    """A batch of the status table's stream: publish each new failure, in order. The first
    that cannot be published yet, and every record after it, go back to Lambda for retry; one
    that SNS refuses as such is logged, counted and passed over."""
    settled, retry = 0, []
    for failure in new_failures(records):
        try:
            published = notifier.notify(failure)
        except PermanentError as exc:
            logger.error(
                "new failure not published: SNS refused the notice",
                extra={"account_id": failure.account_id, "source": failure.source, "reason": str(exc)},
            )
            metrics.add_metric(name="NoticeNotPublished", unit="Count", value=1)
            continue
        except TransientError as exc:
            logger.warning("failure not published, will retry", extra={"reason": str(exc)})
            retry = [{"itemIdentifier": failure.sequence_number}]
            break
        settled += 1
        logger.error(
            "new failure published" if published else "new failure (no alarm topic: logged only)",
            extra={"account_id": failure.account_id, "source": failure.source, "reason": failure.reason},
        )
    metrics.add_metric(name="NewFailure", unit="Count", value=settled)
    return {"batchItemFailures": retry}


handler = traced_handler(_results)
"""ResultFunction: the result bus's rule."""
unconfirmed_handler = traced_handler(_unconfirmed)
"""UnconfirmedCheckFunction: the schedule."""
notices_handler = traced_handler(_notices)
"""FailureNoticeFunction: the status table's stream."""
