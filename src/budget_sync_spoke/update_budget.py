"""BlogBudgetsAutomationDoc, step UpdateBudgetLimit: set the spoke budget's limit.

Runs inside SSM Automation (aws:executeScript, python3.11) with the automation role's
credentials. template-spoke.yaml holds this file verbatim as the step's inline Script.

1. Read the budget parameter (value and version) and validate its value (a positive USD
   amount, at most two decimals, at most 1,000,000,000; the parameter's AllowedPattern is
   the same rule).
2. Describe the budget with ShowFilterExpression (DescribeBudget hides FilterExpression
   otherwise) and send every member of its definition back (KEPT) with only BudgetLimit
   changed; only what AWS computes (COMPUTED) is left out. The definition sent is one that
   UpdateBudget accepts whatever DescribeBudget returned: a budget with FilterExpression or
   Metrics keeps them and its CostFilters/CostTypes are dropped (UpdateBudget takes one
   pair, not both), and never BudgetLimit with PlannedBudgetLimits. UpdateBudget replaces the whole
   definition, so a member left out would be lost. If this runtime's boto3 does not know a
   KEPT member or ShowFilterExpression, fail with a reason before any change: an SDK that
   does not know a member drops it from the answer, and sending that back would strip it.
   Notifications and subscribers have their own APIs and are not touched.
3. If the budget does not exist (deleted by hand), create it with the notifications and
   subscribers of the template, passed in as document parameters.
4. Read the parameter again: if a newer version was written meanwhile (two runs overlap),
   apply that one too (at most MAX_ROUNDS times), so the budget ends at the newest value.
5. Report the outcome on the account's default event bus (source ``budget-sync.spoke``,
   detail-type ``Budget Update Result``): success with the old and new limit and what was
   done, or failure with the reason (the execution then fails too). The spoke stack's rule
   forwards it to the management account, which records APPLIED or FAILED.

Only the standard library and boto3 are available, so the amount rule is repeated here
(budget_sync.domain.AMOUNT_PATTERN; a test keeps the two equal).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
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
#: Members of the Budget shape that define a budget: each is sent back as DescribeBudget
#: returned it. tests/spoke/test_budget_contract.py classifies every member of botocore's shape.
KEPT = (
    "BudgetName",
    "BudgetLimit",
    "PlannedBudgetLimits",
    "CostFilters",
    "CostTypes",
    "TimeUnit",
    "TimePeriod",
    "BudgetType",
    "AutoAdjustData",
    "FilterExpression",
    "Metrics",
    "BillingViewArn",
)
#: The two ways of saying what a budget counts; UpdateBudget takes one of them, not both.
NEW_FILTER = ("FilterExpression", "Metrics")
OLD_FILTER = ("CostFilters", "CostTypes")
#: Members AWS Budgets computes; UpdateBudget ignores them, so they are not sent back.
COMPUTED = ("CalculatedSpend", "LastUpdatedTime", "HealthStatus")
#: Runs of the update at most, when the parameter keeps changing under it.
MAX_ROUNDS = 3
REPORT_SOURCE = "budget-sync.spoke"
REPORT_DETAIL_TYPE = "Budget Update Result"


class SdkTooOld(RuntimeError):
    """The runtime's boto3 lacks a member or parameter that the update depends on."""


def check_sdk(budgets: Any) -> None:
    """Raise SdkTooOld unless this boto3 knows every KEPT member and ShowFilterExpression."""
    model = budgets.meta.service_model
    members = set(model.shape_for("Budget").members)
    missing = [name for name in KEPT if name not in members]
    describe = set(model.operation_model("DescribeBudget").input_shape.members)
    if "ShowFilterExpression" not in describe:
        missing.append("DescribeBudget.ShowFilterExpression")
    if missing:
        raise SdkTooOld(
            f"the Automation runtime's boto3 does not know {', '.join(missing)}; the budget was not "
            "changed, because sending back a definition without them would strip them"
        )


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


