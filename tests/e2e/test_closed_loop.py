"""The status tells the truth, end to end on the local organisation: each spoke's Automation
outcome comes back through the spoke's forwarding rules, the management account's result bus
and the result function; a failure carries the spoke's own reason and notifies once."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from budget_sync.budgets_table import BudgetsTable, read_desired
from budget_sync.reconcile import Action, DesiredItem, DesiredTable, Reconciler
from budget_sync.spoke import SsmSpokeGateway
from budget_sync.status import StatusStore
from budget_sync.status_table import DynamoStatusTable, read_statuses
from budget_sync_local.organisation import LocalOrganisation
from tests.support.local_org import Recorder, notifications, sent_minutes_ago

# every test: moto or the local organisation (make unit does not import this module)
pytestmark = [pytest.mark.e2e, pytest.mark.aws]

A, B, C = "111111111111", "222222222222", "333333333333"


def reconciler(org: LocalOrganisation, desired: DesiredTable | None = None) -> Reconciler:
    """The reconciler's code, as its execution role (the spoke role trusts no one else)."""
    session = org.function_session("ReconcilerFunction")
    dynamodb = session.client("dynamodb")
    gateway = SsmSpokeGateway(
        parameter_name=org.spokes[A].parameter_name,
        role_name="BlogBudgetsSpokeRole",
        region=org.region,
        session_name="reconcile-e2e",
        session=session,
    )
    return Reconciler(
        gateway,
        StatusStore(DynamoStatusTable(dynamodb, org.stack.status_table)),
        desired=desired or BudgetsTable(dynamodb, org.stack.budgets_table),
    )


def reconcile(org: LocalOrganisation, desired: DesiredTable | None = None) -> dict[str, Any]:
    dynamodb = org.function_session("ReconcilerFunction").client("dynamodb")
    summary = reconciler(org, desired).run(
        read_desired(dynamodb, org.stack.budgets_table),
        read_statuses(dynamodb, org.stack.status_table),
        apply=True,
    )
    return {r.account_id: r for r in summary.reports}


def test_given_a_budget_with_planned_limits_when_555_is_written_then_the_status_is_failed_with_the_spokes_reason(
    local_org: LocalOrganisation, recorder: Recorder
):
    # GIVEN account A's budget uses planned limits, B's is an ordinary one
    local_org.give_planned_limits(A)

    # WHEN an operator writes 555 for A and 700 for B
    local_org.put(A, 555)
    local_org.put(B, 700)
    local_org.pipeline.run_until_idle()

    # THEN A is FAILED with the spoke's own reason, and says which execution reported it
    status = local_org.status(A)
    assert status is not None
    assert status["Status"] == "FAILED"
    assert status["Reason"].startswith("spoke: ")
    assert "PlannedBudgetLimits" in status["Reason"]
    # (EventBridge may deliver the change twice: any of A's runs may be the one that reported)
    assert status["ExecutionId"] in {s.detail["execution_id"] for s in recorder.automations(A)}
    assert status["ConfirmedVersion"] == status["ParameterVersion"]
    # and B is APPLIED only now that its spoke confirmed the limit
    confirmed = local_org.status(B)
    assert confirmed is not None
    assert (confirmed["Status"], confirmed["ConfirmedLimit"]) == ("APPLIED", Decimal(700))
    assert confirmed["ConfirmedAt"]
    # and the failure was published once, although at least two results came back (the
    # script's report and AWS's Failed notification of the same execution, in any order)
    kinds = {s.detail["kind"] for s in recorder.steps if s.kind == "result" and s.account == A}
    assert kinds == {"Budget Update Result", "EC2 Automation Execution Status-change Notification"}
    sent = notifications(local_org)
    assert len(sent) == 1
    assert A in sent[0][0]
    assert "PlannedBudgetLimits" in sent[0][1]


def test_given_a_failed_account_then_each_new_failure_notifies_again(local_org: LocalOrganisation):
    # GIVEN A failed once
    local_org.give_planned_limits(A)
    local_org.put(A, 555)
    local_org.pipeline.run_until_idle()
    assert len(notifications(local_org)) == 1

    # WHEN a new value fails again (the condition lasts; an alarm in ALARM would hide it)
    local_org.put(A, 600)
    local_org.pipeline.run_until_idle()

    # THEN that new failure is a second notification
    assert local_org.status(A)["Status"] == "FAILED"  # type: ignore[index]
    assert len(notifications(local_org)) == 2


def test_given_a_value_never_confirmed_then_the_check_fails_it_saying_so(local_org: LocalOrganisation):
    # GIVEN A's value was sent but its spoke never reacted (the event was lost)
    spokes = dict(local_org.pipeline.spokes)
    spokes.pop(A)
    local_org.pipeline.spokes = spokes
    local_org.put(A, 4321)
    local_org.pipeline.run_until_idle()
    status = local_org.status(A)
    assert status is not None
    assert status["Status"] == "SENT"

    # WHEN the scheduled check runs while it is younger than the bound: nothing happens
    assert local_org.check_unconfirmed() == {"expired": []}
    # WHEN it runs once the bound (15 minutes) has passed
    sent_minutes_ago(local_org, A, 16)
    assert local_org.check_unconfirmed() == {"expired": [A]}

    # THEN A is FAILED with a reason that says why, and someone was told once
    status = local_org.status(A)
    assert status is not None
    assert status["Status"] == "FAILED"
    assert "not confirmed by the spoke within 15 minutes" in status["Reason"]
    assert status["Source"] == "timeout"
    local_org.pipeline.run_until_idle()  # the status table's stream delivers the change
    assert len(notifications(local_org)) == 1
    assert local_org.check_unconfirmed() == {"expired": []}  # once
    local_org.pipeline.run_until_idle()
    assert len(notifications(local_org)) == 1


