"""The approval rule, its settings, and the stream function's gate, with in-memory adapters."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from budget_sync.approvals import SOURCE, ApprovalGate, ApprovalRule, State, request_id
from budget_sync.config import ApprovalSettings
from budget_sync.errors import ConfigError
from budget_sync.reconcile import AccountReport, Action, Drift, did_not_hold, status_update
from budget_sync.status import Status, StatusUpdate
from budget_sync.update import BudgetSync, Outcome, StreamRecord
from tests.fakes import FakeApprovalTable, FakeRequestTable, FakeSpokes, FakeStatus

A, B = "111111111111", "222222222222"
D = Decimal
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("rule", "current", "new", "needs"),
    [
        (ApprovalRule(amount=D(500)), D(1000), D(1500), False),  # exactly the amount: within
        (ApprovalRule(amount=D(500)), D(1000), D("1500.01"), True),
        (ApprovalRule(amount=D(500)), D(1000), D(200), False),  # a decrease
        (ApprovalRule(amount=D(500)), None, D(500), False),  # a first value, judged from 0
        (ApprovalRule(amount=D(500)), None, D(501), True),
        (ApprovalRule(percent=D(20)), D(1000), D(1200), False),
        (ApprovalRule(percent=D(20)), D(1000), D("1200.01"), True),
        (ApprovalRule(percent=D(20)), None, D(999999), False),  # no current value: no percentage
        (ApprovalRule(amount=D(500), percent=D(20)), D(1000), D(1300), True),  # either part
        (ApprovalRule(amount=D(500), percent=D(20)), D(10000), D(10600), True),
        (ApprovalRule(amount=D(500), percent=D(20)), D(10000), D(10400), False),
        (ApprovalRule(), D(1), D(1000000), False),  # no rule
    ],
)
def test_given_a_rule_when_a_value_is_judged_then_only_increases_beyond_it_need_approval(
    rule: ApprovalRule, current: Decimal | None, new: Decimal, needs: bool
):
    assert rule.needs_approval(current, new) is needs


def test_given_a_rule_then_it_is_described_for_people():
    rule = ApprovalRule(amount=D("500.50"), percent=D("12.50"))
    assert rule.describe() == "an increase of more than 500.5 USD or more than 12.5% of the current value"


def test_given_no_threshold_then_the_settings_have_no_rule_and_need_no_table():
    settings = ApprovalSettings.from_env({})
    assert not settings.active
    assert settings.expiry == timedelta(hours=72)


def test_given_thresholds_then_the_settings_hold_them():
    settings = ApprovalSettings.from_env(
        {
            "APPROVAL_THRESHOLD_AMOUNT": "500",
            "APPROVAL_THRESHOLD_PERCENT": "12.5",
            "APPROVAL_REQUESTS_TABLE_NAME": "BlogBudgetsApprovalRequests",
            "APPROVALS_TABLE_NAME": "BlogBudgetsApprovals",
            "APPROVAL_EXPIRY_HOURS": "24",
        }
    )
    assert (settings.amount, settings.percent, settings.requests_table_name, settings.expiry) == (
        D(500),
        D("12.5"),
        "BlogBudgetsApprovalRequests",
        timedelta(hours=24),
    )
    assert settings.approvals_table_name == "BlogBudgetsApprovals"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"APPROVAL_THRESHOLD_AMOUNT": "-5"}, "APPROVAL_THRESHOLD_AMOUNT has an invalid value '-5'"),
        ({"APPROVAL_THRESHOLD_AMOUNT": "0"}, "APPROVAL_THRESHOLD_AMOUNT has an invalid value '0'"),
        ({"APPROVAL_THRESHOLD_PERCENT": "1e3"}, "APPROVAL_THRESHOLD_PERCENT has an invalid value '1e3'"),
        ({"APPROVAL_THRESHOLD_AMOUNT": "5"}, "APPROVAL_REQUESTS_TABLE_NAME is not set"),
        ({"APPROVAL_EXPIRY_HOURS": "0"}, "APPROVAL_EXPIRY_HOURS '0'"),
    ],
)
def test_given_a_bad_setting_then_the_error_names_the_variable_and_value(env: dict[str, str], named: str):
    with pytest.raises(ConfigError, match=named.replace("(", r"\(")):
        ApprovalSettings.from_env(env)


# -- the gate in the stream function ------------------------------------------------------


def upsert(seq: int, account: str, value: object, old: object = None, **extra: object) -> StreamRecord:
    new_image = {"AccountId": account, "BudgetValue": value, **extra}
    old_image = None if old is None else {"AccountId": account, "BudgetValue": old}
    return StreamRecord(
        "INSERT" if old is None else "MODIFY", str(seq), {"AccountId": account}, new_image, old_image
    )


def applied(status: FakeStatus, account: str, value: int) -> None:
    status.record(StatusUpdate(account, Status.APPLIED, "1", desired=D(value), applied=D(value)))


def sync(
    status: FakeStatus,
    spokes: FakeSpokes,
    requests: FakeRequestTable,
    amount: int = 500,
    approvals: FakeApprovalTable | None = None,
    now: datetime = NOW,
) -> BudgetSync:
    gate = ApprovalGate(
        ApprovalRule(amount=D(amount)), requests, timedelta(hours=72), clock=lambda: now, approvals=approvals
    )
    return BudgetSync(spokes, status, 10, approvals=gate)  # type: ignore[arg-type]


def test_given_a_raise_above_the_rule_then_it_is_not_sent_and_one_request_holds_it():
    status, spokes, requests = FakeStatus(), FakeSpokes(), FakeRequestTable()
    applied(status, A, 1000)

    result = sync(status, spokes, requests).process([upsert(5, A, 5000, 1000, UpdatedBy="arn:alice")])

    assert result.outcomes[Outcome.PENDING_APPROVAL] == 1
    assert not result.retry_sequence_numbers
    assert spokes.writes == []  # the spoke keeps its budget
    rid = request_id(A, D(5000), "5")
    assert requests.items[rid]["RequestedBy"] == "arn:alice"
    assert requests.items[rid]["ExpiresAt"] == int((NOW + timedelta(hours=72)).timestamp())
    row = status.rows[A]
    assert (row.status, row.source, row.desired, row.applied) == (Status.FAILED, SOURCE, D(5000), None)
    assert rid in row.reason
    assert f"budgetctl approve {rid}" in row.reason
    assert "1000" in row.reason


def test_given_a_record_delivered_twice_then_one_request_exists():
    status, spokes, requests = FakeStatus(), FakeSpokes(), FakeRequestTable()
    applied(status, A, 1000)
    service = sync(status, spokes, requests)

    service.process([upsert(5, A, 5000, 1000)])
    service.process([upsert(5, A, 5000, 1000)])

    assert len(requests.items) == 1
    assert len(requests.creates) == 2
    assert spokes.writes == []


def test_given_a_held_value_when_a_small_step_follows_then_it_is_judged_against_the_applied_value():
    # GIVEN 1000 applied and 5000 held; WHEN 5100 is written (OldImage 5000: +100)
    status, spokes, requests = FakeStatus(), FakeSpokes(), FakeRequestTable()
    applied(status, A, 1000)
    service = sync(status, spokes, requests)
    service.process([upsert(5, A, 5000, 1000)])

    result = service.process([upsert(6, A, 5100, 5000)])

    # THEN it is held too: the applied value is 1000, not the OldImage's 5000
    assert result.outcomes[Outcome.PENDING_APPROVAL] == 1
    assert spokes.writes == []
    assert len(requests.items) == 2


def test_given_two_small_steps_in_one_batch_then_their_sum_is_judged():
    status, spokes, requests = FakeStatus(), FakeSpokes(), FakeRequestTable()
    applied(status, A, 1000)

    sync(status, spokes, requests).process([upsert(5, A, 1400, 1000), upsert(6, A, 1800, 1400)])

    assert spokes.writes == []
    assert status.rows[A].source == SOURCE


def test_given_decreases_and_raises_within_the_rule_then_they_flow_as_before():
    status, spokes, requests = FakeStatus(), FakeSpokes(), FakeRequestTable()
    applied(status, A, 1000)
    applied(status, B, 1000)

    result = sync(status, spokes, requests).process([upsert(5, A, 1500, 1000), upsert(6, B, 10, 1000)])

    assert result.outcomes[Outcome.APPLIED] == 2
    assert sorted(spokes.writes) == [(A, "1500"), (B, "10")]
    assert requests.items == {}


def test_given_the_requests_table_fails_then_the_record_is_retried_not_sent():
    status, spokes = FakeStatus(), FakeSpokes()
    applied(status, A, 1000)

    result = sync(status, spokes, FakeRequestTable(fail=True)).process([upsert(5, A, 5000, 1000)])

    assert result.retry_sequence_numbers == {"5"}
    assert spokes.writes == []


# -- an approval carried by the item (budgetctl approve) -----------------------------------

ALICE, BOB = "arn:aws:sts::1:assumed-role/Operator/alice", "arn:aws:sts::1:assumed-role/Approver/bob"
BOB_ID = "AROAAPPROVER:bob"


def held_request(status: FakeStatus, requests: FakeRequestTable, approvals: FakeApprovalTable) -> str:
    """A's 1000 applied, 5000 asked by alice and held; returns the request's id."""
    applied(status, A, 1000)
    sync(status, FakeSpokes(), requests, approvals=approvals).process(
        [upsert(5, A, 5000, 1000, UpdatedBy=ALICE)]
    )
    return request_id(A, D(5000), "5")


def approve(seq: int, rid: str, by: str = BOB_ID) -> StreamRecord:
    """The record of budgetctl approve's write: the same value, ApprovalId and ApprovedBy set."""
    return upsert(seq, A, 5000, 5000, UpdatedBy=ALICE, ApprovalId=rid, ApprovedBy=by)


