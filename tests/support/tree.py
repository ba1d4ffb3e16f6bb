"""A moto organisation with a real tree (root, OUs Sandbox and Production, accounts in them)
and the management account's tables from template-management.yaml, for the resolver; built
once per worker process and restored per test, as ``org`` is (tests/support/moto_org.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any
from unittest import mock

import boto3
import pytest

from budget_sync.handlers import resolve as resolve_handler
from tests.support.moto_org import REGION, built_once, create_table


@dataclass
class Tree:
    management: boto3.Session
    root: str
    sandbox: str
    production: str
    accounts: dict[str, str]  # account id -> OU id

    @property
    def organizations(self) -> Any:
        return self.management.client("organizations")

    def table(self, name: str) -> Any:
        return self.management.resource("dynamodb").Table(name)

    def item(self, account: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = (
            self.table("BlogBudgetsDynamoDB").get_item(Key={"AccountId": account}).get("Item")
        )
        return found

    def status(self, account: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = (
            self.table("BlogBudgetsStatus").get_item(Key={"AccountId": account}).get("Item")
        )
        return found

    def set_default(self, target: str, value: str) -> None:
        self.table("BlogBudgetsDefaults").put_item(Item={"TargetId": target, "BudgetValue": Decimal(value)})

    def delete_default(self, target: str) -> None:
        self.table("BlogBudgetsDefaults").delete_item(Key={"TargetId": target})

    def create_account(self, account: str, parent: str) -> None:
        with mock.patch("moto.organizations.utils.make_random_account_id", return_value=account):
            self.organizations.create_account(AccountName=f"acct-{account}", Email=f"a+{account}@example.com")
        if parent != self.root:
            self.organizations.move_account(
                AccountId=account, SourceParentId=self.root, DestinationParentId=parent
            )
        self.accounts[account] = parent

    def resolve(
        self, event: dict[str, Any], parameters: dict[str, str] | None = None, function: str | None = None
    ) -> dict[str, Any]:
        """The template's resolver function for the event's source (``function_for``), or
        ``function`` (a logical id), on one event, as Lambda calls it (a fresh execution
        environment each time: the parameters, hence the environment, may differ)."""
        from budget_sync_local.lambda_runtime import (
            function_spec,
            invoke,
            lambda_environment,
            load_handler,
            new_execution_environment,
        )

        spec = function_spec(function or function_for(event), parameters or {}, REGION)
        with lambda_environment(spec, REGION):
            load_handler(spec)
        new_execution_environment(spec)
        result: dict[str, Any] = invoke(spec, event, REGION)
        return result


def function_for(event: dict[str, Any]) -> str:
    """The resolver function whose event source sends this event (what Lambda's stream
    mappings and the rules' targets decide on AWS): a stream batch by its table's key, an
    EventBridge event by its source; anything else is given to the schedule's function."""
    records = event.get("Records")
    if isinstance(records, list) and records:
        keys = (records[0].get("dynamodb") or {}).get("Keys") or {}
        return "DefaultsResolverFunction" if "TargetId" in keys else "ItemRemovedResolverFunction"
    return {
        "aws.organizations": "OrgEventsResolverFunction",
        "aws.cloudformation": "StackInstanceResolverFunction",
    }.get(str(event.get("source")), "ResolverFunction")


SANDBOX_ACCOUNTS = ("111111111111", "222222222222")
PRODUCTION_ACCOUNTS = ("333333333333",)
ROOT_ACCOUNTS = ("444444444444",)
#: The event of the resolver's schedule (source aws.events, detail-type Scheduled Event).
SCHEDULED = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}


@pytest.fixture
def tree() -> Iterator[Tree]:
    from moto import mock_aws  # moto and the stand-ins: not at collection (make unit)

    from budget_sync_local import standins

    def build() -> Tree:
        management = boto3.Session(region_name=REGION)
        for logical_id in ("BudgetsTable", "StatusTable", "DefaultsTable"):
            create_table(management, logical_id)
        organizations = management.client("organizations")
        organizations.create_organization(FeatureSet="ALL")
        root = organizations.list_roots()["Roots"][0]["Id"]
        sandbox = organizations.create_organizational_unit(ParentId=root, Name="Sandbox")[
            "OrganizationalUnit"
        ]["Id"]
        production = organizations.create_organizational_unit(ParentId=root, Name="Production")[
            "OrganizationalUnit"
        ]["Id"]
        result = Tree(management, root, sandbox, production, {})
        for account in SANDBOX_ACCOUNTS:
            result.create_account(account, sandbox)
        for account in PRODUCTION_ACCOUNTS:
            result.create_account(account, production)
        for account in ROOT_ACCOUNTS:
            result.create_account(account, root)
        return result

    _clear_caches()
    with mock_aws(), standins.installed():
        # built once per process and restored per test, as ``org`` is (tests/support/moto_org.py)
        yield built_once("tree", build, _fresh)
    _clear_caches()


def _fresh(built: Tree) -> Tree:
    """A test's own ``Tree`` on the restored state: a new session, its own accounts."""
    return replace(built, management=boto3.Session(region_name=REGION), accounts=dict(built.accounts))


def _clear_caches() -> None:
    """No client of an earlier moto is reused (each function's builder is cached)."""
    for value in vars(resolve_handler).values():
        if callable(getattr(value, "cache_clear", None)):
            value.cache_clear()
