"""An operator's repair request to the reconciler (budget_sync.requested): the event's fields
checked, who asked turned into the spoke session name, and each account's outcome as the
response carries it. Pure."""

from __future__ import annotations

from decimal import Decimal

import pytest

from budget_sync.errors import InvalidItemError
from budget_sync.reconcile import AccountReport, Action, Drift
from budget_sync.requested import MAX_ACCOUNTS, RepairRequest, parse_request, report_fields
from tests.fakes import usd

A = "111111111111"
ALICE = "arn:aws:sts::123456789012:assumed-role/Ops/alice"


def test_a_scheduled_event_is_no_request():
    assert parse_request({"source": "aws.scheduler"}) is None
    assert parse_request({}) is None


def test_a_request_names_the_accounts_and_who_asked():
    assert parse_request({"Accounts": [A], "RequestedBy": ALICE}) == RepairRequest((A,), ALICE)
    assert parse_request({"RequestedBy": ALICE}) == RepairRequest((), ALICE)  # every account


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"Accounts": [A]}, "RequestedBy"),
        ({"Accounts": [A], "RequestedBy": "alice"}, "RequestedBy"),
        ({"Accounts": A, "RequestedBy": ALICE}, "Accounts"),
        ({"Accounts": [A] * (MAX_ACCOUNTS + 1), "RequestedBy": ALICE}, "Accounts"),
        ({"Accounts": ["12"], "RequestedBy": ALICE}, "AccountId"),
    ],
)
def test_a_malformed_request_is_refused_naming_the_field(event: dict[str, object], field: str):
    with pytest.raises(InvalidItemError) as raised:
        parse_request(event)
    assert raised.value.field == field


def test_the_session_name_says_whose_request_the_write_was_within_stss_limits():
    assert RepairRequest((), ALICE).session_name == "budget-sync-for-alice"
    odd = RepairRequest((), "arn:aws:sts::123456789012:assumed-role/Ops/a b:c" + "x" * 80)
    assert odd.session_name.startswith("budget-sync-for-a-b-c")
    assert len(odd.session_name) == 64


def test_report_fields_carry_each_accounts_outcome_as_text():
    report = AccountReport(
        A,
        Drift.BUDGET_DRIFT,
        desired=Decimal("1000.5"),
        reason="budget limit 1500 differs from desired 1000.50",
        parameter="1000.50",
        budget=usd(1500),
        action=Action.REPAIRED,
    )
    assert report_fields(report) == {
        "AccountId": A,
        "Desired": "1000.5",
        "Parameter": "1000.50",
        "BudgetLimit": "1500",
        "Drift": "BUDGET_DRIFT",
        "Action": "REPAIRED",
        "Reason": "budget limit 1500 differs from desired 1000.50",
    }
    quiet = report_fields(AccountReport(A, Drift.IN_SYNC))
    assert (quiet["Desired"], quiet["Action"], quiet["Reason"]) == (None, None, None)
