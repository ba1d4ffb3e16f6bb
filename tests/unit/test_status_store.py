"""The status store's logic (status.StatusStore, confirmed_first) on the in-memory status table:
its conditional writes, a report that came before its SENT, and its transactions. No AWS: the
DynamoDB adapter is proven on moto (tests/integration/test_status_store.py, test_result_store.py)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import pytest

from budget_sync.errors import TransientError
from budget_sync.status import (
    TRANSACTION_ATTEMPTS,
    TRANSACTION_LIMIT,
    Status,
    StatusStore,
    StatusUpdate,
    confirmed_first,
)
from tests.fakes import FakeStatusTable

A, B, C = "111111111111", "222222222222", "333333333333"


@pytest.fixture
def table() -> FakeStatusTable:
    return FakeStatusTable()


def sent(version: int | None, value: int, sequence: str, alerts_version: int | None = None) -> StatusUpdate:
    return StatusUpdate(
        A,
        Status.SENT,
        sequence,
        desired=Decimal(value),
        applied=Decimal(value),
        parameter_version=version,
        alerts_version=alerts_version,
    )


def test_given_a_batch_of_statuses_then_one_transaction_writes_them_all(table: FakeStatusTable):
    updates = [
        StatusUpdate(a, Status.APPLIED, "5", desired=Decimal(1), applied=Decimal(1)) for a in (A, B, C)
    ]

    assert StatusStore(table).record_many(updates) == []

    assert [table.item(a)["Status"] for a in (A, B, C)] == ["APPLIED"] * 3
    assert table.count("write_all") == 1
    assert table.count("write") == 0


def test_given_a_newer_status_for_one_account_then_it_is_kept_and_the_others_are_written(
    table: FakeStatusTable,
):
    store = StatusStore(table)
    store.record(StatusUpdate(A, Status.APPLIED, "900", desired=Decimal(9), applied=Decimal(9)))

    failed = store.record_many(
        [StatusUpdate(a, Status.APPLIED, "5", desired=Decimal(5), applied=Decimal(5)) for a in (A, B)]
    )

    assert failed == []
    assert table.item(A)["AppliedValue"] == Decimal(9)
    assert (table.item(A)["Status"], table.item(B)["Status"]) == ("APPLIED", "APPLIED")
    # the first record; then A, which cancelled the transaction, alone; B in a second transaction
    assert table.count("write") == 2
    assert table.count("write_all") == 2


def test_given_a_report_that_came_before_its_sent_then_that_status_alone_is_written_one_by_one(
    table: FakeStatusTable,
):
    # GIVEN the spoke's report of version 4 (APPLIED at 400) recorded before A's SENT
    table.put(
        A, Status="SENT", SequenceNumber="0" * 39 + "1", ConfirmedVersion=4, ConfirmedLimit=Decimal(400)
    )
    table.put(A, SpokeOutcome="APPLIED")
    others = [StatusUpdate(a, Status.FAILED, "10", desired=Decimal(5), reason="no stack") for a in (B, C)]

    # WHEN the batch's statuses are written: A's SENT of version 4 among them
    failed = StatusStore(table).record_many([others[0], sent(4, 400, "10"), others[1]])

    # THEN A (its condition refused the transaction) takes the report's verdict, written alone;
    # B and C are written together in a second transaction, not one by one
    assert failed == []
    assert table.item(A)["Status"] == "APPLIED"
    assert (table.item(B)["Status"], table.item(C)["Status"]) == ("FAILED", "FAILED")
    assert table.count("write_all") == 2
    assert [account for method, account in table.calls if method == "write"] == [A, A]


class _RefusesTheFirst(FakeStatusTable):
    """Every transaction is cancelled by its first status (a concurrent writer each time)."""

    def write_all(self, updates: Sequence[StatusUpdate]) -> list[int]:
        self._call("write_all", "*")
        return [0]


def test_given_transactions_that_keep_being_cancelled_then_after_the_last_attempt_the_rest_go_one_by_one():
    table = _RefusesTheFirst()
    accounts = [f"{n:012d}" for n in range(6)]

    failed = StatusStore(table).record_many([StatusUpdate(a, Status.UNMANAGED, "5") for a in accounts])

    assert failed == []
    assert table.count("write_all") == TRANSACTION_ATTEMPTS
    assert sorted(a for m, a in table.calls if m == "write") == accounts
    assert [table.item(a)["Status"] for a in accounts] == ["UNMANAGED"] * 6


def test_given_the_table_cannot_be_written_then_every_account_of_the_batch_is_reported_for_retry(
    table: FakeStatusTable,
):
    table.failures = {B: TransientError("status write failed (throttled)")}

    failed = StatusStore(table).record_many([StatusUpdate(a, Status.UNMANAGED, "5") for a in (A, B, C)])

    assert sorted(failed) == [A, B, C]
    assert table.items == {}


def test_given_a_cancelled_transaction_then_only_the_accounts_that_cannot_be_written_are_retried(
    table: FakeStatusTable,
):
    # GIVEN a transaction that is cancelled, and one account whose own write then fails
    table.cancel_transactions = True
    table.failures = {B: TransientError("status write failed")}
    store = StatusStore(table)
    updates = [StatusUpdate(a, Status.UNMANAGED, "5") for a in (A, B, C)]

    # WHEN the batch is written
    failed = store.record_many(updates)

    # THEN the others are written one by one, and only B goes back for retry
    assert failed == [B]
    assert (table.item(A)["Status"], table.item(C)["Status"]) == ("UNMANAGED", "UNMANAGED")
    assert B not in table.items


def test_a_batch_larger_than_one_transaction_is_written_in_chunks_of_the_limit(table: FakeStatusTable):
    updates = [StatusUpdate(f"{n:012d}", Status.UNMANAGED, "5") for n in range(TRANSACTION_LIMIT + 1)]

    assert StatusStore(table).record_many(updates) == []

    assert table.count("write_all") == 2
    assert len(table.items) == TRANSACTION_LIMIT + 1


def test_sequence_numbers_of_different_lengths_compare_in_stream_order(table: FakeStatusTable):
    store = StatusStore(table)
    store.record(StatusUpdate(C, Status.APPLIED, "99", applied=Decimal(1)))
    assert store.record(StatusUpdate(C, Status.FAILED, "100", reason="newer")) is True
    assert store.record(StatusUpdate(C, Status.APPLIED, "98", applied=Decimal(2))) is False
    assert table.item(C)["Status"] == "FAILED"


def test_a_write_that_fails_raises_transient_so_the_record_is_retried(table: FakeStatusTable):
    table.failures = {A: TransientError("status write failed")}
    with pytest.raises(TransientError):
        StatusStore(table).record(sent(4, 400, "10"))


def test_an_older_record_that_is_not_a_sent_is_skipped_without_reading(table: FakeStatusTable):
    store = StatusStore(table)
    store.record(StatusUpdate(A, Status.APPLIED, "20", applied=Decimal(1)))

    assert store.record(StatusUpdate(A, Status.FAILED, "10", reason="older")) is False

    assert table.count("read") == 0
    assert table.item(A)["Status"] == "APPLIED"


def test_a_delete_removes_the_desired_value_and_a_repair_records_its_version(table: FakeStatusTable):
    store = StatusStore(table)
    store.record(sent(4, 400, "10"))
    store.record(StatusUpdate(A, Status.UNMANAGED, "11", reason="deleted"))
    assert "DesiredValue" not in table.item(A)

    repair = StatusUpdate(
        A, Status.SENT, "12", desired=Decimal(5), parameter_version=9, repaired=True, source="reconciler"
    )
    assert store.record(repair) is True
    assert (table.item(A)["RepairedVersion"], table.item(A)["Source"]) == (Decimal(9), "reconciler")


# A report that came before its SENT (status.confirmed_first)


def held(
    table: FakeStatusTable, version: int, outcome: str, limit: int | None = None, reason: str = ""
) -> None:
    """The result store kept a report of ``version`` before the stream function recorded SENT."""
    table.put(
        A, ConfirmedVersion=version, SpokeOutcome=outcome, SpokeReason=reason, SpokeStep="UpdateBudgetLimit"
    )
    if limit is not None:
        table.put(A, ConfirmedLimit=Decimal(limit))


def test_given_the_confirmation_arrived_first_then_sent_records_applied_with_the_streams_sequence(
    table: FakeStatusTable,
):
    held(table, 7, "APPLIED", 700)

    assert StatusStore(table).record(sent(7, 700, "30")) is True

    item = table.item(A)
    assert (item["Status"], item["DesiredValue"], item["SequenceNumber"][-2:], item["Reason"]) == (
        "APPLIED",
        Decimal(700),
        "30",
        "",
    )


def test_given_another_limit_confirmed_first_then_sent_records_failed_naming_both(table: FakeStatusTable):
    held(table, 7, "APPLIED", 699)

    assert StatusStore(table).record(sent(7, 700, "30")) is True

    assert table.item(A)["Status"] == "FAILED"
    assert "limit of 699 for parameter version 7, but the desired value is 700" in table.item(A)["Reason"]


def test_given_the_spokes_failure_reported_first_then_sent_records_it_with_the_spokes_reason(
    table: FakeStatusTable,
):
    held(table, 2, "FAILED", reason="Budget uses PlannedBudgetLimits")

    assert StatusStore(table).record(sent(2, 200, "10")) is True

    assert (table.item(A)["Status"], table.item(A)["Reason"]) == (
        "FAILED",
        "spoke: Budget uses PlannedBudgetLimits",
    )


def test_given_only_the_limit_step_reported_first_then_sent_waits_for_the_alerts_step(table: FakeStatusTable):
    held(table, 7, "APPLIED", 700)

    assert StatusStore(table).record(sent(7, 700, "30", alerts_version=3)) is True

    assert (table.item(A)["Status"], table.item(A)["SentAlertsVersion"]) == ("SENT", Decimal(3))


def test_given_both_steps_reported_first_then_sent_records_applied(table: FakeStatusTable):
    held(table, 7, "APPLIED", 700)
    table.put(A, ConfirmedAlertsVersion=3)

    assert StatusStore(table).record(sent(7, 700, "30", alerts_version=3)) is True

    assert table.item(A)["Status"] == "APPLIED"


def test_given_an_alerts_only_send_whose_report_came_first_then_it_is_applied(table: FakeStatusTable):
    held(table, 7, "APPLIED", 700)
    table.put(A, ConfirmedAlertsVersion=4)

    assert StatusStore(table).record(sent(None, 700, "30", alerts_version=4)) is True

    assert table.item(A)["Status"] == "APPLIED"


def test_a_report_held_about_another_version_is_no_verdict_on_this_send(table: FakeStatusTable):
    held(table, 9, "APPLIED", 999)  # a hand edit's, or a forged report a few versions ahead

    assert StatusStore(table).record(sent(7, 700, "30")) is True

    assert table.item(A)["Status"] == "SENT"
    assert table.count("read") == 0  # the condition held: nothing to decide


def test_a_sent_older_than_the_status_is_not_written_even_if_its_report_came_first(table: FakeStatusTable):
    held(table, 7, "APPLIED", 700)
    table.put(A, SequenceNumber="0" * 38 + "90", Status="FAILED")

    assert StatusStore(table).record(sent(7, 700, "30")) is False

    assert table.item(A)["Status"] == "FAILED"


def test_a_verdict_that_loses_its_race_is_not_written(table: FakeStatusTable):
    # GIVEN the report came first, WHEN another writer lands before each of SENT's two writes
    held(table, 7, "APPLIED", 700)
    table.conflicts = {A: 2}

    # THEN neither is written: the status is the other writer's
    assert StatusStore(table).record(sent(7, 700, "30")) is False
    assert "Status" not in table.item(A)
    assert [m for m, _ in table.calls] == ["write", "read", "write"]


@pytest.mark.parametrize(
    ("update", "item"),
    [
        (StatusUpdate(A, Status.APPLIED, "5"), {"ConfirmedVersion": 1}),
        (StatusUpdate(A, Status.SENT, "5"), {"ConfirmedVersion": 1}),  # no version sent: nothing to match
        (sent(1, 100, "5"), None),
        (sent(1, 100, "5"), {"ConfirmedVersion": 1, "SequenceNumber": "9" * 40}),  # a newer status
        (sent(1, 100, "5", alerts_version=2), {"ConfirmedVersion": 2, "ConfirmedAlertsVersion": 1}),
    ],
)
def test_confirmed_first_has_no_verdict_when_no_report_of_this_send_came_first(
    update: StatusUpdate, item: dict[str, object] | None
):
    assert confirmed_first(item, update) is None
