"""BlogBudgetsAutomationDoc, step UpdateBudgetLimit: set the spoke budget's limit.

Runs inside SSM Automation (aws:executeScript, python3.11) with the automation role's
credentials. template-spoke.yaml holds this file verbatim as the step's inline Script.

1. Read the budget parameter and validate its value (a positive USD amount, at most two
   decimals, at most 1,000,000,000; the parameter's AllowedPattern is the same rule).
2. Describe the budget and send it back whole with only BudgetLimit changed
   (read-modify-write: cost types, filters, time period, auto-adjust data stay as they
   are; notifications and subscribers have their own APIs and are not touched).
3. If the budget does not exist (deleted by hand), create it with the notifications and
   subscribers of the template, passed in as document parameters.

Only the standard library and boto3 are available, so the amount rule is repeated here
(budget_sync.domain.AMOUNT_PATTERN; a test keeps the two equal).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, cast

import boto3
from botocore.config import Config

if TYPE_CHECKING:  # type stubs for the checker only; the Automation runtime has boto3 alone
    from mypy_boto3_budgets import BudgetsClient
    from mypy_boto3_budgets.type_defs import BudgetTypeDef, NotificationWithSubscribersTypeDef

AMOUNT_PATTERN = r"^(0|[1-9][0-9]{0,9})(\.[0-9]{1,2})?$"
MAX_AMOUNT = Decimal("1000000000")
UNIT = "USD"

#: aws:executeScript does not retry throttled calls itself: the clients do (standard mode: exponential backoff).
RETRIES = Config(retries={"max_attempts": 10, "mode": "standard"})

_AMOUNT = re.compile(AMOUNT_PATTERN)
#: Fields AWS Budgets computes; UpdateBudget ignores them, so they are not sent back.
_READ_ONLY = ("CalculatedSpend", "LastUpdatedTime")


def parse_amount(value: str) -> Decimal:
    """The validated amount, or ValueError naming the value and the rule it breaks."""
    if not _AMOUNT.fullmatch(value):
        raise ValueError(
            f"Invalid budget value {value!r}: expected a USD amount with at most two decimals "
            f"(pattern {AMOUNT_PATTERN})"
        )
    amount = Decimal(value)
    if amount <= 0:
        raise ValueError(f"Invalid budget value {value!r}: must be greater than 0")
    if amount > MAX_AMOUNT:
        raise ValueError(f"Invalid budget value {value!r}: exceeds the maximum of {MAX_AMOUNT} USD")
    return amount


def format_amount(amount: Decimal) -> str:
    """Canonical text: 1250.50 -> '1250.5', 1000.00 -> '1000'."""
    text = f"{amount.quantize(Decimal('0.01')):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def notifications_with_subscribers(
    emails: str, actual_thresholds: str, forecasted_threshold: str, sns_topic_arn: str
) -> list[NotificationWithSubscribersTypeDef]:
    """The template's NotificationsWithSubscribers, from the document's parameters."""
    addresses: list[tuple[Literal["EMAIL", "SNS"], str]] = [("EMAIL", a) for a in _split(emails)]
    if sns_topic_arn.strip():
        addresses.append(("SNS", sns_topic_arn.strip()))
    kinds: list[tuple[Literal["ACTUAL", "FORECASTED"], str]] = [
        ("ACTUAL", t) for t in _split(actual_thresholds)
    ]
    kinds += [("FORECASTED", t) for t in _split(forecasted_threshold)]
    return [
        {
            "Notification": {
                "NotificationType": kind,
                "ComparisonOperator": "GREATER_THAN",
                "Threshold": float(threshold),
                "ThresholdType": "PERCENTAGE",
            },
            "Subscribers": [{"SubscriptionType": kind_, "Address": a} for kind_, a in addresses],
        }
        for kind, threshold in kinds
    ]


def apply_limit(
    budgets: BudgetsClient,
    account_id: str,
    budget_name: str,
    value: str,
    notifications: list[NotificationWithSubscribersTypeDef],
) -> dict[str, str]:
    """Set the budget's limit to ``value``; create the budget if it is missing.

    Returns {"OldLimit", "NewLimit", "Action"}; Action is Updated, Unchanged or Created.
    The value is validated before any call, so an invalid value leaves the budget as it was.
    """
    amount = parse_amount(value)
    new_limit = format_amount(amount)
    try:
        response = budgets.describe_budget(AccountId=account_id, BudgetName=budget_name)
    except budgets.exceptions.NotFoundException:
        budgets.create_budget(
            AccountId=account_id,
            Budget={
                "BudgetName": budget_name,
                "BudgetType": "COST",
                "TimeUnit": "MONTHLY",
                "BudgetLimit": {"Amount": new_limit, "Unit": UNIT},
            },
            NotificationsWithSubscribers=notifications,
        )
        return {"OldLimit": "", "NewLimit": new_limit, "Action": "Created"}
    budget = response["Budget"]
    if "PlannedBudgetLimits" in budget:
        raise ValueError(
            f"Budget {budget_name} uses PlannedBudgetLimits; budget-sync manages a fixed monthly "
            "BudgetLimit. Recreate the budget without planned limits."
        )
    current = budget.get("BudgetLimit", {})
    old_limit = str(current.get("Amount", ""))
    if old_limit and Decimal(old_limit) == amount and current.get("Unit") == UNIT:
        return {"OldLimit": old_limit, "NewLimit": old_limit, "Action": "Unchanged"}
    new_budget: dict[str, Any] = {key: item for key, item in budget.items() if key not in _READ_ONLY}
    new_budget["BudgetLimit"] = {"Amount": new_limit, "Unit": UNIT}
    budgets.update_budget(AccountId=account_id, NewBudget=cast("BudgetTypeDef", new_budget))
    return {"OldLimit": old_limit, "NewLimit": new_limit, "Action": "Updated"}


def handler(events: dict[str, Any], context: Any) -> dict[str, str]:
    """aws:executeScript entry point; ``events`` is the step's InputPayload."""
    value: str = boto3.client("ssm", config=RETRIES).get_parameter(Name=events["ParameterName"])["Parameter"][
        "Value"
    ]
    notifications = notifications_with_subscribers(
        events.get("AlertEmails", ""),
        events.get("ActualThresholds", ""),
        events.get("ForecastedThreshold", ""),
        events.get("SnsTopicArn", ""),
    )
    return apply_limit(
        boto3.client("budgets", config=RETRIES),
        events["AccountId"],
        events["BudgetName"],
        value,
        notifications,
    )
