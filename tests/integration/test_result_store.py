"""Spoke results in the status table on moto: ordered by parameter version, whatever arrives first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from budget_sync.results import ENDED_GRACE, ExecutionEnded, ResultStore, SpokeReport
from budget_sync.status import Status, StatusStore, StatusUpdate
from budget_sync.status_table import DynamoStatusTable
from tests.support.moto_org import SPOKES, Org

A = SPOKES[0]


def stores(org: Org) -> tuple[StatusStore, ResultStore]:
    client = org.management.client("dynamodb")
    table = DynamoStatusTable(client, org.status_table)
    return StatusStore(table), ResultStore(table)


def sent(version: int, value: int, sequence: str) -> StatusUpdate:
    return StatusUpdate(
        A, Status.SENT, sequence, desired=Decimal(value), applied=Decimal(value), parameter_version=version
    )


def applied(version: int, limit: int, execution: str = "e") -> SpokeReport:
    return SpokeReport(A, execution, version, Status.APPLIED, Decimal(limit), action="Updated")


def test_given_a_sent_value_when_its_spoke_confirms_then_it_is_applied_with_what_was_confirmed(org: Org):
    status, results = stores(org)
    status.record(sent(4, 300, "10"))

    transition = results.record(applied(4, 300, "exec-4"))

    assert transition is not None
    assert (transition.old, transition.new) == ("SENT", "APPLIED")
    item = org.status(A)
    assert item is not None
    assert (item["Status"], item["ConfirmedLimit"], item["ExecutionId"], item["ConfirmedVersion"]) == (
        "APPLIED",
        Decimal(300),
        "exec-4",
        Decimal(4),
    )


def test_given_a_newer_value_sent_then_an_older_confirmation_never_overwrites_it(org: Org):
    # GIVEN version 5 (500) was sent after version 4 (400)
    status, results = stores(org)
    status.record(sent(4, 400, "10"))
    status.record(sent(5, 500, "20"))

    # WHEN the run of version 4 reports late
    assert results.record(applied(4, 400)) is None

    # THEN the status still waits for version 5, which then confirms it
    assert org.status(A)["Status"] == "SENT"  # type: ignore[index]
    assert results.record(applied(5, 500)) is not None
    assert results.record(applied(4, 400)) is None  # older than the confirmed one too
    assert org.status(A)["Status"] == "APPLIED"  # type: ignore[index]


def test_given_the_confirmation_arrives_before_the_stream_records_sent_then_sent_does_not_hide_it(org: Org):
    # GIVEN the spoke confirmed version 7 before the stream function wrote its status
    status, results = stores(org)
    results.record(applied(7, 700))
    assert "Status" not in org.status(A)  # type: ignore[operator]

    # WHEN the stream function records SENT for version 7
    assert status.record(sent(7, 700, "30")) is True

    # THEN the status is APPLIED, with the stream's sequence and desired value
    item = org.status(A)
    assert item is not None
    assert (item["Status"], item["DesiredValue"], item["SequenceNumber"][-2:]) == (
        "APPLIED",
        Decimal(700),
        "30",
    )


def test_given_a_spoke_that_reports_another_limit_then_it_is_a_failure(org: Org):
    status, results = stores(org)
    status.record(sent(3, 300, "10"))

    transition = results.record(applied(3, 299))

    assert transition is not None
    assert transition.new_failure
    assert "limit of 299" in org.status(A)["Reason"]  # type: ignore[index]


def test_given_a_failed_execution_that_reported_itself_then_the_notification_changes_nothing(org: Org):
    status, results = stores(org)
    status.record(sent(2, 200, "10"))
    failure = SpokeReport(A, "exec-2", 2, Status.FAILED, None, reason="Budget uses PlannedBudgetLimits")
    assert results.record(failure).new_failure  # type: ignore[union-attr]

    # WHEN AWS's notification of the same execution arrives: nothing changes, no second failure
    assert results.record(ExecutionEnded(A, "exec-2", "Failed")) is None
    assert org.status(A)["Reason"] == "spoke: Budget uses PlannedBudgetLimits"  # type: ignore[index]


def test_given_an_execution_that_timed_out_without_a_report_then_the_check_fails_it_after_the_grace(org: Org):
    status, results = stores(org)
    status.record(sent(2, 200, "10"))

    # WHEN AWS's notice arrives: recorded, not yet a failure (the report may still come)
    transition = results.record(ExecutionEnded(A, "exec-9", "TimedOut"))
    assert transition is not None
    assert not transition.new_failure
    assert org.status(A)["Status"] == "SENT"  # type: ignore[index]
    assert results.record(ExecutionEnded(A, "exec-9", "TimedOut")) is None  # a duplicate

    # THEN the schedule's check fails it once the grace has passed, saying so, once
    now = datetime.now(UTC)
    assert list(results.expire_unconfirmed(now, timedelta(minutes=15))) == []
    (expired,) = results.expire_unconfirmed(now + ENDED_GRACE + timedelta(seconds=1), timedelta(minutes=15))
    assert expired.new_failure
    assert "exec-9 ended TimedOut without reporting" in org.status(A)["Reason"]  # type: ignore[index]
    assert list(results.expire_unconfirmed(now + timedelta(hours=1), timedelta(minutes=15))) == []


def test_given_the_failure_notice_first_when_the_executions_report_follows_then_the_spokes_reason_wins(
    org: Org,
):
    status, results = stores(org)
    status.record(sent(2, 200, "10"))

    # WHEN AWS's Failed notice arrives before the execution's own report (no promised order)
    assert not results.record(ExecutionEnded(A, "exec-2", "Failed")).new_failure  # type: ignore[union-attr]
    failure = SpokeReport(A, "exec-2", 2, Status.FAILED, None, reason="Budget uses PlannedBudgetLimits")
    transition = results.record(failure)

    # THEN one new failure, with the spoke's own reason; the check adds nothing later
    assert transition is not None
    assert transition.new_failure
    assert org.status(A)["Reason"] == "spoke: Budget uses PlannedBudgetLimits"  # type: ignore[index]
    later = datetime.now(UTC) + timedelta(hours=1)
    assert list(results.expire_unconfirmed(later, timedelta(minutes=15))) == []
    assert results.record(ExecutionEnded(A, "exec-2", "Failed")) is None


def test_a_failure_notice_of_an_earlier_send_does_not_fail_a_newer_one(org: Org):
    status, results = stores(org)
    status.record(sent(2, 200, "10"))
    results.record(ExecutionEnded(A, "exec-2", "Failed"))
    client = org.management.client("dynamodb")
    client.update_item(  # the notice was recorded a while before the next send
        TableName=org.status_table,
        Key={"AccountId": {"S": A}},
        UpdateExpression="SET EndedAt = :old",
        ExpressionAttributeValues={":old": {"S": "2020-01-01T00:00:00+00:00"}},
    )
    status.record(sent(3, 300, "20"))

    assert list(results.expire_unconfirmed(datetime.now(UTC) + ENDED_GRACE * 2, timedelta(minutes=15))) == []
    assert org.status(A)["Status"] == "SENT"  # type: ignore[index]


def test_a_spokes_failure_reads_the_same_whether_its_report_arrives_before_or_after_sent(org: Org):
    status, results = stores(org)
    failure = SpokeReport(A, "exec-2", 2, Status.FAILED, None, reason="Budget uses PlannedBudgetLimits")

    # WHEN the report arrives before the stream function records SENT (the run was quicker)
    assert results.record(failure) is not None
    status.record(sent(2, 200, "10"))

    # THEN the status reads as if it had come after: the spoke's reason, marked as the spoke's
    item = org.status(A)
    assert item is not None
    assert (item["Status"], item["Reason"]) == ("FAILED", "spoke: Budget uses PlannedBudgetLimits")