def test_given_an_approved_request_when_the_item_carries_it_then_the_value_is_sent_once():
    status, spokes, requests, approvals = FakeStatus(), FakeSpokes(), FakeRequestTable(), FakeApprovalTable()
    rid = held_request(status, requests, approvals)
    approvals.add(BOB_ID, rid, BOB)
    requests.decide(rid, State.APPROVED)
    service = sync(status, spokes, requests, approvals=approvals)

    result = service.process([approve(7, rid)])
    service.process([approve(7, rid)])  # delivered twice

    assert result.outcomes[Outcome.APPLIED] == 1
    assert spokes.writes == [(A, "5000")]  # the duplicate: 5000 is applied now, nothing to send
    assert requests.items[rid]["State"] == State.APPLIED
    assert status.rows[A].status is Status.SENT


@pytest.mark.parametrize(
    ("setup", "why"),
    [
        ("pending", "is PENDING, not APPROVED"),
        ("rejected", "is REJECTED, not APPROVED"),
        ("self", "approved by its own requester"),
        ("no approval item", "no approval of"),
        ("expired", "has expired"),
        ("other value", "is for 5000 USD, the item asks for 6000"),
    ],
)
def test_given_an_approval_that_does_not_hold_then_the_value_stays_held_with_the_reason(setup: str, why: str):
    status, spokes, requests, approvals = FakeStatus(), FakeSpokes(), FakeRequestTable(), FakeApprovalTable()
    rid = held_request(status, requests, approvals)
    if setup != "no approval item":
        approvals.add(BOB_ID, rid, ALICE if setup == "self" else BOB)
    requests.decide(rid, {"pending": State.PENDING, "rejected": State.REJECTED}.get(setup, State.APPROVED))
    now = NOW + timedelta(hours=73) if setup == "expired" else NOW
    record = approve(7, rid)
    if setup == "other value":
        record = upsert(7, A, 6000, 5000, UpdatedBy=ALICE, ApprovalId=rid, ApprovedBy=BOB_ID)

    result = sync(status, spokes, requests, approvals=approvals, now=now).process([record])

    assert result.outcomes[Outcome.PENDING_APPROVAL] == 1
    assert spokes.writes == []
    assert status.rows[A].source == SOURCE
    assert why in status.rows[A].reason
    assert requests.items[rid]["State"] != State.APPLIED


