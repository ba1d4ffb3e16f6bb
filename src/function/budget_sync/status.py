"""The status table: per account, what was asked, what the spoke confirmed, and why not.

Item (key ``AccountId``):
  DesiredValue    N   the value the budgets table asked for (absent if the item was invalid)
  AppliedValue    N   the last value written to the spoke parameter
  Status          S   SENT | APPLIED | FAILED | UNMANAGED | WAITING | SKIPPED (see Status)
  Reason          S   why, for FAILED and UNMANAGED (a spoke's reason is the spoke's own text)
  UpdatedAt       S   ISO 8601, UTC
  SequenceNumber  S   the stream record that produced this status, zero-padded so that
                      string order is stream order; a status is never replaced by an older one
  Source          S   stream | reconciler | spoke | timeout | approval (a value held above the
                      approval rule: FAILED, budget_sync.approvals)
  ParameterVersion N  the spoke parameter's version after the write
  AlertSettings   S   the alert settings last sent to /BlogBudgets/AlertSettings (JSON,
                      budget_sync.alerts)
  ConfirmedAlerts S   the alert settings the spoke reported its budget has (JSON: emails,
                      actual, forecasted, sns), from the document's ReconcileAlerts step
  SpokeHealth     S   HEALTHY | UNHEALTHY: the budget's HealthStatus in the spoke's last
                      ReconcileAlerts report (UNHEALTHY: FAILED with AWS's reason)
  ConfirmedCostBasis S the Metrics and excluded record types the spoke reported its budget
                      counts (JSON: metric, exclude; "" none set), from ReconcileAlerts
  SentAlertsVersion N  the version of /BlogBudgets/AlertSettings the last alert settings sent
                      were written as (PutParameter's answer): the status is APPLIED only once
                      the spoke's alerts step reported applying this version or a newer one
  ConfirmedAlertsVersion, ConfirmedAlertDefaultsVersion N
                      the versions of /BlogBudgets/AlertSettings and /BlogBudgets/AlertDefaults
                      that report applied (0: missing): an alerts report about older ones is
                      ignored (budget_sync.results)
  RequestedBy     S   who asked for the repair (``budgetctl reconcile --apply``), if someone did
  SentAt          S   when the value or the alert settings were last sent (SENT); the bound
                      ConfirmTimeoutMinutes counts from it
  ConfirmedVersion N  the parameter version the spoke's latest report is about: a report about
                      an older version never overwrites a newer status; above ParameterVersion,
                      a report held for a SENT not recorded yet (or a hand edit's: drift once
                      the bound passes; see budget_sync.results)
  ConfirmedLimit  N   the budget limit the spoke reported (success only)
  ConfirmedAt     S   when the report arrived
  ExecutionId     S   the spoke's Automation execution that reported
  SpokeOutcome    S   APPLIED | FAILED: what the spoke's latest report said
  SpokeReason     S   the spoke's reason with a FAILED report
  SpokeStep       S   UpdateBudgetLimit | ReconcileAlerts: the step whose report SpokeOutcome is
  EndedExecutionId, EndedStatus, EndedAt S
                      AWS's notice that an execution ended Failed, TimedOut or Cancelled before
                      its report arrived: the report may still come and decides; without one
                      the schedule's check fails the status (budget_sync.results)
  RepairedVersion N   the parameter version the reconciler's last repair wrote
  RepairedAlertsVersion N
                      the alert parameter version the reconciler's last alert repair wrote
  ChangedFrom, ChangedTo, ChangedBy, ChangedAt, ChangedVia S
                      set by the update function on every status it writes for a change of
                      the budgets table (budget_sync.history.Provenance): the value before and
                      the value written (as typed, also when refused), the writer's UpdatedBy
                      and UpdatedAt ("": not recorded, a write from outside budgetctl), and
                      ``item`` or the TargetId of the default the item inherits (an approved
                      value sent: the approver's ``ApprovedBy`` and ``approval REQ-...``). The history
                      function reads them from the status table's stream (budget_sync.history)

Layers: this module holds the item's contract (``Status``, ``StatusUpdate``), the status
store's logic (``StatusStore``: a conditional write, and when the condition fails the pure
``confirmed_first`` verdict of a report that came before its SENT; ``record_many``'s
transactions and their fallback) and the ``StatusTable`` Protocol it writes through, in the
project's types and errors. The DynamoDB adapter is status_table.py (the only module that
sees botocore's errors for this table); tests/fakes/status_table.py is the in-memory fake.
Protocols live beside the logic that needs them; each adapter is a module named for the AWS
resource it reaches (status_table.py, alarm_topic.py, spoke.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from boto3.dynamodb.types import TypeDeserializer

from budget_sync.cost_basis import unconfirmed
from budget_sync.errors import TransientError

if TYPE_CHECKING:
    from budget_sync.history import Provenance

_deserialize = TypeDeserializer().deserialize

SEQUENCE_WIDTH = 40
TRANSACTION_LIMIT = 100  # TransactWriteItems' maximum
#: Transactions tried per chunk of a batch (record_many): the first, then those of its statuses
#: that did not cancel it; after the last, the rest are written one by one
TRANSACTION_ATTEMPTS = 3


class Status(StrEnum):
    """An account's state. New states are new members; code matches on members, never on order."""

    SENT = "SENT"  # the value is in the spoke parameter; the spoke has not confirmed its budget yet
    APPLIED = "APPLIED"  # the spoke confirmed its budget's limit is the desired value (and the alerts sent)
    FAILED = "FAILED"  # bad item, spoke unreachable, value rejected, the spoke's failure, no confirmation
    UNMANAGED = "UNMANAGED"  # the item was deleted: the spoke keeps its last budget
    WAITING = "WAITING"  # (resolver) a default applies; the account's spoke stack is not there yet
    SKIPPED = "SKIPPED"  # (resolver) a suspended or closed account: left as it is


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    account_id: str
    status: Status
    sequence_number: str
    desired: Decimal | None = None
    applied: Decimal | None = None
    reason: str = ""
    parameter_version: int | None = None
    source: str = "stream"
    alerts: str | None = None  # the alert settings sent with this update (None: none sent)
    requested_by: str = ""  # the operator whose request this write carried out
    repaired: bool = False  # a reconciler repair: Repaired(Alerts)Version records the version written
    alerts_version: int | None = None  # the alert parameter's version after writing ``alerts``
    change: Provenance | None = None  # the update function's: the change this status records


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def padded(sequence_number: str) -> str:
    return sequence_number.zfill(SEQUENCE_WIDTH)


