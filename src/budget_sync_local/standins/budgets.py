"""Budgets: every request validated against botocore's model and the documented rules,
UpdateBudget, DescribeBudget's hidden FilterExpression, each budget's HealthStatus,
notifications and subscribers (with paging), each notification's ``NotificationState``
(``notification_state``), and the local organisation's view of a budget.

HealthStatus (botocore's Budgets model, ``HealthStatus``: ``Status`` HEALTHY or UNHEALTHY,
``StatusReason`` one of BILLING_VIEW_NO_ACCESS, BILLING_VIEW_UNHEALTHY, FILTER_INVALID ("The
filter contains reference to an account you do not have access to"),
MULTI_YEAR_HISTORICAL_DATA_DISABLED, and ``LastUpdatedTime``) is returned with every budget.
Locally a budget is UNHEALTHY with FILTER_INVALID when its FilterExpression names a
``LINKED_ACCOUNT`` other than the budget's own account (a member account sees only its own
costs), and with any reason an operator or a test gives it by hand (``set_health``, which
``python -m budget_sync_local health`` reaches on ``make local``); otherwise HEALTHY.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, cast

import botocore.session
from botocore.model import ServiceModel, StringShape
from moto.budgets.exceptions import BudgetMissingLimit
from moto.budgets.exceptions import NotFoundException as BudgetNotFound
from moto.budgets.models import Budget, BudgetsBackend, budgets_backends
from moto.budgets.responses import BudgetsResponse
from moto.core.exceptions import JsonRESTError
from moto.core.utils import unix_time

from budget_sync_local.standins.model_validation import request_problems, validation_message


def _backend_update_budget(self: BudgetsBackend, account_id: str, new_budget: dict[str, Any]) -> None:
    """UpdateBudget: "can change every part of a budget except budgetName and calculatedSpend";
    the calculated spend reads zero afterwards."""
    name = new_budget.get("BudgetName")
    current = self.budgets[account_id].get(str(name))
    if current is None:
        raise BudgetNotFound(f"Unable to update budget: {name} - the budget doesn't exist.")
    if "BudgetLimit" not in new_budget and "PlannedBudgetLimits" not in new_budget:
        current_type = new_budget.get("BudgetType", current.budget.get("BudgetType"))
        if current_type in ("COST", "USAGE"):
            raise BudgetMissingLimit()
    # "When you modify a budget, the calculatedSpend drops to zero until Amazon Web Services
    # has new usage data" (UpdateBudget): no CalculatedSpend reads zero; set_calculated_spend
    # is the new data
    replacement = {k: v for k, v in new_budget.items() if k not in ("CalculatedSpend", "LastUpdatedTime")}
    replacement.setdefault("TimePeriod", current.budget.get("TimePeriod"))
    replacement.pop("HealthStatus", None)  # computed by AWS, never taken from a request
    replacement["LastUpdatedTime"] = unix_time()
    current.budget = replacement
    current._local_account = account_id  # type: ignore[attr-defined]  # for health()
    health(current)  # a changed filter changes the health now, not at the next read


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


def notification_state(budget: Mapping[str, Any], notification: Mapping[str, Any]) -> str:
    """``ALARM`` or ``OK``, as DescribeNotificationsForBudget answers it (botocore's model,
    ``Notification.NotificationState``: "If a budget notification is in the ALARM state, you
    passed the set threshold for the budget"): the budget's calculated spend (actual for an
    ACTUAL notification, forecasted for a FORECASTED one) compared with the threshold, a
    percentage of the limit or an absolute value. A budget without a fixed limit is ``OK``.
    AWS evaluates it a few times a day from billing data; here, at once from the simulated
    spend (``set_calculated_spend``)."""
    limit = (budget.get("BudgetLimit") or {}).get("Amount")
    if limit is None:
        return "OK"
    spend_key = "ActualSpend" if notification.get("NotificationType") == "ACTUAL" else "ForecastedSpend"
    spend = Decimal(str(((budget.get("CalculatedSpend") or {}).get(spend_key) or {}).get("Amount", "0")))
    threshold = Decimal(str(notification["Threshold"]))
    line = (
        Decimal(str(limit)) * threshold / 100
        if notification.get("ThresholdType", "PERCENTAGE") == "PERCENTAGE"
        else threshold
    )
    fires = {"GREATER_THAN": spend > line, "LESS_THAN": spend < line, "EQUAL_TO": spend == line}
    return "ALARM" if fires.get(str(notification.get("ComparisonOperator")), False) else "OK"


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
        original(self, account_id, {k: v for k, v in budget.items() if k != "HealthStatus"}, checked)
        created = self.budgets[account_id].get(str(budget.get("BudgetName")))
        if created is not None:
            created._local_account = account_id  # type: ignore[attr-defined]  # for health()
            health(created)  # its health's LastUpdatedTime: from now, not from the first read

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
    """DeleteSubscriber: "Deleting the last subscriber to a notification also deletes the
    notification" (API reference)."""
    budget = _budget_of(backend, account_id, budget_name, "delete subscriber")
    found = _find(budget, notification, "delete subscriber")
    key = _subscriber_key(subscriber)
    kept = [s for s in found.subscribers if _subscriber_key(s) != key]
    if len(kept) == len(found.subscribers):
        raise BudgetNotFound(f"Unable to delete subscriber: {key[1]} - the subscriber doesn't exist.")
    found.subscribers = kept
    if not kept:
        budget.notifications = [n for n in budget.notifications if n is not found]


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
        if name.startswith("describe_"):
            return _describe(self, name, account_id, budget_name, notification)
        if name == "update_notification":
            update_notification(
                backend,
                account_id,
                budget_name,
                self._get_param("OldNotification"),
                self._get_param("NewNotification"),
            )
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


