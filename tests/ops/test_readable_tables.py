"""Tables an operator reads in a terminal: on a 100-column terminal ``status``, ``default list``
and ``report`` fit, one line per account, no status word split; one item (``get``, ``set``)
a field per line when its columns do not fit; ``--wide`` shows every column;
JSON keeps every column whatever the table shows."""

from __future__ import annotations

import io
import itertools
import re
from decimal import Decimal

import pytest

from budget_sync_local.organisation import LocalOrganisation
from budgetctl.cli import main
from tests.support.operators import Run

pytestmark = [pytest.mark.e2e, pytest.mark.aws]

A, B, C = "111111111111", "222222222222", "333333333333"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
WORDS = ("APPLIED", "FAILED", "IN_SYNC", "BUDGET_DRIFT", "NOT_MANAGED", "WAITING", "OVER", "NO_DATA")


class Terminal(io.StringIO):
    """stdout as a terminal (rich sizes a table to it; COLUMNS gives the width)."""

    def isatty(self) -> bool:
        return True


def typed(*argv: str) -> Run:
    """``budgetctl ARGV...`` as typed in a terminal: stdout is a tty."""
    out, err = Terminal(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return Run(code, ANSI.sub("", out.getvalue()), err.getvalue())


def assert_fits(text: str, width: int, accounts: int) -> None:
    lines = text.splitlines()
    assert lines, "no table"
    too_long = [line for line in lines if len(line) > width]
    assert not too_long, "\n".join(too_long)
    for word in WORDS:  # a status word is whole, or absent: never APPLIE / D
        for cut in range(2, len(word) - 1):
            head, tail = word[:cut], word[cut:]
            for above, below in itertools.pairwise(lines):
                assert not (re.search(rf"\b{head}\s*│", above) and re.search(rf"│\s*{tail}\b", below)), (
                    f"{word} split:\n{above}\n{below}"
                )
    header = next(line for line in lines if line.startswith("┃"))
    assert "Reason" in header or "Reas…" in header, header  # a header is one line, never Reaso / n
    rows = [line for line in lines if re.match(r"│ \d{12} ", line)]
    assert len(rows) == accounts, text  # one line per account


def test_status_default_and_report_fit_100_columns_and_wide_shows_everything(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("COLUMNS", "100")
    with LocalOrganisation(accounts=(A, B, C)) as org:
        # budgetctl as the operators' role (the spoke read role trusts only it, as on AWS)
        for name, value in org.operator_credentials().items():
            monkeypatch.setenv(name, value)
        # GIVEN an organisation with applied, failed and drifted accounts, spend, alerts with
        # two recipients each, a long reason and an OU default
        org.put(A, Decimal("1000"))
        org.put(B, Decimal("12.345"))  # refused: a long reason
        org.put(C, Decimal("2000"), AlertEmails="owner@example.com,team@example.com", AlertThresholds="50,90")
        org.set_default("Sandbox", Decimal("100"))
        org.pipeline.run_until_idle()
        org.set_spend(A, Decimal("1100"), Decimal("14000"))

        # WHEN an operator runs status on a 100-column terminal
        status = typed("status", "--org")

        # THEN every line fits, no status word is split, each account is one line, with its name
        assert status.code == 1, status.stderr
        assert_fits(status.stdout, 100, accounts=len(org.accounts) + 1)  # and the management account
        assert "APPLIED" in status.stdout
        assert "FAILED" in status.stdout
        assert "AlertsSent" not in status.stdout
        assert "owner@example.com" not in status.stdout

        # AND --wide shows every column, the alerts as one line per account
        wide = typed("status", "--org", "--wide")
        header = " ".join(wide.stdout.split())
        for column in ("Source", "Parameter", "ActualSpend", "ForecastedSpend", "PercentOfLimit", "Alerts"):
            assert column in header, wide.stdout
        alert_line = next(line for line in wide.stdout.splitlines() if line.startswith(f"│ {C}"))
        assert "→ 2 recipient(s)" in alert_line, alert_line

        # AND JSON still has every column, the alerts whole
        monkeypatch.delenv("COLUMNS")
        rows = {r["AccountId"]: r for r in typed("status", "--output", "json").json()}
        assert rows[C]["SpokeAlerts"].count("owner@example.com") >= 1
        assert "Alerts" not in rows[C]
        monkeypatch.setenv("COLUMNS", "100")

        # AND default list and report fit the same terminal
        defaults = typed("default", "list")
        assert defaults.code == 0, defaults.stderr
        assert [len(line) for line in defaults.stdout.splitlines() if len(line) > 100] == []
        assert "Sandbox" in defaults.stdout
        assert len([line for line in defaults.stdout.splitlines() if "│ r-" in line or "│ ou-" in line]) == 1

        # AND one item (get, set), whose thirteen columns cannot stand side by side in 100
        # columns, is shown a field per line, every value whole
        for command in (("get", A), ("set", A, "1250.50", "--force")):
            one = typed(*command)
            assert one.code == 0, one.stderr
            assert [line for line in one.stdout.splitlines() if len(line) > 100] == [], one.stdout
            fields = {
                cells[0]: cells[1]
                for line in one.stdout.splitlines()
                if line.startswith("│") and len(cells := [c.strip() for c in line.strip("│").split("│")]) == 2
            }
            assert fields.get("AccountId") == A, one.stdout
            assert fields["BudgetValue"] == ("1000" if command[0] == "get" else "1250.5"), one.stdout
            if command[0] == "set":  # who wrote it, whole: the operators' role's session ARN
                assert fields["UpdatedBy"].startswith("arn:aws:sts::"), one.stdout
                assert fields["UpdatedBy"].endswith("/BudgetSyncOperator/operator"), one.stdout
            assert "IncidentCaller" in fields, one.stdout
        monkeypatch.setenv("COLUMNS", "300")  # a terminal wide enough: the item is one row, as before
        assert [line for line in typed("get", A).stdout.splitlines() if line.startswith(f"│ {A}")]
        monkeypatch.setenv("COLUMNS", "100")

        report = typed("report")
        assert_fits(report.stdout, 100, accounts=len(org.accounts) + 1)
        assert "OVER" in report.stdout
        assert "ActualSpend" not in report.stdout
        assert "ActualSpend" in " ".join(typed("report", "--wide").stdout.split())
