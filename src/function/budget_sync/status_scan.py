"""The status table as the reconciler and ``budgetctl`` read it: one ``Scan``, per account.

A DynamoDB adapter (boto3 lives here, not in the logic): the reconciler's handler reads the
statuses once per run and passes them to ``Reconciler.run`` as a plain mapping (account id ->
the status item, deserialised), so the logic needs no Protocol for it and its tests pass a dict.
The status table's writes are status.py's (``StatusStore``, behind reconcile.StatusWriter).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_deserialize = TypeDeserializer().deserialize


def read_statuses(client: DynamoDBClient, table_name: str) -> dict[str, dict[str, Any]]:
    """The status table, per account (one Scan: cheaper than a read per account)."""
    statuses: dict[str, dict[str, Any]] = {}
    for page in client.get_paginator("scan").paginate(TableName=table_name):
        for raw in page.get("Items", []):
            item = {k: _deserialize(v) for k, v in raw.items()}
            statuses[str(item.get("AccountId"))] = item
    return statuses
