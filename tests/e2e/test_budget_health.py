"""End to end on the local organisation: a budget AWS reports UNHEALTHY (its HealthStatus) is a
failure with AWS's reason, found by the reconciler function, published once, shown by
``budgetctl status``; once it is healthy again the next run clears it."""

from __future__ import annotations

import pytest

from budget_sync_local.organisation import LocalOrganisation
from tests.support.local_org import notifications

# every test: moto or the local organisation (make unit does not import this module)
pytestmark = [pytest.mark.e2e, pytest.mark.aws]

A, B = "111111111111", "222222222222"


def test_given_a_budget_made_unhealthy_then_the_reconciler_fails_it_once_and_clears_it_when_healthy(
    local_org: LocalOrganisation,
):
    for account in (A, B):
        local_org.put(account, 1000)
    local_org.pipeline.run_until_idle()
    assert local_org.status(A)["Status"] == "APPLIED"  # type: ignore[index]

    # WHEN AWS reports A's budget UNHEALTHY (set by hand: AWS computes it) and the reconciler runs
    local_org.set_health(A, "UNHEALTHY", "BILLING_VIEW_NO_ACCESS")
    local_org.invoke_reconciler()
    local_org.pipeline.run_until_idle()

    # THEN A is FAILED with AWS's reason, published once; B is untouched
    status = local_org.status(A)
    assert status is not None
    assert status["Status"] == "FAILED"
    assert status["Reason"].startswith("AWS Budgets reports the budget UNHEALTHY: BILLING_VIEW_NO_ACCESS (")
    assert local_org.status(B)["Status"] == "APPLIED"  # type: ignore[index]
    (sent,) = notifications(local_org)
    assert A in sent[0]
    assert "BILLING_VIEW_NO_ACCESS" in sent[1]

    # WHEN the reconciler runs again while it is still unhealthy THEN no second notice
    local_org.invoke_reconciler()
    local_org.pipeline.run_until_idle()
    assert local_org.status(A)["Status"] == "FAILED"  # type: ignore[index]
    assert len(notifications(local_org)) == 1

    # WHEN it is healthy again THEN the next run clears it
    local_org.set_health(A, "HEALTHY")
    local_org.invoke_reconciler()
    local_org.pipeline.run_until_idle()
    assert local_org.status(A)["Status"] == "APPLIED"  # type: ignore[index]


def test_given_a_filter_naming_another_account_then_the_budget_is_filter_invalid_and_failed(
    local_org: LocalOrganisation,
):
    local_org.put(A, 1000)
    local_org.pipeline.run_until_idle()
    budgets = local_org.session_in(A).client("budgets")
    budget = budgets.describe_budget(AccountId=A, BudgetName=local_org.spokes[A].budget_name)["Budget"]
    definition = {
        k: v
        for k, v in budget.items()
        if k not in ("CalculatedSpend", "LastUpdatedTime", "HealthStatus", "CostTypes")
    }
    budgets.update_budget(
        AccountId=A,
        NewBudget={
            **definition,
            "Metrics": ["UnblendedCost"],
            "FilterExpression": {"Dimensions": {"Key": "LINKED_ACCOUNT", "Values": [B]}},
        },
    )

    local_org.invoke_reconciler()
    local_org.pipeline.run_until_idle()

    status = local_org.status(A)
    assert status is not None
    assert status["Status"] == "FAILED"
    assert "UNHEALTHY: FILTER_INVALID (the filter contains reference to an account" in status["Reason"]


def test_given_an_unhealthy_budget_when_the_spoke_runs_then_its_report_fails_it_and_the_reconciler_clears_it(
    local_org: LocalOrganisation,
):
    local_org.put(A, 1000)
    local_org.pipeline.run_until_idle()
    local_org.set_health(A, "UNHEALTHY", "FILTER_INVALID")

    # WHEN a new value reaches the spoke: its Automation applies it and reports the budget's health
    local_org.put(A, 1100)
    local_org.pipeline.run_until_idle()

    # THEN the limit is applied, but the status is FAILED with AWS's reason, from the spoke's report
    status = local_org.status(A)
    assert status is not None
    assert local_org.budget(A)["BudgetLimit"]["Amount"] in ("1100", "1100.0")  # type: ignore[index]
    assert status["Status"] == "FAILED"
    assert status["Reason"].startswith("spoke: AWS Budgets reports the budget UNHEALTHY: FILTER_INVALID")
    assert len(notifications(local_org)) == 1

    # WHEN AWS reports it healthy again THEN the reconciler's next run clears it
    local_org.set_health(A, "HEALTHY")
    local_org.invoke_reconciler()
    local_org.pipeline.run_until_idle()
    assert local_org.status(A)["Status"] == "APPLIED"  # type: ignore[index]