def consistent_definition(budget: Mapping[str, Any]) -> dict[str, Any]:
    """The KEPT members of a described budget, as one definition UpdateBudget accepts.

    UpdateBudget takes "either FilterExpression and Metrics or CostFilters and CostTypes, not
    both", and one of BudgetLimit / PlannedBudgetLimits (API reference). A DescribeBudget
    answer may hold both pairs (default CostTypes beside a budget's FilterExpression and
    Metrics): a budget that has the new pair keeps it, and the deprecated pair is dropped.
    PlannedBudgetLimits is dropped: the caller sends BudgetLimit.
    """
    definition = {key: item for key, item in budget.items() if key in KEPT}
    if any(definition.get(key) is not None for key in NEW_FILTER):
        for key in OLD_FILTER:
            definition.pop(key, None)
    definition.pop("PlannedBudgetLimits", None)
    return definition


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
    check_sdk(budgets)
    try:
        response = budgets.describe_budget(
            AccountId=account_id, BudgetName=budget_name, ShowFilterExpression=True
        )
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
    new_budget = consistent_definition(budget)
    new_budget["BudgetLimit"] = {"Amount": new_limit, "Unit": UNIT}
    budgets.update_budget(AccountId=account_id, NewBudget=cast("BudgetTypeDef", new_budget))
    return {"OldLimit": old_limit, "NewLimit": new_limit, "Action": "Updated"}


def read_parameter(ssm: Any, name: str) -> tuple[str, int]:
    """The parameter's value and version."""
    parameter = ssm.get_parameter(Name=name)["Parameter"]
    return str(parameter["Value"]), int(parameter["Version"])


def report(events_client: Any, detail: dict[str, Any]) -> None:
    """Put the outcome on this account's default bus; raise if EventBridge refused it."""
    answer = events_client.put_events(
        Entries=[
            {
                "Source": REPORT_SOURCE,
                "DetailType": REPORT_DETAIL_TYPE,
                "Detail": json.dumps(detail),
            }
        ]
    )
    if answer.get("FailedEntryCount"):
        raise RuntimeError(f"the result could not be reported: {answer['Entries']}")


def handler(events: dict[str, Any], context: Any) -> dict[str, Any]:
    """aws:executeScript entry point; ``events`` is the step's InputPayload."""
    ssm = boto3.client("ssm", config=RETRIES)
    budgets = boto3.client("budgets", config=RETRIES)
    notifications = notifications_with_subscribers(
        events.get("AlertEmails", ""),
        events.get("ActualThresholds", ""),
        events.get("ForecastedThreshold", ""),
        events.get("SnsTopicArn", ""),
    )
    detail: dict[str, Any] = {
        "AccountId": events["AccountId"],
        "BudgetName": events["BudgetName"],
        "ParameterName": events["ParameterName"],
        "ExecutionId": events.get("ExecutionId", ""),
    }
    value, version = read_parameter(ssm, events["ParameterName"])
    first_limit = ""
    try:
        for _ in range(MAX_ROUNDS):
            detail.update({"ParameterVersion": version, "Value": value})
            result = apply_limit(budgets, events["AccountId"], events["BudgetName"], value, notifications)
            first_limit = first_limit or result["OldLimit"]
            value, newest = read_parameter(ssm, events["ParameterName"])
            if newest == version:
                break
            version = newest  # another write landed meanwhile: the budget must end at it
        else:
            raise RuntimeError(f"the parameter changed {MAX_ROUNDS} times during the update; try again")
    except Exception as exc:
        report(boto3.client("events", config=RETRIES), {**detail, "Outcome": "FAILED", "Reason": str(exc)})
        raise
    outcome = {**detail, "Outcome": "APPLIED", **result, "OldLimit": first_limit or result["OldLimit"]}
    report(boto3.client("events", config=RETRIES), outcome)
    return {**result, "OldLimit": outcome["OldLimit"], "ParameterVersion": str(version)}
