"""HistoryFunction: the status, defaults, approval requests and approvals tables' streams -> the
history table.

Its logic: history.py (which record says what, and why these streams and not the budgets
table's); its adapter: history_table.py. Each batch comes from one of the four mappings
(``StatusChanges``, ``DefaultsChanges``, ``ApprovalRequestChanges``, ``ApprovalDecisions``); a record's ``eventSourceARN`` names its table, and a
record from any other table (or an event that is not a batch of DynamoDB stream records) is
rejected (handlers/results.py ``reject``). Records are appended in stream order; the first that
cannot be written, and every one after it, go back to Lambda (``ReportBatchItemFailures``),
which retries them and, after MaximumRetryAttempts, describes the batch in the function's own
failure queue (``HistoryFailureQueue``; docs/operate.md says how to append its records).
A record appended twice is written once (conditional put). Metrics: ``HistoryAppended``,
``HistoryDuplicate``.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from budget_sync.config import CLIENT_CONFIG, HistorySettings
from budget_sync.handlers.results import reject
from budget_sync.history import HistoryTable, Stream, append_batch
from budget_sync.history_table import DynamoHistoryTable
from budget_sync.observability import logger, metrics, traced_handler


@cache
def settings() -> HistorySettings:
    return HistorySettings.from_env()


@cache
def build_table() -> DynamoHistoryTable:
    """The history table: built once per execution environment."""
    config = settings()
    client = boto3.Session().client("dynamodb", config=CLIENT_CONFIG)
    return DynamoHistoryTable(client, config.history_table_name, config.retention_days)


def stream_of(record: Any, config: HistorySettings) -> Stream | None:
    """Which of the four streams a record is from (None: neither): ``eventSourceARN`` is
    ``arn:<partition>:dynamodb:<region>:<account>:table/<name>/stream/<label>``."""
    if not isinstance(record, dict) or record.get("eventSource") != "aws:dynamodb":
        return None
    parts = str(record.get("eventSourceARN", "")).split("/")
    table = parts[1] if len(parts) >= 4 and parts[2] == "stream" else None
    tables = {
        config.status_table_name: Stream.STATUS,
        config.defaults_table_name: Stream.DEFAULTS,
        config.requests_table_name: Stream.REQUESTS,
        config.approvals_table_name: Stream.APPROVALS,
    }
    return tables.get(table or "") if table else None


def append(event: dict[str, Any], table: HistoryTable, config: HistorySettings) -> dict[str, Any]:
    """One batch: each record's history appended; the batch response."""
    records = event.get("Records")
    streams = [stream_of(r, config) for r in records] if isinstance(records, list) else [None]
    if not records or any(s is None for s in streams):
        reject(
            event, "a batch of the status, defaults, approval requests or approvals table's stream records"
        )
    assert isinstance(records, list)
    outcome = append_batch([(s, r) for s, r in zip(streams, records, strict=True) if s], table)
    metrics.add_metric(name="HistoryAppended", unit="Count", value=outcome.appended)
    metrics.add_metric(name="HistoryDuplicate", unit="Count", value=outcome.duplicates)
    log = {
        "records": len(records),
        "appended": outcome.appended,
        "duplicates": outcome.duplicates,
        "ignored": outcome.ignored,
    }
    if outcome.retry:
        logger.warning("history not written, will retry", extra={**log, "from_sequence": outcome.retry[0]})
    else:
        logger.info("history appended", extra=log)
    return {"batchItemFailures": [{"itemIdentifier": s} for s in outcome.retry]}


@logger.inject_lambda_context(correlation_id_path="Records[0].eventID")
@metrics.log_metrics
@event_source(data_class=DynamoDBStreamEvent)
def _history(event: DynamoDBStreamEvent, context: LambdaContext) -> dict[str, Any]:
    """The status, defaults and approval tables' streams: every change and outcome, appended."""
    return append(event.raw_event, build_table(), settings())


handler = traced_handler(_history)
"""HistoryFunction: the status, defaults and approval tables' streams."""