def _describe(
    response: BudgetsResponse, name: str, account_id: str, budget_name: str, notification: Any
) -> str:
    """A page of one of the three listings above (MaxResults and NextToken: _page)."""
    backend: BudgetsBackend = response.backend
    if name == "describe_notifications_for_budget":
        budget = _budget_of(backend, account_id, budget_name, "describe notifications")
        described = [
            {**n.details, "NotificationState": notification_state(budget.budget, n.details)}
            for n in budget.notifications
        ]
        page, token = _page(described, response._get_param)
        return json.dumps({"Notifications": page, **token})
    if name == "describe_budgets":
        listed = [b.to_dict() for b in backend.budgets[account_id].values()]
        if not response._get_param("ShowFilterExpression"):
            for budget_dict in listed:
                budget_dict.pop("FilterExpression", None)
        page, token = _page(listed, response._get_param)
        return json.dumps({"Budgets": page, **token})
    found = subscribers_for(backend, account_id, budget_name, notification)  # ..._for_notification
    page, token = _page([dict(s) for s in found.subscribers], response._get_param)
    return json.dumps({"Subscribers": page, **token})


RESPONSE_METHODS = (
    "update_notification",
    "describe_notifications_for_budget",
    "describe_budgets",
    "describe_subscribers_for_notification",
    "create_subscriber",
    "delete_subscriber",
    "update_subscriber",
)


# --- Paging -----------------------------------------------------------------------------
# DescribeBudgets, DescribeNotificationsForBudget and DescribeSubscribersForNotification
# take MaxResults and NextToken and answer NextToken while more remain (botocore's model and
# paginators-1.json). moto answers every item at once (and DescribeBudgets with a "nextToken"
# member the model does not have). The page size when MaxResults is absent is not documented;
# locally it is 100, the largest MaxResults of DescribeNotificationsForBudget.

DEFAULT_PAGE_SIZE = 100


def _page(items: Sequence[Any], param: Callable[[str], Any]) -> tuple[list[Any], dict[str, str]]:
    """One page of ``items`` and {"NextToken": ...} if more remain, from MaxResults/NextToken."""
    size = int(param("MaxResults") or DEFAULT_PAGE_SIZE)
    token = param("NextToken")
    start = 0
    if token:
        if not (isinstance(token, str) and token.isdigit() and int(token) <= len(items)):
            raise _error("InvalidNextTokenException", f"The NextToken {token!r} is not valid.")
        start = int(token)
    end = start + size
    return list(items[start:end]), ({"NextToken": str(end)} if end < len(items) else {})


# --- What AWS returns ---------------------------------------------------------------------


def _budget_to_dict(original: Callable[[Budget], dict[str, Any]]) -> Callable[[Budget], dict[str, Any]]:
    """moto's DescribeBudget adds default CostTypes to every COST budget. AWS takes "either
    FilterExpression and Metrics or CostFilters and CostTypes, not both" (CreateBudget and
    UpdateBudget, API reference), so a budget defined with FilterExpression or Metrics has no
    CostTypes and none is returned for it; a budget defined without either keeps moto's
    defaults (AWS fills CostTypes for the deprecated definition)."""

    def to_dict(self: Budget) -> dict[str, Any]:
        answer = original(self)
        if ("FilterExpression" in self.budget or "Metrics" in self.budget) and "CostTypes" not in self.budget:
            answer.pop("CostTypes", None)
        answer["HealthStatus"] = health(self)
        return answer

    return to_dict


# --- HealthStatus -------------------------------------------------------------------------


def _linked_accounts(expression: Any) -> set[str]:
    """Every LINKED_ACCOUNT value a FilterExpression names, at any depth."""
    if not isinstance(expression, Mapping):
        return set()
    found: set[str] = set()
    dimensions = expression.get("Dimensions")
    if isinstance(dimensions, Mapping) and dimensions.get("Key") == "LINKED_ACCOUNT":
        found |= {str(v) for v in dimensions.get("Values") or []}
    for nested in [*(expression.get("And") or []), *(expression.get("Or") or []), expression.get("Not")]:
        found |= _linked_accounts(nested)
    return found


