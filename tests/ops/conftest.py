"""Operations tests on moto: the integration organisation plus a budget in every spoke, and
``budgetctl`` called as a user types it (argv in, stdout/stderr/exit code out)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from budget_sync.handlers import reconcile as reconcile_handler
from budgetctl.cli import main
from tests.integration.conftest import SPOKES, Org
from tests.integration.conftest import org as integration_org  # noqa: F401 - fixture, used below

BUDGET = "SpokeAccountBudget"


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def budgetctl(*argv: str) -> Run:
    """``budgetctl ARGV...`` in-process, as the console script runs it."""
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return Run(code, out.getvalue(), err.getvalue())


def create_budget(
    org: Org, account: str, limit: str = "1000", actual: str = "0", forecast: str = "0"
) -> None:
    """The spoke stack's budget (moto's CloudFormation skips AWS::Budgets::Budget)."""
    org.spokes[account].client("budgets").create_budget(
        AccountId=account,
        Budget={
            "BudgetName": BUDGET,
            "BudgetLimit": {"Amount": limit, "Unit": "USD"},
            "BudgetType": "COST",
            "TimeUnit": "MONTHLY",
            "CalculatedSpend": {
                "ActualSpend": {"Amount": actual, "Unit": "USD"},
                "ForecastedSpend": {"Amount": forecast, "Unit": "USD"},
            },
        },
    )


def edit_budget_limit(org: Org, account: str, limit: str) -> None:
    """A hand edit of the limit in the console (moto 5.2 has no UpdateBudget: re-create it)."""
    budgets = org.spokes[account].client("budgets")
    budgets.delete_budget(AccountId=account, BudgetName=BUDGET)
    create_budget(org, account, limit)


def budget_limit(org: Org, account: str) -> Decimal:
    budget = org.spokes[account].client("budgets").describe_budget(AccountId=account, BudgetName=BUDGET)
    return Decimal(budget["Budget"]["BudgetLimit"]["Amount"])


def parameter_version(org: Org, account: str) -> int:
    ssm = org.spokes[account].client("ssm")
    return int(ssm.get_parameter(Name="/BlogBudgets/CostThreshold")["Parameter"]["Version"])


@pytest.fixture
def ops(integration_org: Org) -> Iterator[Org]:  # noqa: F811 - the integration fixture, extended
    """Three spokes, each with parameter 1000 and a budget of 1000; the table says 1000 for all."""
    reconcile_handler.build.cache_clear()
    for account in SPOKES:
        create_budget(integration_org, account)
        integration_org.put(account, Decimal("1000"))
    integration_org.new_records()  # the stream's records so far are not these tests' subject
    yield integration_org
    reconcile_handler.build.cache_clear()
