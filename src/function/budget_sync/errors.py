"""The few error classes of budget-sync. Each says whether retrying can help."""

from __future__ import annotations

from decimal import Decimal


class BudgetSyncError(Exception):
    """Base class. ``retryable`` tells the caller whether trying again can help."""

    retryable = False


class PermanentError(BudgetSyncError):
    """Retrying the same input cannot succeed: record it for an operator and move on."""


class InvalidItemError(PermanentError):
    """A budgets-table item breaks the item contract. Names the field and the value.

    ``account_id`` is the key its status is recorded under (None: the item has no usable key).
    """

    def __init__(self, field: str, value: object, reason: str, account_id: str | None = None) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        self.account_id = account_id
        shown = value if isinstance(value, Decimal | int) else repr(value)  # 12.345, but 'abc'
        super().__init__(f"{field} {shown} {reason}")


class UnrecognisedEvent(PermanentError):
    """A function was invoked with an event its event source does not send. Names the event."""


class SpokeAccessDenied(PermanentError):
    """The spoke role cannot be assumed, or may not do what the pipeline asks of it."""


class ParameterRejected(PermanentError):
    """The spoke's parameter refused the value (pattern, type or size)."""


class TransientError(BudgetSyncError):
    """Throttling, 5xx, timeouts, a failed status write: retrying can help."""

    retryable = True


class ConfigError(BudgetSyncError):
    """The function's environment is missing or malformed. Names the variable."""


class IncidentDeskUnavailable(TransientError):
    """ServiceNow did not answer, answered 429 or a 5xx, after the client's own retries."""


class IncidentRejected(PermanentError):
    """ServiceNow refused the request with a 4xx that sending it again cannot change (a bad
    credential, a missing role, a refused field). Carries ServiceNow's own message."""

    def __init__(self, status: int, message: str, detail: str = "") -> None:
        self.status = status
        self.message = message
        self.detail = detail
        super().__init__(f"ServiceNow answered {status}: {message}" + (f" ({detail})" if detail else ""))


class IncidentNotFound(IncidentRejected):
    """The incident a stored reference names no longer exists (404)."""
