"""A repair an operator asked for: ``budgetctl reconcile --apply`` invokes the reconciler.

The operator's session never writes a spoke: it may only invoke the reconciler function
(``lambda:InvokeFunction`` on that one function), which repairs with budget-sync's own
role, as on its schedule. The event names the accounts and who asked::

    {"Accounts": ["111111111111"], "RequestedBy": "arn:aws:sts::123456789012:assumed-role/Ops/alice"}

Who asked is recorded where the repair happens: ``RequestedBy`` in the status table, and the
spoke assume-role's session name (``budget-sync-for-alice``), which the spoke account's
CloudTrail shows for the ``PutParameter``. ``RequestedBy`` is what the invoker states; the
authoritative record of who invoked is CloudTrail's Lambda ``Invoke`` data event.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from budget_sync.domain import amount_text, parse_account_id
from budget_sync.errors import InvalidItemError

if TYPE_CHECKING:
    from budget_sync.reconcile import AccountReport

REQUEST_FIELDS = ("Accounts", "RequestedBy")
#: An IAM or STS principal ARN (path and session name included).
_PRINCIPAL_ARN = re.compile(r"arn:[a-z-]+:(iam|sts)::[0-9]{12}:[\w+=,.@/-]{1,1024}")
_SESSION_CHARACTERS = re.compile(r"[^\w+=,.@-]")
MAX_ACCOUNTS = 1000


@dataclass(frozen=True, slots=True)
class RepairRequest:
    accounts: tuple[str, ...]  # empty: every account of the table
    requested_by: str

    @property
    def session_name(self) -> str:
        """The spoke assume-role's session name: says whose request the write was."""
        person = self.requested_by.rsplit("/", 1)[-1]
        return ("budget-sync-for-" + _SESSION_CHARACTERS.sub("-", person))[:64]


def parse_request(event: Mapping[str, Any]) -> RepairRequest | None:
    """The operator's request, or None for a scheduled run (whose event names neither field).

    Raises InvalidItemError naming the field and value if the request is malformed."""
    if not any(name in event for name in REQUEST_FIELDS):
        return None
    requested_by = event.get("RequestedBy")
    if not isinstance(requested_by, str) or not _PRINCIPAL_ARN.fullmatch(requested_by):
        raise InvalidItemError("RequestedBy", requested_by, "must be the caller's IAM or STS ARN")
    accounts = event.get("Accounts", [])
    if not isinstance(accounts, list) or len(accounts) > MAX_ACCOUNTS:
        raise InvalidItemError("Accounts", accounts, f"must be a list of at most {MAX_ACCOUNTS} account ids")
    return RepairRequest(tuple(parse_account_id(a) for a in accounts), requested_by)


def report_fields(report: AccountReport) -> dict[str, str | None]:
    """One account's outcome as the reconciler's response carries it (JSON, text values)."""
    return {
        "AccountId": report.account_id,
        "Desired": amount_text(report.desired),
        "Parameter": report.parameter,
        "BudgetLimit": amount_text(report.budget_limit),
        "Drift": report.drift.value,
        "Action": report.action.value or None,
        "Reason": report.reason or None,
    }
