"""``budgetctl default ...`` and the organisation view of ``budgetctl status``, as typed."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from botocore.client import BaseClient

from budgetctl.errors import ExitCode
from tests.ops.conftest import budgetctl
from tests.org.conftest import SANDBOX_ACCOUNTS, Tree
from tests.org.test_resolver import SCHEDULED

CALLER = "arn:aws:sts::123456789012:user/moto"


def default_item(tree: Tree, target: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = (
        tree.table("BlogBudgetsDefaults").get_item(Key={"TargetId": target}, ConsistentRead=True).get("Item")
    )
    return found


def test_given_an_ou_of_the_organisation_when_default_set_then_it_is_stored_with_who_and_when(tree: Tree):
    result = budgetctl("default", "set", tree.sandbox, "100", "--region", "us-east-1", "--output", "json")

    assert result.code == ExitCode.OK, result.stderr
    stored = default_item(tree, tree.sandbox)
    assert stored is not None
    assert stored["BudgetValue"] == Decimal(100)
    assert stored["UpdatedBy"] == CALLER
    assert stored["UpdatedAt"]
    assert result.json()[0]["TargetId"] == tree.sandbox


def test_bad_default_input_names_the_field_and_value_and_writes_nothing(
    tree: Tree, monkeypatch: pytest.MonkeyPatch
):
    calls: list[str] = []
    original = BaseClient._make_api_call

    def recorded(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        calls.append(operation)
        return original(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recorded)

    # a malformed id and a bad amount: refused before any AWS call
    malformed = budgetctl("default", "set", "ou-nope", "100", "--region", "us-east-1")
    assert malformed.code == ExitCode.USAGE
    assert "TargetId 'ou-nope'" in malformed.stderr
    bad_amount = budgetctl("default", "set", tree.sandbox, "12.345", "--region", "us-east-1")
    assert bad_amount.code == ExitCode.USAGE
    assert "BudgetValue '12.345' has more than two decimals" in bad_amount.stderr
    assert calls == []

    # a well-formed id that is no OU of this organisation: refused after asking Organizations
    foreign = "ou-zzzz-abcdefgh"
    result = budgetctl("default", "set", foreign, "100", "--region", "us-east-1")
    assert result.code == ExitCode.USAGE
    assert f"TargetId '{foreign}' is no OU or root of this organisation; nothing written" in result.stderr
    assert "UpdateItem" not in calls
    assert "PutItem" not in calls
    assert default_item(tree, foreign) is None


def test_default_set_is_conditional_and_list_shows_names(tree: Tree):
    assert budgetctl("default", "set", tree.sandbox, "100", "--region", "us-east-1").code == ExitCode.OK
    refused = budgetctl("default", "set", tree.sandbox, "200", "--expect", "150", "--region", "us-east-1")
    assert refused.code == ExitCode.CONFLICT
    assert "default " + tree.sandbox in refused.stderr
    assert default_item(tree, tree.sandbox)["BudgetValue"] == Decimal(100)  # type: ignore[index]

    listed = budgetctl("default", "list", "--region", "us-east-1", "--output", "json")
    assert listed.code == ExitCode.OK, listed.stderr
    assert [(r["TargetId"], r["Name"], r["BudgetValue"]) for r in listed.json()] == [
        (tree.sandbox, "Sandbox", "100")
    ]


def test_default_export_then_import_changes_nothing_and_import_refuses_foreign_ids(
    tree: Tree, tmp_path: Path
):
    budgetctl("default", "set", tree.sandbox, "100", "--region", "us-east-1")
    budgetctl("default", "set", tree.root, "50", "--region", "us-east-1")
    exported = tmp_path / "defaults.csv"
    assert (
        budgetctl("default", "export", "--file", str(exported), "--region", "us-east-1").code == ExitCode.OK
    )

    again = budgetctl("default", "import", str(exported), "--region", "us-east-1")
    assert again.code == ExitCode.OK, again.stderr
    assert "0 to write, 2 unchanged; nothing written" in again.stderr

    bad = tmp_path / "bad.csv"
    bad.write_text(f"TargetId,BudgetValue\n{tree.production},5000\nou-zzzz-abcdefgh,1\n", encoding="utf-8")
    refused = budgetctl("default", "import", str(bad), "--region", "us-east-1")
    assert refused.code == ExitCode.USAGE
    assert "bad.csv:3: TargetId 'ou-zzzz-abcdefgh' is no OU or root of this organisation" in refused.stderr
    assert default_item(tree, tree.production) is None


def test_given_an_inherited_item_when_an_operator_sets_it_then_it_becomes_explicit(tree: Tree):
    tree.set_default(tree.sandbox, "100")
    tree.resolve(SCHEDULED)
    account = SANDBOX_ACCOUNTS[0]
    assert tree.item(account)["InheritedFrom"] == tree.sandbox  # type: ignore[index]

    assert budgetctl("set", account, "700", "--region", "us-east-1").code == ExitCode.OK
    tree.set_default(tree.sandbox, "150")
    tree.resolve(SCHEDULED)

    item = tree.item(account)
    assert item is not None
    assert item["BudgetValue"] == Decimal(700)
    assert "InheritedFrom" not in item


def test_export_of_the_budgets_table_leaves_inherited_items_out(tree: Tree):
    tree.set_default(tree.sandbox, "100")
    tree.resolve(SCHEDULED)
    budgetctl("set", SANDBOX_ACCOUNTS[0], "700", "--region", "us-east-1")

    result = budgetctl("export", "--region", "us-east-1")

    assert result.code == ExitCode.OK, result.stderr
    assert SANDBOX_ACCOUNTS[0] in result.stdout
    assert SANDBOX_ACCOUNTS[1] not in result.stdout
    assert "1 inherited item(s) left out" in result.stderr


def test_status_org_shows_each_accounts_source_and_the_accounts_it_does_not_manage(tree: Tree):
    # GIVEN a Sandbox default, an override in Sandbox, and a new account waiting for its spoke stack
    tree.set_default(tree.sandbox, "100")
    tree.resolve(SCHEDULED)
    budgetctl("set", SANDBOX_ACCOUNTS[0], "700", "--region", "us-east-1")
    tree.management.client("cloudformation").create_stack_set(
        StackSetName="budget-sync-spoke", TemplateBody='{"Resources": {}}'
    )
    tree.create_account("555555555555", tree.sandbox)
    tree.resolve(SCHEDULED, {"SpokeStackSetName": "budget-sync-spoke"})

    # WHEN an operator asks for the status of the organisation
    result = budgetctl("status", "--org", "--region", "us-east-1", "--output", "json")

    # THEN each account says where its value comes from; unmanaged and waiting accounts are listed
    rows = {r["AccountId"]: r for r in result.json()}
    assert rows[SANDBOX_ACCOUNTS[0]]["Source"] == "item"
    assert rows[SANDBOX_ACCOUNTS[1]]["Source"] == f"default {tree.sandbox} (Sandbox)"
    assert rows[SANDBOX_ACCOUNTS[1]]["Desired"] == "100"
    waiting = rows["555555555555"]
    assert (waiting["Drift"], waiting["LastStatus"], waiting["Desired"]) == ("NOT_MANAGED", "WAITING", "100")
    assert "waiting for its spoke stack" in waiting["Reason"]
    assert rows["123456789012"]["Drift"] == "NOT_MANAGED"  # the management account: no item, no default


def test_default_export_guards_formula_cells_and_imports_back_unchanged(tree: Tree, tmp_path: Path):
    # GIVEN a default written by another client, whose UpdatedBy a spreadsheet would run
    tree.table("BlogBudgetsDefaults").put_item(
        Item={"TargetId": tree.sandbox, "BudgetValue": Decimal(100), "UpdatedBy": '=HYPERLINK("x")'}
    )
    path = tmp_path / "defaults.csv"

    # WHEN the defaults are exported as CSV, then imported
    exported = budgetctl("default", "export", "--file", str(path), "--region", "us-east-1")
    imported = budgetctl("default", "import", str(path), "--region", "us-east-1")

    # THEN the cell is text for a spreadsheet, and the import changes nothing
    assert exported.code == ExitCode.OK, exported.stderr
    assert "'=HYPERLINK" in path.read_text()
    assert imported.code == ExitCode.OK, imported.stderr
    assert "0 to write, 1 unchanged" in imported.stderr


def test_given_an_invalid_default_written_by_hand_then_it_is_one_failure_and_default_list_marks_it(
    tree: Tree,
):
    # GIVEN a default of 12.345 written by another client on Sandbox, and a root default
    tree.table("BlogBudgetsDefaults").put_item(
        Item={"TargetId": tree.sandbox, "BudgetValue": Decimal("12.345")}
    )
    tree.set_default(tree.root, "50")

    # WHEN the resolver runs, twice
    tree.resolve(SCHEDULED)
    first = tree.status(tree.sandbox)
    tree.resolve(SCHEDULED)

    # THEN the default itself is FAILED, with the field and the value, written once (one notice)
    assert first is not None
    assert (first["Status"], first["Source"]) == ("FAILED", "resolver")
    assert "BudgetValue 12.345 has more than two decimals" in first["Reason"]
    assert "next default up" in first["Reason"]
    assert tree.status(tree.sandbox) == first

    # and `default list` marks it, with exit 1
    listed = budgetctl("default", "list", "--region", "us-east-1")
    assert listed.code == ExitCode.PROBLEM, listed.stderr
    assert f"default {tree.sandbox}: BudgetValue 12.345 has more than two decimals" in listed.stderr
    for argv in (("status",), ("status", "--org")):
        shown = budgetctl(*argv, "--region", "us-east-1")
        assert shown.code != ExitCode.INTERNAL, shown.stderr

    # WHEN it is fixed, THEN its failure is gone and the list is clean
    tree.set_default(tree.sandbox, "100")
    tree.resolve(SCHEDULED)
    assert tree.status(tree.sandbox) is None
    assert budgetctl("default", "list", "--region", "us-east-1").code == ExitCode.OK
