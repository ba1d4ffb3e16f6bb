"""Drift repair end to end on the local organisation: the spoke's rule and Automation document
run, so a repair is followed all the way to the budget's limit."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from budget_sync_local.operator_policy import operator_policy
from tests.support.lazy import lazy
from tests.support.operators import budgetctl

if TYPE_CHECKING:
    from budget_sync_local import organisation
    from budget_sync_local.organisation import LocalOrganisation
else:  # moto: imported by the first test that uses it, not at collection (make unit)
    organisation = lazy("budget_sync_local.organisation")

pytestmark = pytest.mark.e2e

A, B = "111111111111", "222222222222"


def hand_edit_limit(org: LocalOrganisation, account: str, amount: str) -> None:
    """What someone does in the Budgets console: change the limit, keep everything else."""
    budget = org.budget(account)
    assert budget is not None
    budget["BudgetLimit"] = {"Amount": amount, "Unit": "USD"}
    budget.pop("CalculatedSpend", None)
    budget.pop("LastUpdatedTime", None)
    org.session_in(account).client("budgets").update_budget(AccountId=account, NewBudget=budget)


@pytest.mark.aws
def test_a_hand_edited_budget_and_a_lost_parameter_event_are_reported_and_repaired(
    monkeypatch: pytest.MonkeyPatch,
):
    with organisation.LocalOrganisation(accounts=(A, B)) as org:
        # budgetctl as the operators' role (the spoke read role trusts it, as docs/operate.md says)
        for name, value in org.operator_credentials().items():
            monkeypatch.setenv(name, value)
        # GIVEN both accounts applied through the pipeline
        org.put(A, Decimal("1000"))
        org.put(B, Decimal("2000"))
        org.pipeline.run_until_idle()
        assert budgetctl("status").code == 0

        # AND A's limit edited by hand; B's new value written but its Parameter Store Change event lost
        hand_edit_limit(org, A, "5000")
        org.standins.unsubscribe(org.pipeline.publish)
        org.put(B, Decimal("2500"))
        org.pipeline.run_until_idle()
        org.standins.subscribe(org.pipeline.publish)
        assert org.parameter(B) == "2500"
        assert org.view(B).budget_limit == Decimal("2000")

        # WHEN an operator looks
        status = budgetctl("status", "--output", "json")

        # THEN both are reported as budget drift
        assert status.code == 1
        drifts = {r["AccountId"]: (r["Drift"], r["BudgetLimit"]) for r in status.json()}
        assert drifts == {A: ("BUDGET_DRIFT", "5000"), B: ("BUDGET_DRIFT", "2000")}

        # WHEN they repair, and the spokes' rules and Automation documents run
        assert budgetctl("reconcile", "--apply").code == 0
        org.pipeline.run_until_idle()

        # THEN every budget holds the table's value again
        assert org.view(A).budget_limit == Decimal("1000")
        assert org.view(B).budget_limit == Decimal("2500")
        assert budgetctl("status").code == 0


def test_the_operators_policy_in_the_docs_is_the_one_the_local_organisation_gives_its_operator_role():
    # GIVEN docs/operate.md's policy for an operator who may do everything
    text = (Path(__file__).parents[2] / "docs" / "operate.md").read_text()
    block = text.split("who may do everything", 1)[1].split("```json\n", 1)[1].split("```", 1)[0]
    # WHEN the local organisation's operator role is given its policy (LocalOrganisation.operator_policy:
    # this, for the stack's names), with the templates' default names
    policy = operator_policy({}, "<region>", "<account>")
    # THEN they are the same policy (so every command the docs list works as that role locally)
    assert json.loads(block) == policy
