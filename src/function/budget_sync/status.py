"""The status table: per account, what was asked, what was applied, and why not.

Item (key ``AccountId``):
  DesiredValue    N   the value the budgets table asked for (absent if the item was invalid)
  AppliedValue    N   the last value written to the spoke parameter
  Status          S   APPLIED | FAILED | UNMANAGED | WAITING | SKIPPED (see Status)
  Reason          S   why, for FAILED and UNMANAGED
  UpdatedAt       S   ISO 8601, UTC
  SequenceNumber  S   the stream record that produced this status, zero-padded so that
                      string order is stream order; a status is never replaced by an older one
  Source          S   stream | reconciler
  ParameterVersion N  the spoke parameter's version after the write
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from budget_sync.errors import TransientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

SEQUENCE_WIDTH = 40
TRANSACTION_LIMIT = 100  # TransactWriteItems' maximum


class Status(StrEnum):
    APPLIED = "APPLIED"  # the spoke parameter holds the desired value
    FAILED = "FAILED"  # a permanent error: bad item, spoke unreachable, value rejected
    UNMANAGED = "UNMANAGED"  # the item was deleted: the spoke keeps its last budget
    WAITING = "WAITING"  # (resolver) a default applies; the account's spoke stack is not there yet
    SKIPPED = "SKIPPED"  # (resolver) a suspended or closed account: left as it is


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    account_id: str
    status: Status
    sequence_number: str
    desired: Decimal | None = None
    applied: Decimal | None = None
    reason: str = ""
    parameter_version: int | None = None
    source: str = "stream"


def padded(sequence_number: str) -> str:
    return sequence_number.zfill(SEQUENCE_WIDTH)


class StatusStore:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table_name = table_name

    def record(self, update: StatusUpdate) -> bool:
        """Write one status unless a newer record already did. Returns False if it was older.

        Raises TransientError if the write fails: the record is then retried, because an
        operator must be able to see every outcome.
        """
        try:
            self._client.update_item(**self._update(update))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise TransientError(f"account {update.account_id}: status write failed ({exc})") from exc
        except BotoCoreError as exc:
            raise TransientError(f"account {update.account_id}: status write failed ({exc})") from exc
        return True

    def record_many(self, updates: Sequence[StatusUpdate]) -> list[str]:
        """Write a batch's statuses, up to 100 per TransactWriteItems call.

        Every write keeps its sequence-number condition. If a transaction is cancelled
        (a newer status exists for one of its accounts), its statuses are written one by one
        so that only the stale ones are skipped. Returns the accounts whose status could
        not be written: their records must be retried.
        """
        failed: list[str] = []
        for start in range(0, len(updates), TRANSACTION_LIMIT):
            chunk = updates[start : start + TRANSACTION_LIMIT]
            try:
                items: list[TransactWriteItemTypeDef] = [{"Update": self._update(u)} for u in chunk]  # type: ignore[typeddict-item]
                self._client.transact_write_items(TransactItems=items)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    failed.extend(u.account_id for u in chunk)
                    continue
                for update in chunk:
                    try:
                        self.record(update)
                    except TransientError:
                        failed.append(update.account_id)
            except BotoCoreError:
                failed.extend(u.account_id for u in chunk)
        return failed

    def _update(self, update: StatusUpdate) -> dict[str, Any]:
        values: dict[str, Any] = {
            ":status": {"S": update.status.value},
            ":reason": {"S": update.reason},
            ":at": {"S": datetime.now(UTC).isoformat(timespec="seconds")},
            ":seq": {"S": padded(update.sequence_number)},
            ":source": {"S": update.source},
        }
        sets = [
            "#st = :status",
            "Reason = :reason",
            "UpdatedAt = :at",
            "SequenceNumber = :seq",
            "#src = :source",
        ]
        for attribute, value in (("DesiredValue", update.desired), ("AppliedValue", update.applied)):
            if value is not None:
                values[f":{attribute}"] = {"N": str(value)}
                sets.append(f"{attribute} = :{attribute}")
        if update.parameter_version is not None:
            values[":version"] = {"N": str(update.parameter_version)}
            sets.append("ParameterVersion = :version")
        expression = "SET " + ", ".join(sets) + (" REMOVE DesiredValue" if update.desired is None else "")
        return {
            "TableName": self._table_name,
            "Key": {"AccountId": {"S": update.account_id}},
            "UpdateExpression": expression,
            "ConditionExpression": "attribute_not_exists(SequenceNumber) OR SequenceNumber <= :seq",
            "ExpressionAttributeNames": {"#st": "Status", "#src": "Source"},
            "ExpressionAttributeValues": values,
        }
