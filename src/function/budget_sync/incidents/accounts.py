"""The accounts the incident function looks at and each one's incident settings
(lifecycle.AccountDirectory): the adapter over the budgets table, the defaults table and
Organizations.

An account's settings are, field by field, its own budgets-table item's ``Incident*``
attributes, else those of the defaults-table item of its nearest OU up to the root, else the
stack's defaults (lifecycle.effective_settings). The accounts are those with an item in the
budgets table (an explicit one or one the resolver wrote from a default).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from budget_sync.errors import TransientError
from budget_sync.incidents.lifecycle import IncidentSettings, effective_settings
from budget_sync.organizations import NotInOrganization, OrganizationsReader
from budget_sync.status import _deserialize

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef


class TableAccountDirectory:
    def __init__(
        self,
        dynamodb: DynamoDBClient,
        budgets_table: str,
        defaults_table: str,
        organizations: OrganizationsReader | None,
        stack: IncidentSettings,
    ) -> None:
        self._dynamodb = dynamodb
        self._budgets_table = budgets_table
        self._defaults_table = defaults_table
        self._organizations = organizations
        self._stack = stack

    def accounts(self) -> list[str]:
        found: list[str] = []
        try:
            for page in self._dynamodb.get_paginator("scan").paginate(
                TableName=self._budgets_table, ProjectionExpression="AccountId"
            ):
                found.extend(
                    str(item["AccountId"]["S"]) for item in page.get("Items", []) if "S" in item["AccountId"]
                )
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(f"budgets table scan failed ({exc})") from exc
        return sorted(found)

    def settings(self, account_id: str) -> tuple[IncidentSettings, str]:
        own = IncidentSettings.from_item(
            self._get(self._budgets_table, {"AccountId": {"S": account_id}}), account_id
        )
        name: str = ""
        path: tuple[str, ...] = ()
        if self._organizations is not None:
            try:
                account = self._organizations.account(account_id).accounts.get(account_id)
            except NotInOrganization:
                account = None
            if account is not None:
                name, path = account.name, account.path
        layers = [own]
        for target_id in reversed(path):  # nearest OU first, up to the root
            item = (
                self._get(self._defaults_table, {"TargetId": {"S": target_id}})
                if self._defaults_table
                else {}
            )
            layers.append(IncidentSettings.from_item(item, account_id))
        return effective_settings(self._stack, *layers), name

    def _get(self, table: str, key: dict[str, AttributeValueTypeDef]) -> dict[str, Any]:
        try:
            raw = self._dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item") or {}
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(f"{table}: read failed ({exc})") from exc
        return {k: _deserialize(v) for k, v in raw.items()}


__all__ = ["TableAccountDirectory"]
