"""ResultFunction (BlogBudgetsResultLambda): the result bus's rule (``SpokeResults``) -> the
status table. Its logic: results.py; its adapter: status_table.py.

One spoke event per invocation (``Budget Update Result`` from the Automation script, or AWS's
``EC2 Automation Execution Status-change Notification`` of a failed, timed-out or cancelled
execution), recorded in the status table (APPLIED or FAILED), conditionally and in order
(budget_sync.results). A transition into FAILED recorded here is counted in the metric
``SpokeFailed``. An event that is not a result, or a report about a parameter version no run
of budget-sync's wrote, is logged and counted (``InvalidResult``), never retried; a table that
cannot be written raises, so that EventBridge's asynchronous invocation retries it.

The schedule's check (handlers/unconfirmed.py) and the failure notices (handlers/notices.py)
are their own functions, each with its own role, log group and errors alarm
(template-management.yaml). An event that its function's source does not send is rejected
(``reject``): logged, counted in the metric ``UnrecognisedEvent`` and raised
(``UnrecognisedEvent``), never taken for another source's event.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any, NoReturn

import boto3
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from budget_sync.config import CLIENT_CONFIG, ResultSettings
from budget_sync.errors import UnrecognisedEvent
from budget_sync.observability import logger, metrics, traced_handler
from budget_sync.results import InvalidResult, ResultStore, Transition, parse_event
from budget_sync.status import Status
from budget_sync.status_table import DynamoStatusTable


def status_table(settings: ResultSettings) -> DynamoStatusTable:
    """The status table's adapter, with one DynamoDB client."""
    return DynamoStatusTable(
        boto3.Session().client("dynamodb", config=CLIENT_CONFIG), settings.status_table_name
    )


@cache
def build_store() -> ResultStore:
    """The status table, for the result function: built once per execution environment."""
    return ResultStore(status_table(ResultSettings.from_env()))


def settled(transition: Transition) -> None:
    """Log and count a recorded transition (``SpokeFailed``, ``SpokeConfirmed``)."""
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


def record(event: Mapping[str, Any], store: ResultStore) -> dict[str, Any]:
    """One result bus event recorded on ``store``: the function's answer."""
    try:
        result = parse_event(event)
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
    settled(recorded)
    return {"recorded": True, "account": recorded.account_id, "status": recorded.new}


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def _results(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    """The result bus's rule (``SpokeResults``): one spoke report, or AWS's notice of a failed
    execution, recorded in the status table."""
    return record(event.raw_event, build_store())


handler = traced_handler(_results)
"""ResultFunction: the result bus's rule."""
