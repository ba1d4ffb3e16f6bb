"""The status table on moto: batched conditional writes, newest sequence wins."""

from __future__ import annotations

from decimal import Decimal

from budget_sync.status import Status, StatusStore, StatusUpdate
from budget_sync.status_table import DynamoStatusTable
from tests.support.moto_org import SPOKES, Org

A, B, C = SPOKES


def store(org: Org) -> StatusStore:
    return StatusStore(DynamoStatusTable(org.management.client("dynamodb"), org.status_table))


def test_given_a_batch_of_statuses_then_one_transaction_writes_them_all(org: Org):
    updates = [StatusUpdate(a, Status.APPLIED, "10", desired=Decimal(5), applied=Decimal(5)) for a in SPOKES]

    assert store(org).record_many(updates) == []

    assert [org.status(a)["Status"] for a in SPOKES] == ["APPLIED"] * 3  # type: ignore[index]


def test_given_a_newer_status_for_one_account_then_it_is_kept_and_the_others_are_written(org: Org):
    store(org).record(StatusUpdate(A, Status.APPLIED, "900", desired=Decimal(9), applied=Decimal(9)))

    failed = store(org).record_many(
        [
            StatusUpdate(A, Status.FAILED, "100", reason="older"),
            StatusUpdate(B, Status.APPLIED, "101", desired=Decimal(1), applied=Decimal(1)),
        ]
    )

    assert failed == []
    assert org.status(A)["AppliedValue"] == Decimal(9)  # type: ignore[index]
    assert org.status(A)["Status"] == "APPLIED"  # type: ignore[index]
    assert org.status(B)["Status"] == "APPLIED"  # type: ignore[index]


def test_given_a_cancelled_transaction_then_the_adapter_names_the_statuses_that_cancelled_it(org: Org):
    # GIVEN a newer status for B
    store(org).record(StatusUpdate(B, Status.APPLIED, "900", desired=Decimal(9), applied=Decimal(9)))
    table = DynamoStatusTable(org.management.client("dynamodb"), org.status_table)

    # WHEN A, B (older than its status) and C are written in one transaction
    refused = table.write_all([StatusUpdate(a, Status.UNMANAGED, "5") for a in (A, B, C)])

    # THEN it was cancelled by B alone (DynamoDB's CancellationReasons), and nothing was written
    assert refused == [1]
    assert org.status(A) is None
    assert org.status(B)["Status"] == "APPLIED"  # type: ignore[index]


def test_given_the_table_is_missing_then_every_account_of_the_batch_is_reported_for_retry(org: Org):
    org.management.client("dynamodb").delete_table(TableName=org.status_table)

    failed = store(org).record_many([StatusUpdate(a, Status.UNMANAGED, "5") for a in SPOKES])

    assert sorted(failed) == sorted(SPOKES)


def test_sequence_numbers_of_different_lengths_compare_in_stream_order(org: Org):
    store(org).record(StatusUpdate(C, Status.APPLIED, "99", applied=Decimal(1)))
    assert store(org).record(StatusUpdate(C, Status.FAILED, "100", reason="newer")) is True
    assert store(org).record(StatusUpdate(C, Status.APPLIED, "98", applied=Decimal(2))) is False
    assert org.status(C)["Status"] == "FAILED"  # type: ignore[index]
