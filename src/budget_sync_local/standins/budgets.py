"""Budgets: UpdateBudget, DescribeBudget's hidden FilterExpression, notifications and
subscribers, and the local organisation's view of a budget."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, cast

from moto.budgets.exceptions import BudgetMissingLimit
from moto.budgets.exceptions import NotFoundException as BudgetNotFound
from moto.budgets.models import Budget, BudgetsBackend, budgets_backends
from moto.budgets.responses import BudgetsResponse
from moto.core.exceptions import JsonRESTError
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


# --- Notifications and subscribers ------------------------------------------------------
# moto 5.2 has CreateNotification, DeleteNotification and DescribeNotificationsForBudget (no
# checks: duplicates accepted, a missing notification deleted silently) and none of the
# subscriber APIs nor UpdateNotification. AWS (Budgets API reference): a notification is
# identified by NotificationType, ComparisonOperator, Threshold and ThresholdType
# (PERCENTAGE when absent); "a budget can have up to ten notifications"; "a notification
# can have one SNS subscriber and up to 10 email subscribers"; the same notification or
# subscriber twice is DuplicateRecordException, a missing one NotFoundException, a limit
# CreationLimitExceededException, a malformed request InvalidParameterException.

MAX_NOTIFICATIONS = 10
MAX_EMAIL_SUBSCRIBERS = 10
MAX_SNS_SUBSCRIBERS = 1
_EMAIL_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SNS_ADDRESS = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[\w-]{1,256}$")


class _BudgetsError(JsonRESTError):
    code = 400


def _error(kind: str, message: str) -> _BudgetsError:
    return _BudgetsError(kind, message)


def _notification_key(notification: Mapping[str, Any]) -> tuple[str, str, float, str]:
    try:
        return (
            str(notification["NotificationType"]),
            str(notification["ComparisonOperator"]),
            float(notification["Threshold"]),
            str(notification.get("ThresholdType") or "PERCENTAGE"),
        )
    except (KeyError, TypeError, ValueError):
        raise _error("InvalidParameterException", "Request has an invalid notification") from None


def _subscriber_key(subscriber: Mapping[str, Any]) -> tuple[str, str]:
    kind, address = subscriber.get("SubscriptionType"), subscriber.get("Address")
    if kind not in ("EMAIL", "SNS") or not isinstance(address, str):
        raise _error("InvalidParameterException", "Request has an invalid subscriber")
    pattern = _EMAIL_ADDRESS if kind == "EMAIL" else _SNS_ADDRESS
    if not pattern.fullmatch(address):
        raise _error("InvalidParameterException", f"Invalid {kind.lower()} address: {address}")
    return kind, address


def _check_subscribers(subscribers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = [_subscriber_key(s) for s in subscribers]
    if not keys:
        raise _error("InvalidParameterException", "A notification needs at least one subscriber")
    if len(set(keys)) != len(keys):
        raise _error("DuplicateRecordException", "Error creating subscriber: the subscriber already exists.")
    _check_subscriber_limits(keys)
    return [{"SubscriptionType": k, "Address": a} for k, a in keys]


def _check_subscriber_limits(keys: list[tuple[str, str]]) -> None:
    if sum(k == "EMAIL" for k, _ in keys) > MAX_EMAIL_SUBSCRIBERS or sum(k == "SNS" for k, _ in keys) > (
        MAX_SNS_SUBSCRIBERS
    ):
        raise _error(
            "CreationLimitExceededException",
            f"You've exceeded the subscriber limit: one SNS and up to {MAX_EMAIL_SUBSCRIBERS} email "
            "subscribers per notification.",
        )


def _budget_of(backend: BudgetsBackend, account_id: str, budget_name: str, verb: str) -> Budget:
    budget = backend.budgets[account_id].get(budget_name)
    if budget is None:
        raise BudgetNotFound(f"Unable to {verb} - the budget doesn't exist.")
    return budget


def _find(budget: Budget, notification: Mapping[str, Any], verb: str) -> Any:
    key = _notification_key(notification)
    for existing in budget.notifications:
        if _notification_key(existing.details) == key:
            return existing
    raise BudgetNotFound(f"Unable to {verb} - the notification doesn't exist.")


def _stored(notification: Mapping[str, Any]) -> dict[str, Any]:
    stored = {k: v for k, v in notification.items() if k != "NotificationState"}
    stored["ThresholdType"] = stored.get("ThresholdType") or "PERCENTAGE"
    return stored


def _backend_create_budget(original: Any) -> Any:
    def create_budget(
        self: BudgetsBackend, account_id: str, budget: dict[str, Any], notifications: list[dict[str, Any]]
    ) -> None:
        if len(notifications) > MAX_NOTIFICATIONS:
            raise _error("CreationLimitExceededException", "You've exceeded the notification limit.")
        checked = [
            {"Notification": _stored(n["Notification"]), "Subscribers": _check_subscribers(n["Subscribers"])}
            for n in notifications
        ]
        if len({_notification_key(cast(dict[str, Any], n["Notification"])) for n in checked}) != len(checked):
            raise _error(
                "DuplicateRecordException", "Error creating notification: the notification already exists."
            )
        original(self, account_id, budget, checked)

    return create_budget


def _backend_create_notification(
    self: BudgetsBackend,
    account_id: str,
    budget_name: str,
    notification: dict[str, Any],
    subscribers: list[dict[str, Any]],
) -> None:
    budget = _budget_of(self, account_id, budget_name, "create notification")
    key = _notification_key(notification)
    if any(_notification_key(n.details) == key for n in budget.notifications):
        raise _error(
            "DuplicateRecordException", "Error creating notification: the notification already exists."
        )
    if len(budget.notifications) >= MAX_NOTIFICATIONS:
        raise _error(
            "CreationLimitExceededException",
            f"You've exceeded the notification limit: up to {MAX_NOTIFICATIONS} notifications per budget.",
        )
    budget.add_notification(_stored(notification), cast(dict[str, Any], _check_subscribers(subscribers)))


def _backend_delete_notification(
    self: BudgetsBackend, account_id: str, budget_name: str, notification: dict[str, Any]
) -> None:
    budget = _budget_of(self, account_id, budget_name, "delete notification")
    found = _find(budget, notification, "delete notification")
    budget.notifications = [n for n in budget.notifications if n is not found]


def update_notification(
    backend: BudgetsBackend, account_id: str, budget_name: str, old: dict[str, Any], new: dict[str, Any]
) -> None:
    """UpdateNotification: the notification's definition changes, its subscribers stay."""
    budget = _budget_of(backend, account_id, budget_name, "update notification")
    found = _find(budget, old, "update notification")
    new_key = _notification_key(new)
    if new_key != _notification_key(old) and any(
        _notification_key(n.details) == new_key for n in budget.notifications
    ):
        raise _error(
            "DuplicateRecordException", "Error updating notification: the notification already exists."
        )
    found.details = _stored(new)


