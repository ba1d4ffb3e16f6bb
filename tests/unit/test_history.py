"""Every change's history (budget_sync.history): what each stream record appends, who it names,
and that duplicated and unordered delivery writes each record exactly once. Fakes only."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer

from budget_sync.config import HistorySettings
from budget_sync.errors import UnrecognisedEvent
from budget_sync.handlers.history import append
from budget_sync.history import (
    NOT_RECORDED,
    REMOVAL_NOT_RECORDED,
    Kind,
    Provenance,
    Stream,
    append_batch,
    from_approvals_record,
    from_defaults_record,
    from_requests_record,
    from_status_record,
    numbered,
    provenance,
    settled_changes,
)
from budget_sync.status import Status
from budget_sync.update import BudgetSync, StreamRecord
from tests.fakes import FakeHistoryTable, FakeSpokes, FakeStatus

A = "111111111111"
ALICE = "arn:aws:sts::123456789012:assumed-role/Ops/alice"
BOB = "arn:aws:sts::123456789012:assumed-role/Ops/bob"
STATUS_ARN = "arn:aws:dynamodb:eu-west-1:123456789012:table/BlogBudgetsStatus/stream/2026-01-01T00:00:00.000"
DEFAULTS_ARN = (
    "arn:aws:dynamodb:eu-west-1:123456789012:table/BlogBudgetsDefaults/stream/2026-01-01T00:00:00.000"
)
REQUESTS_ARN = STATUS_ARN.replace("BlogBudgetsStatus", "BlogBudgetsApprovalRequests")
APPROVALS_ARN = STATUS_ARN.replace("BlogBudgetsStatus", "BlogBudgetsApprovals")
SETTINGS = HistorySettings(
    "BlogBudgetsHistory",
    "BlogBudgetsStatus",
    "BlogBudgetsDefaults",
    400,
    "BlogBudgetsApprovalRequests",
    "BlogBudgetsApprovals",
)
_typed = TypeSerializer().serialize


def stream_record(
    sequence: int,
    new: dict[str, Any] | None,
    old: dict[str, Any] | None = None,
    *,
    arn: str = STATUS_ARN,
    at: int = 1_780_000_000,
) -> dict[str, Any]:
    """A stream record as Lambda delivers it (typed images)."""
    data: dict[str, Any] = {"SequenceNumber": str(sequence), "ApproximateCreationDateTime": at}
    if new is not None:
        data["NewImage"] = {k: _typed(v) for k, v in new.items()}
    if old is not None:
        data["OldImage"] = {k: _typed(v) for k, v in old.items()}
    name = "MODIFY" if new and old else "INSERT" if new else "REMOVE"
    return {
        "eventID": f"e{sequence}",
        "eventName": name,
        "eventSource": "aws:dynamodb",
        "eventSourceARN": arn,
        "dynamodb": data,
    }


def sent(sequence: str, value: str, previous: str, by: str = ALICE, via: str = "item") -> dict[str, Any]:
    item = {
        "AccountId": A,
        "Status": "SENT",
        "Source": "stream",
        "SequenceNumber": sequence.zfill(40),
        "Reason": "",
        "ChangedFrom": previous,
        "ChangedTo": value,
        "ChangedBy": by,
        "ChangedAt": "2026-06-01T10:00:00.000+00:00",
        "ChangedVia": via,
    }
    return {**item, "DesiredValue": Decimal(value)} if value else item


# Provenance: who, from, to, through which path


def test_given_a_budgetctl_write_when_read_then_its_principal_is_recorded():
    old = {"AccountId": A, "BudgetValue": Decimal(100), "UpdatedBy": BOB, "UpdatedAt": "t1"}
    new = {"AccountId": A, "BudgetValue": Decimal(120), "UpdatedBy": ALICE, "UpdatedAt": "t2"}
    assert provenance(new, old) == Provenance("100", "120", ALICE, "t2", "item")


def test_given_a_write_from_outside_budgetctl_when_read_then_the_last_writer_is_not_named():
    # aws dynamodb update-item changed the value and left bob's UpdatedBy/UpdatedAt in place
    old = {"AccountId": A, "BudgetValue": Decimal(100), "UpdatedBy": BOB, "UpdatedAt": "t1"}
    new = {"AccountId": A, "BudgetValue": Decimal(900), "UpdatedBy": BOB, "UpdatedAt": "t1"}
    origin = provenance(new, old)
    assert (origin.by, origin.previous, origin.requested) == ("", "100", "900")
    assert provenance({"AccountId": A, "BudgetValue": Decimal(5)}, None).by == ""


def test_given_an_inherited_item_when_read_then_it_came_through_its_default():
    new = {
        "AccountId": A,
        "BudgetValue": Decimal(300),
        "InheritedFrom": "ou-ab12-cdefgh34",
        "InheritedValue": Decimal(300),
        "UpdatedBy": "arn:aws:sts::123456789012:assumed-role/resolver/x",
        "UpdatedAt": "t3",
    }
    assert provenance(new, None).via == "ou-ab12-cdefgh34"
    assert provenance({**new, "BudgetValue": Decimal(301)}, None).via == "item"  # someone else's value


def test_given_a_batch_of_changes_when_the_update_function_settles_it_then_its_status_carries_the_change():
    # WHEN 100 -> 200 (alice) and 200 -> 250 (bob) arrive in one batch
    records = [
        StreamRecord(
            "MODIFY",
            "1",
            {"AccountId": A},
            {"AccountId": A, "BudgetValue": Decimal(200), "UpdatedBy": ALICE, "UpdatedAt": "t2"},
            {"AccountId": A, "BudgetValue": Decimal(100), "UpdatedBy": BOB, "UpdatedAt": "t1"},
        ),
        StreamRecord(
            "MODIFY",
            "2",
            {"AccountId": A},
            {"AccountId": A, "BudgetValue": Decimal(250), "UpdatedBy": BOB, "UpdatedAt": "t3"},
            {"AccountId": A, "BudgetValue": Decimal(200), "UpdatedBy": ALICE, "UpdatedAt": "t2"},
        ),
    ]
    status = FakeStatus()
    BudgetSync(FakeSpokes(), status).process(records)  # type: ignore[arg-type]
    # THEN one status, from the first old value to the last new one, by the last writer
    assert status.rows[A].change == Provenance("100", "250", BOB, "t3", "item")


def test_given_a_refused_value_when_settled_then_its_failed_status_carries_the_value_as_typed():
    record = StreamRecord(
        "MODIFY",
        "7",
        {"AccountId": A},
        {"AccountId": A, "BudgetValue": Decimal("12.345")},
        {"AccountId": A, "BudgetValue": Decimal(100)},
    )
    status = FakeStatus()
    BudgetSync(FakeSpokes(), status).process([record])  # type: ignore[arg-type]
    assert status.rows[A].status is Status.FAILED
    assert status.rows[A].change == Provenance("100", "12.345", "", "", "item")


# The status table's stream: which write is which record


def test_given_the_update_functions_sent_when_mapped_then_it_is_a_change_with_who_and_path():
    history = from_status_record(
        stream_record(5, sent("9", "120", "100"), {"AccountId": A, "Status": "APPLIED"})
    )
    assert history is not None
    assert (history.kind, history.status, history.previous, history.value, history.by) == (
        Kind.CHANGED,
        "SENT",
        "100",
        "120",
        ALICE,
    )
    assert history.change() == "100 -> 120 (own item)"
    assert history.at == "2026-05-28T20:26:40+00:00"


def test_given_a_change_from_outside_budgetctl_when_shown_then_it_says_so():
    history = from_status_record(stream_record(5, sent("9", "900", "100", by="")))
    assert history is not None
    assert history.who() == NOT_RECORDED


def test_given_a_default_reaching_the_account_when_mapped_then_the_path_is_the_default():
    history = from_status_record(stream_record(5, sent("9", "300", "", via="ou-ab12-cdefgh34")))
    assert history is not None
    assert history.change() == "none -> 300 (default of ou-ab12-cdefgh34)"


def test_given_a_refused_value_when_mapped_then_it_is_a_change_that_failed_with_the_reason():
    new = {
        **sent("9", "12.345", "100"),
        "Status": "FAILED",
        "Reason": "BudgetValue 12.345 has more than two decimals",
    }
    history = from_status_record(stream_record(5, new, sent("8", "100", "90")))
    assert history is not None
    assert (history.kind, history.value) == (Kind.CHANGED, "12.345")
    assert history.outcome() == "FAILED: BudgetValue 12.345 has more than two decimals"


def test_given_the_spokes_report_when_mapped_then_it_is_an_outcome_by_the_spoke():
    old = sent("9", "120", "100")
    new = {**old, "Status": "APPLIED", "Source": "spoke", "ConfirmedVersion": 3}
    history = from_status_record(stream_record(6, new, old))
    assert history is not None
    assert (history.kind, history.status, history.by, history.value) == (
        Kind.OUTCOME,
        "APPLIED",
        "budget-sync (spoke)",
        "120",
    )


def test_given_a_report_held_before_its_sent_when_mapped_then_there_is_nothing_to_record():
    old = sent("9", "120", "100")
    new = {**old, "ConfirmedVersion": 4, "SpokeOutcome": "APPLIED"}  # status unchanged
    assert from_status_record(stream_record(6, new, old)) is None


def test_given_a_reconciler_repair_when_mapped_then_it_is_a_repair_by_who_asked():
    old = {**sent("9", "120", "100"), "Status": "APPLIED", "Source": "spoke"}
    new = {
        **old,
        "Status": "SENT",
        "Source": "reconciler",
        "RepairedVersion": 5,
        "RequestedBy": BOB,
        "Reason": "repaired by the reconciler: the parameter held 99",
    }
    history = from_status_record(stream_record(7, new, old))
    assert history is not None
    assert (history.kind, history.by, history.change()) == (
        Kind.REPAIRED,
        BOB,
        "repaired to 120 (reconciler repair)",
    )
    scheduled = {k: v for k, v in new.items() if k != "RequestedBy"}
    assert from_status_record(stream_record(7, scheduled, old)).by == "budget-sync reconciler (schedule)"  # type: ignore[union-attr]


def test_given_a_removed_item_when_mapped_then_it_is_a_removal_whose_principal_is_not_recorded():
    new = {**sent("9", "", "120", by=""), "Status": "UNMANAGED"}
    history = from_status_record(stream_record(8, new, sent("8", "120", "100")))
    assert history is not None
    assert history.kind is Kind.REMOVED
    assert history.change() == "120 -> removed (own item)"
    assert history.who().startswith("not recorded")


# The defaults table's stream


def test_given_a_default_set_changed_and_removed_when_mapped_then_each_is_recorded_under_its_target():
    ou = "ou-ab12-cdefgh34"
    v1 = {"TargetId": ou, "BudgetValue": Decimal(300), "UpdatedBy": ALICE, "UpdatedAt": "t1"}
    v2 = {**v1, "BudgetValue": Decimal(350), "UpdatedAt": "t2"}
    set_ = from_defaults_record(stream_record(1, v1, arn=DEFAULTS_ARN))
    changed = from_defaults_record(stream_record(2, v2, v1, arn=DEFAULTS_ARN))
    removed = from_defaults_record(stream_record(3, None, v2, arn=DEFAULTS_ARN))
    assert set_ is not None
    assert changed is not None
    assert removed is not None
    assert [r.kind for r in (set_, changed, removed)] == [
        Kind.DEFAULT_SET,
        Kind.DEFAULT_SET,
        Kind.DEFAULT_REMOVED,
    ]
    assert {r.subject for r in (set_, changed, removed)} == {ou}
    assert changed.change() == "300 -> 350 (ou-ab12-cdefgh34)"
    assert changed.by == ALICE
    assert from_defaults_record(stream_record(4, {**v2, "Note": "x"}, v2, arn=DEFAULTS_ARN)) is None
    assert from_defaults_record(stream_record(5, {"TargetId": ou}, arn=DEFAULTS_ARN)) is None  # no value


# Delivery: at least once, in no order


def _story() -> list[dict[str, Any]]:
    first = sent("1", "100", "")
    second = sent("2", "120", "100", by=BOB)
    applied = {**second, "Status": "APPLIED", "Source": "spoke"}
    return [
        stream_record(1, first, at=1_780_000_000),
        stream_record(2, {**first, "Status": "APPLIED", "Source": "spoke"}, first, at=1_780_000_010),
        stream_record(3, second, {**first, "Status": "APPLIED", "Source": "spoke"}, at=1_780_000_020),
        stream_record(4, applied, second, at=1_780_000_030),
    ]


def test_given_every_record_delivered_twice_in_no_order_when_appended_then_each_is_written_once():
    story = _story()
    table = FakeHistoryTable()
    deliveries = story * 3
    random.Random(7).shuffle(deliveries)  # noqa: S311 - a fixed delivery order, not a secret
    for start in range(0, len(deliveries), 5):  # batches of five, concurrently in no order
        batch = {"Records": deliveries[start : start + 5]}
        assert append(batch, table, SETTINGS) == {"batchItemFailures": []}
    assert len(table.records) == len(story)
    newest_first = numbered(table.of_subject(A))
    assert [(n, r.kind.value, r.status) for n, r in newest_first] == [
        (4, "OUTCOME", "APPLIED"),
        (3, "CHANGED", "SENT"),
        (2, "OUTCOME", "APPLIED"),
        (1, "CHANGED", "SENT"),
    ]


def test_given_a_record_that_cannot_be_written_when_appended_then_lambda_retries_from_it():
    story = _story()
    table = FakeHistoryTable(failures={A})
    answer = append({"Records": story}, table, SETTINGS)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "1"}]}
    assert table.attempts == 1  # nothing after it was tried: order is kept
    table.failures.clear()
    assert append({"Records": story}, table, SETTINGS) == {"batchItemFailures": []}
    assert len(table.records) == 4


def test_given_defaults_and_status_records_in_one_function_when_appended_then_each_goes_to_its_mapper():
    default = {"TargetId": "ou-ab12-cdefgh34", "BudgetValue": Decimal(300)}
    table = FakeHistoryTable()
    append({"Records": [stream_record(9, default, arn=DEFAULTS_ARN)]}, table, SETTINGS)
    assert [r.kind for r in table.records.values()] == [Kind.DEFAULT_SET]
    outcome = append_batch([(Stream.STATUS, stream_record(9, sent("9", "5", "")))], table)
    assert outcome.appended == 1  # same sequence number, other stream: its own record


@pytest.mark.parametrize(
    "event",
    [
        {"Records": [stream_record(1, sent("1", "5", ""), arn=STATUS_ARN.replace("Status/", "Other/"))]},
        {"Records": [{"eventSource": "aws:sqs"}]},
        {"Records": []},
        {"source": "aws.events"},
    ],
)
def test_given_an_event_from_another_source_when_invoked_then_it_is_rejected(event: dict[str, Any]):
    with pytest.raises(UnrecognisedEvent):
        append(event, FakeHistoryTable(), SETTINGS)


def test_given_changes_and_their_outcomes_when_settled_then_each_change_has_its_last_outcome():
    table = FakeHistoryTable()
    for raw in _story():
        append({"Records": [raw]}, table, SETTINGS)
    refused = {**sent("5", "12.345", "120"), "Status": "FAILED", "Reason": "BudgetValue 12.345 has more"}
    append({"Records": [stream_record(5, refused, at=1_780_000_040)]}, table, SETTINGS)
    settled = settled_changes(table.records.values())
    assert [(s.change.value, s.status, s.reason) for s in settled] == [
        ("12.345", "FAILED", "BudgetValue 12.345 has more"),
        ("120", "APPLIED", ""),
        ("100", "APPLIED", ""),
    ]


def test_given_a_demo_history_missing_its_steps_then_the_demo_names_each_missing_one():
    from budget_sync_local.__main__ import _history_problems

    assert _history_problems([]) == [
        "333333333333's history lacks the refused value",
        "333333333333's history lacks the repair",
        "333333333333's history lacks Sandbox's default",
        "333333333333's history lacks its own item set by the operators' role",
    ]


def test_given_an_alerts_only_change_when_mapped_then_the_change_says_which_alert_settings_were_sent():
    old = {**sent("8", "120", "100"), "Status": "APPLIED", "AlertSettings": '{"emails":["a@example.com"]}'}
    new = {**sent("9", "120", "120"), "AlertSettings": '{"emails":["b@example.com"]}'}
    history = from_status_record(stream_record(9, new, old))
    assert history is not None
    assert history.change() == 'alerts {"emails":["b@example.com"]} (own item)'
    table = FakeHistoryTable()
    table.append(history)
    assert table.of_subject(A)[0].alerts == '{"emails":["b@example.com"]}'


# Approvals: the requests and approvals tables' streams

BOB_ID = "AROAEXAMPLEAPPROVER:bob"
RID = "REQ-0123456789ab"


def pending_request(requested_by: str = ALICE) -> dict[str, Any]:
    return {
        "RequestId": RID,
        "AccountId": A,
        "RequestedValue": Decimal(5000),
        "CurrentValue": Decimal(1000),
        "State": "PENDING",
        "RequestedBy": requested_by,
        "RequestedAt": "2026-06-01T10:00:00+00:00",
        "ExpiresAt": Decimal(1_780_259_200),
        "SequenceNumber": "7".zfill(40),
        "Rule": "an increase of more than 500 USD",
    }


def held_status(sequence: str = "7") -> dict[str, Any]:
    return {
        **sent(sequence, "5000", "1000"),
        "Status": "FAILED",
        "Source": "approval",
        "Reason": f"approval needed: 5000 USD (applied: 1000) ... Request {RID} is pending",
    }


def approval(decision: str) -> dict[str, Any]:
    return {
        "ApproverId": BOB_ID,
        "RequestId": RID,
        "Decision": decision,
        "ApproverArn": BOB,
        "AccountId": A,
        "RequestedValue": Decimal(5000),
        "DecidedAt": "2026-06-01T11:00:00+00:00",
    }


def ttl_removal(sequence: int, old: dict[str, Any], at: int) -> dict[str, Any]:
    """A REMOVE by DynamoDB's TTL: its userIdentity (AWS's DynamoDB guide, Streams and TTL)."""
    record = stream_record(sequence, None, old, arn=REQUESTS_ARN, at=at)
    record["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    return record


def test_given_a_held_value_when_mapped_then_the_request_is_the_change_by_its_requester_and_the_hold_its_outcome():
    table = FakeHistoryTable()
    batch_requests = {"Records": [stream_record(7, pending_request(), arn=REQUESTS_ARN)]}
    batch_status = {
        "Records": [stream_record(7, held_status(), {**sent("6", "1000", "500"), "Status": "APPLIED"})]
    }
    assert append(batch_requests, table, SETTINGS) == {"batchItemFailures": []}
    assert append(batch_status, table, SETTINGS) == {"batchItemFailures": []}
    newest_first = [r for _, r in numbered(table.of_subject(A))]
    assert [(r.kind, r.by) for r in newest_first] == [
        (Kind.OUTCOME, "budget-sync (approval)"),
        (Kind.REQUESTED, ALICE),
    ]
    requested = newest_first[1]
    assert requested.change() == f"1000 -> 5000 held for approval (request {RID})"
    (settled,) = settled_changes(table.records.values())
    assert settled.change.kind is Kind.REQUESTED  # one line: the request, held (FAILED) as its outcome
    assert (settled.status, settled.reason.startswith("approval needed:")) == ("FAILED", True)


def test_given_a_held_value_written_outside_budgetctl_when_mapped_then_its_requester_is_not_recorded():
    history = from_requests_record(stream_record(7, pending_request(requested_by=""), arn=REQUESTS_ARN))
    assert history is not None
    assert (history.kind, history.who()) == (Kind.REQUESTED, NOT_RECORDED)


@pytest.mark.parametrize(("decision", "kind"), [("APPROVED", Kind.APPROVED), ("REJECTED", Kind.REJECTED)])
def test_given_a_decision_when_mapped_then_it_is_by_the_approver_iam_proved(decision: str, kind: Kind):
    history = from_approvals_record(stream_record(8, approval(decision), arn=APPROVALS_ARN))
    assert history is not None
    assert (history.subject, history.kind, history.value, history.via) == (A, kind, "5000", RID)
    assert history.who() == f"{BOB} (aws:userid {BOB_ID})"
    assert history.change() == f"5000 {decision.lower()} (request {RID})"


def test_given_the_requests_decision_and_applied_modifies_when_mapped_then_they_are_not_second_lines():
    pending = pending_request()
    approved = {**pending, "State": "APPROVED", "DecidedBy": BOB, "DecidedAt": "2026-06-01T11:00:00+00:00"}
    applied = {**approved, "State": "APPLIED", "AppliedSequence": "9".zfill(40)}
    assert from_requests_record(stream_record(8, approved, pending, arn=REQUESTS_ARN)) is None
    assert from_requests_record(stream_record(9, applied, approved, arn=REQUESTS_ARN)) is None
    # a decision's MODIFY or REMOVE in the approvals table (no budget-sync path makes one): nothing
    assert from_approvals_record(stream_record(10, None, approval("APPROVED"), arn=APPROVALS_ARN)) is None


def test_given_a_pending_request_removed_when_mapped_then_ttl_is_expired_and_anyone_else_withdrawn():
    expired = from_requests_record(ttl_removal(11, pending_request(), at=1_780_259_300))
    assert expired is not None
    assert (expired.kind, expired.status, expired.value, expired.previous) == (
        Kind.EXPIRED,
        "EXPIRED",
        "5000",
        "1000",
    )
    assert expired.who() == "DynamoDB TTL (the request expired)"
    assert expired.change() == f"1000 -> 5000 expired, not sent (request {RID})"
    deleted = from_requests_record(stream_record(12, None, pending_request(), arn=REQUESTS_ARN))
    assert deleted is not None
    assert (deleted.kind, deleted.who()) == (Kind.WITHDRAWN, REMOVAL_NOT_RECORDED)
    # a request already APPLIED or REJECTED, removed by TTL: housekeeping, nothing to show
    for state in ("APPLIED", "REJECTED"):
        assert from_requests_record(ttl_removal(13, {**pending_request(), "State": state}, at=1)) is None


def test_given_every_approval_step_delivered_twice_in_no_order_when_appended_then_each_is_written_once():
    story = [
        stream_record(7, pending_request(), arn=REQUESTS_ARN, at=1_780_000_000),
        stream_record(7, held_status(), {**sent("6", "1000", "500"), "Status": "APPLIED"}, at=1_780_000_000),
        stream_record(8, approval("APPROVED"), arn=APPROVALS_ARN, at=1_780_000_100),
        stream_record(
            9, {**sent("9", "5000", "5000", by=BOB), "Status": "SENT"}, held_status(), at=1_780_000_100
        ),
    ]
    table = FakeHistoryTable()
    deliveries = story * 2
    random.Random(3).shuffle(deliveries)  # noqa: S311 - a fixed delivery order, not a secret
    for start in range(0, len(deliveries), 3):
        batch = {"Records": deliveries[start : start + 3]}
        assert append(batch, table, SETTINGS) == {"batchItemFailures": []}
    assert [r.kind for _, r in reversed(numbered(table.of_subject(A)))] == [
        Kind.REQUESTED,  # same second: requests before status (the request, then the hold)
        Kind.OUTCOME,
        Kind.APPROVED,  # same second: the decision before the value it sends
        Kind.CHANGED,
    ]


def test_given_a_cost_basis_change_when_mapped_then_the_change_names_the_metric_and_exclusions():
    old = {**sent("8", "120", "100"), "Status": "APPLIED", "AlertSettings": '{"metric":"unblended"}'}
    new = {**sent("9", "120", "120"), "AlertSettings": '{"exclude":["credits"],"metric":"amortized"}'}
    history = from_status_record(stream_record(9, new, old))
    assert history is not None
    assert history.change() == "cost basis amortized, excluding credits (own item)"
    emails = {**new, "AlertSettings": '{"emails":["a@example.com"],"exclude":[],"metric":"amortized"}'}
    with_alerts = from_status_record(stream_record(9, emails, old))
    assert with_alerts is not None
    assert (
        with_alerts.change()
        == 'alerts {"emails":["a@example.com"]}, cost basis amortized, excluding nothing (own item)'
    )


def test_given_a_parked_batch_trimmed_from_its_stream_when_reappended_then_it_is_counted_missing():
    from botocore.exceptions import ClientError

    from budget_sync.handlers.history import reappend

    class TrimmedStream:
        def get_shard_iterator(self, **_: Any) -> Any:
            raise ClientError(
                {"Error": {"Code": "TrimmedDataAccessException", "Message": "older than 24 hours"}},
                "GetShardIterator",
            )

    arn = "arn:aws:dynamodb:us-east-1:123456789012:table/BlogBudgetsStatus/stream/2026-12-01T00:00:00.000"
    info = {
        "streamArn": arn,
        "shardId": "shardId-1",
        "startSequenceNumber": "100",
        "endSequenceNumber": "200",
        "batchSize": 3,
    }
    table = FakeHistoryTable()

    answer = reappend(info, TrimmedStream(), table, SETTINGS)

    assert (answer["missing"], answer["appended"], answer["unreadable"]) == (
        3,
        0,
        "TrimmedDataAccessException",
    )
