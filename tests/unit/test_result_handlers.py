"""The result function's and the unconfirmed check's handlers on the in-memory status table:
the answer each gives for an event, from the store they are given. No AWS (their Lambda entry
points, on the local organisation: tests/e2e and tests/template/test_result_template.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from budget_sync.errors import UnrecognisedEvent
from budget_sync.handlers import results as results_handler
from budget_sync.handlers.notices import handler as notices_handler
from budget_sync.handlers.results import record
from budget_sync.handlers.unconfirmed import expire
from budget_sync.handlers.unconfirmed import handler as unconfirmed_handler
from budget_sync.results import ResultStore
from budget_sync.status import Status, StatusStore, StatusUpdate
from tests.fakes import FakeStatusTable

A = "111111111111"


def report(version: int, limit: str = "300", **detail: Any) -> dict[str, Any]:
    return {
        "id": "event-1",
        "source": "budget-sync.spoke",
        "detail-type": "Budget Update Result",
        "account": A,
        "detail": {
            "ExecutionId": "exec-1",
            "ParameterVersion": version,
            "Outcome": "APPLIED",
            "NewLimit": limit,
            **detail,
        },
    }


def with_sent(version: int = 4, value: int = 300) -> FakeStatusTable:
    table = FakeStatusTable()
    StatusStore(table).record(
        StatusUpdate(
            A, Status.SENT, "10", desired=Decimal(value), applied=Decimal(value), parameter_version=version
        )
    )
    return table


def test_a_report_is_recorded_and_answered_with_the_new_status():
    table = with_sent()

    assert record(report(4), ResultStore(table)) == {"recorded": True, "account": A, "status": "APPLIED"}
    assert table.item(A)["Status"] == "APPLIED"


def test_a_stale_report_is_answered_stale_and_writes_nothing():
    table = with_sent(version=5)

    assert record(report(4), ResultStore(table)) == {"recorded": False, "reason": "stale"}
    assert table.count("update_if") == 0


def test_an_invalid_result_is_answered_with_its_field_and_not_retried():
    table = with_sent()

    answer = record(report(4, limit="lots"), ResultStore(table))

    assert answer == {"recorded": False, "reason": "NewLimit 'lots' is not a number"}
    assert table.count("read") == 0


def test_a_report_too_far_ahead_is_an_invalid_result_and_poisons_nothing():
    table = with_sent(version=2)

    answer = record(report(40), ResultStore(table))

    assert answer["recorded"] is False
    assert "more than 10 versions ahead" in answer["reason"]
    assert table.item(A)["Status"] == "SENT"


def test_an_execution_notice_that_is_no_failure_is_answered_without_reading_the_table():
    table = FakeStatusTable()
    event = {
        "source": "aws.ssm",
        "detail-type": "EC2 Automation Execution Status-change Notification",
        "account": A,
        "detail": {"ExecutionId": "x", "Status": "Success"},
    }

    assert record(event, ResultStore(table)) == {"recorded": False, "reason": "not a terminal failure"}
    assert table.calls == []


def test_the_check_answers_with_the_accounts_it_failed():
    table = with_sent()
    table.put(A, SentAt="2020-01-01T00:00:00+00:00")

    assert expire(ResultStore(table), timedelta(minutes=15), datetime.now(UTC)) == {"expired": [A]}
    assert table.item(A)["Status"] == "FAILED"
    assert expire(ResultStore(table), timedelta(minutes=15), datetime.now(UTC)) == {"expired": []}


# The Lambda entry points the template names, given another source's event (no AWS is reached:
# the event is rejected before any client is built; the result function's store is the fake)

CONTEXT = SimpleNamespace(
    function_name="f",
    memory_limit_in_mb=128,
    invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:f",
    aws_request_id="request-1",
)
SCHEDULED = {"source": "aws.events", "detail-type": "Scheduled Event", "account": A, "detail": {}}


@pytest.mark.parametrize(
    ("handler", "event", "expected"),
    [
        (unconfirmed_handler, {"Records": []}, "is not a Scheduled Event from aws.events"),
        (unconfirmed_handler, report(4), "is not a Scheduled Event from aws.events"),
        (notices_handler, SCHEDULED, "is not a batch of DynamoDB stream records"),
        (
            notices_handler,
            {"Records": [{"eventSource": "aws:sqs"}]},
            "is not a batch of DynamoDB stream records",
        ),
    ],
)
def test_an_event_of_another_source_is_rejected_and_counted(
    handler: Any,
    event: dict[str, Any],
    expected: str,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
):
    with pytest.raises(UnrecognisedEvent, match=expected):
        handler(event, CONTEXT)

    assert '"UnrecognisedEvent":[1.0]' in capsys.readouterr().out
    assert "unrecognised event rejected" in caplog.text


def test_the_result_functions_entry_point_answers_a_schedules_event_as_no_result(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    table = with_sent()
    monkeypatch.setattr(results_handler, "build_store", lambda: ResultStore(table))

    answer = results_handler.handler(SCHEDULED, CONTEXT)

    assert answer["recorded"] is False
    assert "is not a spoke result" in answer["reason"]
    assert '"InvalidResult":[1.0]' in capsys.readouterr().out
    assert table.item(A)["Status"] == "SENT"
