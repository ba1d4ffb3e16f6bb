"""Make a budget of the running local organisation unhealthy by hand, or healthy again.

AWS Budgets gives every budget a ``HealthStatus`` (botocore's Budgets model: ``Status``
HEALTHY or UNHEALTHY, ``StatusReason`` one of BILLING_VIEW_NO_ACCESS, BILLING_VIEW_UNHEALTHY,
FILTER_INVALID, MULTI_YEAR_HISTORICAL_DATA_DISABLED) that AWS computes and no API sets. The
local stand-in computes FILTER_INVALID from the budget's filter (standins/budgets.py); so that
an operator or a test can see how budget-sync reports the other reasons, the local server
answers one local-only request beside the AWS APIs, on the same port (as spend.py does):

    POST /_local/health   {"AccountId": "111111111111", "Status": "UNHEALTHY",
                           "StatusReason": "BILLING_VIEW_NO_ACCESS"}

and ``python -m budget_sync_local health ACCOUNT UNHEALTHY REASON [--port 5000]`` (or
``health ACCOUNT HEALTHY``: the budget's health is then computed from its definition again)
sends it. The account must have a spoke stack (its budget). The answer is the budget's new
HealthStatus (200), or a message naming the field and the value (400). Nothing of this exists
on AWS.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from budget_sync_local import local_requests

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

    from budget_sync_local.organisation import LocalOrganisation

PATH = "/_local/health"
_ACCOUNT = re.compile(r"\d{12}")
_FIELDS = {"AccountId", "Status", "StatusReason"}


class HealthError(ValueError):
    """A request the local organisation refuses; the message names the field and the value."""


@dataclass(frozen=True, slots=True)
class Health:
    account_id: str
    status: str
    reason: str | None


def parse(body: object, spoke_accounts: Iterable[str]) -> Health:
    """The request's JSON object, checked: a spoke account of this organisation, a status and
    (with UNHEALTHY) one of AWS's reasons."""
    from budget_sync_local.standins.budgets import health_reasons

    if not isinstance(body, dict):
        raise HealthError('the body must be a JSON object: {"AccountId", "Status", "StatusReason"}')
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise HealthError(f"unknown field(s) {', '.join(unknown)}")
    account = body.get("AccountId")
    if not isinstance(account, str) or not _ACCOUNT.fullmatch(account):
        raise HealthError(f"AccountId {account!r} must be exactly 12 digits")
    spokes = sorted(spoke_accounts)
    if account not in spokes:
        raise HealthError(
            f"AccountId {account!r} has no spoke stack (no budget) in the local organisation; "
            f"spoke accounts: {', '.join(spokes) or 'none'}"
        )
    status, reason = body.get("Status"), body.get("StatusReason")
    if status not in ("HEALTHY", "UNHEALTHY"):
        raise HealthError(f"Status {status!r} must be HEALTHY or UNHEALTHY")
    if status == "UNHEALTHY" and reason not in health_reasons():
        raise HealthError(f"StatusReason {reason!r} must be one of {', '.join(health_reasons())}")
    if status == "HEALTHY" and reason is not None:
        raise HealthError(f"StatusReason {reason!r} is only given with UNHEALTHY")
    return Health(account, status, reason)


def with_health_route(app: WSGIApplication, org: LocalOrganisation) -> WSGIApplication:
    """``app`` with ``POST /_local/health`` answered by the organisation."""

    def apply(health: Health) -> dict[str, Any]:
        answer = org.set_health(health.account_id, health.status, health.reason)
        return {
            "AccountId": health.account_id,
            "BudgetName": org.spokes[health.account_id].budget_name,
            "HealthStatus": answer,
        }

    return local_requests.with_route(app, PATH, lambda body: parse(body, org.spokes), apply, HealthError)


def send(
    endpoint: str, account: str, status: str, reason: str | None, *, timeout_s: float = 10
) -> dict[str, Any]:
    """POST the health to a running local organisation; HealthError with its message if
    refused, ConnectionError if nothing answers at ``endpoint``."""
    body: dict[str, Any] = {"AccountId": account, "Status": status}
    if reason is not None:
        body["StatusReason"] = reason
    return local_requests.post(endpoint, PATH, body, HealthError, timeout_s=timeout_s)
