"""Every decision of the reconciler (budget_sync.reconcile), with the in-memory fakes of tests/fakes:
drift classification, repair paths, status updates, conditional-write losses, the operator's
write during a repair, and the errors that retry versus fail. No AWS: the adapters and the
whole are proved on moto (tests/ops/test_reconcile.py) and on the local organisation
(tests/e2e/test_closed_loop.py)."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from budget_sync.alerts import AlertSettings, expected_notifications, notification_key, subscriber
from budget_sync.config import ReconcilerSettings
from budget_sync.errors import ConfigError, ParameterRejected, TransientError
from budget_sync.reconcile import (
    PLANNED,
    REPAIRABLE,
    SOURCE,
    AccountReport,
    Action,
    DesiredItem,
    Drift,
    Reconciler,
    Summary,
    classify,
    desired_item,
    did_not_hold,
    status_update,
)
from budget_sync.spoke import AlertReading, BudgetReading, ParameterReading
from budget_sync.status import Status, StatusUpdate
from tests.fakes import FakeBudgetsTable, FakeSpoke, FakeSpokeAccounts, FakeStatusWriter, usd

A, B, C = "111111111111", "222222222222", "333333333333"
NO_STACK = "444444444444"


def item(account: str = A, value: int | str = 1000, alerts: AlertSettings | None = None) -> DesiredItem:
    return DesiredItem(account, Decimal(value), alerts=alerts or AlertSettings())


class World:
    """Spokes A, B, C in sync at 1000 (parameter version 1), the table saying 1000 for each."""

    def __init__(self, *accounts: str) -> None:
        self.spokes = FakeSpokeAccounts()
        for account in accounts or (A, B, C):
            self.spokes.add(account)
        self.table = FakeBudgetsTable(item(a) for a in accounts or (A, B, C))
        self.status = FakeStatusWriter()

    def reconciler(self, **options: object) -> Reconciler:
        return Reconciler(self.spokes, self.status, desired=self.table, **options)  # type: ignore[arg-type]

    def run(
        self, statuses: dict[str, dict[str, object]] | None = None, *, apply: bool = True, **options: object
    ) -> tuple[dict[str, AccountReport], Summary]:
        summary = self.reconciler(**options).run(self.table.items(), statuses, apply=apply)
        return {r.account_id: r for r in summary.reports}, summary

    def last(self, account: str) -> dict[str, object]:
        """The status row as the next run reads it (the fields the reconciler looks at)."""
        update = self.status.rows[account]
        return {
            "Status": update.status,
            "Reason": update.reason,
            "DesiredValue": update.desired,
            "ParameterVersion": update.parameter_version,
            "RepairedVersion": update.parameter_version if update.repaired else None,
            "Source": update.source,
            "SequenceNumber": update.sequence_number,
        }


# -- classification ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parameter", "budget", "expected", "reason"),
    [
        (ParameterReading("1000", 3), usd(1000), Drift.IN_SYNC, ""),
        (ParameterReading("1000.00", 3), usd("1000.0"), Drift.IN_SYNC, ""),
        (
            ParameterReading("900", 3),
            usd(1000),
            Drift.PARAMETER_DRIFT,
            "parameter '900' differs from desired 1000",
        ),
        (ParameterReading("x", 3), usd(1000), Drift.PARAMETER_DRIFT, "parameter 'x' differs"),
        (ParameterReading(None, None), usd(1000), Drift.MISSING_PARAMETER, "parameter missing; desired 1000"),
        (ParameterReading("1000", 3), None, Drift.MISSING_BUDGET, "budget missing; desired 1000"),
        (
            ParameterReading("1000", 3),
            usd(1500),
            Drift.BUDGET_DRIFT,
            "budget limit 1500 differs from desired 1000",
        ),
        (
            ParameterReading("1000", 3),
            BudgetReading(None, "GBP", None, None),
            Drift.BUDGET_DRIFT,
            "unit 'GBP'",
        ),
        (
            ParameterReading("1000", 3),
            BudgetReading(None, "USD", None, None, planned=True),
            Drift.BUDGET_DRIFT,
            PLANNED,
        ),
        # the parameter is compared first: a wrong parameter hides a wrong budget
        (ParameterReading("900", 3), None, Drift.PARAMETER_DRIFT, "parameter '900'"),
    ],
)
def test_classify_compares_the_parameter_first_then_the_budget(
    parameter: ParameterReading, budget: BudgetReading | None, expected: Drift, reason: str
):
    drift, why = classify(Decimal(1000), parameter, budget)
    assert drift is expected
    assert reason in why
    assert (why == "") == (expected is Drift.IN_SYNC)


def test_desired_item_validates_the_item_contract_and_names_the_field_and_value():
    assert desired_item(
        {"AccountId": A, "BudgetValue": Decimal("1250.50"), "UpdatedBy": "me"}
    ) == DesiredItem(A, Decimal("1250.50"), updated_by="me")
    bad = desired_item({"AccountId": A, "BudgetValue": Decimal(-5)})
    assert bad.value is None
    assert "BudgetValue" in bad.error
    assert "-5" in bad.error
    no_key = desired_item({"AccountId": "12", "BudgetValue": Decimal(5)})
    assert (no_key.account_id, no_key.value) == ("12", None)
    assert "AccountId" in no_key.error
    bad_alerts = desired_item({"AccountId": A, "BudgetValue": Decimal(5), "AlertEmails": "not-an-address"})
    assert bad_alerts.value is None
    assert "AlertEmails" in bad_alerts.error


# -- inspecting ------------------------------------------------------------------------------


def test_given_accounts_in_sync_when_inspecting_then_nothing_is_written_and_every_account_is_in_sync():
    world = World()
    seen: list[str] = []
    summary = world.reconciler().run(world.table.items(), on_account=lambda r: seen.append(r.account_id))
    assert [r.drift for r in summary.reports] == [Drift.IN_SYNC] * 3
    assert [r.account_id for r in summary.reports] == [A, B, C]  # the items' order
    assert sorted(seen) == [A, B, C]
    assert (summary.drifted, summary.repaired, summary.failed) == (0, 0, 0)
    assert world.spokes.writes == world.spokes.alert_writes == []
    assert world.status.batches == []  # without apply, no status is written
    assert world.table.reads == []  # nor is the table read again


def test_given_drift_when_only_inspecting_then_it_is_reported_and_nothing_is_written():
    world = World()
    world.spokes.spokes[A].budget = usd(1500)
    reports, summary = world.run(apply=False)
    assert reports[A].drift is Drift.BUDGET_DRIFT
    assert reports[A].action is Action.NONE
    assert not reports[A].ok
    assert summary.counts == {"IN_SYNC": 2, "BUDGET_DRIFT": 1}
    assert summary.drifted == 1
    assert world.spokes.writes == []
    assert world.status.batches == []


def test_an_empty_table_is_an_empty_summary():
    world = World()
    summary = world.reconciler().run([], apply=True)
    assert summary.reports == []
    assert world.status.batches == []


def test_apply_needs_a_status_store_and_the_budgets_table():
    world = World()
    with pytest.raises(ValueError, match="status store"):
        Reconciler(world.spokes, None, desired=world.table).run(world.table.items(), apply=True)
    with pytest.raises(ValueError, match="budgets table"):
        Reconciler(world.spokes, world.status).run(world.table.items(), apply=True)


def test_the_spoke_budget_is_read_under_the_configured_name():
    world = World()
    world.reconciler(budget_name="TeamBudget").run(world.table.items())
    assert world.spokes.budget_names == {"TeamBudget"}


def test_spend_and_percent_of_limit_come_from_the_budget():
    world = World(A)
    world.spokes.spokes[A].budget = usd(1000, actual="812.40", forecasted="1105")
    reports, _ = world.run(apply=False)
    assert reports[A].budget_limit == Decimal(1000)
    assert reports[A].percent_of_limit == Decimal("81.2")
    assert AccountReport(A, Drift.IN_SYNC).percent_of_limit is None


# -- repairing the limit ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spoke", "drift"),
    [
        (FakeSpoke(parameter="900"), Drift.PARAMETER_DRIFT),
        (FakeSpoke(parameter=None), Drift.MISSING_PARAMETER),
        (FakeSpoke(budget=usd(1500)), Drift.BUDGET_DRIFT),
        (FakeSpoke(budget=None), Drift.MISSING_BUDGET),
    ],
)
def test_given_a_limit_drift_when_applying_then_the_desired_value_is_written_again_and_sent(
    spoke: FakeSpoke, drift: Drift
):
    world = World()
    world.spokes.add(A, spoke)
    version = spoke.version

    reports, summary = world.run()

    report = reports[A]
    assert (report.drift, report.action) == (drift, Action.REPAIRED)
    assert report.ok
    assert world.spokes.writes == [(A, "1000")]  # accounts in sync are not written
    assert report.new_version == version + 1
    assert (summary.drifted, summary.repaired, summary.failed) == (1, 1, 0)
    sent = world.status.rows[A]
    assert (sent.status, sent.source, sent.desired, sent.applied) == (Status.SENT, SOURCE, 1000, 1000)
    assert (sent.parameter_version, sent.repaired) == (version + 1, True)
    assert sent.reason == f"repaired by the reconciler: {report.reason}"
    assert world.table.reads == [A, A]  # read again before the write and after it


def test_given_a_write_that_creates_no_new_version_then_the_repair_is_failed():
    world = World(A)
    world.spokes.add(A, FakeSpoke(budget=usd(1500), version=7, same_version=True))
    reports, summary = world.run()
    assert reports[A].action is Action.FAILED
    assert "the parameter kept version 7, so no change event was sent" in reports[A].reason
    assert reports[A].new_version == 7
    assert summary.failed == 1
    assert world.status.rows[A].status is Status.FAILED


def test_a_status_in_sync_is_written_once_as_applied_and_then_left_alone():
    world = World(B)
    world.run()
    first = world.status.rows[B]
    assert (first.status, first.source, first.desired) == (Status.APPLIED, SOURCE, 1000)
    assert first.reason == "in sync: limit and alerts (checked by the reconciler)"
    assert first.parameter_version == 1
    world.run({B: world.last(B)})
    assert len(world.status.batches) == 1  # the second run had nothing to write


def test_an_operators_request_is_recorded_on_every_status_it_writes():
    world = World()
    world.spokes.spokes[A].parameter = "5"
    who = "arn:aws:sts::123456789012:assumed-role/Ops/alice"
    world.run(requested_by=who)
    assert {u.requested_by for u in world.status.rows.values()} == {who}


def test_accounts_are_inspected_concurrently_up_to_the_limit():
    world = World()
    gate = threading.Barrier(3, timeout=5)
    read = world.spokes.read_parameter

    def together(account_id: str) -> ParameterReading:
        gate.wait()  # passes only when three accounts are read at once
        return read(account_id)

    world.spokes.read_parameter = together  # type: ignore[method-assign]
    reports, _ = world.run(apply=False, max_concurrency=3)
    assert {r.drift for r in reports.values()} == {Drift.IN_SYNC}


# -- a repair that did not hold -------------------------------------------------------------


def test_given_the_spoke_failed_this_value_and_version_then_it_is_not_repaired_again():
    world = World(A)
    world.spokes.spokes[A].budget = usd(1500)
    last = {
        "Status": Status.FAILED,
        "DesiredValue": Decimal(1000),
        "ParameterVersion": 1,
        "Source": "spoke",
        "Reason": "spoke: the limit was refused",
    }
    reports, summary = world.run({A: last})
    assert reports[A].action is Action.FAILED
    assert reports[A].reason.endswith("not repaired again: spoke: the limit was refused")
    assert world.spokes.writes == []
    assert summary.failed == 1
    assert world.status.batches == []  # already FAILED for this value and version: not rewritten


def test_given_a_planned_budget_the_spoke_refused_then_the_reason_is_said_once():
    world = World(A)
    world.spokes.spokes[A].budget = BudgetReading(None, "USD", None, None, planned=True)
    last = {
        "Status": Status.FAILED,
        "DesiredValue": Decimal(1000),
        "ParameterVersion": 1,
        "Source": "timeout",
    }
    reports, _ = world.run({A: last})
    assert (
        reports[A].reason
        == f"{PLANNED}; not repaired again (the spoke refused the last repair for this reason)"
    )
    assert world.spokes.writes == []


@pytest.mark.parametrize(
    "change",
    [
        {"DesiredValue": Decimal(2000)},  # the table asked for another value since
        {"ParameterVersion": 2},  # the parameter was written since
        {"Source": "stream"},  # not the spoke's failure
        {"Status": Status.APPLIED},
    ],
)
def test_a_new_value_or_another_write_starts_afresh(change: dict[str, object]):
    world = World(A)
    world.spokes.spokes[A].budget = usd(1500)
    last = {"Status": Status.FAILED, "DesiredValue": Decimal(1000), "ParameterVersion": 1, "Source": "spoke"}
    reports, _ = world.run({A: {**last, **change}})
    assert reports[A].action is Action.REPAIRED


def test_given_the_drift_is_back_under_the_version_the_last_repair_wrote_then_the_account_fails():
    world = World(A)
    world.spokes.spokes[A].budget = usd(1500)
    world.run()  # repaired: parameter version 2, SENT
    world.spokes.spokes[A].budget = usd(1500)  # the Automation set it; someone edited it back
    applied = {**world.last(A), "Status": Status.APPLIED, "UpdatedAt": "2026-01-01T00:00:00+00:00"}

    reports, _ = world.run({A: applied})

    assert reports[A].action is Action.FAILED
    assert "the repair of 2026-01-01T00:00:00+00:00 (parameter version 2) did not hold" in reports[A].reason
    assert world.spokes.writes == [(A, "1000")]  # the first repair only
    failed = world.status.rows[A]
    assert (failed.status, failed.reason) == (Status.FAILED, reports[A].reason)


def test_while_the_last_repair_is_still_sent_the_drift_is_repaired_again():
    world = World(A)
    world.spokes.spokes[A].budget = usd(1500)
    world.run()
    reports, _ = world.run({A: world.last(A)})  # SENT, RepairedVersion 2
    assert reports[A].action is Action.REPAIRED


@pytest.mark.parametrize(
    ("last", "held"),
    [
        # the repair was confirmed and nothing newer was sent: the drift is back, it did not hold
        ({"Status": Status.APPLIED, "RepairedAlertsVersion": 3, "SentAlertsVersion": 3}, False),
        ({"Status": Status.FAILED, "RepairedAlertsVersion": 3, "SentAlertsVersion": 3}, False),
        # still waiting for the spoke's report of the repair
        ({"Status": Status.SENT, "RepairedAlertsVersion": 3, "SentAlertsVersion": 3}, True),
        # newer alert settings were sent since (the operator's): a fresh start
        ({"Status": Status.APPLIED, "RepairedAlertsVersion": 3, "SentAlertsVersion": 4}, True),
        # never repaired by the reconciler
        ({"Status": Status.APPLIED, "SentAlertsVersion": 3}, True),
    ],
)
def test_an_alert_repair_that_did_not_hold_is_not_repeated(last: dict[str, object], held: bool):
    report = AccountReport(
        A, Drift.ALERT_DRIFT, desired=Decimal(1000), parameter_version=4, reason="ACTUAL>80% subscribers"
    )
    reason = did_not_hold(report, {**last, "DesiredValue": Decimal(1000), "UpdatedAt": "T"})
    assert (reason == "") is held
    if not held:
        assert reason.endswith("the alert repair of T (alert parameter version 3) did not hold")


def test_did_not_hold_needs_a_status_and_a_parameter_version():
    report = AccountReport(A, Drift.MISSING_PARAMETER, desired=Decimal(1000), reason="parameter missing")
    assert (
        did_not_hold(report, {"Status": Status.FAILED, "Source": "spoke", "DesiredValue": Decimal(1000)})
        == ""
    )
    assert did_not_hold(AccountReport(A, Drift.BUDGET_DRIFT, parameter_version=1), None) == ""


# -- the desired value changes during the run -----------------------------------------------


def test_given_the_desired_value_changed_before_the_repair_then_nothing_is_written_and_it_is_skipped():
    world = World(A)
    world.spokes.spokes[A].parameter = "900"
    items = world.table.items()
    world.table.put(item(A, 2000))  # an operator's write after the scan

    summary = world.reconciler().run(items, apply=True)

    (report,) = summary.reports
    assert report.action is Action.SKIPPED
    assert report.ok
    assert "the desired value changed to 2000 during the run: not repaired" in report.reason
    assert world.spokes.writes == []
    assert world.status.batches == []  # the stream function records the newer value
    assert summary.failed == 0


def test_given_the_item_was_deleted_before_the_repair_then_it_is_skipped():
    world = World(A)
    world.spokes.spokes[A].parameter = "900"
    items = world.table.items()
    world.table.delete(A)
    (report,) = world.reconciler().run(items, apply=True).reports
    assert report.action is Action.SKIPPED
    assert "changed to no valid item during the run" in report.reason
    assert world.spokes.writes == []


def test_given_an_operators_write_between_the_reread_and_the_write_then_the_newer_value_is_written_last():
    world = World(A)
    world.spokes.spokes[A].parameter = "900"
    world.table.script(A, item(A, 1000), item(A, 2000))  # the second read sees the operator's 2000

    reports, _ = world.run()

    assert world.spokes.writes == [(A, "1000"), (A, "2000")]
    assert world.spokes.spokes[A].parameter == "2000"
    assert reports[A].action is Action.SKIPPED
    assert "the desired value changed to 2000 during the repair: the newer value stands" in reports[A].reason
    assert reports[A].new_version == 3
    assert world.status.batches == []


def test_given_the_item_deleted_after_the_write_then_the_repair_is_skipped_and_not_rewritten():
    world = World(A)
    world.spokes.spokes[A].parameter = "900"
    world.table.script(A, item(A, 1000), None)
    reports, _ = world.run()
    assert world.spokes.writes == [(A, "1000")]
    assert reports[A].action is Action.SKIPPED
    assert "changed to no valid item during the repair" in reports[A].reason


def test_a_value_that_keeps_changing_is_rewritten_a_bounded_number_of_times():
    world = World(A)
    world.spokes.spokes[A].parameter = "900"
    world.table.script(A, *(item(A, v) for v in (1000, 2000, 3000, 4000, 5000, 6000)))
    reports, _ = world.run()
    assert world.spokes.writes == [(A, "1000"), (A, "2000"), (A, "3000"), (A, "4000")]
    assert reports[A].action is Action.SKIPPED
    assert "changed to 4000 during the repair" in reports[A].reason


# -- errors: retry next run, or FAILED ------------------------------------------------------


def test_given_no_spoke_stack_then_the_account_is_unreachable_failed_once():
    world = World(A)
    world.table.put(item(NO_STACK, 10))

    reports, summary = world.run()

    report = reports[NO_STACK]
    assert report.drift is Drift.UNREACHABLE
    assert "cannot assume" in report.reason
    assert summary.failed == 1
    failed = world.status.rows[NO_STACK]
    assert (failed.status, failed.source, failed.reason) == (Status.FAILED, SOURCE, report.reason)
    batches = len(world.status.batches)
    world.run({NO_STACK: world.last(NO_STACK), A: world.last(A)})
    assert len(world.status.batches) == batches  # the same failure is not written again


@pytest.mark.parametrize("operation", ["read_parameter", "read_budget", "read_alert_state"])
def test_a_transient_spoke_read_error_is_tried_again_next_run_without_a_failed_status(operation: str):
    world = World()
    world.spokes.fail(A, operation, TransientError("throttled"))
    reports, summary = world.run()
    assert reports[A].drift is Drift.UNREACHABLE
    assert (reports[A].reason, reports[A].retryable) == ("throttled", True)
    assert summary.failed == 1
    assert A not in world.status.rows
    assert {B, C} <= set(world.status.rows)  # the others are recorded


def test_a_bug_reading_one_spoke_does_not_hide_the_others():
    world = World()
    world.spokes.fail(B, "read_budget", KeyError("Budget"))
    world.spokes.fail(C, "read_alert_state", KeyError("Notifications"))
    reports, _ = world.run(apply=False)
    assert reports[A].drift is Drift.IN_SYNC
    assert reports[B].drift is reports[C].drift is Drift.UNREACHABLE
    assert reports[B].reason == "unexpected error: KeyError('Budget')"
    assert reports[C].parameter == "1000"  # what was read before the failure is kept


@pytest.mark.parametrize(
    ("error", "retryable", "status"),
    [(TransientError("throttled"), True, None), (ParameterRejected("value refused"), False, Status.FAILED)],
)
def test_a_failed_repair_write_is_failed_and_only_a_permanent_one_is_recorded(
    error: Exception, retryable: bool, status: Status | None
):
    world = World(A)
    world.spokes.spokes[A].parameter = "900"
    world.spokes.fail(A, "put_budget_value", error)
    reports, summary = world.run()
    assert reports[A].action is Action.FAILED
    assert reports[A].reason.endswith(f"; repair failed: {error}")
    assert reports[A].retryable is retryable
    assert summary.failed == 1
    assert (world.status.rows[A].status if A in world.status.rows else None) == status


def test_an_unreadable_budgets_table_before_the_repair_fails_this_run_only():
    world = World(A)
    world.spokes.spokes[A].parameter = "900"
    world.table.failures[A] = TransientError("table throttled")
    reports, _ = world.run()
    assert reports[A].action is Action.FAILED
    assert reports[A].reason.endswith("; desired value unreadable: table throttled")
    assert reports[A].retryable
    assert world.spokes.writes == []
    assert world.status.batches == []


def test_an_unreadable_budgets_table_after_the_write_keeps_the_version_written():
    world = World(A)
    world.spokes.spokes[A].parameter = "900"
    table = world.table
    read = table.read_item

    def second_read_fails(account_id: str) -> DesiredItem | None:
        if table.reads.count(account_id) == 1:
            table.reads.append(account_id)
            raise TransientError("table throttled")
        return read(account_id)

    table.read_item = second_read_fails  # type: ignore[method-assign]
    reports, _ = world.run()
    assert world.spokes.writes == [(A, "1000")]
    assert reports[A].action is Action.FAILED
    assert reports[A].reason.endswith("; desired value unreadable after the repair: table throttled")
    assert (reports[A].retryable, reports[A].new_version) == (True, 2)
    assert world.status.batches == []


def test_a_failed_write_of_the_newer_value_is_failed_with_that_value():
    world = World(A)
    world.spokes.spokes[A].parameter = "900"
    world.table.script(A, item(A, 1000), item(A, 2000))
    put = world.spokes.put_budget_value

    def only_once(account_id: str, amount_text: str) -> int:
        if world.spokes.writes:
            raise ParameterRejected("refused")
        return put(account_id, amount_text)

    world.spokes.put_budget_value = only_once  # type: ignore[method-assign]
    reports, _ = world.run()
    assert reports[A].action is Action.FAILED
    assert reports[A].reason.endswith("; newer value 2000 not written after the repair: refused")
    assert not reports[A].retryable


# -- invalid items and accounts the resolver skipped ----------------------------------------


def test_an_invalid_item_is_shown_with_the_spokes_last_good_value_and_nothing_is_applied():
    world = World(A)
    invalid = DesiredItem(A, None, "BudgetValue -5 must be positive")
    summary = world.reconciler().run([invalid], apply=True)
    (report,) = summary.reports
    assert (report.drift, report.reason, report.parameter, report.parameter_version) == (
        Drift.INVALID_ITEM,
        "BudgetValue -5 must be positive",
        "1000",
        1,
    )
    assert report.budget_limit == Decimal(1000)
    assert summary.failed == 1
    assert world.spokes.writes == []
    assert world.status.batches == []  # the stream function recorded the invalid item


def test_an_invalid_item_whose_key_is_no_account_or_whose_spoke_fails_is_still_reported():
    world = World(A)
    world.spokes.fail(A, "read_parameter", KeyError("boom"))
    reports = (
        world.reconciler()
        .run([DesiredItem("12", None, "AccountId '12' ..."), DesiredItem(A, None, "bad")])
        .reports
    )
    assert [(r.drift, r.parameter) for r in reports] == [
        (Drift.INVALID_ITEM, None),
        (Drift.INVALID_ITEM, None),
    ]
    assert world.spokes.calls == [("read_parameter", A)]  # '12' is not an account: its spoke is not read


def test_an_account_the_resolver_skipped_is_not_read_repaired_or_failed_again():
    world = World(A)
    world.table.put(item(NO_STACK, 10))
    skipped = {"Status": Status.SKIPPED, "Reason": "account is SUSPENDED", "Source": "resolver"}
    for _ in range(2):
        reports, summary = world.run({NO_STACK: skipped})
        assert reports[NO_STACK].drift is Drift.UNREACHABLE
        assert reports[NO_STACK].reason == "not managed (status SKIPPED): account is SUSPENDED"
        assert summary.failed == 0
        assert NO_STACK not in world.status.rows
    assert ("read_parameter", NO_STACK) not in world.spokes.calls


# -- alerts ---------------------------------------------------------------------------------

ALERTS = AlertSettings(emails=("team@example.com",), actual=(Decimal(80),), forecasted="none")


def notifications(settings: AlertSettings) -> AlertReading:
    """The budget's notifications as the spoke's Automation leaves them for ``settings``."""
    return AlertReading({}, expected_notifications(settings, {}))


def test_given_the_budgets_notifications_are_the_items_then_the_account_is_in_sync():
    world = World(A)
    world.table.put(item(A, alerts=ALERTS))
    world.spokes.spokes[A].alerts = notifications(ALERTS)
    reports, _ = world.run(apply=False)
    assert reports[A].drift is Drift.IN_SYNC
    assert reports[A].alerts == ALERTS


def test_given_other_notifications_then_alert_drift_is_repaired_by_sending_the_items_settings():
    world = World(A)
    world.table.put(item(A, alerts=ALERTS))
    key = notification_key("ACTUAL", "GREATER_THAN", "PERCENTAGE", Decimal(50))
    world.spokes.spokes[A].alerts = AlertReading({}, {key: frozenset({subscriber("EMAIL", "x@example.com")})})

    reports, summary = world.run()

    assert reports[A].drift is Drift.ALERT_DRIFT
    assert "alerts differ from the item's settings over the stack's defaults" in reports[A].reason
    assert reports[A].action is Action.REPAIRED
    assert world.spokes.alert_writes == [(A, ALERTS.to_parameter())]
    assert world.spokes.writes == []  # an alert drift does not write the limit
    assert summary.drifted == 1
    sent = world.status.rows[A]
    assert (sent.status, sent.alerts, sent.alerts_version, sent.parameter_version, sent.repaired) == (
        Status.SENT,
        ALERTS.to_parameter(),
        1,
        None,
        True,  # RepairedAlertsVersion: a repair that does not hold is not repeated
    )


def test_invalid_stack_alert_defaults_are_an_alert_drift_naming_them():
    world = World(A)
    world.spokes.spokes[A].alerts = AlertReading({"actual": "lots"}, {})
    reports, _ = world.run(apply=False)
    assert reports[A].drift is Drift.ALERT_DRIFT
    assert "the spoke stack's alert defaults are invalid" in reports[A].reason


def test_a_budget_deleted_between_the_limit_and_the_alert_reads_is_missing():
    world = World(A)
    world.spokes.read_alert_state = lambda account, name="SpokeAccountBudget": None  # type: ignore[method-assign]
    reports, _ = world.run(apply=False)
    assert reports[A].drift is Drift.MISSING_BUDGET
    assert reports[A].reason == "budget missing"


def test_an_alert_repair_write_that_fails_is_failed_with_its_retry_semantics():
    world = World(A)
    world.table.put(item(A, alerts=ALERTS))
    world.spokes.fail(A, "put_alert_settings", TransientError("throttled"))
    reports, _ = world.run()
    assert reports[A].drift is Drift.ALERT_DRIFT
    assert (reports[A].action, reports[A].retryable) == (Action.FAILED, True)
    assert reports[A].reason.endswith("; repair failed: throttled")
    assert A not in world.status.rows


def test_an_unreadable_table_during_an_alert_repair_fails_this_run_only():
    world = World(A)
    world.table.put(item(A, alerts=ALERTS))
    world.table.failures[A] = TransientError("table throttled")
    reports, _ = world.run()
    assert reports[A].action is Action.FAILED
    assert reports[A].reason.endswith("; alert settings unreadable: table throttled")
    assert reports[A].retryable
    assert world.spokes.alert_writes == []


def test_an_item_gone_or_made_invalid_before_the_alert_repair_is_skipped():
    world = World(A)
    items = [item(A, alerts=ALERTS)]
    world.table.put(DesiredItem(A, None, "bad"))
    (report,) = world.reconciler().run(items, apply=True).reports
    assert report.action is Action.SKIPPED
    assert "the item changed during the run: alerts not repaired" in report.reason
    assert world.spokes.alert_writes == []


# -- the status table: what is written, and conditional-write losses ------------------------


def test_a_newer_status_written_meanwhile_wins_over_the_reconcilers():
    # GIVEN the reconciler read the status (sequence 100) before the stream wrote a newer one (200)
    world = World(A)
    world.spokes.spokes[A].budget = usd(1200)
    read = {"Status": Status.APPLIED, "DesiredValue": Decimal(1000), "SequenceNumber": "100"}
    world.status.newer(StatusUpdate(A, Status.APPLIED, "200", Decimal(1000), Decimal(1000), reason="stream"))

    # WHEN the reconciler records its repair
    world.run({A: read})

    # THEN its update carried the sequence it read and lost the condition: the stream's stands
    (lost,) = world.status.refused
    assert (lost.sequence_number, lost.status) == ("100", Status.SENT)
    assert world.status.rows[A].reason == "stream"


def test_a_status_that_cannot_be_written_is_left_for_the_next_run_and_the_others_are_written():
    world = World()
    world.status.failures = {A}
    reports, _ = world.run()
    assert set(world.status.rows) == {B, C}
    assert {r.drift for r in reports.values()} == {Drift.IN_SYNC}


@pytest.mark.parametrize(
    ("last", "writes"),
    [
        ({}, Status.APPLIED),
        ({"Status": Status.APPLIED, "DesiredValue": Decimal(1000)}, None),
        ({"Status": Status.APPLIED, "DesiredValue": Decimal(900)}, Status.APPLIED),
        ({"Status": Status.SENT, "DesiredValue": Decimal(1000)}, None),  # waits for the spoke's report
        ({"Status": Status.FAILED, "DesiredValue": Decimal(1000), "Reason": "timeout"}, Status.APPLIED),
        ({"Status": Status.SKIPPED}, None),
        ({"Status": Status.FAILED, "SpokeStep": "ReconcileAlerts", "SpokeOutcome": "FAILED"}, None),
    ],
)
def test_status_update_of_an_account_in_sync(last: dict[str, object], writes: Status | None):
    report = AccountReport(A, Drift.IN_SYNC, desired=Decimal(1000), parameter_version=4)
    update = status_update(report, last)
    assert (update.status if update else None) == writes
    if update is not None:
        assert (update.source, update.parameter_version, update.sequence_number) == (SOURCE, 4, "0")


def test_status_update_of_a_failure_keeps_the_spokes_first_reason_for_the_same_value_and_version():
    report = AccountReport(
        A, Drift.BUDGET_DRIFT, desired=Decimal(1000), parameter_version=4, reason="r", action=Action.FAILED
    )
    same = {
        "Status": Status.FAILED,
        "DesiredValue": Decimal(1000),
        "ParameterVersion": 4,
        "Reason": "spoke: x",
    }
    assert status_update(report, same) is None
    assert status_update(report, {**same, "Reason": "r", "ParameterVersion": 3}) is None
    update = status_update(report, {**same, "ParameterVersion": 3, "SequenceNumber": "7"})
    assert update is not None
    assert (update.status, update.reason, update.sequence_number) == (Status.FAILED, "r", "7")
    # a transient failure leaves no status: the next run tries again
    assert status_update(AccountReport(A, Drift.UNREACHABLE, reason="throttled", retryable=True), {}) is None


def test_the_repairable_states_and_what_counts_as_ok():
    assert Drift.IN_SYNC not in REPAIRABLE
    assert {Drift.UNREACHABLE, Drift.INVALID_ITEM, Drift.NOT_MANAGED}.isdisjoint(REPAIRABLE)
    assert AccountReport(A, Drift.BUDGET_DRIFT, action=Action.SKIPPED).ok
    assert not AccountReport(A, Drift.BUDGET_DRIFT, action=Action.FAILED).ok


# -- configuration --------------------------------------------------------------------------

ENV = {
    "BUDGETS_TABLE_NAME": "Budgets",
    "STATUS_TABLE_NAME": "Status",
    "SPOKE_ROLE_NAME": "BlogBudgetsSpokeRole",
    "BUDGET_PARAMETER_NAME": "/BlogBudgets/CostThreshold",
    "AWS_REGION": "eu-west-1",
}


def test_settings_read_the_budget_name_and_refuse_an_invalid_one_naming_the_variable():
    settings = ReconcilerSettings.from_env({**ENV, "BUDGET_NAME": "Team"})
    assert (settings.budgets_table_name, settings.budget_name) == ("Budgets", "Team")
    assert ReconcilerSettings.from_env({**ENV, "BUDGET_NAME": " "}).budget_name == "SpokeAccountBudget"
    with pytest.raises(ConfigError, match=r"BUDGET_NAME has an invalid value 'a:b'"):
        ReconcilerSettings.from_env({**ENV, "BUDGET_NAME": "a:b"})
