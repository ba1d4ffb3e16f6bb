"""`make demo` as a user runs it: the whole pipeline, a table per account, and an exit
status that says whether the valid budgets arrived and the invalid one was refused.

The tests that read a normal demo's output share one run of it (``demo_run``,
tests/support/demo.py, also read by tests/e2e/test_demo_report.py); those that change what the
demo finds run it in-process."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from budget_sync_local import __main__ as cli
from budget_sync_local.organisation import AccountView, LocalOrganisation
from tests.support.demo import DemoRun

pytestmark = [pytest.mark.e2e, pytest.mark.aws, pytest.mark.process]


def test_given_nothing_when_the_demo_runs_then_it_shows_every_account_and_exits_0(demo_run: DemoRun):
    done = demo_run.done

    assert done.returncode == 0, done.stdout + done.stderr
    for shown in (
        "111111111111",
        "1250.5",
        "222222222222",
        "333333333333",
        "12.345",
        "FAILED",
        "decimals",  # the reason may wrap inside its table cell
        "444444444444",
        "PlannedBudgetLimits",  # the spoke's own reason, back in the management account
        "APPLIED",  # confirmed by the spokes
        "management result bus",
    ):
        assert shown in done.stdout
    assert "rule matched" in done.stdout
    assert (demo_run.folder / ".local-org" / "function.log").stat().st_size > 0
    # the optional incidents: opened, updated by the second threshold, resolved at the period's end
    for shown in (
        "INC0010001 opened",
        "INC0010001 updated (1 work note; urgency 2)",
        "INC0010001 state 6 (Resolved",
    ):
        assert shown in done.stdout


def _no_incidents(monkeypatch: pytest.MonkeyPatch) -> None:
    """The in-process tests below change what the demo finds in the budgets part: the
    incidents' organisation is left out (its part is shown and checked by the test above)."""
    monkeypatch.setattr(cli, "_incidents_demo", lambda console: [])


def test_given_a_valid_budget_that_does_not_arrive_then_the_demo_exits_1(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _no_incidents(monkeypatch)
    real_view = LocalOrganisation.view

    def lost_in_transit(self: LocalOrganisation, account: str) -> AccountView:
        view = real_view(self, account)
        if account == "222222222222":
            return dataclasses.replace(view, budget_limit=Decimal(1000))
        return view

    monkeypatch.setattr(LocalOrganisation, "view", lost_in_transit)

    assert cli.main(["demo"]) == 1
    assert "222222222222: 2000 did not arrive" in capsys.readouterr().out


def test_the_demo_shows_own_alerts_arriving_without_a_stack_update_and_ends_with_one_accounts_history(
    demo_run: DemoRun,
):
    assert demo_run.done.returncode == 0, demo_run.done.stdout + demo_run.done.stderr
    out = demo_run.done.stdout
    assert "alerts reconciled in" in out
    assert "ACTUAL > 50%,90%, FORECASTED > 100% → owner-222@example.com, team-222@example.com" in out
    assert "its spoke stack was not updated" in out
    # the last table: 333333333333's history, newest first, with who made each change
    history = out.split("budgetctl history 333333333333 (newest first)", 1)[1]
    for shown in (
        "repaired to 900 (reconciler repair)",
        "100 -> 900 (own item)",
        "none -> 100 (default of ou-",
        "12.345 -> removed (own item)",
        "none -> 12.345 (own item)",
        "BudgetSyncOperator/operator",
        "not recorded: written outside budgetctl",
    ):
        assert shown in history, shown


def test_given_own_alerts_that_do_not_arrive_then_the_demo_exits_1(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _no_incidents(monkeypatch)
    real_view = LocalOrganisation.view

    def alerts_lost(self: LocalOrganisation, account: str) -> AccountView:
        view = real_view(self, account)
        return dataclasses.replace(view, alerts=()) if account == "222222222222" else view

    monkeypatch.setattr(LocalOrganisation, "view", alerts_lost)

    assert cli.main(["demo"]) == 1
    assert "222222222222: its own alerts did not arrive" in capsys.readouterr().out


def test_the_demo_shows_one_account_whose_budget_excludes_credits(demo_run: DemoRun):
    assert demo_run.done.returncode == 0, demo_run.done.stdout + demo_run.done.stderr
    out = demo_run.done.stdout
    assert "cost basis as data: one account's budget without credits" in out
    assert "111111111111's budget now counts:" in out
    assert (
        """Metrics ['UnblendedCost'], FilterExpression {"Not": {"Dimensions": {"Key": "RECORD_TYPE", """
        """"Values": ["Credit"]}}}\n"""
    ) in out
    assert "111111111111's status: APPLIED" in out


def test_given_credits_that_are_not_excluded_then_the_demo_exits_1(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _no_incidents(monkeypatch)
    monkeypatch.setattr(
        cli, "cost_basis_line", lambda org, account: ("Metrics None, FilterExpression null", False)
    )

    assert cli.main(["demo"]) == 1
    assert "111111111111: credits were not excluded from its budget" in capsys.readouterr().out
