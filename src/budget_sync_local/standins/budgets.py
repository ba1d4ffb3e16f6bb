"""Budgets: UpdateBudget, DescribeBudget's hidden FilterExpression, and the local
organisation's view of a budget."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, cast

from moto.budgets.exceptions import BudgetMissingLimit
from moto.budgets.exceptions import NotFoundException as BudgetNotFound
from moto.budgets.models import Budget, BudgetsBackend, budgets_backends
from moto.budgets.responses import BudgetsResponse
from moto.core.utils import unix_time


def _backend_update_budget(self: BudgetsBackend, account_id: str, new_budget: dict[str, Any]) -> None:
    """UpdateBudget: "can change every part of a budget except budgetName and calculatedSpend"."""
    name = new_budget.get("BudgetName")
    current = self.budgets[account_id].get(str(name))
    if current is None:
        raise BudgetNotFound(f"Unable to update budget: {name} - the budget doesn't exist.")
    if "BudgetLimit" not in new_budget and "PlannedBudgetLimits" not in new_budget:
        current_type = new_budget.get("BudgetType", current.budget.get("BudgetType"))
        if current_type in ("COST", "USAGE"):
            raise BudgetMissingLimit()
    replacement = {k: v for k, v in new_budget.items() if k not in ("CalculatedSpend", "LastUpdatedTime")}
    if "CalculatedSpend" in current.budget:
        replacement["CalculatedSpend"] = current.budget["CalculatedSpend"]
    replacement.setdefault("TimePeriod", current.budget.get("TimePeriod"))
    replacement["LastUpdatedTime"] = unix_time()
    current.budget = replacement


def _response_update_budget(self: BudgetsResponse) -> str:
    self.backend.update_budget(  # type: ignore[attr-defined]
        account_id=self._get_param("AccountId"), new_budget=self._get_param("NewBudget")
    )
    return json.dumps({})


def _response_describe_budget(self: BudgetsResponse) -> str:
    """DescribeBudget: "FilterExpression ... is returned only when ShowFilterExpression is true"."""
    budget = self.backend.describe_budget(
        account_id=self._get_param("AccountId"), budget_name=self._get_param("BudgetName")
    )
    if not self._get_param("ShowFilterExpression"):
        budget.pop("FilterExpression", None)
    return json.dumps({"Budget": budget})


def _budget(account: str, budget_name: str, partition: str = "aws") -> Budget:
    budget = budgets_backends[account][partition].budgets[account].get(budget_name)
    if budget is None:
        raise KeyError(f"no budget {budget_name} in account {account}")
    return budget


def set_calculated_spend(
    account: str, budget_name: str, actual: Decimal, forecasted: Decimal, partition: str = "aws"
) -> None:
    """Give a budget this month's spend (AWS computes it from billing data; moto reads 0)."""
    _budget(account, budget_name, partition).budget["CalculatedSpend"] = {
        "ActualSpend": {"Amount": str(actual), "Unit": "USD"},
        "ForecastedSpend": {"Amount": str(forecasted), "Unit": "USD"},
    }


def notifications_with_subscribers(
    account: str, budget_name: str, partition: str = "aws"
) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """The budget's notifications, each with its subscribers, as moto holds them."""
    return [
        (dict(n.details), [dict(s) for s in cast(list[dict[str, Any]], n.subscribers)])
        for n in _budget(account, budget_name, partition).notifications
    ]
