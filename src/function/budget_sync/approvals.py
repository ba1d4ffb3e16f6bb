"""A second pair of eyes for large increases: the approval rule and the stream function's gate.

The rule (template-management.yaml: ApprovalThresholdAmount, ApprovalThresholdPercent; read by
budget_sync.config.ApprovalSettings) says which raise of an account's budget needs a second
person. An increase is the new value minus the account's *current* value: the value last
written to its spoke parameter (the status table's ``AppliedValue``), not the stream record's
OldImage. The OldImage is only the item's previous value, and that may be a value that was
never applied (a pending one): judged against it, 1000 -> 5000 (held) and then 5000 -> 5100
would pass. The applied value is also what stays when an item is deleted and written again.

* ``amount``: an increase of more than this many USD needs approval;
* ``percent``: an increase of more than this percentage of the current value needs approval;
* both set: exceeding either needs approval. Neither set: no rule (every value flows).

An account with no value applied yet (no status, or no ``AppliedValue``) is judged from 0: the
amount part applies to its whole first value; the percentage part cannot (there is nothing to
be a percentage of), so a percentage-only rule lets first values through. Decreases, equal
values and increases within the rule flow as before.

The gate (``ApprovalGate``) runs in the stream function for every record that would write a
spoke (update.py), so the rule holds for every client that writes the budgets table: budgetctl,
the AWS CLI, the console, the resolver's inherited defaults. A value above the rule is not sent:
the gate records one request in the requests table (``RequestTable``; the adapter is
approval_tables.py) and the account's status becomes FAILED with Source ``approval`` and a
reason naming the request and how to approve it (the failure-notice function publishes it
once). The request id is derived from the account, the value and the stream record, so a
record delivered twice creates one request.

Requests table item (key ``RequestId``; the stream function creates it, budgetctl decides it):
  RequestId       S   ``REQ-`` and 12 hex digits (``request_id``)
  AccountId       S   the account
  RequestedValue  N   the value asked for
  CurrentValue    N   the value applied when it was asked for (absent: none yet)
  State           S   PENDING | APPROVED | REJECTED | APPLIED (``State``)
  RequestedBy     S   the item's ``UpdatedBy`` (budgetctl records its caller), as the writer
                      recorded it; empty for writes made outside budgetctl
  RequestedAt     S   ISO 8601, UTC
  ExpiresAt       N   epoch seconds: DynamoDB's TTL deletes the item after it; a request past
                      it is expired whatever its State
  SequenceNumber  S   the budgets-table stream record that asked
  Rule            S   the rule it broke, as people read it
  DecidedBy, DecidedAt S  who approved or rejected it (the caller's ARN) and when (budgetctl)
  AppliedSequence S   the budgets-table record whose approved value was sent (APPLIED)

Approvals table item (key ``ApproverId`` + ``RequestId``; written only by ``budgetctl approve``
and ``reject`` with an approver's credentials, whose policy lets them write only under their
own ``aws:userid``, the condition key ``dynamodb:LeadingKeys``: so the key says who approved,
as IAM proved it, whatever tool wrote it; docs/operate.md, "Approvals"):
  ApproverId      S   the approver's ``aws:userid`` (a role session: role id and session name)
  RequestId       S   the request decided
  Decision        S   APPROVED | REJECTED
  ApproverArn     S   the approver's ARN (GetCallerIdentity), compared with RequestedBy
  AccountId, RequestedValue, DecidedAt

An approved value reaches the spoke through the budgets table like any other: ``budgetctl
approve`` sets the item's ``ApprovalId`` (the request) and ``ApprovedBy`` (the approver's
``aws:userid``), the stream carries it, and the gate sends the value only if the request is
this account's, for this very value, APPROVED (or APPLIED by this same record: a duplicate
delivery), not expired, and the approval item under ``ApprovedBy`` says APPROVED by someone
whose ARN is not the requester's. It then marks the request APPLIED, so an approval is used
once: a later raise to the same value needs a new one. Any other ``ApprovalId`` is no approval:
the value is held with the reason why.

History (budget_sync.history) reads both tables' streams: the request's INSERT is the held
change's line (REQUESTED), the approvals table's INSERT the decision (APPROVED, REJECTED, by the
approver its key names), a TTL removal of a request not yet sent EXPIRED; the status the gate
writes is the request's outcome, and the approved value sent is a change with the path
``approval REQ-...`` (``approved_via``) by the approver in ``ApprovedBy``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

from budget_sync.domain import format_amount

#: The status's Source when the gate held a value (status.py, ``Source``).
SOURCE = "approval"
#: The budgets item's attributes that carry an approval to the stream function.
APPROVAL_ID_FIELD = "ApprovalId"
APPROVED_BY_FIELD = "ApprovedBy"
_HUNDRED = Decimal(100)


class State(StrEnum):
    PENDING = "PENDING"
    APPROVED = "APPROVED"  # budgetctl approve: an approval item exists; the stream applies it next
    REJECTED = "REJECTED"
    APPLIED = "APPLIED"  # the stream function sent the approved value (AppliedSequence: its record)


@dataclass(frozen=True, slots=True)
class ApprovalRule:
    """Which increases need approval. Both None: no rule."""

    amount: Decimal | None = None
    percent: Decimal | None = None

    @property
    def active(self) -> bool:
        return self.amount is not None or self.percent is not None

    def describe(self) -> str:
        """The rule as people read it: 'more than 500 USD or more than 20% of the current value'."""
        parts = []
        if self.amount is not None:
            parts.append(f"more than {format_amount(self.amount)} USD")
        if self.percent is not None:
            parts.append(f"more than {self.percent.normalize():f}% of the current value")
        return "an increase of " + " or ".join(parts) if parts else "no rule"

    def needs_approval(self, current: Decimal | None, new: Decimal) -> bool:
        """True if raising ``current`` (None: nothing applied yet) to ``new`` breaks the rule. Pure."""
        base = current if current is not None else Decimal(0)
        increase = new - base
        if increase <= 0:
            return False
        if self.amount is not None and increase > self.amount:
            return True
        if self.percent is not None and current is not None:
            return increase * _HUNDRED > current * self.percent
        return False


def request_id(account_id: str, value: Decimal, sequence_number: str) -> str:
    """The request for this value asked by this stream record: the same for a duplicate delivery."""
    digest = hashlib.sha256(f"{account_id}:{format_amount(value)}:{sequence_number}".encode()).hexdigest()
    return f"REQ-{digest[:12]}"


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    request_id: str
    account_id: str
    requested_value: Decimal
    current_value: Decimal | None
    requested_by: str
    requested_at: datetime
    expires_at: datetime
    sequence_number: str
    rule: str


class RequestTable(Protocol):
    """The requests table (the adapter: approval_tables.DynamoRequestTable). TransientError
    when it cannot be read or written."""

    def create(self, request: ApprovalRequest) -> bool:
        """Store ``request`` as PENDING unless its RequestId exists (False then: a duplicate)."""
        ...

    def read(self, request_id: str) -> dict[str, Any] | None:
        """The request item, read consistently, deserialised (None: none, or expired and deleted)."""
        ...

    def mark_applied(self, request_id: str, sequence_number: str) -> bool:
        """APPROVED -> APPLIED by this record (or already APPLIED by it); False otherwise."""
        ...


class ApprovalTable(Protocol):
    """The approvals table, read only (the adapter: approval_tables.DynamoApprovalTable)."""

    def read(self, approver_id: str, request_id: str) -> dict[str, Any] | None:
        """The approval item, read consistently, deserialised (None: none)."""
        ...


class Verdict(StrEnum):
    WITHIN = "WITHIN"  # within the rule (or no rule): flows as before
    APPROVED = "APPROVED"  # above the rule with a valid approval: send it


@dataclass(frozen=True, slots=True)
class Held:
    """A value the gate did not let through: the request that holds it and the status reason."""

    request_id: str
    reason: str
    created: bool  # False: the request existed (the record was delivered before)


class ApprovalGate:
    """The rule, applied by the stream function before it writes a spoke."""

    def __init__(
        self,
        rule: ApprovalRule,
        requests: RequestTable,
        expiry: timedelta,
        clock: Any = None,
        approvals: ApprovalTable | None = None,
    ) -> None:
        self._rule = rule
        self._requests = requests
        self._approvals = approvals
        self._expiry = expiry
        self._clock = clock or (lambda: datetime.now(UTC))

    @property
    def active(self) -> bool:
        return self._rule.active

    def hold(
        self,
        account_id: str,
        sequence_number: str,
        new_value: Decimal,
        current_value: Decimal | None,
        requested_by: str = "",
        approval_id: str = "",
        approved_by: str = "",
    ) -> Verdict | Held:
        """WITHIN or APPROVED if ``new_value`` may be sent; else the request that now holds it
        (created once per record). ``approval_id``/``approved_by``: the item's ApprovalId and
        ApprovedBy, checked only for a value above the rule."""
        if not self._rule.needs_approval(current_value, new_value):
            return Verdict.WITHIN
        refused = ""
        if approval_id:
            refused = self._refused(account_id, sequence_number, new_value, approval_id, approved_by)
            if not refused and self._requests.mark_applied(approval_id, sequence_number):
                return Verdict.APPROVED
            refused = refused or f"approval {approval_id} was used already"
        now = self._clock()
        request = ApprovalRequest(
            request_id=request_id(account_id, new_value, sequence_number),
            account_id=account_id,
            requested_value=new_value,
            current_value=current_value,
            requested_by=requested_by,
            requested_at=now,
            expires_at=now + self._expiry,
            sequence_number=sequence_number,
            rule=self._rule.describe(),
        )
        created = self._requests.create(request)
        reason = pending_reason(request)
        if refused:
            reason = f"{reason}. The item's approval was not accepted: {refused}"
        return Held(request.request_id, reason, created)

    def _refused(
        self, account_id: str, sequence_number: str, new_value: Decimal, approval_id: str, approved_by: str
    ) -> str:
        """Why the item's approval does not let ``new_value`` through ('' if it does)."""
        request = self._requests.read(approval_id)
        if request is None:
            return f"no request {approval_id} (never made, or expired and deleted)"
        if request.get("AccountId") != account_id:
            return f"request {approval_id} is for account {request.get('AccountId')}"
        if request.get("RequestedValue") != new_value:
            asked = request.get("RequestedValue")
            shown = format_amount(asked) if isinstance(asked, Decimal) else str(asked)
            return f"request {approval_id} is for {shown} USD, the item asks for {format_amount(new_value)}"
        if int(request.get("ExpiresAt", 0)) <= self._clock().timestamp():
            return f"request {approval_id} has expired"
        state = request.get("State")
        replayed = state == State.APPLIED and request.get("AppliedSequence") == sequence_number
        if state == State.APPLIED and not replayed:
            return f"approval {approval_id} was used already (its value was sent before): ask again"
        if state not in (State.APPROVED, State.APPLIED):
            return f"request {approval_id} is {state}, not APPROVED"
        approval = self._approvals.read(approved_by, approval_id) if self._approvals and approved_by else None
        if approval is None or approval.get("Decision") != State.APPROVED:
            return f"no approval of {approval_id} recorded under {approved_by or 'nobody'} in the approvals table"
        requester = str(request.get("RequestedBy") or "")
        if requester and approval.get("ApproverArn") == requester:
            return f"request {approval_id} was approved by its own requester {requester}"
        return ""


#: ``ChangedVia`` (history) of an approved value the gate sent: this prefix and the request id.
APPROVED_VIA = "approval "


def approved_via(request_id: str) -> str:
    """The history path of an approved value: ``approval REQ-...``."""
    return APPROVED_VIA + request_id


def pending_reason(request: ApprovalRequest) -> str:
    """The status reason of a held value: what, why, and how to get it approved."""
    current = "nothing applied yet" if request.current_value is None else format_amount(request.current_value)
    expires = request.expires_at.isoformat(timespec="minutes")
    return (
        f"approval needed: {format_amount(request.requested_value)} USD (applied: {current}) is "
        f"{request.rule}; not sent. Request {request.request_id} is pending until {expires}: "
        f"another principal approves it with 'budgetctl approve {request.request_id}' "
        f"(docs/operate.md, Approvals)"
    )
