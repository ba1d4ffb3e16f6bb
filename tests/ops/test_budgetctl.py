"""``budgetctl`` as a user types it, on moto: arguments in, output and exit code out."""

from __future__ import annotations

import io
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest

from budget_sync_local.templates import MANAGEMENT_TEMPLATE, SPOKE_TEMPLATE, Resolver, load
from budgetctl import cli
from budgetctl.budgets_table import BudgetsTable
from budgetctl.errors import ExitCode
from tests.support.moto_org import SPOKES, Org
from tests.support.operators import CALLER, budgetctl, edit_budget_limit, item, parameter_version

A, B, C = SPOKES


def all_items(org: Org) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = org.management.resource("dynamodb").Table(org.budgets_table).scan()["Items"]
    return sorted(items, key=lambda i: i["AccountId"])


# --------------------------------------------------------------------------- set / get / delete


def test_given_a_new_account_when_set_then_the_item_has_the_value_and_who_and_when(ops: Org):
    result = budgetctl("set", "444444444444", "1250.50", "--output", "json")

    assert result.code == ExitCode.OK, result.stderr
    stored = item(ops, "444444444444")
    assert stored is not None
    assert stored["BudgetValue"] == Decimal("1250.5")
    assert stored["UpdatedBy"] == CALLER
    assert datetime.fromisoformat(stored["UpdatedAt"]).tzinfo is not None
    assert result.json() == {  # one result: one object, as the AWS CLI prints it
        "AccountId": "444444444444",
        "BudgetValue": "1250.5",
        "UpdatedBy": CALLER,
        "UpdatedAt": stored["UpdatedAt"],
        "AlertEmails": None,  # the spoke stack's defaults
        "AlertThresholds": None,
        "ForecastedThreshold": None,
        "CostMetric": None,  # no cost basis: the stack's default, else the budget's own
        "CostExclusions": None,
        "IncidentUrgency": None,  # no incident override: the OU's default, else the stack's
        "IncidentImpact": None,
        "IncidentAssignmentGroup": None,
        "IncidentCaller": None,
    }
    got = budgetctl("get", "444444444444", "--output", "csv")
    assert got.code == 0
    assert got.stdout.splitlines() == [
        "AccountId,BudgetValue,UpdatedBy,UpdatedAt,AlertEmails,AlertThresholds,ForecastedThreshold,"
        "CostMetric,CostExclusions,IncidentUrgency,IncidentImpact,IncidentAssignmentGroup,IncidentCaller",
        f"444444444444,1250.5,{CALLER},{stored['UpdatedAt']},,,,,,,,,",
    ]


