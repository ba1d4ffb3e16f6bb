"""End to end on the local organisation: an account's alert settings in its item, checked at
the spoke budget's notifications and subscribers (through the stream, the function, the
alert parameter, the rule and the Automation document's ReconcileAlerts step)."""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

import pytest

from budget_sync.handlers import stream as stream_handler
from budget_sync_local.organisation import LocalOrganisation
from budget_sync_local.spoke_stack import SpokeStackError
from tests.e2e.conftest import Recorder

pytestmark = pytest.mark.e2e

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


def test_an_existing_installation_upgrades_without_a_budget_replacement(recorder: Recorder):
    stream_handler.build_service.cache_clear()
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
    stream_handler.build_service.cache_clear()
