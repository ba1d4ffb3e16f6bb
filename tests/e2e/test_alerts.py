"""End to end on the local organisation: an account's alert settings in its item, checked at
the spoke budget's notifications and subscribers (through the stream, the function, the
alert parameter, the rule and the Automation document's ReconcileAlerts step)."""

from __future__ import annotations

import dataclasses
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from moto.sns.models import sns_backends

from budget_sync.handlers import update as update_handler
from budget_sync_local.organisation import MANAGEMENT_ACCOUNT, LocalOrganisation
from budget_sync_local.spoke_stack import SpokeStackError
from tests.support.local_org import Recorder

# every test: moto or the local organisation (make unit does not import this module)
pytestmark = [pytest.mark.e2e, pytest.mark.aws]

A, B = "111111111111", "222222222222"
OLD_TEMPLATE = Path(__file__).parents[1] / "spoke" / "fixtures" / "template-spoke-before-alerts.yaml"
STACK_DEFAULT = ("finance@example.com", "platform-team@example.com")  # the local spoke stacks' AlertEmail1-2


def alerts(org: LocalOrganisation, account: str) -> dict[tuple[str, Decimal], tuple[str, ...]]:
    """The budget's notifications: (type, threshold) -> sorted recipients."""
    return {(a.notification_type, a.threshold): tuple(sorted(a.subscribers)) for a in org.alerts(account)}


def apply(org: LocalOrganisation, account: str, value: int = 1000, **attributes: str) -> None:
    org.put(account, value, **attributes)
    org.pipeline.run_until_idle()


def reconciled(recorder: Recorder, account: str) -> list[str]:
    return [s.detail["outputs"].get("ReconcileAlerts.Action") for s in recorder.automations(account)]


def test_recipients_are_added_changed_and_removed_and_other_accounts_keep_the_defaults(
    local_org: LocalOrganisation, recorder: Recorder
):
    apply(local_org, A)
    assert set(alerts(local_org, A).values()) == {STACK_DEFAULT}

    apply(local_org, A, AlertEmails="finance@example.com,platform-team@example.com,cto@example.com")
    assert set(alerts(local_org, A).values()) == {
        ("cto@example.com", "finance@example.com", "platform-team@example.com")
    }
    apply(local_org, A, AlertEmails="cto@example.com,team-a@example.com")
    assert set(alerts(local_org, A).values()) == {("cto@example.com", "team-a@example.com")}
    apply(local_org, A, AlertEmails="team-a@example.com")
    assert set(alerts(local_org, A).values()) == {("team-a@example.com",)}
    apply(local_org, A)  # the attribute removed: back to the stack's defaults
    assert set(alerts(local_org, A).values()) == {STACK_DEFAULT}

    assert local_org.status(A)["Status"] == "APPLIED"  # type: ignore[index]
    assert "Reconciled" in reconciled(recorder, A)
    # the status table records what the spoke confirmed its budget has, beside what was sent
    confirmed = json.loads(local_org.status(A)["ConfirmedAlerts"])  # type: ignore[index]
    assert confirmed["emails"] == list(STACK_DEFAULT)
    assert set(alerts(local_org, B).values()) == {STACK_DEFAULT}


def test_changed_thresholds_take_effect_with_no_stack_update(local_org: LocalOrganisation):
    stack_before = local_org.spokes[A]
    apply(local_org, A, AlertThresholds="50,90", ForecastedThreshold="110")
    assert set(alerts(local_org, A)) == {
        ("ACTUAL", Decimal(50)),
        ("ACTUAL", Decimal(90)),
        ("FORECASTED", Decimal(110)),
    }
    apply(local_org, A, AlertThresholds="95", ForecastedThreshold="none")
    assert set(alerts(local_org, A)) == {("ACTUAL", Decimal(95))}
    assert local_org.spokes[A] is stack_before


def test_an_invalid_address_fails_the_item_and_the_budget_keeps_its_alerts(local_org: LocalOrganisation):
    apply(local_org, A, AlertEmails="team-a@example.com")
    before = alerts(local_org, A)

    apply(local_org, A, 2000, AlertEmails="team-a@example.com,team-b(at)example.com")

    status = local_org.status(A)
    assert status is not None
    assert status["Status"] == "FAILED"
    assert "AlertEmails 'team-b(at)example.com' is not a well-formed email address" in status["Reason"]
    assert alerts(local_org, A) == before
    assert local_org.parameter(A) == "1000"  # nothing of the item was sent


def test_too_many_recipients_fail_the_item_and_nothing_is_sent(local_org: LocalOrganisation):
    apply(local_org, A)
    before = alerts(local_org, A)
    apply(local_org, A, AlertEmails=",".join(f"person{i}@example.com" for i in range(11)))

    status = local_org.status(A)
    assert status is not None
    assert status["Status"] == "FAILED"
    assert "has 11 addresses; AWS Budgets takes at most 10 per notification" in status["Reason"]
    assert alerts(local_org, A) == before


