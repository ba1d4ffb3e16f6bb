"""The budgets table adapter: what the reconciler and ``budgetctl`` read of the operators' table.

``BudgetsTable`` implements the reconciler's ``DesiredTable`` Protocol (the Protocol lives beside
the logic that consumes it, in reconcile.py, as ``SpokeReader`` does; the adapter lives here, as
spoke.py's ``SsmSpokeGateway`` does): every item (one consistent ``Scan``) and one account's item
(a consistent ``GetItem``), each validated by the one item contract (reconcile.desired_item,
domain.py). All boto3 and ClientError/BotoCoreError handling for this table's reads lives here;
the reconciler sees DesiredItem and the project's errors (errors.py). In-memory twin for tests:
tests/fakes/budgets_table.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import BotoCoreError, ClientError

from budget_sync.domain import ACCOUNT_ID_FIELD
from budget_sync.errors import TransientError
from budget_sync.reconcile import DesiredItem, desired_item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_deserialize = TypeDeserializer().deserialize


class BudgetsTable:
    """The budgets table on DynamoDB (the reconciler's ``DesiredTable``)."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table_name = table_name

    def items(self) -> list[DesiredItem]:
        """Every item of the budgets table (Scan), validated; sorted by account."""
        items: list[DesiredItem] = []
        paginator = self._client.get_paginator("scan")
        for page in paginator.paginate(TableName=self._table_name, ConsistentRead=True):
            for raw in page.get("Items", []):
                items.append(desired_item({k: _deserialize(v) for k, v in raw.items()}))
        return sorted(items, key=lambda i: i.account_id)

    def read_item(self, account_id: str) -> DesiredItem | None:
        """One account's item, read consistently and validated (None: no item).

        Raises TransientError if the read fails (throttling, a timeout, a service error)."""
        try:
            raw = self._client.get_item(
                TableName=self._table_name, Key={ACCOUNT_ID_FIELD: {"S": account_id}}, ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(f"account {account_id}: budgets table read failed ({exc})") from exc
        item = raw.get("Item")
        if item is None:
            return None
        return desired_item({k: _deserialize(v) for k, v in item.items()})


def read_desired(client: DynamoDBClient, table_name: str) -> list[DesiredItem]:
    """Every item of the budgets table, validated, sorted by account (``BudgetsTable.items``)."""
    return BudgetsTable(client, table_name).items()