class StatusTable(Protocol):
    """What the status store reads and writes (the adapter: status_table.DynamoStatusTable).

    In the project's own types and errors: TransientError when the table cannot be read or
    written; a write whose condition fails answers False.
    """

    def read(self, account_id: str) -> dict[str, Any] | None:
        """The account's status item, read consistently (None: no item)."""
        ...

    def write(self, update: StatusUpdate, *, guard_confirmation: bool = True) -> bool:
        """Write ``update`` unless a newer status is recorded (a SequenceNumber after
        ``padded(update.sequence_number)``), or, for a SENT with ``guard_confirmation``, the
        spoke's report of its parameter version (ConfirmedVersion equal to it) or of its alert
        settings (ConfirmedAlertsVersion at or past ``alerts_version``) is: False then."""
        ...

    def write_all(self, updates: Sequence[StatusUpdate]) -> list[int]:
        """Write at most TRANSACTION_LIMIT updates in one transaction, each on ``write``'s
        condition. []: all written. Otherwise the transaction was cancelled (nothing written)
        and the answer is the positions in ``updates`` of those that cancelled it (DynamoDB's
        CancellationReasons: a condition that failed, or another reason for that item); every
        position when DynamoDB did not say which."""
        ...


def confirmed_first(item: Mapping[str, Any] | None, update: StatusUpdate) -> StatusUpdate | None:
    """A SENT whose spoke report arrived first: the update to write instead, with the report's
    verdict (None: the status is newer than ``update``, nothing to do). Pure.

    The Automation can finish (and its report reach the management account) before the
    stream function writes SENT at the end of its batch. The report was then kept as
    ConfirmedVersion/SpokeOutcome only (budget_sync.results); SENT must not hide it.
    """
    if update.status is not Status.SENT or (
        update.parameter_version is None and update.alerts_version is None
    ):
        return None
    if item is None or str(item.get("SequenceNumber", "")) > padded(update.sequence_number):
        return None
    confirmed = int(item.get("ConfirmedVersion", 0))
    limit_reported = update.parameter_version is None or confirmed == update.parameter_version
    alerts_reported = (
        update.alerts_version is None or int(item.get("ConfirmedAlertsVersion", 0)) >= update.alerts_version
    )
    if not limit_reported and not alerts_reported:
        return None  # the condition failed for another reason: a newer status
    limit = item.get("ConfirmedLimit")
    if not (limit_reported and alerts_reported):
        return update  # one step's report came first: SENT waits for the other's
    missing = unconfirmed(update.alerts, item.get("ConfirmedCostBasis")) if update.alerts_version else ""
    if item.get("SpokeOutcome") == Status.APPLIED and missing:  # the cost basis sent, not confirmed
        return replace(update, status=Status.FAILED, reason=f"spoke: {missing}")
    if item.get("SpokeOutcome") == Status.APPLIED and limit is not None and update.desired == limit:
        return replace(update, status=Status.APPLIED, reason="")
    if item.get("SpokeOutcome") == Status.APPLIED:
        return replace(update, status=Status.FAILED, reason=limit_differs(limit, update.desired, confirmed))
    return replace(update, status=Status.FAILED, reason=f"spoke: {item.get('SpokeReason', '')}")


