"""Events delivered as EventBridge delivers them (at least once, in no order) and Automation
run as AWS runs it (timeouts, cancellation), end to end on the local organisation: the
outcomes AWS promises hold (the final status, the budget, one notice per new failure carrying
the spoke's own reason)."""

from __future__ import annotations

import dataclasses
import io
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from budget_sync.handlers import update as update_handler
from budget_sync_local import __main__ as cli
from budget_sync_local.seed import SEED_ENV, seed_from_env
from tests.support.lazy import lazy
from tests.support.local_org import Recorder, local_organisation, notifications

if TYPE_CHECKING:
    from budget_sync_local import pipeline
    from budget_sync_local.organisation import LocalOrganisation
else:  # moto: imported by the first test that uses it, not at collection (make unit)
    pipeline = lazy("budget_sync_local.pipeline")

pytestmark = pytest.mark.e2e

A, B = "111111111111", "222222222222"
NOTICE = "EC2 Automation Execution Status-change Notification"


def ended_minutes_ago(org: LocalOrganisation, account: str, minutes: int) -> None:
    """Date back when AWS's failure notice of the account's execution was recorded."""
    old = (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat(timespec="seconds")
    org.management.client("dynamodb").update_item(
        TableName=org.stack.status_table,
        Key={"AccountId": {"S": account}},
        UpdateExpression="SET EndedAt = :old, SentAt = :old",
        ExpressionAttributeValues={":old": {"S": old}},
    )


# -- the delivery schedule -----------------------------------------------------------------


def test_the_same_seed_gives_the_same_deliveries_and_nothing_is_lost():
    events = [{"id": str(n), "detail-type": "x"} for n in range(40)]

    def schedule(seed: int) -> list[tuple[str, bool]]:
        delivery, seen = pipeline.Delivery(seed), []
        for event, duplicate in delivery.round(list(events)):
            seen.append((event["id"], duplicate))
        while not delivery.idle():
            seen += [(e["id"], d) for e, d in delivery.round([])]
        return seen

    first = schedule(7)
    assert first == schedule(7)
    assert first != schedule(8)
    assert {i for i, _ in first} == {e["id"] for e in events}  # at least once
    assert any(d for _, d in first)  # some twice
    assert [i for i, d in first if not d] != [e["id"] for e in events]  # not in order
    assert [e["id"] for e, _ in pipeline.Delivery(None).round(list(events))] == [e["id"] for e in events]


@pytest.mark.parametrize(("value", "seed"), [("12", 12), ("off", None), ("OFF", None)])
def test_the_seed_comes_from_the_environment(value: str, seed: int | None):
    assert seed_from_env({SEED_ENV: value}) == seed
    assert isinstance(seed_from_env({}), int)  # a new one


def test_a_seed_that_is_no_whole_number_is_refused_naming_the_variable():
    with pytest.raises(ValueError, match=f"{SEED_ENV} '-3'"):
        seed_from_env({SEED_ENV: "-3"})


def test_make_demo_with_a_seed_that_is_no_whole_number_says_so_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setenv(SEED_ENV, "abc")
    assert cli.main(["demo"]) == 2
    assert f"{SEED_ENV} 'abc' must be a whole number or 'off'" in capsys.readouterr().out


# -- outcomes AWS promises, under any delivery ---------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
@pytest.mark.aws
def test_under_any_delivery_every_outcome_holds(seed: int):
    recorder = Recorder()
    update_handler.build_service.cache_clear()
    with local_organisation(
        accounts=(A, B), observer=recorder, function_output=io.StringIO(), seed=seed
    ) as org:
        org.give_planned_limits(B)
        for value in (700, 800, 900):
            org.put(A, value)
        org.put(B, 555)
        org.pipeline.run_until_idle()

        view = org.view(A)
        assert (view.status, view.parameter, view.budget_limit) == ("APPLIED", "900", 900)
        failed = org.status(B)
        assert failed is not None
        assert (failed["Status"], failed["Reason"].startswith("spoke: ")) == ("FAILED", True)
        assert "PlannedBudgetLimits" in failed["Reason"]
        (notice,) = notifications(org)
        assert B in notice[0]
        assert "PlannedBudgetLimits" in notice[1]
    update_handler.build_service.cache_clear()


@pytest.mark.aws
def test_a_spokes_run_and_its_report_can_come_before_the_stream_function_records_sent(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setattr(pipeline.Delivery, "AT_ONCE", 1.0)  # every event published in the batch, at once
    recorder = Recorder()
    update_handler.build_service.cache_clear()
    with local_organisation(accounts=(A,), observer=recorder, function_output=io.StringIO(), seed=5) as org:
        org.put(A, 1234)
        org.pipeline.run_until_idle()

        kinds = [s.kind for s in recorder.steps]
        assert "delivery" in kinds
        # the report reached the result function while the batch was still running
        assert kinds.index("result") < kinds.index("batch")
        view = org.view(A)
        assert (view.status, view.parameter, view.budget_limit) == ("APPLIED", "1234", 1234)
    update_handler.build_service.cache_clear()


@pytest.mark.aws
def test_given_a_failed_account_when_the_next_values_failure_is_reported_before_sent_then_it_notifies_again(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setattr(pipeline.Delivery, "AT_ONCE", 1.0)  # every run and report during the batch
    update_handler.build_service.cache_clear()
    with local_organisation(accounts=(A,), function_output=io.StringIO(), seed=5) as org:
        org.give_planned_limits(A)
        org.put(A, 555)
        org.pipeline.run_until_idle()
        assert len(notifications(org)) == 1

        org.put(A, 600)
        org.pipeline.run_until_idle()

        assert org.status(A)["Status"] == "FAILED"  # type: ignore[index]
        assert len(notifications(org)) == 2
    update_handler.build_service.cache_clear()


def test_given_aws_failure_notice_before_the_spokes_report_then_one_notice_carries_the_spokes_reason(
    local_org: LocalOrganisation,
):
    # GIVEN A's budget uses planned limits, and the result bus holds what reaches it
    local_org.give_planned_limits(A)
    held: list[dict[str, Any]] = []
    bus = local_org.pipeline.results
    assert bus is not None
    local_org.pipeline.results = dataclasses.replace(bus, invoke=held.append)
    local_org.put(A, 555)
    local_org.pipeline.run_until_idle()
    assert {e["detail-type"] for e in held} == {NOTICE, "Budget Update Result"}

    # WHEN AWS's Failed notice reaches the result function before the script's report
    for event in sorted(held, key=lambda e: e["detail-type"] != NOTICE):
        local_org.invoke_result_function(event)
    local_org.pipeline.run_until_idle()

    # THEN A is FAILED with the spoke's own reason, published once
    status = local_org.status(A)
    assert status is not None
    assert status["Status"] == "FAILED"
    assert "PlannedBudgetLimits" in status["Reason"]
    (notice,) = notifications(local_org)
    assert "PlannedBudgetLimits" in notice[1]
    # and the schedule's check, later, adds nothing
    assert local_org.check_unconfirmed() == {"expired": []}


# -- Automation as AWS runs it -------------------------------------------------------------


@pytest.fixture
def slow_budget_reads(monkeypatch: pytest.MonkeyPatch) -> Callable[[Callable[[], None]], None]:
    """Every DescribeBudget calls the function given first."""
    hook: list[Callable[[], None]] = []
    from moto.budgets.models import BudgetsBackend

    original = BudgetsBackend.describe_budget

    def describe_budget(self: BudgetsBackend, *args: Any, **kwargs: Any) -> Any:
        for call in hook:
            call()
        return original(self, *args, **kwargs)

    monkeypatch.setattr(BudgetsBackend, "describe_budget", describe_budget)
    return hook.append


def _fails_once_with(org: LocalOrganisation, text: str) -> None:
    """A is SENT with AWS's notice recorded; after the grace, the check fails it saying ``text``."""
    org.pipeline.run_until_idle()
    assert org.status(A)["Status"] == "SENT"  # type: ignore[index]  # the report may still come
    ended_minutes_ago(org, A, 3)
    assert org.check_unconfirmed() == {"expired": [A]}
    org.pipeline.run_until_idle()
    status = org.status(A)
    assert status is not None
    assert status["Status"] == "FAILED"
    assert text in status["Reason"]
    assert "without reporting a result" in status["Reason"]
    (notice,) = notifications(org)
    assert text in notice[1]
    assert org.check_unconfirmed() == {"expired": []}


def test_given_a_step_longer_than_its_timeout_then_the_value_fails_saying_so_and_is_notified_once(
    local_org: LocalOrganisation,
    recorder: Recorder,
    slow_budget_reads: Callable[[Callable[[], None]], None],
    monkeypatch: pytest.MonkeyPatch,
):
    from budget_sync_local.standins import automation

    monkeypatch.setattr(automation, "TIME_SCALE", 0.005)  # AWS's 120 s last 0.6 s here
    before = local_org.view(A).budget_limit
    slow_budget_reads(lambda: time.sleep(1.5))  # 300 AWS seconds: past the step's 120
    local_org.put(A, 4321)

    _fails_once_with(local_org, "ended TimedOut")

    assert {s.detail["status"] for s in recorder.automations(A)} == {"TimedOut"}
    assert local_org.view(A).budget_limit == before


def test_given_a_run_stopped_by_an_operator_then_the_value_fails_saying_so_and_is_notified_once(
    local_org: LocalOrganisation, recorder: Recorder, slow_budget_reads: Callable[[Callable[[], None]], None]
):
    before = local_org.view(A).budget_limit

    def stop() -> None:
        from budget_sync_local.standins import automation

        for execution in automation.running_executions(A):
            automation.stop_execution(execution)  # StopAutomationExecution

    slow_budget_reads(stop)
    local_org.put(A, 4321)

    _fails_once_with(local_org, "ended Cancelled")

    assert {s.detail["status"] for s in recorder.automations(A)} == {"Cancelled"}
    assert local_org.view(A).budget_limit == before
