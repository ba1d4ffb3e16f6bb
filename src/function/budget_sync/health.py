"""A budget's health as AWS Budgets reports it (``HealthStatus``), in budget-sync's words. Pure.

botocore's Budgets model: ``HealthStatus.Status`` is HEALTHY or UNHEALTHY, ``StatusReason`` one
of the reasons below. The reconciler (reconcile.py) and the spoke's report (results.py) turn an
UNHEALTHY budget into a FAILED status with ``unhealthy_reason``.
"""

from __future__ import annotations

UNHEALTHY = "UNHEALTHY"

#: AWS's words for each HealthStatusReason (botocore's Budgets model, HealthStatus.StatusReason).
HEALTH_REASONS = {
    "BILLING_VIEW_NO_ACCESS": "the billing view does not grant billing:GetBillingViewData to this account",
    "BILLING_VIEW_UNHEALTHY": "the billing view associated with the budget is unhealthy",
    "FILTER_INVALID": "the filter contains reference to an account you do not have access to",
    "MULTI_YEAR_HISTORICAL_DATA_DISABLED": (
        "the budget is not being updated: enable multi-year historical data in the Cost Management preferences"
    ),
}


def unhealthy_reason(reason: str) -> str:
    """An UNHEALTHY budget's failure reason: AWS's StatusReason and what it means. Pure."""
    meaning = HEALTH_REASONS.get(reason)
    return f"AWS Budgets reports the budget UNHEALTHY: {reason or 'no reason given'}" + (
        f" ({meaning})" if meaning else ""
    )
