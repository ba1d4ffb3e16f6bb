"""The history table's adapter: append a record (conditional put), read a subject's records or
the organisation's since a day.

Item (key ``Subject`` + ``EventKey``; budget_sync.history is the contract's logic):
  Subject    S   an account id, or a default's TargetId (``ou-...``, ``r-...``)
  EventKey   S   ``<At>#<stream>#<sequence number>``: unique per source stream record
  At         S   ISO 8601, UTC, seconds: when the source record was written
  Day        S   ``At``'s date: the partition key of the index ``ByDay``
  Kind       S   budget_sync.history.Kind
  Status, From, To, By, Via, Reason, EventId   S   ("" or absent: none)
  ExpiresAt  N   epoch seconds: DynamoDB's TTL removes the record after HistoryRetentionDays

Why these keys. One subject newest first is one Query (``ScanIndexForward=False``). The
organisation since N days is one Query per day on ``ByDay`` (``Day`` + ``EventKey``, all
attributes projected): 5,000 accounts changing four times a month make about 40,000 records
a month (a change, its outcome, a repair now and then), 1,300 a day, one or two 1 MB pages
per day; a Scan would read the whole retention (13 months by default) to answer a week.

Appends are ``PutItem`` with ``attribute_not_exists(Subject)``: a record already there is
a duplicate delivery and writes nothing (False). Every other botocore error is
TransientError; the reads translate theirs into TransientError too.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from budget_sync.errors import TransientError
from budget_sync.history import HistoryRecord, Kind, expires_at
from budget_sync.status import _deserialize

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

#: The index by day (template-management.yaml, HistoryTable).
BY_DAY_INDEX = "ByDay"

_FIELDS = (
    ("Status", "status"),
    ("From", "previous"),
    ("To", "value"),
    ("By", "by"),
    ("Via", "via"),
    ("Reason", "reason"),
    ("EventId", "event_id"),
)


def to_item(record: HistoryRecord, retention_days: int) -> dict[str, Any]:
    """The record as a DynamoDB item (typed)."""
    item: dict[str, Any] = {
        "Subject": {"S": record.subject},
        "EventKey": {"S": record.key},
        "At": {"S": record.at},
        "Day": {"S": record.day},
        "Kind": {"S": record.kind.value},
        "ExpiresAt": {"N": str(expires_at(record.at, retention_days))},
    }
    for attribute, name in _FIELDS:
        value = getattr(record, name)
        if value:
            item[attribute] = {"S": value}
    return item


def from_item(item: dict[str, Any]) -> HistoryRecord:
    """A stored item (deserialised or typed) as a record."""
    plain = {k: _deserialize(v) if isinstance(v, dict) else v for k, v in item.items()}
    return HistoryRecord(
        subject=str(plain["Subject"]),
        key=str(plain["EventKey"]),
        at=str(plain.get("At", "")),
        kind=Kind(str(plain.get("Kind"))),
        **{name: str(plain.get(attribute, "")) for attribute, name in _FIELDS},
    )


class DynamoHistoryTable:
    """The history table on DynamoDB (one client, built by the handler or budgetctl)."""

    def __init__(self, client: DynamoDBClient, table_name: str, retention_days: int) -> None:
        self._client = client
        self._table_name = table_name
        self._retention_days = retention_days

    # history.HistoryTable

    def append(self, record: HistoryRecord) -> bool:
        try:
            self._client.put_item(
                TableName=self._table_name,
                Item=to_item(record, self._retention_days),
                ConditionExpression="attribute_not_exists(Subject)",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise TransientError(f"{record.subject}: history record not written ({exc})") from exc
        except BotoCoreError as exc:
            raise TransientError(f"{record.subject}: history record not written ({exc})") from exc
        return True

    # reads (budgetctl)

    def of_subject(self, subject: str) -> list[HistoryRecord]:
        """Every record kept for ``subject``, newest first (one Query, paginated)."""
        return list(
            self._query(
                KeyConditionExpression="Subject = :s",
                ExpressionAttributeValues={":s": {"S": subject}},
                ScanIndexForward=False,
            )
        )

    def since(self, first_day: date, last_day: date) -> list[HistoryRecord]:
        """Every record from ``first_day`` to ``last_day`` (UTC dates), newest first: one
        Query of the ``ByDay`` index per day."""
        records: list[HistoryRecord] = []
        day = last_day
        while day >= first_day:
            records.extend(
                self._query(
                    IndexName=BY_DAY_INDEX,
                    KeyConditionExpression="#day = :d",
                    ExpressionAttributeNames={"#day": "Day"},
                    ExpressionAttributeValues={":d": {"S": day.isoformat()}},
                    ScanIndexForward=False,
                )
            )
            day -= timedelta(days=1)
        return records

    def _query(self, **kwargs: Any) -> Iterator[HistoryRecord]:
        try:
            for page in self._client.get_paginator("query").paginate(TableName=self._table_name, **kwargs):
                for raw in page.get("Items", []):
                    yield from_item(raw)
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(f"history table {self._table_name} not read ({exc})") from exc
