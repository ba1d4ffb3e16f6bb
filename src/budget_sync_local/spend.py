"""Give an account of the running local organisation this month's spend.

AWS Budgets computes a budget's actual and forecasted spend from the account's usage
(botocore's Budgets model, ``CalculatedSpend``: "The actual and forecasted cost or usage that
the budget tracks"; ``actualSpend`` is what was used, ``forecastedSpend`` what the usage
history predicts), refreshed a few times a day; moto reads 0. So that an operator's ``budgetctl report``
and ``status`` on ``make local`` show figures, the local server answers one local-only
request beside the AWS APIs, on the same port:

    POST /_local/spend   {"AccountId": "111111111111", "ActualSpend": "1100", "ForecastedSpend": "1400"}

and ``python -m budget_sync_local spend ACCOUNT ACTUAL FORECAST [--port 5000]`` sends it.
The account must have a spoke stack (its budget); each amount is a number of USD, at least 0,
with at most two decimals. The answer is the budget's new figures (200), or a message naming
the field and the value (400). Nothing of this exists on AWS.

New figures are new data, and AWS Budgets alerts when its data puts a notification in alarm:
each notification of the budget that fires at the new figures and did not at the previous
ones has its alert published to its SNS topic as ``budgets.amazonaws.com``
(``LocalOrganisation.spend_arrives``; with the incidents on, the topic delivers to the incident
queue, docs/itsm.md). The answer lists them in ``Alerts`` (``NotificationType``,
``ComparisonOperator``, ``Threshold``, ``ThresholdType``, ``Topics``: the topics published to;
an alert with email subscribers only is listed with no topic: no email is sent locally).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from budget_sync_local import local_requests

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

    from budget_sync_local.organisation import Alert, LocalOrganisation

PATH = "/_local/spend"
_ACCOUNT = re.compile(r"\d{12}")


class SpendError(ValueError):
    """A request the local organisation refuses; the message names the field and the value."""


@dataclass(frozen=True, slots=True)
class Spend:
    account_id: str
    actual: Decimal
    forecasted: Decimal

    def answer(self, budget_name: str, alerts: Sequence[Alert] = ()) -> dict[str, Any]:
        return {
            "AccountId": self.account_id,
            "BudgetName": budget_name,
            "ActualSpend": f"{self.actual:f}",
            "ForecastedSpend": f"{self.forecasted:f}",
            "Alerts": [
                {
                    "NotificationType": a.notification_type,
                    "ComparisonOperator": a.comparison,
                    "Threshold": f"{a.threshold.normalize():f}",
                    "ThresholdType": a.threshold_type,
                    "Topics": [s for s in a.subscribers if s.startswith("arn:") and ":sns:" in s],
                }
                for a in alerts
            ],
        }


def _amount(field: str, value: object) -> Decimal:
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    try:
        amount = Decimal(text) if text else None
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite():
        raise SpendError(f"{field} {value!r} is not a number of USD")
    if amount < 0:
        raise SpendError(f"{field} {value!r} is negative")
    if amount.as_tuple().exponent < -2:  # type: ignore[operator]
        raise SpendError(f"{field} {value!r} has more than two decimals")
    return amount


def parse(body: object, spoke_accounts: Iterable[str]) -> Spend:
    """The request's JSON object, checked: a spoke account of this organisation, two amounts."""
    if not isinstance(body, dict):
        raise SpendError('the body must be a JSON object: {"AccountId", "ActualSpend", "ForecastedSpend"}')
    unknown = sorted(set(body) - {"AccountId", "ActualSpend", "ForecastedSpend"})
    if unknown:
        raise SpendError(f"unknown field(s) {', '.join(unknown)}")
    account = body.get("AccountId")
    if not isinstance(account, str) or not _ACCOUNT.fullmatch(account):
        raise SpendError(f"AccountId {account!r} must be exactly 12 digits")
    spokes = sorted(spoke_accounts)
    if account not in spokes:
        raise SpendError(
            f"AccountId {account!r} has no spoke stack (no budget) in the local organisation; "
            f"spoke accounts: {', '.join(spokes) or 'none'}"
        )
    return Spend(
        account,
        _amount("ActualSpend", body.get("ActualSpend")),
        _amount("ForecastedSpend", body.get("ForecastedSpend")),
    )


def with_spend_route(app: WSGIApplication, org: LocalOrganisation) -> WSGIApplication:
    """``app`` (moto's server) with ``POST /_local/spend`` answered by the organisation."""

    def apply(spend: Spend) -> dict[str, Any]:
        alerts = org.spend_arrives(spend.account_id, spend.actual, spend.forecasted)
        return spend.answer(org.spokes[spend.account_id].budget_name, alerts)

    return local_requests.with_route(app, PATH, lambda body: parse(body, org.spokes), apply, SpendError)


def send(
    endpoint: str, account: str, actual: str, forecasted: str, *, timeout_s: float = 10
) -> dict[str, Any]:
    """POST the spend to a running local organisation; SpendError with its message if refused,
    ConnectionError if nothing answers at ``endpoint``."""
    body = {"AccountId": account, "ActualSpend": actual, "ForecastedSpend": forecasted}
    return local_requests.post(endpoint, PATH, body, SpendError, timeout_s=timeout_s)
