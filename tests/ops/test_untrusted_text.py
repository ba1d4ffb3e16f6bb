"""Text written by other accounts and other people is shown as text, never interpreted: not as
Rich markup in a table, not as a formula in a spreadsheet. And an unexpected error is one line
with its own exit code (the traceback only with --debug)."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path

import pytest

from budgetctl.errors import ExitCode
from tests.support.moto_org import PARAMETER, SPOKES, Org
from tests.support.operators import budgetctl

A, B, C = SPOKES
LINK = "[link=https://evil.example]x[/]"


def hand_written_parameter(org: Org, account: str, value: str) -> None:
    """What a spoke account's own administrator can do: replace the parameter, pattern and all."""
    ssm = org.spokes[account].client("ssm")
    ssm.delete_parameter(Name=PARAMETER)
    ssm.put_parameter(Name=PARAMETER, Value=value, Type="String")


def test_given_a_spoke_parameter_of_closing_markup_when_status_then_it_is_shown_as_typed(ops: Org):
    # GIVEN one spoke whose parameter holds "[/]" (Rich reads it as a closing tag) and another
    # whose parameter holds a Rich link
    hand_written_parameter(ops, A, "[/]")
    hand_written_parameter(ops, B, LINK)

    # WHEN an operator asks for the status of the whole organisation as a table
    result = budgetctl("status")

    # THEN every account is shown (no crash), each value exactly as it is stored, and the drift
    # is reported with exit code 1
    assert result.code == ExitCode.PROBLEM, result.stderr
    assert "Traceback" not in result.stderr
    assert "[/]" in result.stdout
    assert LINK in result.stdout  # the markup is printed, so no hidden link is made of it
    assert C in result.stdout


def test_given_markup_in_a_table_attribute_when_get_then_it_is_printed_not_interpreted(ops: Org):
    ops.put(A, Decimal("1000"), UpdatedBy="[bold red]admin[/]", UpdatedAt="[/]")

    result = budgetctl("get", A)

    assert result.code == ExitCode.OK, result.stderr
    assert "[bold red]admin[/]" in result.stdout
    assert "[/]" in result.stdout


@pytest.mark.parametrize("cell", ['=HYPERLINK("https://evil.example")', "+1+1", "-2+3", "@SUM(A1)"])
def test_given_a_formula_in_an_attribute_when_output_as_csv_then_the_cell_is_text(ops: Org, cell: str):
    # GIVEN an item whose UpdatedBy someone set to something a spreadsheet runs as a formula
    ops.put(A, Decimal("1000"), UpdatedBy=cell)

    # WHEN it is printed as CSV (get) and exported as CSV
    printed = budgetctl("get", A, "--output", "csv")
    exported = budgetctl("export")

    # THEN the cell starts with an apostrophe, and the amount (never negative) is untouched
    for result in (printed, exported):
        assert result.code == ExitCode.OK, result.stderr
        rows = list(csv.DictReader(io.StringIO(result.stdout)))
        row = next(r for r in rows if r["AccountId"] == A)
        assert row["UpdatedBy"] == "'" + cell
        assert row["BudgetValue"] == "1000"


def test_csv_cell_leaves_ordinary_text_alone_and_quotes_every_formula_start():
    from budgetctl.output import csv_cell

    assert (
        csv_cell("arn:aws:sts::123456789012:assumed-role/x/y") == "arn:aws:sts::123456789012:assumed-role/x/y"
    )
    assert csv_cell("1250.5") == "1250.5"
    assert csv_cell("'x") == "''x"  # an apostrophe of its own is doubled, so import restores it
    assert [csv_cell(s) for s in ("=1", "+1", "-1", "@1", "\t1", "\r1")] == [
        "'=1",
        "'+1",
        "'-1",
        "'@1",
        "'\t1",
        "'\r1",
    ]