def test_given_an_alerts_only_change_then_the_bound_counts_from_that_send_not_the_limits(
    local_org: LocalOrganisation,
):
    # GIVEN A's limit was sent and confirmed long ago (20 minutes, past the 15-minute bound)
    local_org.put(A, 700)
    local_org.pipeline.run_until_idle()
    old = sent_minutes_ago(local_org, A, 20)
    # WHEN only its alert recipients change, and the spoke has not answered yet
    spokes = dict(local_org.pipeline.spokes)
    spokes.pop(A)
    local_org.pipeline.spokes = spokes
    local_org.put(A, 700, AlertEmails="ops@example.com")
    local_org.pipeline.run_until_idle()
    status = local_org.status(A)
    assert status is not None
    assert status["Status"] == "SENT"
    assert status["SentAt"] > old

    # THEN the scheduled check does not call it unconfirmed: the bound starts at this send
    assert local_org.check_unconfirmed() == {"expired": []}
    local_org.pipeline.run_until_idle()
    assert local_org.status(A)["Status"] == "SENT"  # type: ignore[index]
    assert notifications(local_org) == []


def test_given_a_write_between_scan_and_repair_then_the_spoke_ends_at_the_new_value(
    local_org: LocalOrganisation,
):
    # GIVEN A at 1000, confirmed, then its budget limit edited by hand to 1500
    local_org.put(A, 1000)
    local_org.pipeline.run_until_idle()
    budgets = local_org.session_in(A).client("budgets")
    budget = budgets.describe_budget(AccountId=A, BudgetName=local_org.spokes[A].budget_name)["Budget"]
    budget["BudgetLimit"] = {"Amount": "1500", "Unit": "USD"}
    budgets.update_budget(
        AccountId=A,
        NewBudget={k: v for k, v in budget.items() if k not in ("CalculatedSpend", "LastUpdatedTime")},
    )
    dynamodb = local_org.management.client("dynamodb")

    # WHEN the reconciler scanned (desired 1000) and, before its repair, an operator writes 2000
    class OperatorWritesFirst(BudgetsTable):
        def read_item(self, account_id: str) -> DesiredItem | None:
            local_org.put(A, 2000)
            return super().read_item(account_id)

    reports = reconcile(local_org, OperatorWritesFirst(dynamodb, local_org.stack.budgets_table))
    local_org.pipeline.run_until_idle()

    # THEN the repair was skipped (the old 1000 was never written again) and the spoke ends at 2000
    assert reports[A].action is Action.SKIPPED
    assert "changed to 2000" in reports[A].reason
    view = local_org.view(A)
    assert (view.parameter, view.budget_limit, view.status) == ("2000", Decimal(2000), "APPLIED")


def test_given_a_repair_whose_automation_fails_then_the_next_run_reports_failure_not_another_repair(
    local_org: LocalOrganisation,
):
    # GIVEN A at 1000, confirmed; then its budget is replaced by one with planned limits
    local_org.put(A, 1000)
    local_org.pipeline.run_until_idle()
    local_org.give_planned_limits(A)

    # WHEN the reconciler repairs it: the spoke's Automation refuses
    first = reconcile(local_org)
    local_org.pipeline.run_until_idle()
    assert first[A].action is Action.REPAIRED
    status = local_org.status(A)
    assert status is not None
    assert status["Status"] == "FAILED"
    assert "PlannedBudgetLimits" in status["Reason"]
    version = int(status["ParameterVersion"])

    # WHEN it runs again
    second = reconcile(local_org)

    # THEN it reports the spoke's failure and writes nothing (no new parameter version)
    assert second[A].action is Action.FAILED
    assert "PlannedBudgetLimits" in second[A].reason
    ssm = local_org.session_in(A).client("ssm")
    assert ssm.get_parameter(Name=local_org.spokes[A].parameter_name)["Parameter"]["Version"] == version


def test_given_a_failed_repair_then_later_runs_keep_the_spokes_reason_and_write_nothing(
    local_org: LocalOrganisation,
):
    # GIVEN a repair whose Automation failed (planned limits), reported FAILED by the spoke
    local_org.put(A, 1000)
    local_org.pipeline.run_until_idle()
    local_org.give_planned_limits(A)
    reconcile(local_org)
    local_org.pipeline.run_until_idle()
    before = local_org.status(A)
    assert before is not None

    # WHEN the reconciler runs twice more
    reconcile(local_org)
    reconcile(local_org)

    # THEN the status still carries the spoke's own reason, unchanged
    after = local_org.status(A)
    assert after is not None
    assert (after["Status"], after["Reason"], after["UpdatedAt"]) == (
        "FAILED",
        before["Reason"],
        before["UpdatedAt"],
    )


def test_given_planned_limits_then_the_reconcilers_reason_says_so_once_and_first(
    local_org: LocalOrganisation,
):
    # GIVEN A's budget was given planned limits, and a repair the spoke refused for them
    local_org.put(A, 1000)
    local_org.pipeline.run_until_idle()
    local_org.give_planned_limits(A)
    first = reconcile(local_org)
    local_org.pipeline.run_until_idle()

    # WHEN the reconciler runs again
    second = reconcile(local_org)

    # THEN each reason leads with the planned limits, says it once, and not "not a USD amount"
    for report in (first[A], second[A]):
        assert report.reason.startswith("the budget uses PlannedBudgetLimits"), report.reason
        assert report.reason.count("PlannedBudgetLimits") == 1, report.reason
        assert "not a USD amount" not in report.reason
    assert "not repaired again" in second[A].reason