def test_given_the_spoke_refuses_the_alerts_then_the_status_is_failed_with_its_reason_and_notifies_once(
    local_org: LocalOrganisation, recorder: Recorder
):
    # GIVEN A's budget is applied, and someone edited A's alert defaults by hand to an
    # address the management account never saw (so only the spoke can refuse it)
    apply(local_org, A, AlertEmails="team-a@example.com")
    before = alerts(local_org, A)
    confirmed_before = local_org.status(A)["ConfirmedAlerts"]  # type: ignore[index]
    local_org.session_in(A).client("ssm").put_parameter(
        Name="/BlogBudgets/AlertDefaults",
        Value=json.dumps({"emails": ["finance(at)example.com"], "actual": ["80"], "forecasted": "100"}),
        Overwrite=True,
    )

    # WHEN a new limit is written and A's settings fall back to those defaults
    apply(local_org, A, 2000)

    # THEN the limit step applied 2000 but the alerts step refused: FAILED with the spoke's reason
    status = local_org.status(A)
    assert status is not None
    assert status["Status"] == "FAILED"
    assert status["Reason"] == (
        "spoke: alerts not applied: AlertEmails 'finance(at)example.com' is not a well-formed email address"
    )
    assert status["ConfirmedLimit"] == Decimal(2000)
    assert status["ConfirmedVersion"] == status["ParameterVersion"]
    # (a duplicated delivery may have run the document twice: one of A's runs reported)
    assert status["ExecutionId"] in {s.detail["execution_id"] for s in recorder.automations(A)}
    assert status["ConfirmedAlerts"] == confirmed_before  # the spoke confirmed nothing new
    assert alerts(local_org, A) == before  # and the budget kept its alerts
    # and the failure was published once (the limit's APPLIED, the alerts' FAILED, AWS's Failed)
    topic = local_org.stack.physical_ids["AlarmTopic"]
    sent = sns_backends[MANAGEMENT_ACCOUNT][local_org.region].topics[topic].sent_notifications
    assert len(sent) == 1
    assert "finance(at)example.com" in str(sent[0][1])

    # WHEN the account's item then names its own recipients (an alerts-only change: the limit
    # parameter keeps its version, so only the alerts step's success can clear the failure)
    apply(local_org, A, 2000, AlertEmails="team-b@example.com")

    # THEN the status is APPLIED again and records the alerts the spoke confirmed
    status = local_org.status(A)
    assert status is not None
    assert (status["Status"], status["Reason"]) == ("APPLIED", "")
    assert json.loads(status["ConfirmedAlerts"])["emails"] == ["team-b@example.com"]
    assert set(alerts(local_org, A).values()) == {("team-b@example.com",)}


def test_a_stack_update_of_the_alert_defaults_reaches_accounts_without_their_own(
    local_org: LocalOrganisation,
):
    apply(local_org, A, AlertEmails="team-a@example.com")
    for account in (A, B):
        local_org.update_spoke(
            account, {"DefaultAlertEmails": "finops@example.com", "DefaultActualThresholds": "85"}
        )
    local_org.pipeline.run_until_idle()

    assert alerts(local_org, B) == {
        ("ACTUAL", Decimal(85)): ("finops@example.com",),
        ("FORECASTED", Decimal(100)): ("finops@example.com",),
    }
    assert set(alerts(local_org, A).values()) == {("team-a@example.com",)}  # its own recipients win
    assert set(alerts(local_org, A)) == {("ACTUAL", Decimal(85)), ("FORECASTED", Decimal(100))}


@pytest.mark.aws
def test_an_existing_installation_upgrades_without_a_budget_replacement(recorder: Recorder):
    update_handler.build_service.cache_clear()
    old = OLD_TEMPLATE.read_text()
    with LocalOrganisation(observer=recorder, function_output=io.StringIO(), spoke_template_text=old) as org:
        apply(org, A, 1500)
        before = alerts(org, A)
        assert set(before.values()) == {STACK_DEFAULT}

        for account in org.accounts:  # what a StackSet update to the new template does
            org.update_spoke(account)
        org.pipeline.run_until_idle()

        assert alerts(org, A) == before
        assert org.view(A).budget_limit == Decimal(1500)
        apply(org, A, 1500, AlertThresholds="70")
        assert set(alerts(org, A)) == {("ACTUAL", Decimal(70)), ("FORECASTED", Decimal(100))}
        with pytest.raises(SpokeStackError, match="requires replacement"):
            org.update_spoke(B, {"AlertEmail1": "someone-else@example.com"})
    update_handler.build_service.cache_clear()


def test_given_two_alerts_only_changes_whose_reports_arrive_in_reverse_then_the_newer_settings_stay_confirmed(
    local_org: LocalOrganisation,
):
    # GIVEN A's limit applied; the result bus holds back what reaches it (EventBridge may
    # deliver two runs' reports in either order)
    apply(local_org, A)
    held: list[dict[str, object]] = []
    bus = local_org.pipeline.results
    assert bus is not None
    local_org.pipeline.results = dataclasses.replace(bus, invoke=held.append)

    # WHEN two alerts-only changes run one after the other (the same limit parameter version)
    apply(local_org, A, AlertEmails="first@example.com")
    apply(local_org, A, AlertEmails="second@example.com")
    steps = {e["detail"].get("Step", "UpdateBudgetLimit") for e in held}  # type: ignore[attr-defined]
    assert steps == {"UpdateBudgetLimit", "ReconcileAlerts"}

    # and their reports reach the result function newest first (EventBridge may also have
    # delivered some twice: every copy is handed over)
    def alerts_versions(event: dict[str, Any]) -> list[int]:
        return list(event["detail"].get("AlertsVersions") or [0, 0])

    for event in sorted(held, key=alerts_versions, reverse=True):  # type: ignore[arg-type]
        local_org.invoke_result_function(event)  # type: ignore[arg-type]

    # THEN the status confirms the settings the budget has: the second change's
    status = local_org.status(A)
    assert status is not None
    assert set(alerts(local_org, A).values()) == {("second@example.com",)}
    assert json.loads(status["ConfirmedAlerts"])["emails"] == ["second@example.com"]
    assert status["Status"] == "APPLIED"
