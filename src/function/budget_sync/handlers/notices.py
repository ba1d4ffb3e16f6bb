"""FailureNoticeFunction: the status table's stream (``NewFailures``, filtered to records whose
new status is FAILED) -> the alarm topic. Its logic: notices.py; its adapter: alarm_topic.py.

Each account that became FAILED, whichever writer recorded it, is published once to the alarm
topic and counted in the metric ``NewFailure`` (budget_sync.notices). A publish that fails for
a reason that may pass is reported as the batch's failed item, and Lambda retries from it; a
notice SNS refuses as such (InvalidParameter) is logged and counted (``NoticeNotPublished``)
and the batch goes on, so it blocks no later failure. An event that is not a batch of DynamoDB
stream records is rejected (handlers/results.py ``reject``).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from budget_sync.alarm_topic import SnsAlarmTopic
from budget_sync.config import CLIENT_CONFIG, ResultSettings
from budget_sync.errors import PermanentError, TransientError
from budget_sync.handlers.results import reject
from budget_sync.notices import FailureNotifier, new_failures
from budget_sync.observability import logger, metrics, traced_handler


@cache
def build_notifier() -> FailureNotifier:
    """The alarm topic, for the failure-notice function: built once per execution environment
    (no topic configured: log and metric only)."""
    settings = ResultSettings.from_env()
    if not settings.alarm_topic_arn:
        return FailureNotifier(None)
    sns = boto3.Session().client("sns", config=CLIENT_CONFIG)
    return FailureNotifier(SnsAlarmTopic(sns, settings.alarm_topic_arn))


def notify(records: list[dict[str, Any]], notifier: FailureNotifier) -> dict[str, Any]:
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
    return notify([record.raw_event for record in event.records], build_notifier())


handler = traced_handler(_notices)
"""FailureNoticeFunction: the status table's stream."""
