"""BlogBudgetsUpdateLambda: the budgets table's stream -> each spoke account's parameter.

Lambda calls ``handler`` with a batch of DynamoDB stream records and the event source
mapping's ``ReportBatchItemFailures``. The answer is always the batch response: records
whose account failed transiently are listed (Lambda resumes from the lowest one); every
other record is settled, applied or recorded as failed in the status table.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from budget_sync.approval_tables import DynamoApprovalTable, DynamoRequestTable
from budget_sync.approvals import ApprovalGate, ApprovalRule
from budget_sync.config import CLIENT_CONFIG, ApprovalSettings, Settings
from budget_sync.errors import TransientError
from budget_sync.observability import logger, metrics, traced_handler
from budget_sync.spoke import SsmSpokeGateway
from budget_sync.status import StatusStore
from budget_sync.status_table import DynamoStatusTable
from budget_sync.update import BatchResult, BudgetSync, Outcome, StreamRecord

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)


@cache
def build_service() -> BudgetSync:
    """Built once per execution environment: settings validated, clients reused."""
    settings = Settings.from_env()
    session = boto3.Session()
    gateway = SsmSpokeGateway.from_settings(settings, session)
    dynamodb = session.client("dynamodb", config=CLIENT_CONFIG)
    status = StatusStore(DynamoStatusTable(dynamodb, settings.status_table_name))
    return BudgetSync(gateway, status, settings.max_concurrency, approval_gate(dynamodb))


def approval_gate(dynamodb: DynamoDBClient) -> ApprovalGate | None:
    """The approval rule's gate, or None without a rule (ApprovalSettings: both thresholds empty)."""
    approvals = ApprovalSettings.from_env()
    if not approvals.active:
        return None
    requests = DynamoRequestTable(dynamodb, approvals.requests_table_name)
    decisions = DynamoApprovalTable(dynamodb, approvals.approvals_table_name)
    rule = ApprovalRule(approvals.amount, approvals.percent)
    return ApprovalGate(rule, requests, approvals.expiry, approvals=decisions)


def to_stream_record(record: DynamoDBRecord) -> StreamRecord:
    stream = record.dynamodb
    if stream is None or stream.sequence_number is None or record.event_name is None:
        raise ValueError("not a DynamoDB stream record")
    return StreamRecord(
        event_name=record.event_name.name,
        sequence_number=stream.sequence_number,
        keys=stream.keys,
        new_image=stream.new_image,
        old_image=stream.old_image,
    )


@logger.inject_lambda_context
@metrics.log_metrics
def _handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    records = [DynamoDBRecord(raw) for raw in event.get("Records", [])]
    result = build_service().process(
        [to_stream_record(record) for record in records], remaining_ms=context.get_remaining_time_in_millis
    )
    for outcome, count in result.outcomes.items():
        metrics.add_metric(name=outcome.value, unit="Count", value=count)
    logger.info(
        "batch processed",
        extra={"records": len(records), **{o.value: result.outcomes.get(o, 0) for o in Outcome}},
    )
    return process_partial_response(
        event=event, record_handler=_settle(result), processor=processor, context=context
    )


def _settle(result: BatchResult) -> Any:
    def record_handler(record: DynamoDBRecord) -> None:
        if record.dynamodb and record.dynamodb.sequence_number in result.retry_sequence_numbers:
            raise TransientError("account failed transiently; Lambda retries from this record")

    return record_handler


handler = traced_handler(_handler)
