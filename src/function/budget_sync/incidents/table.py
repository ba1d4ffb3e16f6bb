"""The incidents table's adapter: DynamoDB calls for lifecycle.IncidentStore.

One item per correlation id (``ACCOUNT/BUDGET/PERIOD-START``), the table's only key:

  CorrelationId   S  the key
  AccountId       S  the account (status and the report find an account's open incident by it)
  BudgetName      S
  PeriodEnd       S  ISO date, the day after the period's last day (the hourly sweep resolves
                     the incidents whose period has ended)
  IncidentState   S  OPENING (a delivery claimed the key and is creating the incident),
                     OPEN (SysId and Number name it), RESOLVED (no live incident)
  Version         N  rises by one with every write; every write is conditional on the version
                     read (the first on the item not existing): two deliveries never both win
  ClaimedAt       N  epoch seconds of the OPENING claim
  SysId, Number   S  ServiceNow's sys_id and INC number ("" until known)
  Urgency         N  the urgency last sent
  Notified        L  of S, the notifications already reported ("ACTUAL 80%")
  Opened          N  incidents opened for the key (a re-alarm after resolution adds one)
  Failure         S  ServiceNow's last refusal ("" once a request succeeds again)

All boto3 and ClientError/BotoCoreError handling for the table lives here: a condition that
fails is False; anything else is TransientError.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from budget_sync.errors import TransientError
from budget_sync.incidents.lifecycle import OPEN, RESOLVED, IncidentRecord

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

_CONDITION_FAILED = "ConditionalCheckFailedException"


class DynamoIncidentStore:
    """The incidents table on DynamoDB (one client, built by the handler)."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table_name = table_name

    def get(self, correlation_id: str) -> IncidentRecord | None:
        try:
            item = self._client.get_item(
                TableName=self._table_name, Key={"CorrelationId": {"S": correlation_id}}, ConsistentRead=True
            ).get("Item")
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(f"incident {correlation_id}: read failed ({exc})") from exc
        return None if item is None else _record(item)

    def put(self, record: IncidentRecord, expected_version: int | None) -> bool:
        condition: dict[str, Any] = (
            {"ConditionExpression": "attribute_not_exists(CorrelationId)"}
            if expected_version is None
            else {
                "ConditionExpression": "Version = :expected",
                "ExpressionAttributeValues": {":expected": {"N": str(expected_version)}},
            }
        )
        try:
            self._client.put_item(TableName=self._table_name, Item=_item(record), **condition)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == _CONDITION_FAILED:
                return False
            raise TransientError(f"incident {record.correlation_id}: write failed ({exc})") from exc
        except BotoCoreError as exc:
            raise TransientError(f"incident {record.correlation_id}: write failed ({exc})") from exc
        return True

    def unresolved(self) -> Iterator[IncidentRecord]:
        yield from self._scan("IncidentState <> :resolved", {":resolved": {"S": RESOLVED}})

    def open_for_account(self, account_id: str) -> list[IncidentRecord]:
        """The account's OPEN incidents (budgetctl status and the report show their numbers)."""
        return list(
            self._scan(
                "AccountId = :account AND IncidentState = :open",
                {":account": {"S": account_id}, ":open": {"S": OPEN}},
            )
        )

    def _scan(self, expression: str, values: dict[str, AttributeValueTypeDef]) -> Iterator[IncidentRecord]:
        try:
            pages = self._client.get_paginator("scan").paginate(
                TableName=self._table_name, FilterExpression=expression, ExpressionAttributeValues=values
            )
            for page in pages:
                for item in page.get("Items", []):
                    yield _record(item)
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(f"incidents table scan failed ({exc})") from exc


def _item(record: IncidentRecord) -> dict[str, AttributeValueTypeDef]:
    return {
        "CorrelationId": {"S": record.correlation_id},
        "AccountId": {"S": record.account_id},
        "BudgetName": {"S": record.budget_name},
        "PeriodEnd": {"S": record.period_end},
        "IncidentState": {"S": record.state},
        "Version": {"N": str(record.version)},
        "ClaimedAt": {"N": str(Decimal(str(record.claimed_at)))},
        "SysId": {"S": record.sys_id},
        "Number": {"S": record.number},
        "Urgency": {"N": str(record.urgency)},
        "Notified": {"L": [{"S": key} for key in sorted(record.notified)]},
        "Opened": {"N": str(record.opened)},
        "Failure": {"S": record.failure},
    }


def _record(item: dict[str, Any]) -> IncidentRecord:
    def text(name: str) -> str:
        return str(item.get(name, {}).get("S", ""))

    def number(name: str) -> Decimal:
        return Decimal(item.get(name, {}).get("N", "0"))

    return IncidentRecord(
        correlation_id=text("CorrelationId"),
        account_id=text("AccountId"),
        budget_name=text("BudgetName"),
        period_end=text("PeriodEnd"),
        state=text("IncidentState"),
        version=int(number("Version")),
        claimed_at=float(number("ClaimedAt")),
        sys_id=text("SysId"),
        number=text("Number"),
        urgency=int(number("Urgency")),
        notified=frozenset(v["S"] for v in item.get("Notified", {}).get("L", [])),
        opened=int(number("Opened")),
        failure=text("Failure"),
    )


__all__ = ["DynamoIncidentStore"]