def test_given_an_approval_used_once_when_the_value_comes_back_later_then_it_needs_a_new_one():
    status, spokes, requests, approvals = FakeStatus(), FakeSpokes(), FakeRequestTable(), FakeApprovalTable()
    rid = held_request(status, requests, approvals)
    approvals.add(BOB_ID, rid, BOB)
    requests.decide(rid, State.APPROVED)
    service = sync(status, spokes, requests, approvals=approvals)
    service.process([approve(7, rid)])
    service.process([upsert(8, A, 1000, 5000, ApprovalId=rid, ApprovedBy=BOB_ID)])  # back down: flows

    # WHEN 5000 is written again, the item still carrying the old ApprovalId
    result = service.process([upsert(9, A, 5000, 1000, ApprovalId=rid, ApprovedBy=BOB_ID)])

    assert result.outcomes[Outcome.PENDING_APPROVAL] == 1
    assert spokes.writes == [(A, "5000"), (A, "1000")]
    assert "was used already" in status.rows[A].reason


def test_the_approver_policy_in_the_docs_is_the_one_the_local_organisation_gives_its_approver_role():
    import json
    from pathlib import Path

    from budget_sync_local.operator_policy import approver_policy

    text = (Path(__file__).parents[2] / "docs" / "operate.md").read_text()
    block = text.split("### The IAM setup that makes", 1)[1].split("```json\n", 1)[1].split("```", 1)[0]
    assert json.loads(block) == approver_policy({}, "<region>", "<account>")


# -- the reconciler leaves a held value alone -----------------------------------------------


@pytest.mark.parametrize("parameter_version", [3, None])  # None: the spoke has no parameter yet
def test_given_a_held_value_then_the_reconciler_does_not_repair_it_and_keeps_the_status(
    parameter_version: int | None,
):
    held = {
        "Status": "FAILED",
        "Source": SOURCE,
        "DesiredValue": D(5000),
        "Reason": "approval needed: ...",
        "SequenceNumber": "7".zfill(40),
    }
    report = AccountReport(A, Drift.PARAMETER_DRIFT, desired=D(5000), parameter_version=parameter_version)

    assert did_not_hold(report, held) == "approval needed: ..."
    # a newer desired value is the stream's to judge: the held one's reason does not stop it
    assert (
        did_not_hold(AccountReport(A, Drift.PARAMETER_DRIFT, desired=D(1200), parameter_version=3), held)
        == ""
    )
    # reported FAILED with the status's own reason: no status write
    failed = replace(report, action=Action.FAILED, reason=did_not_hold(report, held))
    assert status_update(failed, held) is None
