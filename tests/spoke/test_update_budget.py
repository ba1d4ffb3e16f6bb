"""The Automation script's own functions (src/budget_sync_spoke/update_budget.py), on a
moto budgets client (UpdateBudget from budget_sync_local.standins)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from budget_sync.domain import format_amount, is_amount_text
from budget_sync_spoke.update_budget import apply_limit, notifications_with_subscribers, parse_amount
from tests.support.lazy import lazy

if TYPE_CHECKING:
    import moto

    from budget_sync_local import standins
else:  # moto: imported by the first test that uses it, not at collection (make unit)
    standins = lazy("budget_sync_local.standins")
    moto = lazy("moto")

ACCOUNT = "123456789012"
NOTIFICATIONS = notifications_with_subscribers("a@example.com,,", "80,100", "100", "")


@pytest.fixture
def budgets() -> Iterator[Any]:
    with moto.mock_aws(), standins.installed():
        yield boto3.client("budgets", region_name="us-east-1")


@pytest.mark.parametrize("text", ["1", "1000", "1250.5", "1250.50", "0.01", "1000000000"])
def test_given_a_valid_amount_then_it_parses_like_the_item_contract(text: str):
    assert parse_amount(text) == Decimal(text)
    assert is_amount_text(text)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("0", "greater than 0"),
        ("0.00", "greater than 0"),
        ("12.345", "at most two decimals"),
        ("-5", "at most two decimals"),
        ("1e3", "at most two decimals"),
        ("1000000000.01", "exceeds the maximum"),
        ("", "at most two decimals"),
        (" 5", "at most two decimals"),
    ],
)
def test_given_an_invalid_amount_then_value_error_names_the_value(text: str, reason: str):
    with pytest.raises(ValueError, match=reason) as error:
        parse_amount(text)
    assert repr(text) in str(error.value)


def test_the_script_formats_amounts_as_the_function_does():
    from budget_sync_spoke.update_budget import format_amount as script_format

    for text in ("1250.50", "1000.00", "0.10", "7"):
        assert script_format(Decimal(text)) == format_amount(Decimal(text))


def test_notifications_skip_empty_slots_and_add_the_topic_to_each():
    built = notifications_with_subscribers(
        "a@example.com,,c@example.com", "80,", "", "arn:aws:sns:us-east-1:1:t"
    )
    assert len(built) == 1
    assert built[0]["Notification"] == {
        "NotificationType": "ACTUAL",
        "ComparisonOperator": "GREATER_THAN",
        "Threshold": 80.0,
        "ThresholdType": "PERCENTAGE",
    }
    assert built[0]["Subscribers"] == [
        {"SubscriptionType": "EMAIL", "Address": "a@example.com"},
        {"SubscriptionType": "EMAIL", "Address": "c@example.com"},
        {"SubscriptionType": "SNS", "Address": "arn:aws:sns:us-east-1:1:t"},
    ]


@pytest.mark.aws
def test_given_no_budget_then_it_is_created_with_the_notifications(budgets: Any):
    result = apply_limit(budgets, ACCOUNT, "b", "1250.50", NOTIFICATIONS)

    assert result == {"OldLimit": "", "NewLimit": "1250.5", "Action": "Created"}
    budget = budgets.describe_budget(AccountId=ACCOUNT, BudgetName="b")["Budget"]
    assert budget["BudgetLimit"] == {"Amount": "1250.5", "Unit": "USD"}
    assert [n for n, _ in standins.notifications_with_subscribers(ACCOUNT, "b")] == [
        n["Notification"] for n in NOTIFICATIONS
    ]


@pytest.mark.aws
def test_given_a_budget_then_only_the_limit_is_sent_back_changed(budgets: Any):
    apply_limit(budgets, ACCOUNT, "b", "100", NOTIFICATIONS)
    sent: list[dict[str, Any]] = []
    budgets.meta.events.register(
        "provide-client-params.budgets.UpdateBudget", lambda params, **_: sent.append(params["NewBudget"])
    )
    before = budgets.describe_budget(AccountId=ACCOUNT, BudgetName="b")["Budget"]

    assert apply_limit(budgets, ACCOUNT, "b", "200", NOTIFICATIONS) == {
        "OldLimit": "100",
        "NewLimit": "200",
        "Action": "Updated",
    }

    (new_budget,) = sent
    expected = {
        k: v for k, v in before.items() if k not in ("CalculatedSpend", "LastUpdatedTime", "HealthStatus")
    }
    assert new_budget == {**expected, "BudgetLimit": {"Amount": "200", "Unit": "USD"}}


@pytest.mark.aws
def test_given_an_invalid_value_then_nothing_is_called(budgets: Any):
    calls: list[str] = []
    budgets.meta.events.register(
        "provide-client-params.budgets.*", lambda model, **_: calls.append(model.name)
    )
    with pytest.raises(ValueError, match=r"'12\.345'"):
        apply_limit(budgets, ACCOUNT, "b", "12.345", NOTIFICATIONS)
    assert calls == []


@pytest.mark.aws
def test_given_planned_limits_then_the_script_refuses_rather_than_mixing_them(budgets: Any):
    budgets.create_budget(
        AccountId=ACCOUNT,
        Budget={
            "BudgetName": "planned",
            "BudgetType": "COST",
            "TimeUnit": "MONTHLY",
            "PlannedBudgetLimits": {"1767225600": {"Amount": "100", "Unit": "USD"}},
        },
    )
    with pytest.raises(ValueError, match="PlannedBudgetLimits"):
        apply_limit(budgets, ACCOUNT, "planned", "200", NOTIFICATIONS)
