"""The history table's adapter: append a record (conditional put), read a subject's records or
the organisation's since a day.

Item (key ``Subject`` + ``EventKey``; budget_sync.history is the contract's logic):
  Subject    S   an account id, or a default's TargetId (``ou-...``, ``r-...``)
  EventKey   S   ``<At>#<stream>#<sequence number>``: unique per source stream record
  At         S   ISO 8601, UTC, seconds: when the source record was written
  Day        S   ``At``'s date: the partition key of the index ``ByDay``
  Kind       S   budget_sync.history.Kind
  Status, From, To, By, Via, Reason, EventId, Alerts   S   ("" or absent: none; Alerts: the
             alert settings a change sent, when they changed)
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

from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from budget_sync.errors import TransientError
from budget_sync.history import HistoryRecord, Kind, expires_at

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
    ("Alerts", "alerts"),
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
    """A stored item (deserialised or typed) as a record (every attribute it reads is S)."""
    plain = {k: v.get("S", "") if isinstance(v, dict) else v for k, v in item.items()}
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
        return self._query(
            KeyConditionExpression="Subject = :s",
            ExpressionAttributeValues={":s": {"S": subject}},
        )

    def since(self, first_day: date, last_day: date, concurrency: int = 8) -> list[HistoryRecord]:
        """Every record from ``first_day`` to ``last_day`` (UTC dates), newest first: one
        Query of the ``ByDay`` index per day, ``concurrency`` days at once."""
        days = [last_day - timedelta(days=n) for n in range((last_day - first_day).days + 1)]

        def one_day(day: date) -> list[HistoryRecord]:
            return self._query(
                IndexName=BY_DAY_INDEX,
                KeyConditionExpression="#day = :d",
                ExpressionAttributeNames={"#day": "Day"},
                ExpressionAttributeValues={":d": {"S": day.isoformat()}},
            )

        with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(days)))) as pool:
            return [record for records in pool.map(one_day, days) for record in records]

    def _query(self, **kwargs: Any) -> list[HistoryRecord]:
        """Only the attributes a record shows (``_READ``): fewer to send and to parse."""
        names = {**kwargs.pop("ExpressionAttributeNames", {}), **_READ_NAMES}
        try:
            pages = self._client.get_paginator("query").paginate(
                TableName=self._table_name,
                ScanIndexForward=False,
                ProjectionExpression=", ".join(_READ_NAMES),
                ExpressionAttributeNames=names,
                **kwargs,
            )
            return [from_item(raw) for page in pages for raw in page.get("Items", [])]
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(f"history table {self._table_name} not read ({exc})") from exc


#: What a read asks for (``#a0``: Subject, ...): what a record shows (not Day, ExpiresAt, EventId).
_READ_NAMES = {
    f"#a{index}": name
    for index, name in enumerate(
        ("Subject", "EventKey", "At", "Kind", *(a for a, _ in _FIELDS if a != "EventId"))
    )
}
