"""New failures, whoever recorded them, published once to the alarm topic.

Every writer of the status table can turn an account FAILED: the stream function (an invalid
item, a spoke it cannot reach, a value the spoke's parameter refuses), the result function
(the spoke's own failure, a value not confirmed in time), the reconciler (a repair that does
not hold). The status table's stream (NEW_AND_OLD_IMAGES) carries each of these writes to
the result function (``NewFailures`` in template-management.yaml, filtered to records whose
new image is FAILED), and a record whose old image was not FAILED is a new failure: it is
published once, with the writer's reason, whichever step failed.

An account that stays FAILED (a second invalid value, AWS's failure notice after the
script's own report) is not a new failure. An account that failed, was sent a new value and
failed again is. Delivery is at least once: a publish that fails makes Lambda retry from
that record, so a message may be sent twice, never not at all (after MaximumRetryAttempts
the batch is parked in the result dead-letter queue).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from budget_sync.errors import TransientError
from budget_sync.status import Status, _deserialize


@dataclass(frozen=True, slots=True)
class NewFailure:
    """An account that became FAILED, from its status stream record."""

    sequence_number: str  # the stream record's (Lambda's batch item identifier)
    account_id: str
    reason: str
    source: str  # who recorded it: stream | spoke | timeout | reconciler
    desired: str  # the desired value, if the item had a valid one
    previous: str  # the status before (none: the account had no status)


def new_failures(records: Iterable[Mapping[str, Any]]) -> list[NewFailure]:
    """The records of a status stream batch that turn an account FAILED, in stream order."""
    found = []
    for record in records:
        data = record.get("dynamodb") or {}
        new = _image(data.get("NewImage"))
        old = _image(data.get("OldImage"))
        if new.get("Status") != Status.FAILED or old.get("Status") == Status.FAILED:
            continue
        found.append(
            NewFailure(
                sequence_number=str(data.get("SequenceNumber", "")),
                account_id=str(new.get("AccountId", "")),
                reason=str(new.get("Reason", "")) or "no reason recorded",
                source=str(new.get("Source", "")),
                desired="" if new.get("DesiredValue") is None else str(new["DesiredValue"]),
                previous=str(old.get("Status", "none")),
            )
        )
    return found


def _image(raw: object) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        return {}
    return {str(k): _deserialize(v) for k, v in raw.items()}


class FailureNotifier:
    """Publishes one message per new failure to the alarm topic (no topic: log only)."""

    def __init__(self, publish: Callable[..., Any] | None, topic_arn: str) -> None:
        self._publish = publish
        self._topic_arn = topic_arn

    @classmethod
    def for_topic(cls, sns: Any, topic_arn: str) -> FailureNotifier:
        """``sns``: an SNS client (or None: no topic, log and metric only)."""
        return cls(sns.publish if sns is not None and topic_arn else None, topic_arn)

    def notify(self, failure: NewFailure) -> bool:
        """Publish it (False: there is no topic to publish to); TransientError if SNS refused,
        so that Lambda retries the record."""
        if self._publish is None:
            return False
        wanted = f" (desired value {failure.desired})" if failure.desired else ""
        message = (
            f"budget-sync: the budget of account {failure.account_id} was not applied{wanted}.\n"
            f"Reason (text recorded by the {failure.source or 'pipeline'} step): {failure.reason}\n"
            f"Status before: {failure.previous}.\n"
            f"See `budgetctl status --account {failure.account_id}` and the status table."
        )
        try:
            self._publish(
                TopicArn=self._topic_arn,
                Subject=f"budget-sync: budget not applied in account {failure.account_id}",
                Message=message,
            )
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(f"account {failure.account_id}: failure not published ({exc})") from exc
        return True


__all__ = ["FailureNotifier", "NewFailure", "new_failures"]
