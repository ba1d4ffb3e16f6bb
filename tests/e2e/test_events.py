"""Every sample event in events/ runs through `make invoke`'s code path (the template's
handler in a fresh local organisation, then the spoke side) with its documented outcome."""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

import pytest

from budget_sync.handlers import update as update_handler
from budget_sync_local.__main__ import load_event, main, run_event

pytestmark = pytest.mark.e2e

EVENTS = Path(__file__).resolve().parents[2] / "events"
A, B, C = "111111111111", "222222222222", "333333333333"
INITIAL = Decimal(1000)  # the spoke template's initial budget


def run(name: str, steps: list | None = None) -> tuple[dict, dict]:
    update_handler.build_service.cache_clear()
    observer = steps.append if steps is not None else None
    response, views = run_event(load_event(EVENTS / f"{name}.json"), observer, function_output=io.StringIO())
    return response, {v.account_id: v for v in views}


def test_every_event_file_is_covered_here():
    assert {p.stem for p in EVENTS.glob("*.json")} == {
        "insert", "modify", "modify-unchanged", "remove", "decimal", "mixed-batch", "alerts",
    }  # fmt: skip


@pytest.mark.aws
def test_insert_sets_the_budget():
    response, views = run("insert")
    assert response == {"batchItemFailures": []}
    assert (views[A].status, views[A].budget_limit) == ("APPLIED", Decimal(1500))


@pytest.mark.aws
def test_modify_sets_the_new_value():
    _, views = run("modify")
    assert views[A].budget_limit == Decimal(2500)


@pytest.mark.aws
def test_an_unchanged_modify_makes_no_spoke_call():
    _, views = run("modify-unchanged")
    assert views[A].status is None  # nothing recorded: nothing to do
    assert (views[A].parameter, views[A].budget_limit) == ("1000", INITIAL)


@pytest.mark.aws
def test_remove_leaves_the_budget_and_marks_the_account_unmanaged():
    _, views = run("remove")
    assert views[A].status == "UNMANAGED"
    assert views[A].budget_limit == INITIAL


@pytest.mark.aws
def test_decimal_keeps_the_cents():
    _, views = run("decimal")
    assert (views[B].parameter, views[B].budget_limit) == ("1250.5", Decimal("1250.5"))


@pytest.mark.aws
def test_mixed_batch_applies_the_valid_and_refuses_the_invalid_with_reasons():
    steps: list = []
    response, views = run("mixed-batch", steps)
    assert response == {"batchItemFailures": []}  # permanent errors are recorded, not retried
    assert views[A].budget_limit == Decimal(1200)
    assert views[B].budget_limit == Decimal("3000.25")  # the newest value of 222... wins
    assert views[C].status == "FAILED"
    assert "type N" in views[C].reason
    assert views[C].budget_limit == INITIAL
    refused = {s.account: s.detail["reason"] for s in steps if s.kind == "refused"}
    assert "AccountId '12345' must be exactly 12 digits" in refused["12345"]
    assert "type N" in refused[C]  # every refused record is shown as it happens, not only unknown ones


@pytest.mark.aws
def test_alerts_gives_the_account_its_own_recipients_and_thresholds_and_the_new_limit():
    _, views = run("alerts")
    assert views[A].status == "APPLIED"
    assert (views[A].parameter, views[A].budget_limit) == ("1500", Decimal(1500))
    assert {(a.notification_type, a.threshold) for a in views[A].alerts} == {
        ("ACTUAL", Decimal(50)),
        ("ACTUAL", Decimal(90)),
        ("FORECASTED", Decimal(110)),
    }
    assert {s for a in views[A].alerts for s in a.subscribers} == {"owner@example.com", "team@example.com"}


def test_the_command_refuses_a_file_that_is_not_a_stream_event(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"Items": []}')
    assert main(["invoke", str(bad)]) == 2
    assert "not a DynamoDB stream event" in capsys.readouterr().out
