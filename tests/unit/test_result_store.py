"""The result store's logic (results.ResultStore) on the in-memory status table: ordered,
conditional writes of the spokes' reports and AWS's failure notices, lost races read again,
and the unconfirmed check's sweep (SENT past the bound, an ended execution past its grace, an
unclaimed report under APPLIED). No AWS: the DynamoDB adapter is proven on moto
(tests/integration/test_result_store.py), the whole in tests/e2e."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from budget_sync.errors import TransientError
from budget_sync.results import (
    ALERTS_STEP,
    ENDED_GRACE,
    Decision,
    ExecutionEnded,
    InvalidResult,
    ResultStore,
    SpokeReport,
    decide_due,
    expected,
)
from budget_sync.status import Status, StatusStore, StatusUpdate
from tests.fakes import FakeStatusTable

A, B = "111111111111", "222222222222"
TIMEOUT = timedelta(minutes=15)


@pytest.fixture
def table() -> FakeStatusTable:
    return FakeStatusTable()


def stores(table: FakeStatusTable) -> tuple[StatusStore, ResultStore]:
    return StatusStore(table), ResultStore(table)


def sent(
    version: int, value: int, sequence: str, account: str = A, alerts_version: int | None = None
) -> StatusUpdate:
    return StatusUpdate(
        account,
        Status.SENT,
        sequence,
        desired=Decimal(value),
        applied=Decimal(value),
        parameter_version=version,
        alerts_version=alerts_version,
    )


def applied(version: int, limit: int, execution: str = "e", account: str = A) -> SpokeReport:
    return SpokeReport(account, execution, version, Status.APPLIED, Decimal(limit), action="Updated")


def failed(version: int, execution: str = "exec-2") -> SpokeReport:
    return SpokeReport(A, execution, version, Status.FAILED, None, reason="Budget uses PlannedBudgetLimits")


def alerts(version: int, outcome: Status, versions: tuple[int, int] | None, reason: str = "") -> SpokeReport:
    return SpokeReport(
        A,
        "exec-a",
        version,
        outcome,
        None,
        reason=reason,
        step=ALERTS_STEP,
        alerts='{"emails": []}' if outcome is Status.APPLIED else "",
        alerts_versions=versions,
    )


# The spokes' reports (twins of tests/integration/test_result_store.py, and more)


def test_given_a_sent_value_when_its_spoke_confirms_then_it_is_applied_with_what_was_confirmed(
    table: FakeStatusTable,
):
    status, results = stores(table)
    status.record(sent(4, 300, "10"))

    transition = results.record(applied(4, 300, "exec-4"))

    assert transition is not None
    assert (transition.old, transition.new) == ("SENT", "APPLIED")
    item = table.item(A)
    assert (item["Status"], item["ConfirmedLimit"], item["ExecutionId"], item["ConfirmedVersion"]) == (
        "APPLIED",
        Decimal(300),
        "exec-4",
        Decimal(4),
    )
    assert (item["Source"], item["Reason"], item["SpokeStep"]) == ("spoke", "", "UpdateBudgetLimit")


def test_given_a_newer_value_sent_then_an_older_confirmation_never_overwrites_it(table: FakeStatusTable):
    status, results = stores(table)
    status.record(sent(4, 400, "10"))
    status.record(sent(5, 500, "20"))

    assert results.record(applied(4, 400)) is None

    assert table.item(A)["Status"] == "SENT"
    assert results.record(applied(5, 500)) is not None
    assert results.record(applied(4, 400)) is None  # older than the confirmed one too
    assert table.item(A)["Status"] == "APPLIED"


def test_given_the_confirmation_arrives_before_the_stream_records_sent_then_sent_does_not_hide_it(
    table: FakeStatusTable,
):
    status, results = stores(table)
    transition = results.record(applied(7, 700))
    assert transition is not None
    assert (transition.old, transition.new) == (None, None)  # held, no status yet
    assert "Status" not in table.item(A)

    assert status.record(sent(7, 700, "30")) is True

    item = table.item(A)
    assert (item["Status"], item["DesiredValue"], item["SequenceNumber"][-2:]) == (
        "APPLIED",
        Decimal(700),
        "30",
    )


def test_given_a_spoke_that_reports_another_limit_then_it_is_a_failure(table: FakeStatusTable):
    status, results = stores(table)
    status.record(sent(3, 300, "10"))

    transition = results.record(applied(3, 299))

    assert transition is not None
    assert transition.new_failure
    assert "limit of 299" in table.item(A)["Reason"]
    assert "limit of 299" in transition.reason


def test_given_a_failed_execution_that_reported_itself_then_the_notification_changes_nothing(
    table: FakeStatusTable,
):
    status, results = stores(table)
    status.record(sent(2, 200, "10"))
    transition = results.record(failed(2))
    assert transition is not None
    assert transition.new_failure

    assert results.record(ExecutionEnded(A, "exec-2", "Failed")) is None
    assert table.item(A)["Reason"] == "spoke: Budget uses PlannedBudgetLimits"


def test_a_second_failure_of_a_failed_status_is_not_a_new_failure(table: FakeStatusTable):
    status, results = stores(table)
    status.record(sent(2, 200, "10"))
    results.record(failed(2, "exec-2"))

    again = results.record(failed(2, "exec-3"))  # an overlapping run of the same version

    assert again is not None
    assert (again.old, again.new, again.new_failure) == ("FAILED", "FAILED", False)


def test_a_spokes_failure_reads_the_same_whether_its_report_arrives_before_or_after_sent(
    table: FakeStatusTable,
):
    status, results = stores(table)

    assert results.record(failed(2)) is not None
    status.record(sent(2, 200, "10"))

    item = table.item(A)
    assert (item["Status"], item["Reason"]) == ("FAILED", "spoke: Budget uses PlannedBudgetLimits")


def test_a_report_about_a_version_no_run_wrote_is_invalid_and_writes_nothing(table: FakeStatusTable):
    status, results = stores(table)
    status.record(sent(2, 200, "10"))
    before = dict(table.item(A))

    with pytest.raises(
        InvalidResult, match="ParameterVersion 13 is more than 10 versions ahead of version 2"
    ):
        results.record(applied(13, 200))

    assert table.item(A) == before
    assert table.count("update_if") == 0


def test_given_alert_settings_sent_then_only_both_steps_reports_make_it_applied(table: FakeStatusTable):
    status, results = stores(table)
    status.record(sent(4, 400, "10", alerts_version=6))

    limit = results.record(applied(4, 400))
    assert limit is not None
    assert (limit.new, table.item(A)["Status"]) == ("SENT", "SENT")  # waits for the alerts step

    transition = results.record(alerts(4, Status.APPLIED, (6, 1)))

    assert transition is not None
    assert (transition.old, transition.new) == ("SENT", "APPLIED")
    assert (table.item(A)["ConfirmedAlertsVersion"], table.item(A)["ConfirmedAlerts"]) == (
        Decimal(6),
        '{"emails": []}',
    )


def test_given_the_alerts_step_refuses_then_the_status_fails_with_its_reason(table: FakeStatusTable):
    status, results = stores(table)
    status.record(sent(4, 400, "10", alerts_version=6))
    results.record(applied(4, 400))

    transition = results.record(alerts(4, Status.FAILED, (6, 1), reason="no such SNS topic"))

    assert transition is not None
    assert transition.new_failure
    assert table.item(A)["Reason"] == "spoke: alerts not applied: no such SNS topic"


def test_given_the_alerts_were_refused_then_an_overlapping_runs_failed_limit_report_changes_nothing(
    table: FakeStatusTable,
):
    # GIVEN version 4 applied by one run and its alerts refused
    status, results = stores(table)
    status.record(sent(4, 400, "10", alerts_version=6))
    results.record(applied(4, 400))
    results.record(alerts(4, Status.FAILED, (6, 1), reason="no such SNS topic"))
    before = dict(table.item(A))

    # WHEN an overlapping run's limit step reports FAILED for the same version, with no limit
    transition = results.record(failed(4, execution="exec-3"))

    # THEN nothing is written (no empty update that DynamoDB would refuse and EventBridge retry)
    assert transition is None
    assert table.item(A) == before


def test_of_two_alerts_runs_the_older_report_arriving_last_does_not_overwrite_the_newer(
    table: FakeStatusTable,
):
    status, results = stores(table)
    status.record(sent(4, 400, "10", alerts_version=7))
    results.record(applied(4, 400))
    assert results.record(alerts(4, Status.APPLIED, (7, 1))) is not None

    assert results.record(alerts(4, Status.FAILED, (6, 1), reason="older run")) is None

    assert (table.item(A)["Status"], table.item(A)["ConfirmedAlertsVersion"]) == ("APPLIED", Decimal(7))


# Optimistic lock: a lost race is read again and decided again


def test_given_a_concurrent_write_between_read_and_write_then_the_report_is_decided_again(
    table: FakeStatusTable,
):
    status, results = stores(table)
    status.record(sent(4, 400, "10"))
    table.conflicts = {A: 1}
    table.between = {A: lambda item: item.update(ParameterVersion=Decimal(5), DesiredValue=Decimal(500))}

    # WHEN version 4's report loses its write to the SENT of version 5
    assert results.record(applied(4, 400)) is None

    # THEN it was read again and found stale: the status waits for version 5
    assert [m for m, _ in table.calls if m != "write"] == ["read", "update_if", "read"]
    assert table.item(A)["Status"] == "SENT"


def test_given_the_status_keeps_changing_then_the_result_is_not_recorded_and_retried(table: FakeStatusTable):
    status, results = stores(table)
    status.record(sent(4, 400, "10"))
    table.conflicts = {A: 99}

    with pytest.raises(TransientError, match="status kept changing"):
        results.record(applied(4, 400))

    assert table.count("update_if") == 5
    assert table.item(A)["Status"] == "SENT"


def test_given_the_table_cannot_be_read_or_written_then_the_result_raises_transient(table: FakeStatusTable):
    _, results = stores(table)
    table.failures = {A: TransientError("account 111111111111: status read failed (throttled)")}

    with pytest.raises(TransientError, match="status read failed"):
        results.record(applied(4, 400))


def test_a_write_is_locked_on_the_attributes_as_they_were_read():
    assert expected(None) == dict.fromkeys(expected(None))  # no item: every locked attribute absent
    lock = expected({"Status": "SENT", "ParameterVersion": Decimal(4), "DesiredValue": Decimal(400)})
    assert lock["Status"] == "SENT"
    assert lock["ParameterVersion"] == Decimal(4)
    assert lock["ConfirmedVersion"] is None
    assert "DesiredValue" not in lock


# AWS's failure notice and the schedule's check


def test_given_an_execution_that_timed_out_without_a_report_then_the_check_fails_it_after_the_grace(
    table: FakeStatusTable,
):
    status, results = stores(table)
    status.record(sent(2, 200, "10"))

    transition = results.record(ExecutionEnded(A, "exec-9", "TimedOut"))
    assert transition is not None
    assert not transition.new_failure
    assert table.item(A)["Status"] == "SENT"
    assert results.record(ExecutionEnded(A, "exec-9", "TimedOut")) is None  # a duplicate

    now = datetime.now(UTC)
    assert list(results.expire_unconfirmed(now, TIMEOUT)) == []
    (expired,) = results.expire_unconfirmed(now + ENDED_GRACE + timedelta(seconds=1), TIMEOUT)
    assert expired.new_failure
    assert (expired.old, expired.new) == ("SENT", "FAILED")
    assert "exec-9 ended TimedOut without reporting" in table.item(A)["Reason"]
    assert table.item(A)["Source"] == "timeout"
    assert list(results.expire_unconfirmed(now + timedelta(hours=1), TIMEOUT)) == []


def test_given_the_failure_notice_first_when_the_executions_report_follows_then_the_spokes_reason_wins(
    table: FakeStatusTable,
):
    status, results = stores(table)
    status.record(sent(2, 200, "10"))

    notice = results.record(ExecutionEnded(A, "exec-2", "Failed"))
    assert notice is not None
    assert not notice.new_failure
    transition = results.record(failed(2))

    assert transition is not None
    assert transition.new_failure
    assert table.item(A)["Reason"] == "spoke: Budget uses PlannedBudgetLimits"
    assert list(results.expire_unconfirmed(datetime.now(UTC) + timedelta(hours=1), TIMEOUT)) == []
    assert results.record(ExecutionEnded(A, "exec-2", "Failed")) is None


def test_a_failure_notice_of_an_earlier_send_does_not_fail_a_newer_one(table: FakeStatusTable):
    status, results = stores(table)
    status.record(sent(2, 200, "10"))
    results.record(ExecutionEnded(A, "exec-2", "Failed"))
    table.put(A, EndedAt="2020-01-01T00:00:00+00:00")  # the notice was recorded a while before the next send
    status.record(sent(3, 300, "20"))

    assert list(results.expire_unconfirmed(datetime.now(UTC) + ENDED_GRACE * 2, TIMEOUT)) == []
    assert table.item(A)["Status"] == "SENT"


def test_a_sent_value_unconfirmed_past_the_bound_fails_saying_why_and_a_recent_one_waits(
    table: FakeStatusTable,
):
    status, results = stores(table)
    status.record(sent(2, 200, "10"))
    status.record(sent(3, 300, "10", account=B))
    table.put(A, SentAt="2020-01-01T00:00:00+00:00")

    (expired,) = results.expire_unconfirmed(datetime.now(UTC), TIMEOUT)

    assert (expired.account_id, expired.old, expired.new) == (A, "SENT", "FAILED")
    reason = table.item(A)["Reason"]
    assert "sent at 2020-01-01T00:00:00+00:00 (parameter version 2)" in reason
    assert "not confirmed by the spoke within 15 minutes" in reason
    assert table.item(B)["Status"] == "SENT"


def test_an_unclaimed_report_of_another_limit_under_applied_is_drift_after_the_bound(table: FakeStatusTable):
    # GIVEN version 4 applied, then a hand edit's run (version 5, never sent) confirmed 999
    status, results = stores(table)
    status.record(sent(4, 400, "10"))
    results.record(applied(4, 400))
    results.record(applied(5, 999, "exec-hand"))
    assert table.item(A)["Status"] == "APPLIED"
    table.put(A, ConfirmedAt="2020-01-01T00:00:00+00:00")

    # WHEN the schedule's check runs past the bound
    (drift,) = results.expire_unconfirmed(datetime.now(UTC), TIMEOUT)

    # THEN it is FAILED as drift, naming both limits
    assert (drift.old, drift.new) == ("APPLIED", "FAILED")
    assert "drift: the spoke's parameter version 5 was not written by budget-sync" in table.item(A)["Reason"]
    assert "the budget's limit is 999, the desired value is 400" in table.item(A)["Reason"]


def test_an_unclaimed_report_of_the_desired_limit_under_applied_is_no_drift(table: FakeStatusTable):
    status, results = stores(table)
    status.record(sent(4, 400, "10"))
    results.record(applied(4, 400))
    results.record(applied(5, 400, "exec-hand"))
    table.put(A, ConfirmedAt="2020-01-01T00:00:00+00:00")

    assert list(results.expire_unconfirmed(datetime.now(UTC), TIMEOUT)) == []
    assert table.item(A)["Status"] == "APPLIED"


def test_a_status_that_changed_since_the_scan_is_not_failed_by_the_check(table: FakeStatusTable):
    status, results = stores(table)
    status.record(sent(2, 200, "10"))
    table.put(A, SentAt="2020-01-01T00:00:00+00:00")
    table.conflicts = {A: 1}  # the spoke's report lands between the scan and the write

    assert list(results.expire_unconfirmed(datetime.now(UTC), TIMEOUT)) == []
    assert table.item(A)["Status"] == "SENT"


def test_a_scan_that_fails_raises_transient(table: FakeStatusTable):
    table.scan_failure = TransientError("status table scan failed (throttled)")
    with pytest.raises(TransientError, match="scan failed"):
        list(ResultStore(table).expire_unconfirmed(datetime.now(UTC), TIMEOUT))


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ({"Status": "SENT", "SentAt": "2026-01-01T00:10:00+00:00"}, None),  # within the bound
        (
            {"Status": "SENT", "SentAt": "2026-01-01T00:00:00+00:00"},
            "not confirmed by the spoke within 15 minutes",
        ),
        (
            {
                "Status": "SENT",
                "SentAt": "2026-01-01T00:10:00+00:00",
                "EndedAt": "2026-01-01T00:11:00+00:00",
                "EndedExecutionId": "x",
                "EndedStatus": "Cancelled",
            },
            "x ended Cancelled without reporting",
        ),
        (
            {"Status": "SENT", "SentAt": "2026-01-01T00:10:00+00:00", "EndedAt": "2026-01-01T00:14:00+00:00"},
            None,
        ),
        ({"Status": "FAILED", "SentAt": "2026-01-01T00:00:00+00:00"}, None),
    ],
)
def test_decide_due_fails_what_is_past_its_bound_or_grace_only(item: dict[str, Any], reason: str | None):
    # the check at 00:15 with a 5-minute bound and a 2-minute grace
    decision = decide_due(
        item, "2026-01-01T00:05:00+00:00", "2026-01-01T00:13:00+00:00", timedelta(minutes=15)
    )
    if reason is None:
        assert decision is None
    else:
        assert isinstance(decision, Decision)
        assert decision.status is Status.FAILED
        assert reason in decision.reason


# Twins of tests/e2e/test_status_truth.py's store-level stories


def test_given_a_forged_report_a_few_versions_ahead_then_the_next_genuine_send_is_still_confirmed(
    table: FakeStatusTable,
):
    # GIVEN version 4 at 1000 confirmed, and a forged report three versions ahead of it
    status, results = stores(table)
    status.record(sent(4, 1000, "10"))
    results.record(applied(4, 1000))
    results.record(applied(7, 1, "forged"))

    # WHEN the operator's next value is sent as version 5 and its run reports
    status.record(sent(5, 2000, "20"))
    transition = results.record(applied(5, 2000, "exec-5"))

    # THEN the spoke's own report of that version decides: APPLIED at 2000
    assert transition is not None
    assert transition.new == "APPLIED"
    item = table.item(A)
    assert (item["Status"], item["ConfirmedLimit"], item["ConfirmedVersion"]) == (
        "APPLIED",
        Decimal(2000),
        Decimal(5),
    )


def test_given_an_alerts_only_change_whose_run_reported_before_sent_then_it_is_applied_not_failed_after_the_bound(
    table: FakeStatusTable,
):
    # GIVEN version 4 at 1000 confirmed
    status, results = stores(table)
    status.record(sent(4, 1000, "10"))
    results.record(applied(4, 1000))
    # WHEN an alerts-only change's run (the same limit version) reports both steps before SENT
    results.record(applied(4, 1000, "run-2"))
    results.record(alerts(4, Status.APPLIED, (3, 1)))
    assert status.record(sent(4, 1000, "20", alerts_version=3)) is True

    # THEN the SENT takes the reports' verdict, and the bound's check leaves it so
    assert table.item(A)["Status"] == "APPLIED"
    table.put(A, SentAt="2020-01-01T00:00:00+00:00")
    assert list(results.expire_unconfirmed(datetime.now(UTC), TIMEOUT)) == []
    assert table.item(A)["Status"] == "APPLIED"


def test_given_an_alerts_only_change_then_the_limit_steps_report_alone_does_not_make_it_applied(
    table: FakeStatusTable,
):
    status, results = stores(table)
    status.record(sent(4, 1000, "10"))
    results.record(applied(4, 1000))
    status.record(sent(4, 1000, "20", alerts_version=3))
    assert table.item(A)["Status"] == "SENT"

    results.record(applied(4, 1000, "run-2"))
    assert table.item(A)["Status"] == "SENT"

    transition = results.record(alerts(4, Status.APPLIED, (3, 1)))
    assert transition is not None
    assert (transition.old, transition.new) == ("SENT", "APPLIED")
