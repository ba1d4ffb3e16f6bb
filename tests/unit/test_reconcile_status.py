"""What a reconciliation leaves in the status table (reconcile.status_update): the limit in sync
is not a confirmation of alerts it did not compare. Pure."""

from __future__ import annotations

from decimal import Decimal

from budget_sync.alerts import AlertSettings, notification_key, subscriber
from budget_sync.reconcile import (
    AccountReport,
    Action,
    DesiredItem,
    Drift,
    Reconciler,
    alerts_unsettled,
    status_update,
)
from budget_sync.spoke import AlertReading, BudgetReading, ParameterReading
from budget_sync.status import Status
from tests.fakes import FakeBudgetsTable

A = "111111111111"
IN_SYNC = AccountReport(A, Drift.IN_SYNC, desired=Decimal(2000), parameter_version=4)


def test_given_the_spoke_refused_the_alerts_then_an_in_sync_limit_writes_no_applied():
    last = {
        "Status": "FAILED",
        "DesiredValue": Decimal(2000),
        "SpokeStep": "ReconcileAlerts",
        "SpokeOutcome": "FAILED",
        "Reason": "spoke: alerts not applied: AlertEmails 'x' is not well-formed",
    }
    assert alerts_unsettled(last)
    assert status_update(IN_SYNC, last) is None


def test_given_alert_settings_sent_and_never_confirmed_then_an_in_sync_limit_writes_no_applied():
    last = {
        "Status": "FAILED",
        "DesiredValue": Decimal(2000),
        "SentAlertsVersion": 3,
        "ConfirmedAlertsVersion": 2,
    }
    assert status_update(IN_SYNC, last) is None
    confirmed = {**last, "ConfirmedAlertsVersion": 3}
    update = status_update(IN_SYNC, confirmed)
    assert update is not None
    assert update.status is Status.APPLIED


class _AlertSpokes:
    """A spoke whose limit is in sync and whose budget has one notification the item does not ask for."""

    def __init__(self) -> None:
        self.alert_writes: list[str] = []

    def read_parameter(self, account_id: str) -> ParameterReading:
        return ParameterReading("2000", 4)

    def read_budget(self, account_id: str, budget_name: str = "SpokeAccountBudget") -> BudgetReading:
        return BudgetReading(Decimal(2000), "USD", None, None)

    def read_alert_state(self, account_id: str, budget_name: str = "SpokeAccountBudget") -> AlertReading:
        key = notification_key("ACTUAL", "GREATER_THAN", "PERCENTAGE", Decimal(50))
        return AlertReading({}, {key: frozenset({subscriber("EMAIL", "x@example.com")})})

    def put_budget_value(self, account_id: str, amount_text: str) -> int:
        raise AssertionError("an alert drift does not write the limit")

    def put_alert_settings(self, account_id: str, settings_json: str) -> int:
        self.alert_writes.append(settings_json)
        return 9


ALERTS = AlertSettings(emails=("team@example.com",), actual=(Decimal(80),), forecasted="none")


def test_given_an_earlier_limit_repair_of_this_version_then_an_alert_drift_is_repaired_not_failed():
    # GIVEN the last limit repair wrote parameter version 4, APPLIED since; now the alerts drifted
    spokes = _AlertSpokes()
    last = {"Status": "APPLIED", "DesiredValue": Decimal(2000), "ParameterVersion": 4, "RepairedVersion": 4}
    reconciler = Reconciler(
        spokes, None, desired=FakeBudgetsTable([DesiredItem(A, Decimal(2000), alerts=ALERTS)])
    )

    # WHEN the reconciler inspects and repairs it
    (report,) = reconciler.run([DesiredItem(A, Decimal(2000), alerts=ALERTS)], {A: last}).reports
    assert report.drift is Drift.ALERT_DRIFT
    assert report.action is Action.NONE  # not "did not hold": that is about limit repairs
    repaired = reconciler._repair_alerts(report)

    # THEN the item's alert settings are sent again and the status is SENT for that alert version
    assert repaired.action is Action.REPAIRED
    assert spokes.alert_writes == [ALERTS.to_parameter()]
    update = status_update(repaired, last)
    assert update is not None
    assert (update.status, update.alerts, update.alerts_version, update.parameter_version) == (
        Status.SENT,
        ALERTS.to_parameter(),
        9,
        None,
    )


def test_given_the_items_alerts_changed_before_the_repair_then_it_writes_nothing_and_skips():
    spokes = _AlertSpokes()
    newer = AlertSettings(emails=("new@example.com",))
    reconciler = Reconciler(
        spokes, None, desired=FakeBudgetsTable([DesiredItem(A, Decimal(2000), alerts=newer)])
    )
    (report,) = reconciler.run([DesiredItem(A, Decimal(2000), alerts=ALERTS)]).reports
    skipped = reconciler._repair_alerts(report)
    assert skipped.action is Action.SKIPPED
    assert spokes.alert_writes == []
    assert status_update(skipped, {}) is None


def test_given_the_items_alerts_changed_after_the_repairs_write_then_the_newer_ones_are_written_last():
    spokes = _AlertSpokes()
    newer = AlertSettings(emails=("new@example.com",))
    table = FakeBudgetsTable()
    table.script(A, *(DesiredItem(A, Decimal(2000), alerts=a) for a in (ALERTS, newer, newer)))
    reconciler = Reconciler(spokes, None, desired=table)
    (report,) = reconciler.run([DesiredItem(A, Decimal(2000), alerts=ALERTS)]).reports
    result = reconciler._repair_alerts(report)
    assert result.action is Action.SKIPPED
    assert spokes.alert_writes == [ALERTS.to_parameter(), newer.to_parameter()]