def health(budget: Budget) -> dict[str, Any]:
    """The budget's HealthStatus as DescribeBudget(s) returns it (see the module docstring)."""
    by_hand = getattr(budget, "_local_health", None)
    account = getattr(budget, "_local_account", None)
    if by_hand is not None:
        status = {k: v for k, v in by_hand.items() if k != "LastUpdatedTime"}
    elif account is not None and _linked_accounts(budget.budget.get("FilterExpression")) - {account}:
        status = {"Status": "UNHEALTHY", "StatusReason": "FILTER_INVALID"}
    else:
        status = {"Status": "HEALTHY"}
    # LastUpdatedTime: when the health last changed (not the budget's own LastUpdatedTime)
    since = getattr(budget, "_local_health_since", None)
    if since is None or since[0] != status:
        since = (status, unix_time())
        budget._local_health_since = since  # type: ignore[attr-defined]
    return {**status, "LastUpdatedTime": since[1]}


def set_health(
    account: str, budget_name: str, status: str, reason: str | None = None, partition: str = "aws"
) -> dict[str, Any]:
    """Make a budget UNHEALTHY with one of AWS's reasons, or HEALTHY again (its health is then
    computed from its definition once more). ValueError naming the value if AWS has no such
    status or reason; KeyError if the budget does not exist. Answers the new HealthStatus."""
    reasons = health_reasons()
    if status not in ("HEALTHY", "UNHEALTHY"):
        raise ValueError(f"Status {status!r} must be HEALTHY or UNHEALTHY")
    if status == "UNHEALTHY" and reason not in reasons:
        raise ValueError(f"StatusReason {reason!r} must be one of {', '.join(reasons)}")
    if status == "HEALTHY" and reason is not None:
        raise ValueError(f"StatusReason {reason!r} is only given with UNHEALTHY")
    budget = _budget(account, budget_name, partition)
    if status == "HEALTHY":
        budget._local_health = None  # type: ignore[attr-defined]
    else:
        budget._local_health = {"Status": status, "StatusReason": reason}  # type: ignore[attr-defined]
    return health(budget)


def health_reasons() -> tuple[str, ...]:
    """HealthStatusReason's enum in botocore's model."""
    return tuple(cast(StringShape, service_model().shape_for("HealthStatusReason")).enum)


# --- Validation ---------------------------------------------------------------------------
# Every Budgets request is checked on the server side, before moto or a stand-in serves it:
# botocore's model (model_validation) and the rules the API reference states beside it.

#: "FilterExpression nests at most 2 deep" (the Expression shape: And, Or and Not hold
#: expressions; a level is one of them on the way from the top to a leaf).
MAX_EXPRESSION_DEPTH = 2
_NEW_FILTER = ("FilterExpression", "Metrics")
_OLD_FILTER = ("CostFilters", "CostTypes")


@functools.cache
def service_model() -> ServiceModel:
    return botocore.session.get_session().get_service_model("budgets")


def _depth(expression: Any) -> int:
    if not isinstance(expression, Mapping):
        return 0
    if all(expression.get(k) is None for k in ("And", "Or", "Not")):
        return 0
    nested: list[Any] = [*(expression.get("And") or []), *(expression.get("Or") or [])]
    if expression.get("Not") is not None:
        nested.append(expression["Not"])
    return 1 + max((_depth(e) for e in nested), default=0)


def definition_problems(budget: Mapping[str, Any], member: str) -> list[str]:
    """The CreateBudget/UpdateBudget rules on a whole Budget that the model cannot say."""
    problems = []
    if budget.get("BudgetLimit") is not None and budget.get("PlannedBudgetLimits") is not None:
        problems.append(
            f"{member} has both BudgetLimit and PlannedBudgetLimits: only one of BudgetLimit or "
            "PlannedBudgetLimits can be present"
        )
    new = [k for k in _NEW_FILTER if budget.get(k) is not None]
    old = [k for k in _OLD_FILTER if budget.get(k) is not None]
    if new and old:
        problems.append(
            f"{member} has {' and '.join(new)} together with {' and '.join(old)}: either FilterExpression "
            "and Metrics or CostFilters and CostTypes, not both"
        )
    depth = _depth(budget.get("FilterExpression"))
    if depth > MAX_EXPRESSION_DEPTH:
        problems.append(
            f"{member}.FilterExpression nests {depth} deep (And, Or, Not): at most {MAX_EXPRESSION_DEPTH} "
            "levels are supported"
        )
    return problems


def _body(self: BudgetsResponse) -> Any:
    body = self.body
    if isinstance(body, bytes):
        body = body.decode("utf-8")
    if not body:
        return {}
    try:
        return json.loads(body)
    except ValueError:
        raise _error("SerializationException", "The request body is not valid JSON") from None


def validated(operation: str, method: Callable[[BudgetsResponse], Any]) -> Callable[[BudgetsResponse], Any]:
    """``method`` (a BudgetsResponse action) preceded by the checks of ``operation``'s request."""

    def checked(self: BudgetsResponse) -> Any:
        params = _body(self)
        problems = request_problems(service_model().operation_model(operation), params)
        if not problems:
            for member in ("Budget", "NewBudget"):
                if isinstance(params.get(member), Mapping):
                    problems += definition_problems(params[member], member)
        if problems:
            raise _error("InvalidParameterException", validation_message(problems))
        return method(self)

    checked.__name__ = getattr(method, "__name__", operation)
    return checked
