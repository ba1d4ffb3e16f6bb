"""UnconfirmedCheckFunction: the schedule (``UnconfirmedCheck``, a ``Scheduled Event``) ->
unconfirmed statuses become FAILED. Its logic: results.py (``ResultStore.expire_unconfirmed``,
``decide_due``); its adapter: status_table.py.

Every SENT status older than ConfirmTimeoutMinutes becomes FAILED with a reason that says so,
and so does one whose execution AWS reported ended Failed, TimedOut or Cancelled more than 2
minutes ago without a report of its own (the notice does not fail the status at once: the
report may arrive after it), and an APPLIED status under which the spoke confirmed another
limit for a version the pipeline never sent (drift). Each transition into FAILED is counted
in the metric ``SpokeFailed``; an event that is not the schedule's is rejected
(handlers/results.py ``reject``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from budget_sync.config import ResultSettings
from budget_sync.handlers.results import reject, settled, status_table
from budget_sync.observability import logger, metrics, traced_handler
from budget_sync.results import ResultStore


@cache
def build_store() -> tuple[ResultStore, timedelta]:
    """The status table and the bound, for the unconfirmed-check function: built once per
    execution environment, with this function's own role."""
    settings = ResultSettings.from_env()
    return ResultStore(status_table(settings)), settings.confirm_timeout


def expire(store: ResultStore, timeout: timedelta, now: datetime) -> dict[str, Any]:
    """The check on ``store``: the function's answer (the accounts that became FAILED)."""
    expired = list(store.expire_unconfirmed(now, timeout))
    for transition in expired:
        settled(transition)
    metrics.add_metric(name="ConfirmTimeout", unit="Count", value=len(expired))
    logger.info("unconfirmed values checked", extra={"expired": len(expired)})
    return {"expired": [t.account_id for t in expired]}


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def _unconfirmed(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    """The schedule (``UnconfirmedCheck``): SENT values past the bound become FAILED."""
    if event.get("source") != "aws.events" or event.get("detail-type") != "Scheduled Event":
        reject(event.raw_event, "a Scheduled Event from aws.events")
    store, timeout = build_store()
    return expire(store, timeout, datetime.now(UTC))


handler = traced_handler(_unconfirmed)
"""UnconfirmedCheckFunction: the schedule."""