def test_an_exported_file_with_a_neutralised_cell_imports_back_unchanged(ops: Org, tmp_path: Path):
    ops.put(A, Decimal("1000"), UpdatedBy="=cmd")
    path = tmp_path / "budgets.csv"
    assert budgetctl("export", "--file", str(path)).code == ExitCode.OK

    result = budgetctl("import", str(path))

    assert result.code == ExitCode.OK, result.stderr
    assert "0 to add, 0 to change" in result.stderr


def test_given_a_bug_when_a_command_runs_then_one_line_and_exit_5_and_the_traceback_only_with_debug(
    ops: Org, monkeypatch: pytest.MonkeyPatch
):
    # GIVEN a command that hits an unexpected error (a bug)
    def broken(_: object) -> object:
        raise RuntimeError("something broke\nsecond line")

    monkeypatch.setattr("budgetctl.commands.items.item_row", broken)

    # WHEN it runs without and with --debug
    plain = budgetctl("get", A)
    debug = budgetctl("get", A, "--debug")

    # THEN one clear line and the documented exit code; the traceback only with --debug
    assert plain.code == debug.code == ExitCode.INTERNAL == 5
    assert plain.stderr.strip().splitlines() == [
        "budgetctl: error: unexpected error: RuntimeError: something broke "
        "(run again with --debug for the traceback)"
    ]
    assert "Traceback" in debug.stderr
    assert "budgetctl: error: unexpected error: RuntimeError: something broke" in debug.stderr


@pytest.mark.parametrize(
    "emails", ["+ops@example.com", "-ops@example.com", "=ops@example.com", "'=x@example.com"]
)
def test_given_alert_emails_that_look_like_formulas_when_exported_and_imported_then_they_are_unchanged(
    ops: Org, tmp_path: Path, emails: str
):
    # GIVEN an account whose alert recipient starts with a formula character (a valid address)
    assert budgetctl("set", A, "1000", f"--alert-emails={emails}").code == ExitCode.OK
    path = tmp_path / "budgets.csv"

    # WHEN the table is exported (the cell guarded for spreadsheets) and imported back
    assert budgetctl("export", "--file", str(path)).code == ExitCode.OK
    assert f",'{emails}," in path.read_text()
    result = budgetctl("import", str(path))

    # THEN nothing changes: the guard is not taken for part of the address
    assert result.code == ExitCode.OK, result.stderr
    assert "0 to add, 0 to change" in result.stderr
    item = ops.management.resource("dynamodb").Table(ops.budgets_table).get_item(Key={"AccountId": A})["Item"]
    assert item["AlertEmails"] == emails


def test_csv_text_undoes_exactly_what_csv_cell_adds():
    from budgetctl.output import csv_cell, csv_text

    for text in ("=1", "+a@x.io", "-2", "@x", "'", "'=1", "''", "'plain", "plain", "", "1250.5"):
        assert csv_text(csv_cell(text)) == text
    assert csv_text("'plain") == "'plain"  # an apostrophe no export added is text


ESCAPES = "\x1b]8;;https://evil.example\x07click\x1b]8;;\x07\x1b[2J\u200b\u202e"


@pytest.mark.parametrize("fmt", ["table", "csv"])
def test_given_terminal_escape_sequences_in_a_spoke_parameter_when_status_then_they_are_shown_escaped(
    ops: Org, fmt: str
):
    # GIVEN a spoke administrator put a hyperlink, a clear-screen and invisible characters in the
    # parameter (Rich strips some control characters, not ESC), and someone did in UpdatedBy
    hand_written_parameter(ops, A, ESCAPES)
    ops.put(B, Decimal("1000"), UpdatedBy="admin\x1b[8m hidden")

    # WHEN an operator asks for the status and for B's item
    status = budgetctl("status", "--output", fmt)
    got = budgetctl("get", B, "--output", fmt)

    # THEN no control or format character reaches the terminal; each is shown as its escape
    for result in (status, got):
        assert not [c for c in result.stdout + result.stderr if not c.isprintable() and c not in "\n"]
    assert "\\x1b]8;;https://evil.example\\x07click" in status.stdout
    assert "\\u200b\\u202e" in status.stdout
    assert "admin\\x1b[8m hidden" in got.stdout