def test_global_options_work_before_and_after_the_command(ops: Org):
    assert (
        budgetctl("--output", "json", "--table", ops.budgets_table, "get", A).json()["BudgetValue"] == "1000"
    )
    assert budgetctl("get", A, "--output", "json", "--region", "us-east-1").json()["AccountId"] == A


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("set", "12345", "100"), "AccountId '12345' must be exactly 12 digits"),
        (("set", A, "12.345"), "BudgetValue '12.345' has more than two decimals"),
        (("set", A, "-3"), "BudgetValue '-3' must be greater than 0"),
        (("set", A, "lots"), "BudgetValue 'lots' is not a number"),
        (("set", A, "\u0661\u0662\u0663"), "BudgetValue '\u0661\u0662\u0663' has non-ASCII digits"),
        (("set", A, "\uff11\uff12\uff13"), "BudgetValue '\uff11\uff12\uff13' has non-ASCII digits"),
        (("set", A, "1_000"), "BudgetValue '1_000' is not a plain amount"),
        (("set", A, "1E3"), "BudgetValue '1E3' is not a plain amount"),
        (("set", A, "+5"), "BudgetValue '+5' is not a plain amount"),
        (("set", A, "10", "--expect", "1E3"), "BudgetValue '1E3' is not a plain amount"),
        (("set", A, "5000000000"), "BudgetValue '5000000000' exceeds the maximum"),
        (("set", A, "10", "--expect", "ten"), "BudgetValue 'ten' is not a number"),
        (("get", A, "--table", "x"), "--table 'x' is not valid"),
        (("get", A, "--region", "mars"), "--region 'mars' is not valid"),
        (("status", "--account", "1"), "AccountId '1' must be exactly 12 digits"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_value_before_any_aws_call(
    ops: Org, no_aws_calls: list[str], argv: tuple[str, ...], message: str
):
    result = budgetctl(*argv)

    assert result.code == ExitCode.USAGE
    assert message in result.stderr
    assert no_aws_calls == []
    assert item(ops, A) is not None
    assert item(ops, A)["BudgetValue"] == 1000


def test_argparse_usage_errors_exit_2(ops: Org, capsys: pytest.CaptureFixture[str]):
    assert budgetctl("status", "--output", "yaml").code == ExitCode.USAGE
    assert budgetctl("frobnicate").code == ExitCode.USAGE
    assert budgetctl("set", A).code == ExitCode.USAGE  # AMOUNT missing
    assert budgetctl("set", A, "10", "--expect", "1", "--force").code == ExitCode.USAGE
    assert "invalid choice" in capsys.readouterr().err


def test_given_two_operators_when_both_change_the_same_account_then_the_second_is_refused(ops: Org):
    # GIVEN operator 1 read A's item (1000), then operator 2 set it to 1500
    seen = budgetctl("get", A, "--output", "json").json()["BudgetValue"]
    assert budgetctl("set", A, "1500", "--expect", seen).code == ExitCode.OK

    # WHEN operator 1 sets it, expecting what they saw
    result = budgetctl("set", A, "1200", "--expect", seen)

    # THEN the write is refused as a conflict, naming the current value and who wrote it
    assert result.code == ExitCode.CONFLICT
    assert "expected BudgetValue 1000, but it now holds BudgetValue 1500" in result.stderr
    assert CALLER in result.stderr
    assert item(ops, A)["BudgetValue"] == 1500  # type: ignore[index]


def test_given_a_change_between_reading_and_writing_then_set_reports_a_conflict(
    ops: Org, monkeypatch: pytest.MonkeyPatch
):
    # GIVEN another operator writes A just after this `set` read it
    original_get = BudgetsTable.get

    def get_then_someone_writes(self: BudgetsTable, account_id: str) -> Any:
        found = original_get(self, account_id)
        ops.put(account_id, Decimal("777"), UpdatedBy="arn:aws:iam::123456789012:role/other", UpdatedAt="x")
        return found

    monkeypatch.setattr(BudgetsTable, "get", get_then_someone_writes)

    # WHEN
    result = budgetctl("set", A, "1300")

    # THEN
    monkeypatch.undo()
    assert result.code == ExitCode.CONFLICT
    assert "changed since it was read" in result.stderr
    assert "777" in result.stderr
    assert item(ops, A)["BudgetValue"] == 777  # type: ignore[index]


def test_set_with_the_current_value_writes_nothing_and_force_writes_unconditionally(ops: Org):
    before = item(ops, A)
    assert budgetctl("set", A, "1000.00").code == ExitCode.OK
    assert item(ops, A) == before
    assert budgetctl("set", A, "1100", "--force").code == ExitCode.OK
    assert item(ops, A)["BudgetValue"] == 1100  # type: ignore[index]


def test_set_expect_none_creates_only_and_delete_is_conditional_too(ops: Org):
    assert budgetctl("set", A, "5", "--expect", "none").code == ExitCode.CONFLICT
    assert budgetctl("set", "555555555555", "5", "--expect", "none").code == ExitCode.OK
    assert budgetctl("delete", A, "--expect", "999").code == ExitCode.CONFLICT
    assert item(ops, A) is not None

    assert budgetctl("delete", A).code == ExitCode.OK
    assert item(ops, A) is None
    missing = budgetctl("get", A)
    assert missing.code == ExitCode.PROBLEM
    assert f"no item for account {A}" in missing.stderr
    assert budgetctl("delete", A).code == ExitCode.PROBLEM


def test_a_missing_table_is_an_aws_error(ops: Org):
    result = budgetctl("get", A, "--table", "NoSuchTable")
    assert result.code == ExitCode.AWS
    assert "ResourceNotFoundException" in result.stderr


# --------------------------------------------------------------------------- import / export


def test_given_a_csv_with_bad_rows_then_each_is_reported_by_line_and_nothing_is_written(
    ops: Org, tmp_path: Path, no_aws_calls: list[str]
):
    before = all_items(ops)
    no_aws_calls.clear()
    source = tmp_path / "budgets.csv"
    source.write_text(
        "AccountId,BudgetValue\n"
        "444444444444,100\n"  # line 2: fine
        "12345,100\n"  # line 3
        "\n"  # line 4: blank, skipped
        "555555555555,1.234\n"  # line 5
        "444444444444,200\n"  # line 6: duplicate (not an error: the last row is kept)
        "666666666666,\n"  # line 7: empty amount
    )

    result = budgetctl("import", str(source))

    assert result.code == ExitCode.USAGE
    assert "budgets.csv:3: AccountId '12345' must be exactly 12 digits" in result.stderr
    assert "budgets.csv:5: BudgetValue '1.234' has more than two decimals" in result.stderr
    assert (
        "budgets.csv:6: AccountId '444444444444' appears again (line 2); the last row, line 6, is kept"
        in (result.stderr)
    )
    assert "budgets.csv:7: BudgetValue '' is not a number" in result.stderr
    assert "3 bad row(s)" in result.stderr
    assert "nothing written" in result.stderr
    assert no_aws_calls == []
    assert all_items(ops) == before


def test_skip_invalid_writes_the_good_rows_and_dry_run_writes_nothing(ops: Org, tmp_path: Path):
    source = tmp_path / "b.csv"
    source.write_text(
        f"AccountId,BudgetValue,Note\n{A},1000,same\n{B},2000,raise\n444444444444,50,new\nbad,1,x\n"
    )

    dry = budgetctl("import", str(source), "--skip-invalid", "--dry-run", "--output", "json")

    assert dry.code == ExitCode.PROBLEM  # rows were skipped: a script must see it
    assert dry.json() == [
        {"Line": 3, "AccountId": B, "Change": "CHANGE", "From": "1000", "To": "2000", "Attributes": None},
        {
            "Line": 4,
            "AccountId": "444444444444",
            "Change": "ADD",
            "From": None,
            "To": "50",
            "Attributes": None,
        },
    ]
    assert "1 to add, 1 to change, 1 unchanged, 1 bad row(s) skipped; nothing written (dry run)" in dry.stderr
    assert item(ops, B)["BudgetValue"] == 1000  # type: ignore[index]

    real = budgetctl("import", str(source), "--skip-invalid")

    assert real.code == ExitCode.PROBLEM, real.stderr
    assert "1 bad row(s) skipped" in real.stderr
    assert item(ops, B)["BudgetValue"] == 2000  # type: ignore[index]
    assert item(ops, "444444444444")["UpdatedBy"] == CALLER  # type: ignore[index]
    assert "UpdatedBy" not in item(ops, A)  # type: ignore[operator]  # unchanged rows are not written


def test_export_then_import_changes_nothing(ops: Org, tmp_path: Path):
    budgetctl("set", "444444444444", "1250.50")
    ops.put(B, Decimal("99.99"), Owner="finance")
    before = all_items(ops)
    exported = tmp_path / "export.csv"

    assert budgetctl("export", "--file", str(exported)).code == ExitCode.OK
    result = budgetctl("import", str(exported))

    assert result.code == ExitCode.OK, result.stderr
    assert "0 to add, 0 to change, 4 unchanged" in result.stderr
    assert all_items(ops) == before
    lines = exported.read_text().splitlines()
    assert (
        lines[0]
        == "AccountId,BudgetValue,UpdatedBy,UpdatedAt,AlertEmails,AlertThresholds,ForecastedThreshold,"
        "CostMetric,CostExclusions,IncidentUrgency,IncidentImpact,IncidentAssignmentGroup,IncidentCaller"
    )
    assert f"{B},99.99,,,,,,,,,,," in lines


def test_export_json_to_stdout(ops: Org):
    result = budgetctl("export", "--format", "json")
    assert result.code == 0
    assert [(r["AccountId"], r["BudgetValue"]) for r in result.json()] == [(a, "1000") for a in SPOKES]


def test_an_import_that_meets_a_concurrent_change_writes_the_rest_and_reports_the_conflict(
    ops: Org, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    source = tmp_path / "b.csv"
    source.write_text(f"AccountId,BudgetValue\n{A},10\n{B},20\n")
    original_scan = BudgetsTable.scan

    def scan_then_someone_writes(self: BudgetsTable) -> Any:
        found = original_scan(self)
        ops.put(A, Decimal("555"))
        return found

    monkeypatch.setattr(BudgetsTable, "scan", scan_then_someone_writes)
    result = budgetctl("import", str(source))

    assert result.code == ExitCode.CONFLICT
    assert f"account {A} changed since it was read" in result.stderr
    assert item(ops, A)["BudgetValue"] == 555  # type: ignore[index]
    assert item(ops, B)["BudgetValue"] == 20  # type: ignore[index]


# --------------------------------------------------------------------------- status / reconcile


def test_status_shows_each_account_and_exits_1_on_drift(ops: Org):
    assert budgetctl("status").code == ExitCode.OK
    edit_budget_limit(ops, C, "1750")

    result = budgetctl("status", "--output", "json")

    assert result.code == ExitCode.PROBLEM
    rows = {r["AccountId"]: r for r in result.json()}
    assert rows[C] == {
        "AccountId": C,
        "Name": "spoke-333333333333",  # the account's name from the organisation (ListAccounts)
        "Desired": "1000",
        "Source": "item",  # the account's own item (not an OU default)
        "LastStatus": None,
        "Parameter": "1000",
        "BudgetLimit": "1750",
        "ActualSpend": "0",
        "ForecastedSpend": "0",
        "PercentOfLimit": "0.0",
        "Drift": "BUDGET_DRIFT",
        "Reason": "budget limit 1750 differs from desired 1000",
        "Health": "HEALTHY",  # the budget's HealthStatus, as DescribeBudget gives it
        "AlertsSent": None,  # no status yet
        "SpokeAlerts": "none",  # this fixture's budgets have no notifications
        "CostBasis": None,  # no spoke report yet
        "Incident": None,  # the optional incidents are not deployed here (docs/itsm.md)
    }
    assert rows[A]["Drift"] == "IN_SYNC"
    table = budgetctl("status", "--account", C)
    assert "BUDGET_DRIFT" in table.stdout
    assert A not in table.stdout


def test_reconcile_shows_then_apply_repairs(ops: Org):
    ops.put(A, Decimal("3000"))  # the stream write is lost: the parameter keeps 1000

    shown = budgetctl("reconcile", "--output", "csv")
    assert shown.code == ExitCode.PROBLEM
    assert f"{A},3000,1000,1000,PARAMETER_DRIFT,," in shown.stdout
    assert "budgetctl reconcile --apply" in shown.stderr
    assert ops.parameter(A) == "1000"

    applied = budgetctl("reconcile", "--apply", "--output", "json")
    assert applied.code == ExitCode.OK
    assert [r["Action"] for r in applied.json() if r["AccountId"] == A] == ["REPAIRED"]
    assert ops.parameter(A) == "3000"
    assert ops.status(A)["Source"] == "reconciler"  # type: ignore[index]
    assert budgetctl("reconcile").code == ExitCode.PROBLEM  # the budget follows when the Automation runs
    assert parameter_version(ops, B) == 1


@pytest.mark.without_organisation
def test_status_org_lists_accounts_without_items_and_items_outside_the_organisation(ops: Org):
    organizations = boto3.client("organizations", region_name="us-east-1")
    organizations.create_organization(FeatureSet="ALL")
    created = organizations.create_account(AccountName="sandbox", Email="sandbox@example.com")
    new_account = created["CreateAccountStatus"]["AccountId"]

    result = budgetctl("status", "--org", "--output", "json")

    drifts = {r["AccountId"]: r["Drift"] for r in result.json()}
    assert drifts[new_account] == "NOT_MANAGED"
    assert drifts["123456789012"] == "NOT_MANAGED"  # the management account has no item either
    assert {drifts[a] for a in SPOKES} == {"NOT_IN_ORGANIZATION"}  # moto's org does not hold them
    assert result.code == ExitCode.PROBLEM


# --------------------------------------------------------------------------- defaults


def test_the_defaults_are_the_templates_defaults():
    management = Resolver(load(MANAGEMENT_TEMPLATE))
    assert management.parameter("BudgetsTableName") == cli.DEFAULT_TABLE
    assert management.parameter("StatusTableName") == cli.DEFAULT_STATUS_TABLE
    assert management.parameter("SpokeRoleName") == cli.DEFAULT_ROLE
    assert management.parameter("ParameterName") == cli.DEFAULT_PARAMETER
    assert management.parameter("BudgetName") == cli.DEFAULT_BUDGET_NAME
    spoke = Resolver(load(SPOKE_TEMPLATE))
    assert spoke.parameter("ParameterName") == cli.DEFAULT_PARAMETER
    assert spoke.parameter("BudgetName") == cli.DEFAULT_BUDGET_NAME
    assert spoke.parameter("SpokeRoleName") == cli.DEFAULT_ROLE


def test_python_dash_m_and_help(capsys: pytest.CaptureFixture[str]):
    assert budgetctl("--help").code == 0
    text = capsys.readouterr().out
    for command in ("set", "get", "delete", "import", "export", "status", "reconcile"):
        assert command in text
    assert "3 conflict" in text


# --------------------------------------------------------------------------- edges


def test_an_import_without_the_two_columns_names_them_and_writes_nothing(ops: Org, tmp_path: Path):
    source = tmp_path / "wrong.csv"
    source.write_text("Account,Amount\n111111111111,10\n")

    result = budgetctl("import", str(source))

    assert result.code == ExitCode.USAGE
    assert "wrong.csv:1: the header must name the columns AccountId and BudgetValue" in result.stderr
    assert item(ops, A)["BudgetValue"] == 1000  # type: ignore[index]


def test_an_import_reads_stdin_and_a_byte_order_mark(
    ops: Org, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    excel = tmp_path / "excel.csv"
    excel.write_bytes(b"\xef\xbb\xbfAccountId,BudgetValue\r\n" + f"{A},42\r\n".encode())
    assert budgetctl("import", str(excel)).code == ExitCode.OK
    assert item(ops, A)["BudgetValue"] == 42  # type: ignore[index]

    monkeypatch.setattr("sys.stdin", io.StringIO(f"AccountId,BudgetValue\n{B},43\n"))
    assert budgetctl("import", "-").code == ExitCode.OK
    assert item(ops, B)["BudgetValue"] == 43  # type: ignore[index]


def test_a_missing_file_region_or_profile_is_a_usage_error(ops: Org, monkeypatch: pytest.MonkeyPatch):
    missing = budgetctl("import", "/nonexistent/budgets.csv")
    assert missing.code == ExitCode.USAGE
    assert "cannot read '/nonexistent/budgets.csv'" in missing.stderr

    profile = budgetctl("get", A, "--profile", "nobody")
    assert profile.code == ExitCode.USAGE
    assert "--profile 'nobody'" in profile.stderr

    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION")
    region = budgetctl("get", A)
    assert region.code == ExitCode.USAGE
    assert "no region" in region.stderr


def test_the_table_output_is_a_readable_table_and_debug_logs_go_to_stderr(ops: Org):
    edit_budget_limit(ops, A, "1500")

    result = budgetctl("status", "--debug")

    assert result.code == ExitCode.PROBLEM
    header = next(line for line in result.stdout.splitlines() if "AccountId" in line)
    for column in ("Desired", "BudgetLimit", "LastStatus", "Drift", "Reason"):
        assert column in header
    wide = next(line for line in budgetctl("status", "--wide").stdout.splitlines() if "AccountId" in line)
    for column in ("Parameter", "PercentOfLimit", "Alerts"):  # --wide: every column
        assert column not in header
        assert column in wide
    assert "BUDGET_DRIFT" in result.stdout
    assert '"account drifted"' in result.stderr  # the shared code's structured log line
    assert '"account drifted"' not in result.stdout
    assert "3 account(s): BUDGET_DRIFT 1, IN_SYNC 2" in result.stderr