class StatusStore:
    """The status writes of the stream function and the reconciler, on a ``StatusTable``."""

    def __init__(self, table: StatusTable) -> None:
        self._table = table

    def record(self, update: StatusUpdate) -> bool:
        """Write one status unless a newer record already did. Returns False if it was older.

        Raises TransientError if the write fails: the record is then retried, because an
        operator must be able to see every outcome.
        """
        return self._table.write(update) or self._confirmed_first(update)

    def _confirmed_first(self, update: StatusUpdate) -> bool:
        """The write's condition failed: a SENT whose report came first is written with the
        report's verdict (``confirmed_first``). False if the status is newer than ``update``."""
        if update.status is not Status.SENT or (
            update.parameter_version is None and update.alerts_version is None
        ):
            return False
        verdict = confirmed_first(self._table.read(update.account_id), update)
        return verdict is not None and self._table.write(verdict, guard_confirmation=False)

    def read(self, account_id: str) -> dict[str, Any] | None:
        """The account's status item, read consistently, deserialised (None: no item)."""
        return self._table.read(account_id)

    def record_many(self, updates: Sequence[StatusUpdate]) -> list[str]:
        """Write a batch's statuses, up to 100 per transaction.

        Every write keeps its sequence-number condition. If a transaction is cancelled (a
        newer status exists for one of its accounts, or a spoke's report came before its
        SENT), the statuses that cancelled it are written one by one (``record``: a stale one
        is skipped, a report that came first gives its verdict) and the others again in one
        transaction, up to TRANSACTION_ATTEMPTS transactions per chunk; after that, or when
        DynamoDB does not say which statuses cancelled it, the rest are written one by one.
        Returns the accounts whose status could not be written: their records must be retried.
        """
        failed: list[str] = []
        for start in range(0, len(updates), TRANSACTION_LIMIT):
            pending = list(updates[start : start + TRANSACTION_LIMIT])
            for attempt in range(TRANSACTION_ATTEMPTS):
                try:
                    refused = self._table.write_all(pending)
                except TransientError:
                    failed.extend(u.account_id for u in pending)
                    break
                if not refused:
                    break
                alone = set(refused) if attempt + 1 < TRANSACTION_ATTEMPTS else set(range(len(pending)))
                failed.extend(self._one_by_one(u for i, u in enumerate(pending) if i in alone))
                pending = [u for i, u in enumerate(pending) if i not in alone]
                if not pending:
                    break
        return failed

    def _one_by_one(self, updates: Iterable[StatusUpdate]) -> list[str]:
        """``record`` each update; the accounts whose status could not be written."""
        failed = []
        for update in updates:
            try:
                self.record(update)
            except TransientError:
                failed.append(update.account_id)
        return failed


def limit_differs(limit: object, desired: object, version: int) -> str:
    return (
        f"the spoke confirmed a budget limit of {limit} for parameter version {version}, "
        f"but the desired value is {desired}"
    )
