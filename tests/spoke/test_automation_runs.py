"""Automation as AWS runs it (budget_sync_local.standins.automation): the template's document,
its step timeouts enforced (TimedOut), a run stopped (Cancelled), runs of one account at the
same time. AWS's own seconds are shrunk (``TIME_SCALE``) so that a 120-second step timeout
takes about a second here."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.budgets.models import BudgetsBackend

from budget_sync_local.standins import automation
from tests.support.spoke_account import Spoke, assume

# every test: moto or the local organisation (make unit does not import this module)
pytestmark = pytest.mark.aws

#: 120 AWS seconds (the template's timeoutSeconds) last 0.6 local seconds.
SCALE = 0.005


@pytest.fixture
def slow_budget_reads(monkeypatch: pytest.MonkeyPatch) -> Callable[[Callable[[], None]], None]:
    """DescribeBudget calls the function given (once per call) before it answers."""
    hooks: list[Callable[[], None]] = []
    original = BudgetsBackend.describe_budget

    def describe_budget(self: BudgetsBackend, *args: Any, **kwargs: Any) -> Any:
        if hooks:
            hooks.pop(0)()
        return original(self, *args, **kwargs)

    monkeypatch.setattr(BudgetsBackend, "describe_budget", describe_budget)
    return hooks.append


def reports(spoke: Spoke) -> list[dict[str, Any]]:
    return [e for e in spoke.events if e.get("detail-type") == "Budget Update Result"]


def test_the_templates_script_steps_have_a_timeout_within_aws_maximum(spoke: Spoke):
    steps = [s for s in spoke.stack.document_content["mainSteps"] if s["action"] == "aws:executeScript"]
    assert steps
    for step in steps:
        assert 0 < automation._timeout_s(step) <= automation.EXECUTE_SCRIPT_MAX_S
        assert automation._timeout_s(step) == step.get("timeoutSeconds", automation.EXECUTE_SCRIPT_MAX_S)


def test_a_step_that_runs_longer_than_its_timeout_ends_the_execution_timed_out_without_a_report(
    spoke: Spoke, slow_budget_reads: Callable[[Callable[[], None]], None], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(automation, "TIME_SCALE", SCALE)
    before = spoke.budget()["BudgetLimit"]
    spoke.put("1250")
    slow_budget_reads(lambda: time.sleep(120 * SCALE * 2))  # twice the step's timeout

    (result,) = spoke.deliver()

    assert result is not None
    assert result.status == "TimedOut"
    assert "timed out" in str(result.failure_message)
    assert "120 s" in str(result.failure_message)
    time.sleep(120 * SCALE * 2)  # the stopped step's next calls are refused: no update, no report
    assert spoke.budget()["BudgetLimit"] == before
    assert reports(spoke) == []


def test_a_stopped_execution_ends_cancelled_and_its_step_does_nothing_more(
    spoke: Spoke, slow_budget_reads: Callable[[Callable[[], None]], None]
):
    before = spoke.budget()["BudgetLimit"]
    spoke.put("1250")

    def stop_the_running_execution() -> None:
        (running,) = automation.running_executions(spoke.stack.account)
        automation.stop_execution(running)  # StopAutomationExecution, while the step runs

    slow_budget_reads(stop_the_running_execution)

    (result,) = spoke.deliver()

    assert result is not None
    assert result.status == "Cancelled"
    assert "StopAutomationExecution" in str(result.failure_message)
    time.sleep(0.2)
    assert spoke.budget()["BudgetLimit"] == before
    assert reports(spoke) == []
    assert automation.running_executions() == []
    with pytest.raises(KeyError, match=result.execution_id):
        automation.stop_execution(result.execution_id)


def test_stop_automation_execution_through_an_aws_client_cancels_a_running_execution(
    spoke: Spoke, slow_budget_reads: Callable[[Callable[[], None]], None]
):
    ssm = spoke.session.client("ssm")
    spoke.put("1250")

    def stop_through_the_api() -> None:
        (running,) = automation.running_executions(spoke.stack.account)
        ssm.stop_automation_execution(AutomationExecutionId=running)

    slow_budget_reads(stop_through_the_api)

    (result,) = spoke.deliver()

    assert result is not None
    assert result.status == "Cancelled"
    with pytest.raises(ClientError, match="AutomationExecutionNotFoundException"):
        ssm.stop_automation_execution(AutomationExecutionId=result.execution_id)


def test_two_runs_of_one_account_overlap_and_the_budget_ends_at_the_newest_value(
    spoke: Spoke, slow_budget_reads: Callable[[Callable[[], None]], None]
):
    # GIVEN a run of 1000 that is still reading the budget
    spoke.put("1000")
    first_event = spoke.events.pop()
    second_done = threading.Event()
    overlapped: list[bool] = []
    slow_budget_reads(lambda: overlapped.append(second_done.wait(5)))
    results: list[Any] = []
    first = threading.Thread(target=lambda: results.append(spoke.stack.handle(first_event, assume)))
    first.start()
    while not automation.running_executions(spoke.stack.account):
        time.sleep(0.01)

    # WHEN 2000 is written and its run starts and ends meanwhile
    spoke.put("2000")
    (second,) = spoke.deliver()
    second_done.set()
    first.join(10)

    # THEN the runs overlapped, both succeeded, and the budget is at the newest value
    assert overlapped == [True], (results, second)
    assert second is not None
    assert (second.status, results[0].status) == ("Success", "Success")
    assert spoke.budget()["BudgetLimit"]["Amount"] in ("2000", "2000.0")
