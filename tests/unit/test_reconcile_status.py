"""What a reconciliation leaves in the status table (reconcile.status_update): the limit in sync
is not a confirmation of alerts it did not compare. Pure."""

from __future__ import annotations

from decimal import Decimal

from budget_sync.reconcile import AccountReport, Drift, alerts_unsettled, status_update
from budget_sync.status import Status

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
