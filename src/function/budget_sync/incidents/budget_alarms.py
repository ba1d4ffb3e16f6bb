"""What AWS Budgets says about a spoke's budget now, for the incidents: its figures, its period
and which of its notifications are in ALARM (``budget_state``, pure), read through the spoke
role (``SpokeBudgetAlarms``, the adapter; ``budgets:ViewBudget`` on the one budget, which the
spoke role already grants).

The authority for opening and resolving is ``NotificationState`` (botocore's Budgets model,
``Notification.NotificationState``: "Whether this notification is in alarm. If a budget
notification is in the ALARM state, you passed the set threshold for the budget"; values
``OK`` and ``ALARM``), as DescribeNotificationsForBudget returns it. A budget that does not
exist has no alarm.

The current period follows the budget's ``TimeUnit`` (UTC): DAILY the day, MONTHLY the month,
QUARTERLY the calendar quarter, ANNUALLY the year; a CUSTOM budget's period is its
``TimePeriod``. ``period_end`` is the first day after it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from botocore.credentials import Credentials
from botocore.exceptions import BotoCoreError, ClientError

from budget_sync.account_signing import AccountSignedClients
from budget_sync.errors import SpokeAccessDenied, TransientError
from budget_sync.incidents.lifecycle import Breach, BudgetState

_DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})
_NOT_FOUND = frozenset({"NotFoundException"})
_EXPIRED = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})
_REFRESH_BEFORE_S = 300


def current_period(
    time_unit: str, today: date, time_period: Mapping[str, Any] | None = None
) -> tuple[date, date]:
    """The start of the budget's current period and the first day after it."""
    if time_unit == "DAILY":
        return today, date.fromordinal(today.toordinal() + 1)
    if time_unit == "QUARTERLY":
        first_month = 3 * ((today.month - 1) // 3) + 1
        start = date(today.year, first_month, 1)
        return start, _add_months(start, 3)
    if time_unit == "ANNUALLY":
        return date(today.year, 1, 1), date(today.year + 1, 1, 1)
    if time_unit == "CUSTOM" and time_period:
        begin, finish = time_period.get("Start"), time_period.get("End")
        if isinstance(begin, datetime) and isinstance(finish, datetime):
            return begin.astimezone(UTC).date(), date.fromordinal(
                finish.astimezone(UTC).date().toordinal() + 1
            )
    start = date(today.year, today.month, 1)
    return start, _add_months(start, 1)


def _add_months(day: date, months: int) -> date:
    index = day.month - 1 + months
    return date(day.year + index // 12, index % 12 + 1, 1)


def _amount(spend: Mapping[str, Any] | None) -> Decimal | None:
    try:
        return None if not spend else Decimal(str(spend["Amount"]))
    except (KeyError, InvalidOperation):
        return None


def budget_state(
    account_id: str,
    account_name: str,
    budget: Mapping[str, Any],
    notifications: Iterable[Mapping[str, Any]],
    today: date,
) -> BudgetState:
    """A BudgetState from DescribeBudget's ``Budget`` and DescribeNotificationsForBudget's
    ``Notifications``: the notifications whose ``NotificationState`` is ALARM are its breaches."""
    start, end = current_period(str(budget.get("TimeUnit", "MONTHLY")), today, budget.get("TimePeriod"))
    limit = budget.get("BudgetLimit") or {}
    spend = budget.get("CalculatedSpend") or {}
    breaches = tuple(
        Breach(
            str(n["NotificationType"]),
            Decimal(str(n["Threshold"])).normalize(),
            str(n.get("ThresholdType", "PERCENTAGE")),
        )
        for n in notifications
        if n.get("NotificationState") == "ALARM"
    )
    return BudgetState(
        account_id=account_id,
        budget_name=str(budget["BudgetName"]),
        period_start=start,
        period_end=end,
        breaches=tuple(sorted(set(breaches), key=lambda b: (b.notification_type, b.threshold))),
        account_name=account_name,
        limit=_amount(limit),
        actual=_amount(spend.get("ActualSpend")),
        forecasted=_amount(spend.get("ForecastedSpend")),
        unit=str(limit.get("Unit", "USD")),
    )


class SpokeBudgetAlarms:
    """Reads a spoke's budget and its notifications as the spoke role (its credentials cached
    per account until five minutes before they expire).

    Thread-safe (the hourly sweep reads many accounts at once): one Budgets client for every
    account, each call signed with its account's credentials (account_signing), as
    spoke.SsmSpokeGateway's are."""

    def __init__(
        self, session: Any, sts: Any, role_arn_format: str, budget_name: str, config: Any = None
    ) -> None:
        self._session = session
        self._sts = sts
        self._role_arn_format = role_arn_format  # "arn:aws:iam::{account_id}:role/BlogBudgetsSpokeRole"
        self._budget_name = budget_name
        self._config = config
        self._credentials: dict[str, tuple[Credentials, float]] = {}
        self._signed = AccountSignedClients(session, "SpokeBudgetAlarms.read", config=config)
        self._lock = threading.Lock()  # the credentials cache

    def read(self, account_id: str, account_name: str = "", today: date | None = None) -> BudgetState | None:
        """The budget's state; None if the account has no such budget."""
        budgets = self._signed.client("budgets")
        with self._signed.signed_as(self._assumed(account_id)):
            return self._read(budgets, account_id, account_name, today)

    def _read(
        self, budgets: Any, account_id: str, account_name: str, today: date | None
    ) -> BudgetState | None:
        try:
            budget = budgets.describe_budget(AccountId=account_id, BudgetName=self._budget_name)["Budget"]
            notifications: list[Mapping[str, Any]] = []
            for page in budgets.get_paginator("describe_notifications_for_budget").paginate(
                AccountId=account_id, BudgetName=self._budget_name
            ):
                notifications.extend(page.get("Notifications", []))
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in _NOT_FOUND:
                return None
            if code in _EXPIRED:
                with self._lock:
                    self._credentials.pop(account_id, None)
            if code in _DENIED:
                raise SpokeAccessDenied(
                    f"account {account_id}: the spoke role may not view the budget {self._budget_name} ({code})"
                ) from exc
            raise TransientError(f"account {account_id}: cannot read the budget ({exc})") from exc
        except BotoCoreError as exc:
            raise TransientError(f"account {account_id}: cannot read the budget ({exc})") from exc
        return budget_state(
            account_id, account_name, budget, notifications, today or datetime.now(UTC).date()
        )

    def _assumed(self, account_id: str) -> Credentials:
        with self._lock:
            cached = self._credentials.get(account_id)
        if cached is not None and time.time() < cached[1]:
            return cached[0]
        role_arn = self._role_arn_format.format(account_id=account_id)
        try:
            credentials = self._sts.assume_role(RoleArn=role_arn, RoleSessionName="budget-sync-incidents")[
                "Credentials"
            ]
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in _DENIED:
                raise SpokeAccessDenied(f"account {account_id}: cannot assume {role_arn} ({code})") from exc
            raise TransientError(f"account {account_id}: cannot assume {role_arn} ({exc})") from exc
        except BotoCoreError as exc:
            raise TransientError(f"account {account_id}: cannot assume {role_arn} ({exc})") from exc
        keys = Credentials(
            credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"]
        )
        expires = credentials["Expiration"].timestamp() - _REFRESH_BEFORE_S
        with self._lock:
            self._credentials[account_id] = (keys, expires)
        return keys


__all__ = ["SpokeBudgetAlarms", "budget_state", "current_period"]
