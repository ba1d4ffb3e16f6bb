"""``budgetctl`` keeps the AWS CLI's habits: output formats, AWS_DEFAULT_OUTPUT, one object
for one result, --query, --version; and it is on PATH after the README's commands."""

from __future__ import annotations

import json
import os
import re
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

from budget_sync_local.templates import ROOT
from budgetctl import cli
from budgetctl.errors import ExitCode
from tests.support.moto_org import SPOKES, Org
from tests.support.operators import budgetctl, item

A, B, _ = SPOKES


def test_given_an_item_when_get_with_output_json_then_one_object_is_printed(ops: Org):
    assert budgetctl("set", A, "1250.50").code == ExitCode.OK

    got = budgetctl("get", A, "--output", "json")
    written = budgetctl("set", B, "99", "--output", "json")

    assert got.code == ExitCode.OK, got.stderr
    assert isinstance(json.loads(got.stdout), dict)
    assert json.loads(got.stdout)["AccountId"] == A
    assert json.loads(written.stdout)["AccountId"] == B


def test_given_aws_default_output_json_when_no_output_option_then_json_is_printed(
    ops: Org, monkeypatch: pytest.MonkeyPatch
):
    budgetctl("set", A, "1250.50")
    monkeypatch.setenv("AWS_DEFAULT_OUTPUT", "json")

    got = budgetctl("get", A)
    table = budgetctl("get", A, "--output", "table")  # the option still wins

    assert json.loads(got.stdout)["AccountId"] == A
    assert not table.stdout.lstrip().startswith("{")


def test_given_items_when_export_with_output_json_then_json_is_written(ops: Org):
    budgetctl("set", A, "1250.50")
    budgetctl("set", B, "2000")

    exported = budgetctl("export", "--output", "json")

    assert exported.code == ExitCode.OK, exported.stderr
    rows = {row["AccountId"]: row["BudgetValue"] for row in json.loads(exported.stdout)}
    assert (rows[A], rows[B]) == ("1250.5", "2000")


def test_given_a_query_when_get_then_the_jmespath_result_is_printed(ops: Org):
    budgetctl("set", A, "1250.50")

    got = budgetctl("get", A, "--query", "AccountId")

    assert got.code == ExitCode.OK, got.stderr
    assert json.loads(got.stdout) == A


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]):
    assert cli.main(["--version"]) == ExitCode.OK
    assert re.fullmatch(r"budgetctl \d+\.\d+\.\d+\S*\n", capsys.readouterr().out)


@pytest.mark.process
def test_given_the_readme_commands_when_budgetctl_is_typed_then_it_runs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    setup = next(line for line in readme.splitlines() if ". .venv/bin/activate" in line)
    command = setup.split("#", 1)[0].strip()
    path = ":".join(p for p in os.environ["PATH"].split(":") if ".venv" not in p)

    typed = subprocess.run(
        ["bash", "-c", f"{command} >/dev/null && budgetctl --version"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": path},
        check=False,
    )

    assert typed.returncode == 0, typed.stderr
    assert typed.stdout.splitlines()[-1].startswith("budgetctl ")


# --------------------------------------------------------------------------- import / export


def test_given_skip_invalid_when_rows_are_skipped_then_the_exit_code_is_problem_and_the_count_is_said(
    ops: Org, tmp_path: Path
):
    source = tmp_path / "b.csv"
    source.write_text(f"AccountId,BudgetValue\n{A},1500\nbad,1\n{B},1.234\n")

    result = budgetctl("import", str(source), "--skip-invalid")

    assert result.code == ExitCode.PROBLEM
    assert "2 bad row(s) skipped" in result.stderr
    assert item(ops, A)["BudgetValue"] == 1500  # type: ignore[index]


def test_given_an_account_twice_in_one_file_when_imported_then_the_last_row_wins_and_is_named(
    ops: Org, tmp_path: Path
):
    source = tmp_path / "b.csv"
    source.write_text(f"AccountId,BudgetValue\n{A},1500\n{B},2000\n{A},1750\n")

    result = budgetctl("import", str(source))

    assert result.code == ExitCode.OK, result.stderr
    assert f"b.csv:4: AccountId '{A}' appears again (line 2); the last row, line 4, is kept" in result.stderr
    assert item(ops, A)["BudgetValue"] == 1750  # type: ignore[index]


def test_given_an_item_that_breaks_the_contract_when_exported_then_export_says_what_will_not_import_back(
    ops: Org, tmp_path: Path
):
    ops.put(B, Decimal("12.345"))
    exported = tmp_path / "export.csv"

    result = budgetctl("export", "--file", str(exported))
    back = budgetctl("import", str(exported), "--skip-invalid")

    assert result.code == ExitCode.OK, result.stderr
    line = (
        exported.read_text().splitlines().index(next(x for x in exported.read_text().splitlines() if B in x))
    )
    assert f"will not import back: line {line + 1}: BudgetValue '12.345' has more than two decimals" in (
        result.stderr
    )
    assert "1 of 3 exported item(s) break the item contract" in result.stderr
    assert back.code == ExitCode.PROBLEM
    assert "0 to add, 0 to change, 2 unchanged, 1 bad row(s) skipped" in back.stderr
    assert item(ops, B)["BudgetValue"] == Decimal("12.345")  # left as it is


# --------------------------------------------------------------------------- status


def test_given_an_invalid_item_when_status_then_the_spoke_parameter_and_limit_it_still_holds_are_shown(
    ops: Org,
):
    ops.put(A, Decimal("12.345"))  # breaks the contract; the spoke keeps 1000

    result = budgetctl("status", "--account", A, "--output", "json")

    row = json.loads(result.stdout)[0]
    assert row["Drift"] == "INVALID_ITEM"
    assert "12.345" in row["Reason"]
    assert (row["Parameter"], row["BudgetLimit"]) == ("1000", "1000")
