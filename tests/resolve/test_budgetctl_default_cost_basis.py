"""``budgetctl default set TARGET [AMOUNT] --metric ... --exclude ...`` as typed: validated before
anything is written, ``''`` removes, ``--dry-run`` writes nothing, ``default list/get`` show the
cost basis (the table within 100 columns, JSON whole), and the resolver function then gives it
to the accounts under the default."""

from __future__ import annotations

import io
import re
from decimal import Decimal
from typing import Any

import pytest
from botocore.client import BaseClient

from budgetctl.cli import main
from budgetctl.errors import ExitCode
from tests.resolve.test_resolver import _defaults_record
from tests.support.operators import budgetctl
from tests.support.tree import SANDBOX_ACCOUNTS, Tree

R = ("--region", "us-east-1")


def default_item(tree: Tree, target: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = (
        tree.table("BlogBudgetsDefaults").get_item(Key={"TargetId": target}, ConsistentRead=True).get("Item")
    )
    return found


def test_default_set_with_a_cost_basis_stores_it_and_the_resolver_gives_it_to_the_ous_accounts(tree: Tree):
    result = budgetctl(
        "default", "set", tree.sandbox, "100", "--exclude", "refunds,credits", *R, "--output", "json"
    )

    assert result.code == ExitCode.OK, result.stderr
    stored = default_item(tree, tree.sandbox)
    assert stored is not None
    assert (stored["BudgetValue"], stored["CostExclusions"], "CostMetric" in stored) == (
        Decimal(100),
        "credits,refunds",
        False,
    )
    assert result.json()["CostExclusions"] == "credits,refunds"

    tree.resolve(_defaults_record(tree.sandbox, "INSERT"))
    for account in SANDBOX_ACCOUNTS:
        assert tree.item(account)["InheritedCostExclusions"] == "credits,refunds"  # type: ignore[index]


def test_default_set_without_an_amount_changes_only_the_cost_basis_and_empty_removes_it(tree: Tree):
    tree.set_default(tree.sandbox, "100")

    added = budgetctl("default", "set", tree.sandbox, "--metric", "amortized", "--exclude", "credits", *R)
    assert added.code == ExitCode.OK, added.stderr
    stored = default_item(tree, tree.sandbox)
    assert stored is not None
    assert (stored["BudgetValue"], stored["CostMetric"], stored["CostExclusions"]) == (
        Decimal(100),
        "amortized",
        "credits",
    )

    removed = budgetctl("default", "set", tree.sandbox, "--metric", "", *R)
    assert removed.code == ExitCode.OK, removed.stderr
    stored = default_item(tree, tree.sandbox)
    assert stored is not None
    assert ("CostMetric" in stored, stored["CostExclusions"], stored["BudgetValue"]) == (
        False,
        "credits",
        Decimal(100),
    )

    again = budgetctl("default", "set", tree.sandbox, "--exclude", "credits", *R)
    assert again.code == ExitCode.OK
    assert "already is 100 (excludes credits); nothing written" in again.stderr

    # no default yet, no amount: refused, nothing written
    missing = budgetctl("default", "set", tree.production, "--exclude", "credits", *R)
    assert missing.code == ExitCode.USAGE
    assert f"default {tree.production} does not exist: set it with an AMOUNT" in missing.stderr
    assert default_item(tree, tree.production) is None


def test_bad_cost_basis_options_name_field_and_value_before_any_aws_call(
    tree: Tree, monkeypatch: pytest.MonkeyPatch
):
    calls: list[str] = []
    original = BaseClient._make_api_call

    def recorded(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        calls.append(operation)
        return original(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recorded)

    metric = budgetctl("default", "set", tree.sandbox, "100", "--metric", "cheapest", *R)
    exclude = budgetctl("default", "set", tree.sandbox, "--exclude", "credits,coupons", *R)
    on_get = budgetctl("default", "get", tree.sandbox, "--exclude", "credits", *R)

    assert metric.code == ExitCode.USAGE
    assert "CostMetric 'cheapest' is not a cost metric" in metric.stderr
    assert exclude.code == ExitCode.USAGE
    assert "CostExclusions 'coupons' is not a record type budget-sync excludes" in exclude.stderr
    assert on_get.code == ExitCode.USAGE
    assert "default get does not take --exclude" in on_get.stderr
    assert calls == []


def test_default_set_dry_run_shows_the_cost_basis_and_writes_nothing(tree: Tree):
    tree.set_default(tree.sandbox, "100")

    dry = budgetctl("default", "set", tree.sandbox, "--exclude", "credits,refunds", "--dry-run", *R)

    assert dry.code == ExitCode.OK, dry.stderr
    assert (
        f"default {tree.sandbox}: 100 -> 100 (excludes credits,refunds); nothing written (dry run)"
        in dry.stderr
    )
    assert "CostExclusions" not in (default_item(tree, tree.sandbox) or {})


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_default_list_table_fits_100_columns_and_json_has_everything(
    tree: Tree, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("COLUMNS", "100")
    budgetctl(
        "default",
        "set",
        tree.sandbox,
        "100",
        "--metric",
        "net-amortized",
        "--exclude",
        "credits,refunds,tax",
        *R,
    )
    budgetctl("default", "set", tree.root, "50", "--metric", "amortized", *R)

    out, err = Terminal(), io.StringIO()
    code = main(["default", "list", *R], stdout=out, stderr=err)
    table = re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue())
    listed = budgetctl("default", "list", *R, "--output", "json")
    got = budgetctl("default", "get", tree.sandbox, *R, "--output", "json")

    assert code == ExitCode.OK, err.getvalue()
    assert all(len(line) <= 100 for line in table.splitlines()), table
    assert "credits,refunds,tax" in table
    assert "net-amortized" in table
    assert [(r["TargetId"], r["CostMetric"], r["CostExclusions"]) for r in listed.json()] == sorted(
        [(tree.sandbox, "net-amortized", "credits,refunds,tax"), (tree.root, "amortized", None)]
    )
    assert listed.json()[0]["UpdatedBy"]  # JSON: every column
    assert got.json()["CostMetric"] == "net-amortized"


def test_default_list_marks_a_cost_basis_written_by_hand_that_breaks_the_contract(tree: Tree):
    tree.table("BlogBudgetsDefaults").put_item(
        Item={"TargetId": tree.sandbox, "BudgetValue": Decimal(100), "CostMetric": "cheapest"}
    )

    listed = budgetctl("default", "list", *R)

    assert listed.code == ExitCode.PROBLEM
    assert f"default {tree.sandbox}: CostMetric 'cheapest' is not a cost metric" in listed.stderr


def test_default_export_and_import_carry_the_cost_basis_validated_and_dry_run_names_each_change(
    tree: Tree, tmp_path: Any
):
    # GIVEN a default with a cost basis, exported
    budgetctl("default", "set", tree.sandbox, "100", "--metric", "amortized", "--exclude", "credits", *R)
    path = tmp_path / "defaults.csv"
    assert budgetctl("default", "export", "--file", str(path), *R).code == ExitCode.OK
    header, row = path.read_text(encoding="utf-8").splitlines()[:2]
    assert header.split(",")[:4] == ["TargetId", "BudgetValue", "CostMetric", "CostExclusions"]
    assert row.split(",")[:4] == [tree.sandbox, "100", "amortized", "credits"]

    # WHEN the default is changed in the table, the export imports it back (dry run first)
    budgetctl("default", "set", tree.sandbox, "--metric", "", "--exclude", "credits,refunds", *R)
    dry = budgetctl("default", "import", str(path), "--dry-run", *R, "--output", "json")
    assert dry.code == ExitCode.OK, dry.stderr
    assert dry.json() == [
        {
            "TargetId": tree.sandbox,
            "Change": "CHANGE",
            "From": "100",
            "To": "100",
            "Attributes": "CostMetric (none) -> amortized; CostExclusions credits,refunds -> credits",
        }
    ]
    assert default_item(tree, tree.sandbox)["CostExclusions"] == "credits,refunds"  # type: ignore[index]
    imported = budgetctl("default", "import", str(path), *R)
    assert imported.code == ExitCode.OK, imported.stderr
    stored = default_item(tree, tree.sandbox)
    assert stored is not None
    assert (stored["BudgetValue"], stored["CostMetric"], stored["CostExclusions"]) == (
        Decimal(100),
        "amortized",
        "credits",
    )
    again = budgetctl("default", "import", str(path), *R)
    assert "0 to write, 1 unchanged" in again.stderr

    # an empty cell removes the attribute; a file without the columns leaves them as they are
    path.write_text(f"TargetId,BudgetValue,CostMetric\n{tree.sandbox},100,\n", encoding="utf-8")
    assert budgetctl("default", "import", str(path), *R).code == ExitCode.OK
    stored = default_item(tree, tree.sandbox)
    assert stored is not None
    assert ("CostMetric" in stored, stored["CostExclusions"]) == (False, "credits")


def test_default_import_refuses_a_bad_cost_basis_cell_naming_field_and_value_and_writes_nothing(
    tree: Tree, tmp_path: Any
):
    tree.set_default(tree.sandbox, "100")
    path = tmp_path / "defaults.csv"
    path.write_text(
        f"TargetId,BudgetValue,CostMetric,CostExclusions\n{tree.root},50,,\n{tree.sandbox},200,amortized,coupons\n",
        encoding="utf-8",
    )

    result = budgetctl("default", "import", str(path), *R)

    assert result.code == ExitCode.USAGE
    assert "defaults.csv:3:" in result.stderr
    assert "CostExclusions 'coupons' is not a record type budget-sync excludes" in result.stderr
    assert default_item(tree, tree.root) is None
    assert default_item(tree, tree.sandbox)["BudgetValue"] == Decimal(100)  # type: ignore[index]
