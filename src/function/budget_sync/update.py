"""Apply one batch of budgets-table changes to the spoke accounts.

Per batch: every record is parsed against the item contract; per account the newest
record wins; an account whose value did not change over the batch costs no spoke call;
distinct accounts are applied concurrently (bounded), one account never twice at once.
The result says, per account, whether the batch must be retried from that account's
earliest record (transient failure) or is settled (sent, unchanged, recorded failure).

A value written to the spoke parameter is SENT: it becomes APPLIED only when the spoke
reports that its budget holds it, and, when alert settings were sent, that its alerts step
applied the alert parameter version written (budget_sync.results). With a deadline (the Lambda
context's remaining time), accounts not yet started when time runs short are not started:
they go back to Lambda for retry, while the statuses of those already sent are recorded.

Every status written for a change also says what history needs (budget_sync.history,
``Provenance``): from what, to what, who and through which path; the history function reads
it from the status table's stream, so the budgets table's stream keeps its two readers.

With an approval rule (budget_sync.approvals), a value that raises the account's applied value
above the rule is not sent: the gate records a pending request and the status is FAILED with
Source ``approval`` (Outcome.PENDING_APPROVAL), whichever client wrote the item. An approved
value it sends carries, for the history, the approver the gate checked (the item's
``ApprovedBy``) as ``ChangedBy`` and ``approval REQ-...`` as ``ChangedVia``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum

from budget_sync.approvals import (
    APPROVAL_ID_FIELD,
    APPROVED_BY_FIELD,
    ApprovalGate,
    Held,
    Verdict,
    approved_via,
)
from budget_sync.approvals import SOURCE as APPROVAL_SOURCE
from budget_sync.domain import Change, ChangeKind, format_amount, parse_change
from budget_sync.errors import InvalidItemError, PermanentError, TransientError
from budget_sync.history import Provenance, provenance
from budget_sync.observability import logger
from budget_sync.spoke import SpokeGateway
from budget_sync.status import Status, StatusStore, StatusUpdate

REMOVED = "item deleted from the budgets table; the account keeps its last budget"


class Outcome(StrEnum):
    """One per account and batch; each is also a CloudWatch metric name."""

    APPLIED = "BudgetApplied"  # sent: the parameter holds the value (the spoke confirms later)
    UNCHANGED = "BudgetUnchanged"
    FAILED = "BudgetFailed"  # permanent: recorded in the status table, not retried
    INVALID_ITEM = "InvalidItem"  # permanent: the item breaks the contract
    UNMANAGED = "BudgetUnmanaged"  # the item was removed
    RETRY = "TransientFailure"  # the account's earliest record goes back to Lambda
    DEFERRED = "DeadlineDeferred"  # not started: the invocation's time ran short; Lambda retries it
    PENDING_APPROVAL = "ApprovalPending"  # above the approval rule: held, a request records it


@dataclass(frozen=True, slots=True)
class StreamRecord:
    """The parts of a DynamoDB stream record the pipeline reads (images deserialised)."""

    event_name: str
    sequence_number: str
    keys: dict[str, object] | None
    new_image: dict[str, object] | None
    old_image: dict[str, object] | None


@dataclass(slots=True)
class _AccountPlan:
    account_id: str
    first_sequence: str  # where Lambda must resume if this account fails
    newest: Change | InvalidItemError
    newest_sequence: str
    #: what history needs (budget_sync.history): from the first record's old value to the
    #: newest record's value, by the newest record's writer, through its path
    change: Provenance = field(default_factory=Provenance)
    requested_by: str = ""  # the newest item's UpdatedBy, as its writer recorded it
    approval_id: str = ""  # the newest item's ApprovalId and ApprovedBy (budget_sync.approvals)
    approved_by: str = ""
    approval_changed: bool = False  # a record of the batch changed ApprovalId (budgetctl approve)


@dataclass(slots=True)
class BatchResult:
    retry_sequence_numbers: set[str] = field(default_factory=set)
    outcomes: Counter[Outcome] = field(default_factory=Counter)


#: Time kept back for the status writes and the batch response when a deadline is given.
DEADLINE_RESERVE_MS = 20_000


class BudgetSync:
    def __init__(
        self,
        gateway: SpokeGateway,
        status: StatusStore,
        max_concurrency: int = 10,
        approvals: ApprovalGate | None = None,
    ) -> None:
        self._gateway = gateway
        self._status = status
        self._max_concurrency = max_concurrency
        self._approvals = approvals if approvals is not None and approvals.active else None

    def process(
        self,
        records: Sequence[StreamRecord],
        remaining_ms: Callable[[], int] | None = None,
        reserve_ms: int = DEADLINE_RESERVE_MS,
    ) -> BatchResult:
        """Settle a batch. ``remaining_ms`` (the Lambda context's) stops new accounts from
        starting once fewer than ``reserve_ms`` are left; they are returned for retry."""
        result = BatchResult()
        plans = self._plan(records, result)
        if not plans:
            return result

        def settle(plan: _AccountPlan) -> tuple[Outcome, StatusUpdate | None]:
            if remaining_ms is not None and remaining_ms() < reserve_ms:
                logger.warning(
                    "deadline near, account not started",
                    extra={"account_id": plan.account_id, "remaining_ms": remaining_ms()},
                )
                return Outcome.DEFERRED, None
            return self._apply(plan)

        workers = min(self._max_concurrency, len(plans))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="account") as pool:
            settled = list(pool.map(settle, plans))
        outcomes = [outcome for outcome, _ in settled]
        updates = [update for _, update in settled if update is not None]
        unrecorded = set(self._status.record_many(updates)) if updates else set()
        for index, plan in enumerate(plans):
            if plan.account_id in unrecorded:  # an outcome nobody can see is not settled
                logger.warning("status not written, will retry", extra={"account_id": plan.account_id})
                outcomes[index] = Outcome.RETRY
        for plan, outcome in zip(plans, outcomes, strict=True):
            result.outcomes[outcome] += 1
            if outcome in (Outcome.RETRY, Outcome.DEFERRED):
                result.retry_sequence_numbers.add(plan.first_sequence)
        return result

    def _plan(self, records: Iterable[StreamRecord], result: BatchResult) -> list[_AccountPlan]:
        plans: dict[str, _AccountPlan] = {}
        for record in sorted(records, key=lambda r: int(r.sequence_number)):
            try:
                parsed: Change | InvalidItemError = parse_change(
                    record.event_name, record.sequence_number, record.keys, record.new_image, record.old_image
                )
                account_id: str | None = parsed.account_id
            except InvalidItemError as exc:
                parsed, account_id = exc, exc.account_id
            if account_id is None:  # no usable AccountId: nothing to key a status on
                assert isinstance(parsed, InvalidItemError)
                logger.error(
                    "item rejected",
                    extra={
                        "sequence_number": record.sequence_number,
                        "reason": str(parsed),
                        "field": parsed.field,
                    },
                )
                result.outcomes[Outcome.INVALID_ITEM] += 1
                continue
            origin = provenance(record.new_image, record.old_image)
            new, old = record.new_image or {}, record.old_image or {}
            requested_by = str(new.get("UpdatedBy") or "")
            approval = (str(new.get(APPROVAL_ID_FIELD) or ""), str(new.get(APPROVED_BY_FIELD) or ""))
            approval_changed = bool(approval[0]) and new.get(APPROVAL_ID_FIELD) != old.get(APPROVAL_ID_FIELD)
            plan = plans.get(account_id)
            if plan is None:
                plans[account_id] = _AccountPlan(
                    account_id,
                    record.sequence_number,
                    parsed,
                    record.sequence_number,
                    origin,
                    requested_by,
                    *approval,
                    approval_changed,
                )
                continue
            plan.change = replace(origin, previous=plan.change.previous)
            if isinstance(parsed, Change) and isinstance(plan.newest, Change):
                # 'unchanged' is judged over the whole batch: the value before its first record.
                upsert = plan.newest.kind is ChangeKind.UPSERT
                first_old = plan.newest.old_value if upsert else None
                first_alerts = plan.newest.old_alerts if upsert else None
                parsed = replace(parsed, old_value=first_old, old_alerts=first_alerts)
            elif isinstance(parsed, Change):
                parsed = replace(parsed, old_value=None, old_alerts=None)
            plan.newest, plan.newest_sequence = parsed, record.sequence_number
            plan.requested_by = requested_by
            plan.approval_id, plan.approved_by = approval
            plan.approval_changed = plan.approval_changed or approval_changed
        return list(plans.values())

    def _apply(self, plan: _AccountPlan) -> tuple[Outcome, StatusUpdate | None]:
        """Settle one account: its outcome and the status to record. Never raises."""
        account_id, newest, sequence = plan.account_id, plan.newest, plan.newest_sequence
        log = {"account_id": account_id, "sequence_number": sequence}
        try:
            if isinstance(newest, InvalidItemError):
                logger.error("item rejected", extra={**log, "reason": str(newest), "field": newest.field})
                return Outcome.INVALID_ITEM, StatusUpdate(
                    account_id, Status.FAILED, sequence, reason=str(newest), change=plan.change
                )
            if newest.kind is ChangeKind.REMOVE:
                logger.info("account no longer managed", extra=log)
                return Outcome.UNMANAGED, StatusUpdate(
                    account_id, Status.UNMANAGED, sequence, reason=REMOVED, change=plan.change
                )
            approval = self._approvals is not None and plan.approval_changed
            if newest.unchanged and not approval:
                logger.debug("value unchanged, nothing to send", extra=log)
                return Outcome.UNCHANGED, None
            if self._approvals is not None:
                verdict = self._hold(plan, newest, log)
                if isinstance(verdict, tuple):
                    return verdict
                if verdict is Verdict.APPROVED:  # send the value, even if the item's is unchanged
                    # history: by the approver the gate verified (ApprovedBy, the approval's key)
                    origin = replace(plan.change, by=plan.approved_by, via=approved_via(plan.approval_id))
                    return self._put(account_id, sequence, replace(newest, old_value=None), log, origin)
                if newest.unchanged:  # an ApprovalId on a value that needs none: nothing to send
                    return Outcome.UNCHANGED, None
            return self._put(account_id, sequence, newest, log, plan.change)
        except TransientError as exc:
            logger.warning("will retry", extra={**log, "reason": str(exc)})
        except Exception:  # a bug must cost a retry, never a silently settled record
            logger.exception("unexpected error, will retry", extra=log)
        return Outcome.RETRY, None

    def _hold(
        self, plan: _AccountPlan, change: Change, log: dict[str, str]
    ) -> tuple[Outcome, StatusUpdate] | Verdict:
        """The pending status of a value above the approval rule, or the verdict to send it
        (WITHIN the rule, or APPROVED). The rule is judged against the value last written to the
        spoke (the status's AppliedValue), never the record's OldImage, which may be a value that
        was held. TransientError: retried."""
        assert self._approvals is not None
        assert change.new_value is not None
        status = self._status.read(plan.account_id) or {}
        applied = status.get("AppliedValue")
        current = applied if isinstance(applied, Decimal) else None
        held = self._approvals.hold(
            plan.account_id,
            plan.newest_sequence,
            change.new_value,
            current,
            plan.requested_by,
            plan.approval_id,
            plan.approved_by,
        )
        if not isinstance(held, Held):
            if held is Verdict.APPROVED:
                logger.info(
                    "approved value sent",
                    extra={**log, "request_id": plan.approval_id, "approver_id": plan.approved_by},
                )
            return held
        logger.warning(
            "value held for approval",
            extra={
                **log,
                "amount": format_amount(change.new_value),
                "applied": None if current is None else format_amount(current),
                "request_id": held.request_id,
                "request_created": held.created,
            },
        )
        pending = StatusUpdate(
            plan.account_id,
            Status.FAILED,
            plan.newest_sequence,
            desired=change.new_value,
            reason=held.reason,
            source=APPROVAL_SOURCE,
            change=plan.change,
        )
        return Outcome.PENDING_APPROVAL, pending

    def _put(
        self, account_id: str, sequence: str, change: Change, log: dict[str, str], origin: Provenance
    ) -> tuple[Outcome, StatusUpdate]:
        assert change.new_value is not None
        amount = format_amount(change.new_value)
        alerts = None if change.alerts_unchanged else change.alerts.to_parameter()
        version = alerts_version = None
        try:
            if not change.value_unchanged:
                version = self._gateway.put_budget_value(account_id, amount)
            if alerts is not None:
                alerts_version = self._gateway.put_alert_settings(account_id, alerts)
        except PermanentError as exc:
            logger.error("budget not applied", extra={**log, "amount": amount, "reason": str(exc)})
            failed = StatusUpdate(
                account_id, Status.FAILED, sequence, desired=change.new_value, reason=str(exc), change=origin
            )
            return Outcome.FAILED, failed
        logger.info(
            "budget sent",
            extra={**log, "amount": amount, "parameter_version": version, "alerts": alerts},
        )
        applied = StatusUpdate(
            account_id,
            Status.SENT,
            sequence,
            desired=change.new_value,
            applied=change.new_value,
            parameter_version=version,
            alerts=alerts,
            alerts_version=alerts_version,
            change=origin,
        )
        return Outcome.APPLIED, applied