def _notification_of(
    backend: BudgetsBackend, account_id: str, budget_name: str, notification: Mapping[str, Any], verb: str
) -> Any:
    """The budget's notification, or the error AWS gives for ``verb`` (no budget, no notification)."""
    return _find(_budget_of(backend, account_id, budget_name, verb), notification, verb)


def subscribers_for(
    backend: BudgetsBackend, account_id: str, budget_name: str, notification: dict[str, Any]
) -> Any:
    return _notification_of(backend, account_id, budget_name, notification, "describe subscribers")


def create_subscriber(
    backend: BudgetsBackend,
    account_id: str,
    budget_name: str,
    notification: dict[str, Any],
    subscriber: dict[str, Any],
) -> None:
    found = _notification_of(backend, account_id, budget_name, notification, "create subscriber")
    key = _subscriber_key(subscriber)
    keys = [_subscriber_key(s) for s in found.subscribers]
    if key in keys:
        raise _error(
            "DuplicateRecordException",
            f"Error creating subscriber: {key[1]} - the subscriber already exists.",
        )
    _check_subscriber_limits([*keys, key])
    found.subscribers = [*found.subscribers, {"SubscriptionType": key[0], "Address": key[1]}]


def delete_subscriber(
    backend: BudgetsBackend,
    account_id: str,
    budget_name: str,
    notification: dict[str, Any],
    subscriber: dict[str, Any],
) -> None:
    found = _notification_of(backend, account_id, budget_name, notification, "delete subscriber")
    key = _subscriber_key(subscriber)
    kept = [s for s in found.subscribers if _subscriber_key(s) != key]
    if len(kept) == len(found.subscribers):
        raise BudgetNotFound(f"Unable to delete subscriber: {key[1]} - the subscriber doesn't exist.")
    found.subscribers = kept


def update_subscriber(
    backend: BudgetsBackend,
    account_id: str,
    budget_name: str,
    notification: dict[str, Any],
    old: dict[str, Any],
    new: dict[str, Any],
) -> None:
    found = _notification_of(backend, account_id, budget_name, notification, "update subscriber")
    old_key, new_key = _subscriber_key(old), _subscriber_key(new)
    keys = [_subscriber_key(s) for s in found.subscribers]
    if old_key not in keys:
        raise BudgetNotFound(f"Unable to update subscriber: {old_key[1]} - the subscriber doesn't exist.")
    if new_key != old_key and new_key in keys:
        raise _error(
            "DuplicateRecordException",
            f"Error updating subscriber: {new_key[1]} - the subscriber already exists.",
        )
    keys = [new_key if k == old_key else k for k in keys]
    _check_subscriber_limits(keys)
    found.subscribers = [{"SubscriptionType": k, "Address": a} for k, a in keys]


def _response_method(name: str) -> Any:
    """A BudgetsResponse method for one of the APIs above (JSON in, {} or a listing out)."""

    def method(self: BudgetsResponse) -> str:
        backend: BudgetsBackend = self.backend
        account_id, budget_name = self._get_param("AccountId"), self._get_param("BudgetName")
        notification = self._get_param("Notification")
        if name == "update_notification":
            update_notification(
                backend,
                account_id,
                budget_name,
                self._get_param("OldNotification"),
                self._get_param("NewNotification"),
            )
        elif name == "describe_subscribers_for_notification":
            found = subscribers_for(backend, account_id, budget_name, notification)
            return json.dumps({"Subscribers": [dict(s) for s in found.subscribers]})
        elif name == "create_subscriber":
            create_subscriber(backend, account_id, budget_name, notification, self._get_param("Subscriber"))
        elif name == "delete_subscriber":
            delete_subscriber(backend, account_id, budget_name, notification, self._get_param("Subscriber"))
        elif name == "update_subscriber":
            update_subscriber(
                backend,
                account_id,
                budget_name,
                notification,
                self._get_param("OldSubscriber"),
                self._get_param("NewSubscriber"),
            )
        return json.dumps({})

    method.__name__ = name
    return method


RESPONSE_METHODS = (
    "update_notification",
    "describe_subscribers_for_notification",
    "create_subscriber",
    "delete_subscriber",
    "update_subscriber",
)
