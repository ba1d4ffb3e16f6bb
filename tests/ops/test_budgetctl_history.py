"""``budgetctl history`` as typed: one account newest first with revisions, the organisation
since a time, JSON, CSV and --query, a table that fits 100 columns, and options refused
before anything is read. The history table is the template's own (keys and index), on moto."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest

from budget_sync.history import NOT_RECORDED, HistoryRecord, Kind, Stream, record_key
from budget_sync.history_table import DynamoHistoryTable
from budgetctl.cli import main
from budgetctl.errors import ExitCode
from tests.support.moto_org import Org, create_table
from tests.support.operators import Run, budgetctl

pytestmark = [pytest.mark.aws]

A, B = "111111111111", "222222222222"
OU = "ou-ab12-cdefgh34"
ALICE = "arn:aws:sts::123456789012:assumed-role/FinanceOps/alice@example.com"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def at(days_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days_ago)).isoformat(timespec="seconds")


def record(subject: str, sequence: int, days_ago: float, kind: Kind, **fields: str) -> HistoryRecord:
    when = at(days_ago)
    return HistoryRecord(subject, record_key(when, Stream.STATUS, str(sequence)), when, kind, **fields)


@pytest.fixture
def history(org: Org) -> DynamoHistoryTable:
    table = create_table(org.management, "HistoryTable")["TableName"]
    store = DynamoHistoryTable(org.management.client("dynamodb"), table, 400)
    reason = (
        "the spoke confirmed a budget limit of 1200 for parameter version 3, but the desired value is 1300"
    )
    for item in (
        record(A, 1, 20, Kind.CHANGED, status="SENT", previous="", value="300", by="", via=OU),
        record(A, 2, 20, Kind.OUTCOME, status="APPLIED", value="300", by="budget-sync (spoke)", via="spoke"),
        record(A, 3, 3, Kind.CHANGED, status="SENT", previous="300", value="1200", by=ALICE, via="item"),
        record(
            A,
            4,
            2,
            Kind.CHANGED,
            status="FAILED",
            previous="1200",
            value="1300",
            by=ALICE,
            via="item",
            reason=reason,
        ),
        record(B, 5, 1, Kind.CHANGED, status="SENT", previous="10", value="20", by="", via="item"),
        record(OU, 6, 10, Kind.DEFAULT_SET, previous="", value="300", by=ALICE, via=OU),
    ):
        assert store.append(item)
    assert not store.append(item)  # the same source event again: nothing written
    return store


def test_history_of_an_account_is_newest_first_with_revisions_who_change_and_outcome(history):
    run = budgetctl("history", A, "--output", "json")
    assert run.code == 0, run.stderr
    rows = run.json()
    assert [(r["Revision"], r["Kind"], r["Change"]) for r in rows] == [
        (4, "CHANGED", "1200 -> 1300 (own item)"),
        (3, "CHANGED", "300 -> 1200 (own item)"),
        (2, "OUTCOME", ""),
        (1, "CHANGED", f"none -> 300 (default of {OU})"),
    ]
    assert rows[0]["By"] == ALICE
    assert rows[0]["Outcome"].startswith("FAILED: the spoke confirmed")
    assert rows[3]["By"] == NOT_RECORDED


def test_history_of_the_organisation_since_a_week_reads_every_subject_in_that_time(history):
    run = budgetctl("history", "--org", "--since", "7d", "--output", "json")
    assert run.code == 0, run.stderr
    assert [(r["Subject"], r["To"]) for r in run.json()] == [(B, "20"), (A, "1300"), (A, "1200")]
    month = budgetctl("history", "--org", "--since", "30d", "--query", "length(@)")
    assert month.stdout.strip() == "6"


def test_history_as_csv_and_as_a_table_on_a_100_column_terminal(history, monkeypatch):
    csv_run = budgetctl("history", A, "--output", "csv")
    assert csv_run.stdout.splitlines()[0].startswith("Revision,Subject,Time,Kind,Status,From,To,By")
    monkeypatch.setenv("COLUMNS", "100")
    out = Terminal()
    assert main(["history", A], stdout=out, stderr=io.StringIO()) == 0
    lines = re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue()).splitlines()
    assert [line for line in lines if len(line) > 100] == []
    assert any("FinanceOps/alice" in line for line in lines)  # the principal's short form
    assert sum(1 for line in lines if line.startswith("│ ")) == 4  # one line per record


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["history"], "either ACCOUNT or --org"),
        (["history", A, "--org"], "either ACCOUNT or --org"),
        (["history", "12345"], "'12345'"),
        (["history", "--org", "--since", "a week"], "--since 'a week'"),
        (["history", "--org", "--since", "2999-01-01"], "--since '2999-01-01'"),
        (["history", A, "--history-table", "x"], "--history-table 'x'"),
        (["history", A, "--query", "[?"], "--query"),
    ],
)
def test_history_options_are_refused_before_anything_is_read(argv: list[str], named: str):
    with mock.patch("boto3.Session", side_effect=AssertionError("read")):
        run: Run = budgetctl(*argv)
    assert run.code == 2, run.stderr
    assert named in run.stderr


def test_history_of_an_account_without_records_says_so(history):
    run = budgetctl("history", "333333333333")
    assert run.code == 1
    assert "no history for 333333333333" in run.stderr


def test_report_has_the_changes_this_period_each_with_its_outcome(history, tmp_path):
    # GIVEN the history above (A changed 3 and 2 days ago, B yesterday, A's default 20 days ago)
    page = tmp_path / "report.html"
    run = budgetctl("report", "--file", str(page))
    assert run.code in (ExitCode.OK, ExitCode.PROBLEM), run.stderr
    html = page.read_text()
    section = html.split('<section id="changes">', 1)[1].split("</section>", 1)[0]
    rows = re.findall(r'<tr data-subject="(\d+|ou-[^"]+)" data-kind="(\w+)">', section)
    this_month = datetime.now(UTC).day  # days since the first of the month, UTC
    expected = [(B, "CHANGED")] * (this_month > 1) + [(A, "CHANGED")] * ((this_month > 2) + (this_month > 3))
    assert rows == expected
    if this_month > 3:
        assert "300 -&gt; 1200 (own item)" in section
        assert "FinanceOps/alice" in section
    assert "change(s) this period" in run.stderr


def test_report_without_a_history_table_says_why_and_shows_the_rest(org: Org, tmp_path):
    page = tmp_path / "report.html"
    run = budgetctl("report", "--file", str(page), "--history-table", "NoSuchTable")
    assert run.code in (ExitCode.OK, ExitCode.PROBLEM), run.stderr
    assert "Changes this period are not shown: the history table could not be read" in run.stderr
    assert '<section id="changes">' not in page.read_text()
