"""The Budgets stand-in gives every budget a HealthStatus as AWS does (botocore's Budgets model,
``HealthStatus``): HEALTHY, UNHEALTHY with FILTER_INVALID for a filter naming an account the
budget's account cannot see, and any of AWS's reasons given by hand (``set_health``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.support.lazy import lazy
from tests.support.spoke_account import REGION

if TYPE_CHECKING:
    import moto

    from budget_sync_local import standins
else:  # moto: imported by the first test that uses it, not at collection (make unit)
    standins = lazy("budget_sync_local.standins")
    moto = lazy("moto")

ACCOUNT = "123456789012"
OTHER = "210987654321"
BUDGET = {
    "BudgetName": "b1",
    "BudgetType": "COST",
    "TimeUnit": "MONTHLY",
    "BudgetLimit": {"Amount": "100", "Unit": "USD"},
}


@pytest.fixture
def budgets() -> Iterator[Any]:
    with moto.mock_aws(), standins.installed():
        client = boto3.client("budgets", region_name=REGION, config=Config(parameter_validation=False))
        client.create_budget(AccountId=ACCOUNT, Budget=BUDGET)
        yield client


def _health(client: Any) -> dict[str, Any]:
    described = client.describe_budget(AccountId=ACCOUNT, BudgetName="b1")["Budget"]["HealthStatus"]
    listed = client.describe_budgets(AccountId=ACCOUNT)["Budgets"][0]["HealthStatus"]
    assert described == listed
    return {k: v for k, v in described.items() if k != "LastUpdatedTime"}


def _linked(*accounts: str) -> dict[str, Any]:
    return {
        **BUDGET,
        "Metrics": ["UnblendedCost"],
        "FilterExpression": {
            "And": [
                {"Dimensions": {"Key": "LINKED_ACCOUNT", "Values": list(accounts)}},
                {"Not": {"Dimensions": {"Key": "RECORD_TYPE", "Values": ["Credit"]}}},
            ]
        },
    }


@pytest.mark.aws
def test_given_a_budget_then_describe_budget_and_describe_budgets_show_it_healthy(budgets: Any):
    assert _health(budgets) == {"Status": "HEALTHY"}
    assert (
        "LastUpdatedTime"
        in budgets.describe_budget(AccountId=ACCOUNT, BudgetName="b1")["Budget"]["HealthStatus"]
    )


@pytest.mark.aws
def test_given_a_filter_naming_another_account_then_the_budget_is_filter_invalid_until_fixed(budgets: Any):
    budgets.update_budget(AccountId=ACCOUNT, NewBudget=_linked(ACCOUNT))
    assert _health(budgets) == {"Status": "HEALTHY"}

    budgets.update_budget(AccountId=ACCOUNT, NewBudget=_linked(ACCOUNT, OTHER))
    assert _health(budgets) == {"Status": "UNHEALTHY", "StatusReason": "FILTER_INVALID"}

    budgets.update_budget(AccountId=ACCOUNT, NewBudget=_linked(ACCOUNT))
    assert _health(budgets) == {"Status": "HEALTHY"}


@pytest.mark.aws
def test_given_a_filter_naming_another_account_when_created_then_it_is_filter_invalid(budgets: Any):
    budgets.create_budget(AccountId=ACCOUNT, Budget={**_linked(OTHER), "BudgetName": "b2"})
    health = budgets.describe_budget(AccountId=ACCOUNT, BudgetName="b2")["Budget"]["HealthStatus"]
    assert (health["Status"], health["StatusReason"]) == ("UNHEALTHY", "FILTER_INVALID")


@pytest.mark.aws
def test_given_health_set_by_hand_then_it_stays_through_updates_until_made_healthy(budgets: Any):
    standins.set_health(ACCOUNT, "b1", "UNHEALTHY", "BILLING_VIEW_NO_ACCESS")
    assert _health(budgets) == {"Status": "UNHEALTHY", "StatusReason": "BILLING_VIEW_NO_ACCESS"}

    # a client cannot set it: HealthStatus in a request is AWS's to compute
    budgets.update_budget(
        AccountId=ACCOUNT,
        NewBudget={
            **BUDGET,
            "BudgetLimit": {"Amount": "200", "Unit": "USD"},
            "HealthStatus": {"Status": "HEALTHY"},
        },
    )
    assert _health(budgets) == {"Status": "UNHEALTHY", "StatusReason": "BILLING_VIEW_NO_ACCESS"}

    standins.set_health(ACCOUNT, "b1", "HEALTHY")
    assert _health(budgets) == {"Status": "HEALTHY"}


@pytest.mark.aws
@pytest.mark.parametrize(
    ("status", "reason", "words"),
    [
        ("SICK", None, "Status 'SICK' must be HEALTHY or UNHEALTHY"),
        ("UNHEALTHY", "TIRED", "StatusReason 'TIRED' must be one of BILLING_VIEW_NO_ACCESS"),
        ("UNHEALTHY", None, "StatusReason None must be one of"),
        ("HEALTHY", "FILTER_INVALID", "StatusReason 'FILTER_INVALID' is only given with UNHEALTHY"),
    ],
)
def test_given_a_status_or_reason_aws_does_not_have_then_set_health_names_it(
    budgets: Any, status: str, reason: str | None, words: str
):
    with pytest.raises(ValueError, match=words):
        standins.set_health(ACCOUNT, "b1", status, reason)
    assert _health(budgets) == {"Status": "HEALTHY"}


@pytest.mark.aws
def test_given_a_dimension_aws_does_not_have_then_the_budget_is_refused_and_unchanged(budgets: Any):
    with pytest.raises(ClientError) as error:
        budgets.update_budget(
            AccountId=ACCOUNT,
            NewBudget={
                **BUDGET,
                "Metrics": ["UnblendedCost"],
                "FilterExpression": {"Dimensions": {"Key": "PLANET", "Values": ["Mars"]}},
            },
        )
    assert error.value.response["Error"]["Code"] == "InvalidParameterException"
    assert (
        "'PLANET' at 'NewBudget.FilterExpression.Dimensions.Key'" in error.value.response["Error"]["Message"]
    )
    assert "Metrics" not in budgets.describe_budget(AccountId=ACCOUNT, BudgetName="b1")["Budget"]
