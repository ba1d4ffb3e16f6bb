"""A cost basis on a default of an OU or the root (``CostMetric``, ``CostExclusions`` on the
defaults table's item), as the template's resolver functions apply it on moto: field by field
from the nearest default, the account's own attribute always winning and never overwritten,
removed when the default's is removed, and the same result whatever order, duplicates or
concurrency the defaults stream delivers."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from budget_sync.cost_basis import CostBasis, parse_cost_basis
from tests.resolve.test_resolver import _defaults_record, _older_run_reads_defaults_then
from tests.support.tree import PRODUCTION_ACCOUNTS, SANDBOX_ACCOUNTS, SCHEDULED, Tree

S1, S2 = SANDBOX_ACCOUNTS
P1 = PRODUCTION_ACCOUNTS[0]


def put_default(tree: Tree, target: str, value: str, **cost: str) -> None:
    tree.table("BlogBudgetsDefaults").put_item(
        Item={"TargetId": target, "BudgetValue": Decimal(value), **cost}
    )


def inherited(tree: Tree, account: str) -> dict[str, Any]:
    item = tree.item(account) or {}
    return {k: v for k, v in item.items() if k.startswith("InheritedCost")}


def test_given_cost_bases_on_an_ou_and_the_root_then_accounts_inherit_them_field_by_field_and_own_wins(
    tree: Tree,
):
    # GIVEN the root's default counts amortized cost without tax, Sandbox's excludes credits and
    # refunds, and S2 has its own budget and its own metric
    put_default(tree, tree.root, "50", CostMetric="amortized", CostExclusions="tax")
    put_default(tree, tree.sandbox, "100", CostExclusions="refunds,credits")
    tree.table("BlogBudgetsDynamoDB").put_item(
        Item={"AccountId": S2, "BudgetValue": Decimal(300), "CostMetric": "blended"}
    )

    result = tree.resolve(SCHEDULED)

    # THEN each field comes from the nearest default that sets it
    assert inherited(tree, S1) == {
        "InheritedCostMetric": "amortized",
        "InheritedCostExclusions": "credits,refunds",
    }
    assert inherited(tree, P1) == {"InheritedCostMetric": "amortized", "InheritedCostExclusions": "tax"}
    # AND the explicit item keeps its value and its own metric; it gets the OU's exclusions
    explicit = tree.item(S2)
    assert explicit is not None
    assert (explicit["BudgetValue"], explicit["CostMetric"], "InheritedFrom" in explicit) == (
        Decimal(300),
        "blended",
        False,
    )
    assert parse_cost_basis(explicit) == CostBasis("blended", ("credits", "refunds"))
    assert parse_cost_basis(tree.item(S1) or {}) == CostBasis("amortized", ("credits", "refunds"))
    assert result["conflicts"] == 0

    # WHEN nothing changed THEN a second run writes nothing
    before = {a: tree.item(a) for a in (S1, S2, P1)}
    tree.resolve(SCHEDULED)
    assert {a: tree.item(a) for a in (S1, S2, P1)} == before


def test_given_a_defaults_cost_basis_removed_then_what_it_gave_is_removed(tree: Tree):
    put_default(tree, tree.root, "50", CostExclusions="tax")
    put_default(tree, tree.sandbox, "100", CostMetric="net-amortized", CostExclusions="credits")
    tree.table("BlogBudgetsDynamoDB").put_item(Item={"AccountId": S2, "BudgetValue": Decimal(300)})
    tree.resolve(SCHEDULED)
    assert inherited(tree, S2) == {
        "InheritedCostMetric": "net-amortized",
        "InheritedCostExclusions": "credits",
    }

    # WHEN Sandbox's default no longer has a cost basis (its amount stays)
    put_default(tree, tree.sandbox, "100")
    tree.resolve(_defaults_record(tree.sandbox, "MODIFY"))

    # THEN its accounts take the root's exclusions and no metric, explicit or inherited
    for account in (S1, S2):
        assert inherited(tree, account) == {"InheritedCostExclusions": "tax"}, account
    assert tree.item(S1)["BudgetValue"] == Decimal(100)  # type: ignore[index]
    assert tree.item(S2)["BudgetValue"] == Decimal(300)  # type: ignore[index]

    # WHEN the root's goes too THEN nothing inherited is left
    put_default(tree, tree.root, "50")
    tree.resolve(_defaults_record(tree.root, "MODIFY"))
    for account in (S1, S2, P1):
        assert inherited(tree, account) == {}, account


def test_given_an_invalid_cost_basis_on_a_default_then_it_fails_naming_field_and_value_and_applies_to_nobody(
    tree: Tree,
):
    put_default(tree, tree.root, "50", CostExclusions="tax")
    put_default(tree, tree.sandbox, "100", CostExclusions="coupons")

    tree.resolve(_defaults_record(tree.sandbox, "INSERT"))

    status = tree.status(tree.sandbox)
    assert status is not None
    assert status["Status"] == "FAILED"
    assert "CostExclusions 'coupons' is not a record type budget-sync excludes" in status["Reason"]
    # its accounts take the next default up, cost basis and amount
    assert inherited(tree, S1) == {"InheritedCostExclusions": "tax"}
    assert tree.item(S1)["InheritedFrom"] == tree.root  # type: ignore[index]


def test_given_duplicated_and_unordered_defaults_records_then_the_result_is_the_same(tree: Tree):
    put_default(tree, tree.root, "50", CostMetric="amortized")
    put_default(tree, tree.sandbox, "100", CostExclusions="credits")
    tree.table("BlogBudgetsDynamoDB").put_item(Item={"AccountId": S2, "BudgetValue": Decimal(300)})

    # the Sandbox record before the root's, each twice
    for target in (tree.sandbox, tree.sandbox, tree.root, tree.root, tree.sandbox):
        tree.resolve(_defaults_record(target, "MODIFY"))
    delivered = {a: inherited(tree, a) for a in (S1, S2, P1)}

    tree.resolve(SCHEDULED)
    assert (
        {a: inherited(tree, a) for a in (S1, S2, P1)}
        == delivered
        == {
            S1: {"InheritedCostMetric": "amortized", "InheritedCostExclusions": "credits"},
            S2: {"InheritedCostMetric": "amortized", "InheritedCostExclusions": "credits"},
            P1: {"InheritedCostMetric": "amortized"},
        }
    )


def test_given_an_older_run_that_read_a_cost_basis_before_its_removal_then_it_cannot_write_it_back(
    tree: Tree, monkeypatch: Any
):
    # GIVEN Sandbox's default excludes credits, and S2's explicit item has it
    put_default(tree, tree.sandbox, "100", CostExclusions="credits")
    tree.table("BlogBudgetsDynamoDB").put_item(Item={"AccountId": S2, "BudgetValue": Decimal(300)})
    tree.resolve(SCHEDULED)
    put_default(tree, tree.sandbox, "100", CostExclusions="credits,refunds")

    # WHEN the hourly run reads "credits,refunds", and before it writes the exclusions are
    # removed and that change's run ends
    def newer() -> None:
        put_default(tree, tree.sandbox, "100")
        tree.resolve(_defaults_record(tree.sandbox, "MODIFY"))

    _older_run_reads_defaults_then(tree, monkeypatch, newer)
    result = tree.resolve(SCHEDULED)

    # THEN the newer run's result stays: nothing inherited, the older run was stale
    for account in (S1, S2):
        assert inherited(tree, account) == {}, account
    assert result["conflicts"] >= 1
