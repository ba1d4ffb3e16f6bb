"""The batch plan and failure model, with in-memory adapters (no AWS)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from budget_sync.errors import ParameterRejected, SpokeAccessDenied, TransientError
from budget_sync.status import Status
from budget_sync.update import BudgetSync, Outcome, StreamRecord
from tests.fakes import FakeSpokes, FakeStatus

A, B, C = "111111111111", "222222222222", "333333333333"


def upsert(
    seq: int, account: str, value: object, old: object = None, event: str | None = None
) -> StreamRecord:
    new_image = {"AccountId": account, "BudgetValue": value}
    old_image = None if old is None else {"AccountId": account, "BudgetValue": old}
    name = event or ("INSERT" if old is None else "MODIFY")
    return StreamRecord(name, str(seq), {"AccountId": account}, new_image, old_image)


def remove(seq: int, account: str, old: object) -> StreamRecord:
    return StreamRecord(
        "REMOVE", str(seq), {"AccountId": account}, None, {"AccountId": account, "BudgetValue": old}
    )


def run(records, spokes=None, status=None, concurrency=10):
    spokes = spokes or FakeSpokes()
    status = status or FakeStatus()
    result = BudgetSync(spokes, status, concurrency).process(records)  # type: ignore[arg-type]
    return result, spokes, status


def test_given_several_values_for_one_account_when_processed_then_only_the_newest_is_written():
    result, spokes, status = run([upsert(3, A, 300, 200), upsert(1, A, 100), upsert(2, A, 200, 100)])
    assert spokes.writes == [(A, "300")]
    assert status.rows[A].status is Status.SENT  # APPLIED once the spoke confirms
    assert status.rows[A].sequence_number == "3"
    assert result.retry_sequence_numbers == set()


def test_given_a_modify_with_the_same_value_then_no_spoke_call_and_no_status_write():
    result, spokes, status = run([upsert(1, A, Decimal("100"), Decimal("100.00"))])
    assert spokes.writes == []
    assert status.rows == {}
    assert result.outcomes[Outcome.UNCHANGED] == 1


def test_given_a_change_and_back_within_the_batch_then_nothing_is_sent():
    result, spokes, _ = run([upsert(1, A, 200, 100), upsert(2, A, 100, 200)])
    assert spokes.writes == []
    assert result.outcomes[Outcome.UNCHANGED] == 1


def test_given_a_change_then_a_touch_with_the_same_value_then_the_change_is_still_sent():
    _, spokes, _ = run([upsert(1, A, 200, 100), upsert(2, A, 200, 200)])
    assert spokes.writes == [(A, "200")]


def test_given_a_remove_then_an_insert_of_the_old_value_then_it_is_sent_again():
    _, spokes, _ = run([remove(1, A, 100), upsert(2, A, 100)])
    assert spokes.writes == [(A, "100")]


def test_given_a_remove_then_the_account_is_unmanaged_and_the_spoke_untouched():
    result, spokes, status = run([remove(5, A, 100)])
    assert spokes.writes == []
    assert status.rows[A].status is Status.UNMANAGED
    assert "keeps its last budget" in status.rows[A].reason
    assert result.outcomes[Outcome.UNMANAGED] == 1


def test_given_many_accounts_then_they_run_concurrently_but_never_one_account_twice():
    records = [upsert(i, f"{i % 8:012d}", 100 + i) for i in range(1, 41)]
    _, spokes, _ = run(records, FakeSpokes(delay=0.02), concurrency=4)
    assert len(spokes.writes) == 8
    assert not spokes.overlap
    assert spokes.peak == 4


def test_given_a_transient_failure_then_the_accounts_earliest_record_is_retried_and_others_settle():
    spokes = FakeSpokes({B: TransientError("throttled")})
    result, spokes, status = run(
        [upsert(1, A, 10), upsert(2, B, 20), upsert(3, B, 30, 20), upsert(4, C, 40)], spokes
    )
    assert result.retry_sequence_numbers == {"2"}
    assert sorted(spokes.writes) == [(A, "10"), (C, "40")]
    assert B not in status.rows
    assert result.outcomes[Outcome.RETRY] == 1


@pytest.mark.parametrize("error", [SpokeAccessDenied("no role"), ParameterRejected("pattern")])
def test_given_a_permanent_failure_then_failed_is_recorded_with_the_reason_and_not_retried(error):
    result, _, status = run([upsert(7, A, 10)], FakeSpokes({A: error}))
    assert result.retry_sequence_numbers == set()
    assert status.rows[A].status is Status.FAILED
    assert status.rows[A].reason == str(error)
    assert status.rows[A].desired == Decimal("10")
    assert result.outcomes[Outcome.FAILED] == 1


def test_given_an_invalid_newest_value_then_failed_is_recorded_and_the_spoke_keeps_its_value():
    result, spokes, status = run([upsert(1, A, 10), upsert(2, A, Decimal("-3"), 10)])
    assert spokes.writes == []
    assert status.rows[A].status is Status.FAILED
    assert "BudgetValue -3 must be greater than 0" in status.rows[A].reason
    assert result.outcomes[Outcome.INVALID_ITEM] == 1


def test_given_an_invalid_value_then_a_valid_one_then_the_valid_one_wins():
    _, spokes, status = run([upsert(1, A, "abc"), upsert(2, A, 50, "abc")])
    assert spokes.writes == [(A, "50")]
    assert status.rows[A].status is Status.SENT  # APPLIED once the spoke confirms


def test_given_an_item_without_account_id_then_it_is_counted_and_not_retried():
    other = StreamRecord("MODIFY", "9", {"Id": Decimal(101)}, {"Id": Decimal(101)}, {"Id": Decimal(101)})
    result, spokes, status = run([other])
    assert result.retry_sequence_numbers == set()
    assert result.outcomes[Outcome.INVALID_ITEM] == 1
    assert spokes.writes == []
    assert status.rows == {}


def test_given_the_status_write_fails_then_the_record_is_retried_even_after_a_successful_put():
    result, spokes, _ = run([upsert(1, A, 10)], status=FakeStatus(fail=True))
    assert spokes.writes == [(A, "10")]
    assert result.retry_sequence_numbers == {"1"}


def test_given_an_unexpected_error_then_the_account_is_retried_not_dropped():
    result, _, status = run([upsert(4, A, 10)], FakeSpokes({A: KeyError("bug")}))
    assert result.retry_sequence_numbers == {"4"}
    assert status.rows == {}


def test_given_a_short_remaining_time_then_new_accounts_are_not_started_and_the_started_are_recorded():
    # GIVEN a batch of three accounts and an invocation with time for one account only
    clock = iter([60_000, 5_000, 5_000, 5_000, 5_000, 5_000])
    spokes, status = FakeSpokes(), FakeStatus()

    # WHEN it is processed one account at a time
    result = BudgetSync(spokes, status, 1).process(  # type: ignore[arg-type]
        [upsert(1, A, 100), upsert(2, B, 200), upsert(3, C, 300)], remaining_ms=lambda: next(clock)
    )

    # THEN the first account was sent and its status recorded; the others were not started
    # and go back to Lambda (from their own records), as DeadlineDeferred
    assert spokes.writes == [(A, "100")]
    assert status.rows[A].status is Status.SENT
    assert set(status.rows) == {A}
    assert result.retry_sequence_numbers == {"2", "3"}
    assert result.outcomes[Outcome.DEFERRED] == 2
