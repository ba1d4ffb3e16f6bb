"""Parsing spoke results: text from another account is validated and bounded, never trusted."""

from __future__ import annotations

from typing import Any

import pytest

from budget_sync.results import MAX_TEXT, ExecutionEnded, InvalidResult, SpokeReport, parse_event
from budget_sync.status import Status

A = "111111111111"


def report(**detail: Any) -> dict[str, Any]:
    base = {
        "ExecutionId": "e",
        "ParameterVersion": 3,
        "Outcome": "APPLIED",
        "NewLimit": "555",
        "OldLimit": "1",
    }
    return {
        "source": "budget-sync.spoke",
        "detail-type": "Budget Update Result",
        "account": A,
        "detail": {**base, **detail},
    }


def test_a_report_names_the_account_of_the_envelope_not_of_its_detail():
    parsed = parse_event(report(AccountId="999999999999"))
    assert isinstance(parsed, SpokeReport)
    assert (parsed.account_id, parsed.parameter_version, parsed.outcome) == (A, 3, Status.APPLIED)


@pytest.mark.parametrize(
    ("detail", "field"),
    [
        ({"Outcome": "DONE"}, "Outcome"),
        ({"ParameterVersion": "3"}, "ParameterVersion"),
        ({"ParameterVersion": 0}, "ParameterVersion"),
        ({"NewLimit": "lots"}, "NewLimit"),
        ({"ExecutionId": ""}, "ExecutionId"),
    ],
)
def test_given_a_malformed_report_then_the_error_names_the_field(detail: dict[str, Any], field: str):
    with pytest.raises(InvalidResult, match=field):
        parse_event(report(**detail))


def test_a_spokes_reason_is_kept_as_bounded_text_without_control_characters():
    parsed = parse_event(report(Outcome="FAILED", Reason="\x1b[31m=cmd|' /C calc'!A0" + "x" * 5000))
    assert isinstance(parsed, SpokeReport)
    assert "\x1b" not in parsed.reason
    assert len(parsed.reason) == MAX_TEXT


def test_only_failed_timed_out_or_cancelled_executions_are_results():
    event = {
        "source": "aws.ssm",
        "detail-type": "EC2 Automation Execution Status-change Notification",
        "account": A,
        "detail": {"ExecutionId": "e", "Status": "Success"},
    }
    assert parse_event(event) is None
    event["detail"]["Status"] = "Cancelled"
    assert parse_event(event) == ExecutionEnded(A, "e", "Cancelled")


def test_an_event_of_another_source_is_refused():
    with pytest.raises(InvalidResult, match="source"):
        parse_event({**report(), "source": "someone.else"})
