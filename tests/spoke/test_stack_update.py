"""Spoke stack updates on the local organisation's CloudFormation: the upgrade from the
template before alert settings (tests/spoke/fixtures/template-spoke-before-alerts.yaml, the
branch point's template-spoke.yaml) to the current one, and changes of the alert defaults
afterwards. CloudFormation's rule for AWS::Budgets::Budget is emulated by
budget_sync_local.spoke_stack.update: a changed create-only property is a replacement,
which fails under the same name and rolls back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from budget_sync_local import spoke_stack
from tests.support.spoke_account import MANAGEMENT, REGION, SPOKE, Deploy, Spoke

# every test: moto or the local organisation (make unit does not import this module)
pytestmark = pytest.mark.aws

OLD_TEMPLATE = (Path(__file__).parent / "fixtures" / "template-spoke-before-alerts.yaml").read_text()
PARAMETERS = {
    "ManagementAccountId": MANAGEMENT,
    "AlertEmail1": "finance@example.com",
    "AlertEmail2": "owner@example.com",
}


def notifications(spoke: Spoke) -> set[tuple[str, float, frozenset[str]]]:
    return {
        (n["NotificationType"], n["Threshold"], frozenset(s["Address"] for s in subs))
        for n, subs in spoke.notifications()
    }


@pytest.fixture
def old_spoke(moto_with_standins: Any) -> Spoke:
    from tests.support.moto_org import session_in

    session = session_in(SPOKE)
    stack = spoke_stack.deploy(session, REGION, PARAMETERS, template_text=OLD_TEMPLATE)
    spoke = Spoke(stack, session, moto_with_standins)
    moto_with_standins.subscribe(spoke.events.append)
    return spoke


def upgrade(spoke: Spoke, **parameters: str) -> Spoke:
    spoke.stack = spoke_stack.update(spoke.session, spoke.stack, parameters)
    return spoke


def test_given_an_installation_of_the_old_template_when_updated_then_the_budget_is_kept_as_it_was(
    old_spoke: Spoke,
):
    assert "ReconcileAlerts" not in json.dumps(old_spoke.stack.document_content)
    before_budget, before = old_spoke.budget(), notifications(old_spoke)
    everyone = frozenset({"finance@example.com", "owner@example.com"})
    assert before == {
        ("ACTUAL", 80.0, everyone),
        ("ACTUAL", 100.0, everyone),
        ("FORECASTED", 100.0, everyone),
    }

    spoke = upgrade(old_spoke)

    assert [s["name"] for s in spoke.stack.document_content["mainSteps"]] == [
        "UpdateBudgetLimit",
        "ReconcileAlerts",
    ]
    # the new parameters' Create events start the document: it finds nothing to change
    results = [r for r in spoke.deliver() if r is not None]
    assert results
    assert all(r.status == "Success" for r in results), [r.failure_message for r in results]
    assert {r.outputs["ReconcileAlerts.Calls"] for r in results} == {"0"}
    assert notifications(spoke) == before
    assert spoke.budget()["BudgetLimit"] == before_budget["BudgetLimit"]


def test_after_the_upgrade_a_change_of_the_alert_defaults_applies_without_replacing_the_budget(
    old_spoke: Spoke,
):
    spoke = upgrade(old_spoke)
    spoke.deliver()

    spoke = upgrade(
        spoke,
        DefaultAlertEmails="finops@example.com,owner@example.com",
        DefaultActualThresholds="50,90",
        DefaultForecastedThreshold="none",
    )
    results = [r for r in spoke.deliver() if r is not None]

    assert [r.status for r in results] == ["Success"]
    assert results[0].outputs["ReconcileAlerts.Action"] == "Reconciled"
    new = frozenset({"finops@example.com", "owner@example.com"})
    assert notifications(spoke) == {("ACTUAL", 50.0, new), ("ACTUAL", 90.0, new)}


def test_the_account_settings_win_over_the_defaults_and_survive_a_stack_update(deploy_spoke: Deploy):
    spoke = deploy_spoke(**PARAMETERS)
    spoke.session.client("ssm").put_parameter(
        Name="/BlogBudgets/AlertSettings", Value='{"emails":["team@example.com"]}', Overwrite=True
    )
    spoke.deliver()

    spoke.stack = spoke_stack.update(spoke.session, spoke.stack, {"DefaultActualThresholds": "75"})
    spoke.deliver()

    assert notifications(spoke) == {
        ("ACTUAL", 75.0, frozenset({"team@example.com"})),
        ("FORECASTED", 100.0, frozenset({"team@example.com"})),
    }
    value = spoke.session.client("ssm").get_parameter(Name="/BlogBudgets/AlertSettings")["Parameter"]["Value"]
    assert value == '{"emails":["team@example.com"]}'


@pytest.mark.parametrize("parameter", [{"AlertEmail1": "new@example.com"}, {"ActualThreshold1": "70"}])
def test_the_creation_time_alert_parameters_still_replace_the_budget_and_roll_back(
    deploy_spoke: Deploy, parameter: dict[str, str]
):
    spoke = deploy_spoke(**PARAMETERS)
    before = notifications(spoke)
    with pytest.raises(spoke_stack.SpokeStackError, match=r"requires replacement .*already exists"):
        spoke_stack.update(spoke.session, spoke.stack, parameter)
    assert notifications(spoke) == before
