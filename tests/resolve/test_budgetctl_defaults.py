"""``budgetctl default ...`` and the organisation view of ``budgetctl status``, as typed."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from botocore.client import BaseClient

from budgetctl.errors import ExitCode
from tests.support.operators import budgetctl
from tests.support.tree import SANDBOX_ACCOUNTS, SCHEDULED, Tree

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
    assert result.json()["TargetId"] == tree.sandbox  # one result: one object
    assert result.json()["Name"] == "Sandbox"  # as `default list` names it


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


def test_default_get_output_json_is_one_object_and_default_set_dry_run_writes_nothing(tree: Tree):
    tree.set_default(tree.sandbox, "100")

    got = budgetctl("default", "get", tree.sandbox, "--region", "us-east-1", "--output", "json")
    dry = budgetctl("default", "set", tree.sandbox, "250", "--dry-run", "--region", "us-east-1")
    dry_delete = budgetctl("default", "delete", tree.sandbox, "--dry-run", "--region", "us-east-1")

    assert got.code == ExitCode.OK, got.stderr
    assert isinstance(got.json(), dict)
    assert got.json()["BudgetValue"] == "100"
    assert dry.code == ExitCode.OK, dry.stderr
    assert f"default {tree.sandbox}: 100 -> 250; nothing written (dry run)" in dry.stderr
    assert dry_delete.code == ExitCode.OK, dry_delete.stderr
    assert "would be deleted; nothing written (dry run)" in dry_delete.stderr
    assert default_item(tree, tree.sandbox)["BudgetValue"] == Decimal(100)  # type: ignore[index]


def test_given_ctrl_c_during_default_import_then_the_targets_in_flight_are_named_and_exit_130(
    tree: Tree, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    source = tmp_path / "defaults.csv"
    source.write_text(f"TargetId,BudgetValue\n{tree.root},50\n{tree.sandbox},100\n")
    original = BaseClient._make_api_call

    def interrupted(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if operation == "TransactWriteItems":
            raise KeyboardInterrupt
        return original(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", interrupted)

    result = budgetctl("default", "import", str(source), "--region", "us-east-1")

    assert result.code == 130
    assert "Traceback" not in result.stderr
    assert f"in flight: {tree.root} {tree.sandbox}" in result.stderr
    assert (
        result.stderr.strip().splitlines()[-1]
        == "budgetctl: error: interrupted (Ctrl-C); nothing more was sent"
    )
    assert default_item(tree, tree.sandbox) is None


def test_given_a_default_above_an_explicit_item_when_deleted_then_budgetctl_says_the_default_replaces_it(
    tree: Tree,
):
    # GIVEN Sandbox's default 100 and an explicit 700 for one of its accounts
    account = SANDBOX_ACCOUNTS[0]
    tree.set_default(tree.sandbox, "100")
    tree.table("BlogBudgetsDynamoDB").put_item(Item={"AccountId": account, "BudgetValue": Decimal(700)})

    # WHEN the operator deletes the account's item
    result = budgetctl("delete", account, "--region", "us-east-1")

    # THEN budgetctl says, before it happens, that Sandbox's 100 replaces the 700 (not that it stays)
    assert result.code == ExitCode.OK, result.stderr
    said = result.stdout + result.stderr
    assert f"the default of OU Sandbox ({tree.sandbox}) applies: its budget becomes 100 (was 700)" in said
    assert "keeps its last budget" not in said
    assert said.index("applies") < said.index("deleted")


def test_given_no_default_above_an_account_when_deleted_then_budgetctl_says_it_keeps_its_last_budget(
    tree: Tree,
):
    account = SANDBOX_ACCOUNTS[0]
    tree.table("BlogBudgetsDynamoDB").put_item(Item={"AccountId": account, "BudgetValue": Decimal(700)})

    result = budgetctl("delete", account, "--region", "us-east-1")

    assert result.code == ExitCode.OK, result.stderr
    assert "no default applies to it: the account keeps its last budget (status UNMANAGED)" in (
        result.stdout + result.stderr
    )


def test_given_an_inherited_item_when_an_operator_sets_the_same_value_then_it_becomes_explicit(
    tree: Tree, tmp_path: Path
):
    # GIVEN Sandbox's default 100 inherited by both Sandbox accounts
    tree.set_default(tree.sandbox, "100")
    tree.resolve(SCHEDULED)
    first, second = SANDBOX_ACCOUNTS

    # WHEN an operator sets 100 for one (budgetctl set) and imports 100 for the other
    assert budgetctl("set", first, "100", "--region", "us-east-1").code == ExitCode.OK
    csv = tmp_path / "budgets.csv"
    csv.write_text(f"AccountId,BudgetValue\n{second},100\n")
    imported = budgetctl("import", str(csv), "--region", "us-east-1")
    assert imported.code == ExitCode.OK, imported.stderr

    # THEN both are the operator's own: a later default change does not touch them
    tree.set_default(tree.sandbox, "150")
    tree.resolve(SCHEDULED)
    for account in (first, second):
        item = tree.item(account)
        assert item is not None
        assert (item["BudgetValue"], "InheritedFrom" in item) == (Decimal(100), False)


def test_given_an_inherited_item_when_another_client_changes_its_value_then_the_operators_value_wins(
    tree: Tree,
):
    # GIVEN Sandbox's default 100 inherited
    tree.set_default(tree.sandbox, "100")
    tree.resolve(SCHEDULED)
    account = SANDBOX_ACCOUNTS[0]

    # WHEN someone sets 700 with the console or update-item (InheritedFrom left as it was)
    tree.table("BlogBudgetsDynamoDB").update_item(
        Key={"AccountId": account},
        UpdateExpression="SET BudgetValue = :v",
        ExpressionAttributeValues={":v": Decimal(700)},
    )
    # and the next resolution runs after a default change
    tree.set_default(tree.sandbox, "150")
    tree.resolve(SCHEDULED)

    # THEN the operator's 700 stands, now an explicit item
    item = tree.item(account)
    assert item is not None
    assert (item["BudgetValue"], "InheritedFrom" in item) == (Decimal(700), False)


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
