"""End to end on the local organisation: an account's cost basis in its item (CostMetric,
CostExclusions; budget_sync.cost_basis), checked at the spoke budget's definition (through the
stream, the function, the alert parameter, the rule and the Automation document's
ReconcileAlerts step), and the status APPLIED only when the spoke confirmed it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from budget_sync_local.organisation import LocalOrganisation

# every test: moto or the local organisation (make unit does not import this module)
pytestmark = [pytest.mark.e2e, pytest.mark.aws]

A = "111111111111"
TAG_FILTER = {"Tags": {"Key": "team", "Values": ["payments"]}}
CREDITS_REFUNDS = {"Not": {"Dimensions": {"Key": "RECORD_TYPE", "Values": ["Credit", "Refund"]}}}


def apply(org: LocalOrganisation, account: str, value: int = 1000, **attributes: Any) -> None:
    org.put(account, value, **attributes)
    org.pipeline.run_until_idle()


def definition(org: LocalOrganisation, account: str) -> dict[str, Any]:
    """The budget as DescribeBudget shows it with ShowFilterExpression, without what AWS computes."""
    budgets = org.session_in(account).client("budgets")
    budget = budgets.describe_budget(
        AccountId=account, BudgetName=org.spokes[account].budget_name, ShowFilterExpression=True
    )["Budget"]
    return {
        k: v for k, v in budget.items() if k not in ("CalculatedSpend", "LastUpdatedTime", "HealthStatus")
    }


def set_by_hand(org: LocalOrganisation, account: str, **members: Any) -> None:
    """An account owner's own change of the budget's definition (UpdateBudget in the account)."""
    budgets = org.session_in(account).client("budgets")
    current = definition(org, account)
    new = {k: v for k, v in current.items() if k not in ("CostTypes", "CostFilters")}
    budgets.update_budget(AccountId=account, NewBudget={**new, **members})


def test_given_no_cost_basis_anywhere_then_the_budget_definition_is_untouched(local_org: LocalOrganisation):
    apply(local_org, A, 1000)
    before = definition(local_org, A)
    assert ("CostTypes" in before, "Metrics" in before) == (
        True,
        False,
    )  # the stack's budget: deprecated pair

    apply(local_org, A, 1200, AlertThresholds="70")

    after = definition(local_org, A)
    assert {k: v for k, v in after.items() if k != "BudgetLimit"} == {
        k: v for k, v in before.items() if k != "BudgetLimit"
    }
    assert local_org.status(A)["Status"] == "APPLIED"  # type: ignore[index]


def test_given_exclusions_then_the_budget_gets_metrics_and_a_record_type_exclusion_and_is_applied(
    local_org: LocalOrganisation,
):
    apply(local_org, A, 1000, CostExclusions="refunds,credits")

    budget = definition(local_org, A)
    assert budget["Metrics"] == ["UnblendedCost"]  # what the default CostTypes counted
    assert budget["FilterExpression"] == CREDITS_REFUNDS
    assert not {"CostTypes", "CostFilters"} & set(budget)
    status = local_org.status(A)
    assert status["Status"] == "APPLIED", status  # type: ignore[index]
    assert json.loads(status["ConfirmedCostBasis"]) == {  # type: ignore[index]
        "metric": "UnblendedCost",
        "exclude": ["Credit", "Refund"],
    }

    apply(local_org, A, 1000, CostExclusions="credits", CostMetric="amortized")
    budget = definition(local_org, A)
    assert budget["Metrics"] == ["AmortizedCost"]
    assert budget["FilterExpression"] == {"Not": {"Dimensions": {"Key": "RECORD_TYPE", "Values": ["Credit"]}}}

    apply(local_org, A, 1000, CostExclusions="none", CostMetric="amortized")
    assert "FilterExpression" not in definition(local_org, A)
    assert local_org.status(A)["Status"] == "APPLIED"  # type: ignore[index]


def test_given_an_owners_tag_filter_then_the_exclusion_joins_it_and_it_survives(local_org: LocalOrganisation):
    apply(local_org, A, 1000)
    set_by_hand(local_org, A, Metrics=["UnblendedCost"], FilterExpression=TAG_FILTER)

    apply(local_org, A, 1000, CostExclusions="credits,refunds")
    assert definition(local_org, A)["FilterExpression"] == {"And": [TAG_FILTER, CREDITS_REFUNDS]}

    apply(local_org, A, 1000, CostExclusions="none")  # exclude nothing: the owner's filter alone
    assert definition(local_org, A)["FilterExpression"] == TAG_FILTER
    assert local_org.status(A)["Status"] == "APPLIED"  # type: ignore[index]


def test_given_an_own_filter_too_deep_to_combine_then_the_run_fails_with_the_reason_and_changes_nothing(
    local_org: LocalOrganisation,
):
    apply(local_org, A, 1000)
    deep = {"Not": {"Or": [TAG_FILTER, {"Dimensions": {"Key": "REGION", "Values": ["eu-west-1"]}}]}}
    set_by_hand(local_org, A, Metrics=["UnblendedCost"], FilterExpression=deep)
    before = definition(local_org, A)

    apply(local_org, A, 1000, CostExclusions="credits")

    assert definition(local_org, A) == before
    status = local_org.status(A)
    assert status["Status"] == "FAILED", status  # type: ignore[index]
    assert "nests 2 deep" in status["Reason"]  # type: ignore[index]
    assert "AWS Budgets takes at most 2" in status["Reason"]  # type: ignore[index]


def test_given_an_invalid_cost_basis_then_nothing_is_written_and_the_reason_names_field_and_value(
    local_org: LocalOrganisation,
):
    apply(local_org, A, 1000)
    version = local_org.spokes[A]  # the stack stays as it is
    apply(local_org, A, 1500, CostExclusions="credits,coupons")

    status = local_org.status(A)
    assert status["Status"] == "FAILED"  # type: ignore[index]
    assert "CostExclusions 'coupons' is not a record type budget-sync excludes" in status["Reason"]  # type: ignore[index]
    assert local_org.parameter(A) == "1000"  # nothing was written
    assert local_org.spokes[A] is version


LEGACY = {
    "IncludeCredit": False,
    "IncludeDiscount": True,
    "IncludeOtherSubscription": True,
    "IncludeRecurring": True,
    "IncludeRefund": True,
    "IncludeSubscription": True,
    "IncludeSupport": True,
    "IncludeTax": False,
    "IncludeUpfront": True,
    "UseAmortized": True,
    "UseBlended": False,
}


def set_legacy(org: LocalOrganisation, account: str, cost_types: dict[str, bool]) -> None:
    budgets = org.session_in(account).client("budgets")
    current = definition(org, account)
    new = {k: v for k, v in current.items() if k not in ("Metrics", "FilterExpression")}
    budgets.update_budget(AccountId=account, NewBudget={**new, "CostTypes": cost_types})


def test_given_a_budget_on_cost_types_then_a_cost_basis_moves_it_once_faithfully(
    local_org: LocalOrganisation,
):
    apply(local_org, A, 1000)
    set_legacy(local_org, A, LEGACY)  # amortized, without credits and tax

    apply(local_org, A, 1000, CostMetric="amortized")  # the metric alone: the exclusions it had stay

    budget = definition(local_org, A)
    assert budget["Metrics"] == ["AmortizedCost"]
    assert budget["FilterExpression"] == {
        "Not": {"Dimensions": {"Key": "RECORD_TYPE", "Values": ["Credit", "Tax"]}}
    }
    assert "CostTypes" not in budget
    assert local_org.status(A)["Status"] == "APPLIED"  # type: ignore[index]


def test_given_cost_types_with_no_faithful_equivalent_then_the_run_fails_and_the_budget_keeps_them(
    local_org: LocalOrganisation,
):
    apply(local_org, A, 1000)
    set_legacy(local_org, A, {**LEGACY, "IncludeDiscount": False})
    before = definition(local_org, A)

    apply(local_org, A, 1000, CostExclusions="credits")

    assert definition(local_org, A) == before
    status = local_org.status(A)
    assert status["Status"] == "FAILED"  # type: ignore[index]
    assert "IncludeDiscount=false, which has no RECORD_TYPE equivalent" in status["Reason"]  # type: ignore[index]


def test_given_the_stacks_default_exclusions_then_an_account_without_its_own_gets_them(
    local_org: LocalOrganisation,
):
    apply(local_org, A, 1000)
    local_org.update_spoke(A, {"DefaultCostExclusions": "credits"})
    local_org.pipeline.run_until_idle()
    assert definition(local_org, A)["FilterExpression"] == {
        "Not": {"Dimensions": {"Key": "RECORD_TYPE", "Values": ["Credit"]}}
    }

    apply(local_org, A, 1000, CostExclusions="refunds")  # the item's own wins over the default
    assert definition(local_org, A)["FilterExpression"] == {
        "Not": {"Dimensions": {"Key": "RECORD_TYPE", "Values": ["Refund"]}}
    }


def test_given_the_exclusion_removed_by_hand_then_the_reconciler_sends_the_cost_basis_again(
    local_org: LocalOrganisation,
):
    apply(local_org, A, 1000, CostExclusions="credits")
    set_by_hand(local_org, A, Metrics=["UnblendedCost"], FilterExpression=TAG_FILTER)  # exclusion gone

    local_org.invoke_reconciler()
    status = local_org.status(A)
    assert status is not None
    assert (
        "cost basis differs from the item's over the stack's defaults: excludes nothing instead of ['Credit']"
        in (status["Reason"])
    )
    local_org.pipeline.run_until_idle()

    credits = {"Not": {"Dimensions": {"Key": "RECORD_TYPE", "Values": ["Credit"]}}}
    assert definition(local_org, A)["FilterExpression"] == {"And": [TAG_FILTER, credits]}
    assert local_org.status(A)["Status"] == "APPLIED"  # type: ignore[index]
