"""The budgets table adapter on moto (budget_sync.budgets_table.BudgetsTable, the reconciler's
DesiredTable): items validated by the item contract, consistent reads, and a failed read as the
project's TransientError (the in-memory twin the logic's tests use: tests/fakes/budgets_table.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from budget_sync.alerts import AlertSettings
from budget_sync.budgets_table import BudgetsTable, read_desired
from budget_sync.errors import TransientError
from budget_sync.reconcile import DesiredItem
from budget_sync.status import Status, StatusStore, StatusUpdate
from budget_sync.status_table import DynamoStatusTable, read_statuses
from tests.support.moto_org import SPOKES, Org

A, B, C = SPOKES


def table(org: Org) -> BudgetsTable:
    return BudgetsTable(org.management.client("dynamodb"), org.budgets_table)


def test_every_item_is_read_validated_and_sorted_by_account(org: Org):
    org.put(C, Decimal("1250.50"), UpdatedBy="alice", AlertEmails="team@example.com")
    org.put(A, Decimal(1000))
    org.put_raw({"AccountId": {"S": B}, "BudgetValue": {"N": "-5"}})

    items = table(org).items()

    assert [i.account_id for i in items] == [A, B, C]
    assert items[0] == DesiredItem(A, Decimal(1000))
    assert items[1].value is None
    assert "BudgetValue" in items[1].error
    assert "-5" in items[1].error
    assert (items[2].value, items[2].updated_by, items[2].alerts) == (
        Decimal("1250.50"),
        "alice",
        AlertSettings(emails=("team@example.com",)),
    )
    assert read_desired(org.management.client("dynamodb"), org.budgets_table) == items


def test_one_accounts_item_is_read_again_and_none_when_it_is_gone(org: Org):
    org.put(A, Decimal(1000))
    assert table(org).read_item(A) == DesiredItem(A, Decimal(1000))
    org.put(A, Decimal(2000))
    assert table(org).read_item(A) == DesiredItem(A, Decimal(2000))
    org.delete(A)
    assert table(org).read_item(A) is None


def test_a_failed_read_is_a_transient_error_naming_the_account(org: Org):
    missing = BudgetsTable(org.management.client("dynamodb"), "NoSuchTable")
    with pytest.raises(TransientError, match=rf"account {A}: budgets table read failed \(.*ResourceNotFound"):
        missing.read_item(A)


def test_the_status_table_is_read_per_account(org: Org):
    StatusStore(DynamoStatusTable(org.management.client("dynamodb"), org.status_table)).record(
        StatusUpdate(A, Status.APPLIED, "10", desired=Decimal(5), applied=Decimal(5))
    )
    statuses = read_statuses(org.management.client("dynamodb"), org.status_table)
    assert set(statuses) == {A}
    assert (statuses[A]["Status"], statuses[A]["DesiredValue"]) == ("APPLIED", Decimal(5))
