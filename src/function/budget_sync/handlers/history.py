"""HistoryFunction: the status, defaults, approval requests and approvals tables' streams -> the
history table.

Its logic: history.py (which record says what, and why these streams and not the budgets
table's); its adapter: history_table.py. Each batch comes from one of the four mappings
(``StatusChanges``, ``DefaultsChanges``, ``ApprovalRequestChanges``, ``ApprovalDecisions``); a record's ``eventSourceARN`` names its table, and a
record from any other table (or an event that is not a batch of DynamoDB stream records) is
rejected (handlers/results.py ``reject``). Records are appended in stream order; the first that
cannot be written, and every one after it, go back to Lambda (``ReportBatchItemFailures``),
which retries them and, after MaximumRetryAttempts, describes the batch in the function's own
failure queue (``HistoryFailureQueue``; ``budgetctl parked --history --reapply`` appends its
records, below).
A record appended twice is written once (conditional put). Metrics: ``HistoryAppended``,
``HistoryDuplicate``.

A parked batch comes back through ``{"ParkedBatch": <the failure message's DDBStreamBatchInfo>}``
(``budgetctl parked --history --reapply``): the function reads the described records from the
stream itself (``GetShardIterator`` AT_SEQUENCE_NUMBER, ``GetRecords``, with the permissions its
mappings already need) and appends them as a batch, so the caller sends positions, never records.
A stream of no table of its four is refused. Records trimmed from the stream (DynamoDB Streams
keeps them 24 hours) cannot be read: the answer counts them as ``missing``.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from budget_sync.config import CLIENT_CONFIG, HistorySettings
from budget_sync.handlers.results import reject
from budget_sync.history import HistoryTable, Stream, append_batch
from budget_sync.history_table import DynamoHistoryTable
from budget_sync.observability import logger, metrics, traced_handler


@cache
def settings() -> HistorySettings:
    return HistorySettings.from_env()


@cache
def build_streams() -> Any:
    """The DynamoDB Streams client for a parked batch: built once per execution environment."""
    return boto3.Session().client("dynamodbstreams", config=CLIENT_CONFIG)


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


def reappend(info: object, streams: Any, table: HistoryTable, config: HistorySettings) -> dict[str, Any]:
    """A parked batch (its description) read back from its stream and appended: the records
    found, appended, duplicates, ``missing`` (described but no longer in the stream) and the
    batch response's failures. Bad input (not a description, or a stream of another table) is
    refused with the field and the value."""
    fields = ("streamArn", "shardId", "startSequenceNumber", "endSequenceNumber")
    if not isinstance(info, dict) or any(not isinstance(info.get(f), str) or not info[f] for f in fields):
        reject({"Records": None}, f"a ParkedBatch with {', '.join(fields)} (a DDBStreamBatchInfo)")
    arn = str(info["streamArn"])
    stream = stream_of({"eventSource": "aws:dynamodb", "eventSourceARN": arn}, config)
    if stream is None:
        reject(
            {"Records": None},
            f"a ParkedBatch of the status, defaults or approval tables' streams, not {arn!r}",
        )
    expected = int(info.get("batchSize") or 0)
    last = int(info["endSequenceNumber"])
    records: list[dict[str, Any]] = []
    try:
        iterator = streams.get_shard_iterator(
            StreamArn=arn,
            ShardId=info["shardId"],
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            SequenceNumber=info["startSequenceNumber"],
        )["ShardIterator"]
        while iterator:
            page = streams.get_records(ShardIterator=iterator, Limit=1000)
            found = page.get("Records", [])
            for record in found:
                if int(record["dynamodb"]["SequenceNumber"]) > last:
                    iterator = None
                    break
                records.append(_as_event_record(record, arn))
            else:
                iterator = page.get("NextShardIterator") if found else None
    except ClientError as exc:  # TrimmedDataAccessException, ResourceNotFoundException: gone
        code = exc.response.get("Error", {}).get("Code", "")
        logger.warning("parked batch not readable", extra={"stream": arn, "code": code})
        return {
            "records": 0,
            "appended": 0,
            "duplicates": 0,
            "missing": expected,
            "unreadable": code,
            "batchItemFailures": [],
        }
    answer: dict[str, Any] = {
        "records": len(records),
        "appended": 0,
        "duplicates": 0,
        "batchItemFailures": [],
    }
    if records:
        outcome = append_batch([(stream, r) for r in records], table)
        answer.update(
            appended=outcome.appended,
            duplicates=outcome.duplicates,
            batchItemFailures=[{"itemIdentifier": s} for s in outcome.retry],
        )
        metrics.add_metric(name="HistoryAppended", unit="Count", value=outcome.appended)
        metrics.add_metric(name="HistoryDuplicate", unit="Count", value=outcome.duplicates)
    answer["missing"] = max(expected - len(records), 0)
    logger.info(
        "parked batch re-appended",
        extra={"stream": arn, **{k: v for k, v in answer.items() if k != "batchItemFailures"}},
    )
    return answer


def _as_event_record(record: dict[str, Any], arn: str) -> dict[str, Any]:
    """A GetRecords record as Lambda delivers it: with ``eventSourceARN``, and the creation
    time as epoch seconds (botocore parses it to a datetime)."""
    body = dict(record.get("dynamodb") or {})
    created = body.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        body["ApproximateCreationDateTime"] = int(created.timestamp())
    return {**record, "dynamodb": body, "eventSource": "aws:dynamodb", "eventSourceARN": arn}


@logger.inject_lambda_context(correlation_id_path="Records[0].eventID")
@metrics.log_metrics
@event_source(data_class=DynamoDBStreamEvent)
def _history(event: DynamoDBStreamEvent, context: LambdaContext) -> dict[str, Any]:
    """The status, defaults and approval tables' streams: every change and outcome, appended."""
    if "ParkedBatch" in event.raw_event:
        return reappend(event.raw_event["ParkedBatch"], build_streams(), build_table(), settings())
    return append(event.raw_event, build_table(), settings())


handler = traced_handler(_history)
"""HistoryFunction: the status, defaults and approval tables' streams."""
