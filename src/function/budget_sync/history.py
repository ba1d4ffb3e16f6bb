"""Every change's history: what the history function appends, and from which stream record.

The history table keeps, append-only, every change of an account's desired budget, every
change of a default, and every outcome, for ``HistoryRetentionDays`` (template-management.yaml;
DynamoDB's TTL removes a record after it). DynamoDB streams hold 24 hours and the status item
only the latest word: this is the durable record an auditor reads (``budgetctl history``).

Where the records come from (and why not from the budgets table's stream). AWS's DynamoDB
Streams guide: "No more than two processes at most should be reading from the same streams
shard at the same time", and the budgets table's stream has two consumers already (the update
function and the item-removed resolver). So the history function reads the two streams that
have one each, both NEW_AND_OLD_IMAGES:

* the status table's stream (the failure-notice function is the other reader). The update
  function, which reads the budgets table's stream, writes on every status it records for a
  change what history needs (``Provenance``: ``ChangedFrom``, ``ChangedTo``, ``ChangedBy``,
  ``ChangedAt``, ``ChangedVia``; status.py's item table). So one status write carries the
  change (its SequenceNumber is the budgets stream record's) and every later writer (the
  spoke's report, the unconfirmed check, the reconciler, the resolver) carries the outcome;
  ``from_status_record`` tells them apart;
* the defaults table's stream (the defaults resolver is the other reader): ``from_defaults_record``.
  A default that reaches an account shows in that account's history too, as a change whose
  ``Via`` is the default's target (the resolver writes the inherited item; the update
  function records it like any other).

* the approval requests table's stream (its only reader): a value held above the approval
  rule (REQUESTED) and a request that expired or was deleted unsent (EXPIRED, WITHDRAWN),
  ``from_requests_record``;
* the approvals table's stream (its only reader): who approved or rejected (APPROVED,
  REJECTED), under the key IAM proves, ``from_approvals_record``.

One mapping function per source of records (``MAPPERS``), one ``Kind`` per step.

An approval's steps, as the history shows them: REQUESTED (by the requester) is the held
change's line, and the FAILED status with Source ``approval`` that the gate writes beside it
is that line's outcome (an OUTCOME record, ``settled_changes`` attaches it), never a second
change; APPROVED or REJECTED (by the approver); the approved value sent is a CHANGED record
(by the approver the gate checked, the item's ``ApprovedBy``) with its SENT and APPLIED
outcomes; or EXPIRED (by DynamoDB's TTL). A stream record's time is whole seconds: within one
second, the streams' names order the records (``approvals`` < ``requests`` < ``status``),
which is the order of one step's records (a decision before the value it sends, a request
before the status that holds it), not necessarily of two people's steps in that second.

The cost basis (``CostMetric``, ``CostExclusions``, budget_sync.cost_basis) travels inside
the alert settings, so a change of it is a change of ``AlertSettings`` on the status item,
recorded like any alert change and shown as ``cost basis amortized, excluding credits``
(``HistoryRecord.settings_sent``).

Who. ``budgetctl`` (and the resolver) set ``UpdatedBy`` and ``UpdatedAt`` on every write. A
write by any other client (the console, ``aws dynamodb put-item``) sets neither or leaves
the last writer's in place: a change whose ``UpdatedAt`` did not move is not that writer's,
and its principal is recorded as unknown (``By`` empty, shown as ``NOT_RECORDED``). A stream
record carries no principal; CloudTrail's DynamoDB data events, where the organisation turns
them on, are where AWS names it. Outcomes are by the writer that recorded them (the spoke's
report, the unconfirmed check, the reconciler with the operator who asked, the resolver).

Coalescing. The update function settles an account once per batch: changes that one batch of
the budgets stream supersedes (written within the batching window) are one record, from the
first change's old value to the last one's new value, by the last writer.

Idempotency. Each record is keyed by its source event: ``Subject`` (the account, or a
default's target) and ``Key`` (the stream record's time, the stream, its sequence number),
written with ``attribute_not_exists``. A stream record delivered twice writes nothing the
second time; records delivered out of order each land under their own key, and a read sorts
them by it. Records are never updated or deleted by budget-sync; operators get read access
only (docs/operate.md).

Pure Python: the adapter is history_table.py (``DynamoHistoryTable``), the handler
handlers/history.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

from budget_sync.approvals import APPROVED_VIA
from budget_sync.domain import BUDGET_VALUE_FIELD, amount_text
from budget_sync.effective_budget import INHERITED_FROM_FIELD, INHERITED_VALUE_FIELD, TARGET_ID_FIELD
from budget_sync.errors import TransientError
from budget_sync.status import SEQUENCE_WIDTH, Status, _deserialize

#: How a change whose writer did not say who it was is shown.
NOT_RECORDED = "not recorded: written outside budgetctl"
#: How a removal is shown: a DeleteItem leaves no UpdatedBy behind, whoever sent it.
REMOVAL_NOT_RECORDED = "not recorded: a removal carries no principal"
#: ``Via`` of an account's own item.
OWN_ITEM = "item"
#: ``Via`` of a reconciler repair.
REPAIR = "reconciler"
#: Retention when the template does not say (HistoryRetentionDays): 13 months, a year to
#: compare with and a month of grace.
DEFAULT_RETENTION_DAYS = 400


class Kind(StrEnum):
    """What a history record says. New kinds (approvals) are new members."""

    CHANGED = "CHANGED"  # the desired budget (or its alerts) changed and was sent or refused
    REMOVED = "REMOVED"  # the account's item was deleted: it keeps its last budget
    OUTCOME = "OUTCOME"  # the status moved: APPLIED, FAILED (with the reason), WAITING, ...
    REPAIRED = "REPAIRED"  # the reconciler wrote the spoke again
    DEFAULT_SET = "DEFAULT_SET"  # a default of an OU or the root was set or changed
    DEFAULT_REMOVED = "DEFAULT_REMOVED"  # a default was removed
    # Approvals (budget_sync.approvals): a value above the rule, held as a request, and its fate.
    REQUESTED = "REQUESTED"  # the value was held: a pending request (the change's history line)
    APPROVED = "APPROVED"  # an approver approved the request (the approvals table, IAM-proven key)
    REJECTED = "REJECTED"  # an approver rejected it: the value is never sent
    EXPIRED = "EXPIRED"  # DynamoDB's TTL deleted the request before its value was sent
    WITHDRAWN = "WITHDRAWN"  # someone deleted the pending request (not TTL): never sent


#: The approval steps: changes in their own right (settled_changes), shown with the request.
APPROVAL_KINDS = frozenset({Kind.REQUESTED, Kind.APPROVED, Kind.REJECTED, Kind.EXPIRED, Kind.WITHDRAWN})
#: Who removed an expired request: a TTL deletion's stream record has ``userIdentity`` type
#: ``Service``, principalId ``dynamodb.amazonaws.com`` (botocore's DynamoDB Streams model,
#: ``Record.userIdentity``, shape ``Identity``).
TTL_PRINCIPAL = "dynamodb.amazonaws.com"
#: How the TTL's removal is shown.
EXPIRED_BY = "DynamoDB TTL (the request expired)"


class Stream(StrEnum):
    """The source of a record, part of its key (two streams' sequence numbers may meet)."""

    STATUS = "status"
    DEFAULTS = "defaults"
    REQUESTS = "requests"  # the approval requests table (budget_sync.approvals)
    APPROVALS = "approvals"  # the approvals table: who decided, under the key IAM proves


@dataclass(frozen=True, slots=True)
class Provenance:
    """What a change of a budgets (or defaults) item says about itself: from, to, who, when,
    through which path. Read from the stream record's two images (``provenance``)."""

    previous: str = ""  # the value before (as stored: an invalid one as typed; "": none)
    requested: str = ""  # the value written (as typed, also when it is refused)
    by: str = ""  # the writer's principal as budgetctl or the resolver recorded it ("": unknown)
    at: str = ""  # UpdatedAt as the writer recorded it ("": not recorded)
    via: str = OWN_ITEM  # OWN_ITEM, the TargetId of the default the item inherits, or
    # ``approval REQ-...`` (an approved value the update function sent, budget_sync.approvals)


def provenance(new_image: Mapping[str, Any] | None, old_image: Mapping[str, Any] | None) -> Provenance:
    """A budgets or defaults stream record's provenance. Pure.

    The principal is the new image's ``UpdatedBy`` only if this write moved ``UpdatedAt``:
    a client that changes the value and leaves the last ``UpdatedBy`` in place is not that
    principal. An inherited item (``InheritedFrom`` set, value equal to ``InheritedValue``:
    the resolver's own) came through its default.
    """
    new, old = new_image or {}, old_image or {}
    stamped = bool(new.get("UpdatedAt")) and new.get("UpdatedAt") != old.get("UpdatedAt")
    inherited = new.get(INHERITED_FROM_FIELD)
    via = OWN_ITEM
    if inherited and new.get(BUDGET_VALUE_FIELD) == new.get(INHERITED_VALUE_FIELD):
        via = str(inherited)
    return Provenance(
        previous=amount_text(old.get(BUDGET_VALUE_FIELD)) or "",
        requested=amount_text(new.get(BUDGET_VALUE_FIELD)) or "",
        by=str(new.get("UpdatedBy", "")) if stamped else "",
        at=str(new.get("UpdatedAt", "")) if stamped else "",
        via=via,
    )


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    """One line of history. ``subject``: an account id, or a default's TargetId."""

    subject: str
    key: str  # ``record_key``: time, stream, sequence number; unique per source event
    at: str  # ISO 8601, UTC, seconds: when the source record was written
    kind: Kind
    status: str = ""  # the status the write left (SENT, APPLIED, FAILED, ...); "" for defaults
    previous: str = ""
    value: str = ""
    by: str = ""  # "": not recorded (NOT_RECORDED)
    via: str = ""  # OWN_ITEM, a default's TargetId, REPAIR, ``approval REQ-...``, a request's id
    # (the approval steps), or the outcome's writer
    reason: str = ""
    event_id: str = ""  # the stream record's eventID
    alerts: str = ""  # the alert settings this write sent, when they changed (JSON, budget_sync.alerts)

    @property
    def day(self) -> str:
        return self.at[:10]

    def who(self) -> str:
        """``by`` as people read it."""
        if self.by:
            return self.by
        return (
            REMOVAL_NOT_RECORDED
            if self.kind in (Kind.REMOVED, Kind.DEFAULT_REMOVED, Kind.WITHDRAWN)
            else NOT_RECORDED
        )

    def change(self) -> str:
        """The change as one short text: ``1000 -> 1200 (default of ou-x)``."""
        if self.kind is Kind.OUTCOME:
            return ""
        if self.kind in APPROVAL_KINDS:
            step = {
                Kind.REQUESTED: "held for approval",
                Kind.APPROVED: "approved",
                Kind.REJECTED: "rejected",
                Kind.EXPIRED: "expired, not sent",
                Kind.WITHDRAWN: "request deleted, not sent",
            }[self.kind]
            what = f"{self.previous} -> {self.value}" if self.previous else self.value or "none"
            return f"{what} {step} (request {self.via})"
        if self.kind is Kind.REPAIRED:
            alerts = f", alerts {self.alerts}" if self.alerts else ""
            return f"repaired to {self.value or 'none'}{alerts} (reconciler repair)"
        before = self.previous or "none"
        after = self.value or "none"
        if self.kind in (Kind.REMOVED, Kind.DEFAULT_REMOVED):
            after = "removed"
        path = {OWN_ITEM: "own item", REPAIR: "reconciler repair", "": ""}.get(self.via)
        if self.kind is Kind.CHANGED and self.via.startswith(APPROVED_VIA):
            # the approved value the gate sent: the item's value did not change, the spoke's did
            path = f"approved, request {self.via.removeprefix(APPROVED_VIA)}"
            before = "" if before == after else before
        if path is None:
            path = f"default of {self.via}" if self.kind is Kind.CHANGED else self.via
        what = f"{before} -> {after}" if before else f"{after} sent"
        if self.alerts:
            sent = self.settings_sent()
            what = sent if before == after else f"{what}, {sent}"
        return what + (f" ({path})" if path else "")

    def settings_sent(self) -> str:
        """``alerts``, as people read it: the alert settings' JSON, with the cost basis it carries
        (``metric``, ``exclude``: budget_sync.cost_basis) named on its own, ``cost basis amortized,
        excluding credits, refunds``, since it travels inside the alert settings."""
        try:
            body = json.loads(self.alerts)
        except ValueError:
            body = None
        if not isinstance(body, dict) or not ({"metric", "exclude"} & body.keys()):
            return f"alerts {self.alerts}"
        metric, exclude = body.pop("metric", None), body.pop("exclude", None)
        basis = f"cost basis {metric or 'metric: default'}"
        if exclude is not None:
            basis += f", excluding {', '.join(map(str, exclude)) or 'nothing'}"
        rest = json.dumps(body, sort_keys=True, separators=(",", ":"))
        return basis if not body else f"alerts {rest}, {basis}"

    def outcome(self) -> str:
        """The status the record left, with its reason."""
        if not self.status:
            return ""
        return f"{self.status}: {self.reason}" if self.reason else self.status


def record_key(at: str, stream: Stream, sequence_number: str) -> str:
    """The sort key: time order first (records of two streams interleave by time), then the
    stream record's sequence number (zero-padded: string order is stream order)."""
    return f"{at}#{stream.value}#{sequence_number.zfill(SEQUENCE_WIDTH)}"


def _record_time(record: Mapping[str, Any]) -> str:
    created = record.get("dynamodb", {}).get("ApproximateCreationDateTime")
    if isinstance(created, int | float | Decimal) and not isinstance(created, bool):
        return datetime.fromtimestamp(float(created), UTC).isoformat(timespec="seconds")
    raise ValueError(f"stream record {record.get('eventID')!r} has no ApproximateCreationDateTime")


def _images(record: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any], str]:
    stream = record.get("dynamodb") or {}
    new = {k: _deserialize(v) for k, v in (stream.get("NewImage") or {}).items()}
    old = {k: _deserialize(v) for k, v in (stream.get("OldImage") or {}).items()}
    sequence = str(stream.get("SequenceNumber", ""))
    if not sequence.isdigit():
        raise ValueError(f"stream record {record.get('eventID')!r} has no SequenceNumber")
    return new, old, sequence


def from_status_record(record: Mapping[str, Any]) -> HistoryRecord | None:
    """One record of the status table's stream (as Lambda delivers it): the history it
    makes, or None (a write that changed nothing history shows: a report held early, a
    removed status item). Raises ValueError for a record that is not a stream record. Pure.

    * a new SequenceNumber from the update function (Source ``stream``): CHANGED (or REMOVED),
      with the write's Changed* attributes and the status it left (SENT, FAILED: refused);
    * a new RepairedVersion or RepairedAlertsVersion (Source ``reconciler``): REPAIRED, by the
      operator who asked (RequestedBy) or the schedule;
    * otherwise a new Status, or a FAILED with a new Reason: OUTCOME, by its writer (Source).
    """
    new, old, sequence = _images(record)
    if record.get("eventName") not in ("INSERT", "MODIFY") or not new.get("AccountId"):
        return None
    at = _record_time(record)
    base = {
        "subject": str(new["AccountId"]),
        "key": record_key(at, Stream.STATUS, sequence),
        "at": at,
        "status": str(new.get("Status", "")),
        "reason": str(new.get("Reason", "")),
        "event_id": str(record.get("eventID", "")),
    }
    source = str(new.get("Source", ""))
    alerts = str(new.get("AlertSettings", "")) if new.get("AlertSettings") != old.get("AlertSettings") else ""
    if source == "stream" and new.get("SequenceNumber") != old.get("SequenceNumber"):
        removed = new.get("Status") == Status.UNMANAGED
        return HistoryRecord(
            kind=Kind.REMOVED if removed else Kind.CHANGED,
            previous=str(new.get("ChangedFrom", "")),
            value="" if removed else str(new.get("ChangedTo", "")),
            by=str(new.get("ChangedBy", "")),
            via=str(new.get("ChangedVia", OWN_ITEM)),
            alerts=alerts,
            **base,
        )
    repaired = any(new.get(a) != old.get(a) for a in ("RepairedVersion", "RepairedAlertsVersion"))
    if source == "reconciler" and repaired:
        return HistoryRecord(
            kind=Kind.REPAIRED,
            previous="",
            value=amount_text(new.get("DesiredValue")) or "",
            by=str(new.get("RequestedBy", "")) or "budget-sync reconciler (schedule)",
            via=REPAIR,
            alerts=alerts,
            **base,
        )
    moved = new.get("Status") != old.get("Status")
    new_reason = new.get("Status") == Status.FAILED and new.get("Reason") != old.get("Reason")
    if moved or new_reason:
        return HistoryRecord(
            kind=Kind.OUTCOME,
            value=amount_text(new.get("DesiredValue")) or "",
            by=f"budget-sync ({source})" if source else "budget-sync",
            via=source,
            **base,
        )
    return None


def from_defaults_record(record: Mapping[str, Any]) -> HistoryRecord | None:
    """One record of the defaults table's stream: DEFAULT_SET or DEFAULT_REMOVED under the
    default's TargetId (None: the value did not change, or there was none before or after).
    Pure."""
    new, old, sequence = _images(record)
    name = record.get("eventName")
    target = str((new or old).get(TARGET_ID_FIELD, ""))
    if name not in ("INSERT", "MODIFY", "REMOVE") or not target:
        return None
    origin = provenance(new, old)
    if origin.previous == (origin.requested if name != "REMOVE" else ""):
        return None  # no value before or after (a bare item), or the same value
    at = _record_time(record)
    return HistoryRecord(
        subject=target,
        key=record_key(at, Stream.DEFAULTS, sequence),
        at=at,
        kind=Kind.DEFAULT_REMOVED if name == "REMOVE" else Kind.DEFAULT_SET,
        previous=origin.previous,
        value="" if name == "REMOVE" else origin.requested,
        by=origin.by,
        via=target,
        event_id=str(record.get("eventID", "")),
    )


def _approval_base(
    record: Mapping[str, Any], stream: Stream, sequence: str, item: Mapping[str, Any]
) -> dict[str, Any]:
    at = _record_time(record)
    return {
        "subject": str(item.get("AccountId", "")),
        "key": record_key(at, stream, sequence),
        "at": at,
        "via": str(item.get("RequestId", "")),
        "value": amount_text(item.get("RequestedValue")) or "",
        "event_id": str(record.get("eventID", "")),
    }


def from_requests_record(record: Mapping[str, Any]) -> HistoryRecord | None:
    """One record of the approval requests table's stream (budget_sync.approvals), or None.

    * INSERT (PENDING, written by the update function's gate): REQUESTED, from ``CurrentValue``
      to ``RequestedValue``, by ``RequestedBy`` (empty: written outside budgetctl). This is the
      change's history line; the FAILED status (Source ``approval``) the gate writes beside it
      is its outcome (``from_status_record``), not a second change;
    * REMOVE by DynamoDB's TTL (``userIdentity``: type Service, principal
      ``dynamodb.amazonaws.com``) of a request still PENDING or APPROVED: EXPIRED; any other
      REMOVE of one: WITHDRAWN (the deleter is not recorded). Removing a request already
      REJECTED or APPLIED changes nothing history shows: None;
    * MODIFY: None. The decisions come from the approvals table (``from_approvals_record``),
      whose key IAM proves; the requests table's ``DecidedBy`` is what budgetctl wrote. The
      APPLIED step is the status table's CHANGED record of the approved value (by the approver,
      through the budgets table), with its SENT and APPLIED outcomes.
    """
    new, old, sequence = _images(record)
    name = record.get("eventName")
    if name == "INSERT" and new.get("AccountId") and new.get("RequestId"):
        return HistoryRecord(
            kind=Kind.REQUESTED,
            status=str(new.get("State", "PENDING")),
            previous=amount_text(new.get("CurrentValue")) or "",
            by=str(new.get("RequestedBy", "")),
            reason=f"approval needed: {new.get('Rule', '')}".rstrip(": "),
            **_approval_base(record, Stream.REQUESTS, sequence, new),
        )
    if name != "REMOVE" or not old.get("AccountId") or old.get("State") not in ("PENDING", "APPROVED"):
        return None
    identity = record.get("userIdentity") or {}
    ttl = identity.get("type") == "Service" and identity.get("principalId") == TTL_PRINCIPAL
    return HistoryRecord(
        kind=Kind.EXPIRED if ttl else Kind.WITHDRAWN,
        status="EXPIRED" if ttl else "WITHDRAWN",
        previous=amount_text(old.get("CurrentValue")) or "",
        by=EXPIRED_BY if ttl else "",
        **_approval_base(record, Stream.REQUESTS, sequence, old),
    )


def from_approvals_record(record: Mapping[str, Any]) -> HistoryRecord | None:
    """One record of the approvals table's stream: an INSERT is APPROVED or REJECTED, by the
    approver. Its key ``ApproverId`` (``aws:userid``) is the one IAM proves (the approver's policy
    lets them write only under their own, ``dynamodb:LeadingKeys``), so it is the history's source
    of decisions; ``ApproverArn`` (GetCallerIdentity, as budgetctl recorded it) is shown with it.
    Anything else (a MODIFY or REMOVE, which no budget-sync path makes): None. Pure."""
    new, _old, sequence = _images(record)
    decision = str(new.get("Decision", ""))
    if (
        record.get("eventName") != "INSERT"
        or decision not in ("APPROVED", "REJECTED")
        or not new.get("AccountId")
    ):
        return None
    approver = str(new.get("ApproverId", ""))
    arn = str(new.get("ApproverArn", ""))
    return HistoryRecord(
        kind=Kind(decision),
        status=decision,
        by=f"{arn} (aws:userid {approver})" if arn else approver,
        **_approval_base(record, Stream.APPROVALS, sequence, new),
    )


Mapper = Callable[[Mapping[str, Any]], "HistoryRecord | None"]

#: One mapping function per stream the history function reads.
MAPPERS: Mapping[Stream, Mapper] = {
    Stream.STATUS: from_status_record,
    Stream.DEFAULTS: from_defaults_record,
    Stream.REQUESTS: from_requests_record,
    Stream.APPROVALS: from_approvals_record,
}


def expires_at(at: str, retention_days: int) -> int:
    """The TTL attribute's value (epoch seconds) of a record written at ``at``."""
    return int((datetime.fromisoformat(at) + timedelta(days=retention_days)).timestamp())


class HistoryTable(Protocol):
    """Where records are appended (the adapter: history_table.DynamoHistoryTable)."""

    def append(self, record: HistoryRecord) -> bool:
        """Put ``record`` unless its key is there: False then (a duplicate delivery).
        TransientError if it could not be written."""
        ...


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    appended: int
    duplicates: int
    ignored: int
    retry: tuple[str, ...]  # the sequence number to resume from (Lambda's itemIdentifier)


def append_batch(records: Sequence[tuple[Stream, Mapping[str, Any]]], table: HistoryTable) -> BatchOutcome:
    """Append each record's history in stream order. The first that cannot be written, and
    every record after it, go back to Lambda (its itemIdentifier); what was appended before
    is kept, and a retry writes nothing twice (conditional puts)."""
    appended = duplicates = ignored = 0
    for stream, raw in records:
        history = MAPPERS[stream](raw)
        if history is None:
            ignored += 1
            continue
        try:
            if table.append(history):
                appended += 1
            else:
                duplicates += 1
        except TransientError:
            sequence = str(raw.get("dynamodb", {}).get("SequenceNumber", ""))
            return BatchOutcome(appended, duplicates, ignored, (sequence,))
    return BatchOutcome(appended, duplicates, ignored, ())


def numbered(records: Iterable[HistoryRecord]) -> list[tuple[int, HistoryRecord]]:
    """A subject's records, newest first, each with its revision: 1 for the oldest kept
    (revisions are counted when read, so unordered and duplicated delivery cannot skew them;
    once retention removes old records, revision 1 is the oldest left)."""
    ordered = sorted(records, key=lambda r: r.key)
    return [(index, record) for index, record in reversed(list(enumerate(ordered, 1)))]


@dataclass(frozen=True, slots=True)
class Settled:
    """A change with what came of it: the status of the last outcome recorded after it
    (before the subject's next change), else the status the change itself left."""

    change: HistoryRecord
    status: str
    reason: str


def settled_changes(records: Iterable[HistoryRecord]) -> list[Settled]:
    """Every change (not the outcomes) with its outcome, newest first. Pure."""
    last: dict[str, int] = {}  # subject -> index in ``settled`` of its latest change so far
    settled: list[Settled] = []
    for record in sorted(records, key=lambda r: (r.subject, r.key)):
        if record.kind is Kind.OUTCOME:
            index = last.get(record.subject)
            if index is not None:
                settled[index] = Settled(settled[index].change, record.status, record.reason)
            continue
        last[record.subject] = len(settled)
        settled.append(Settled(record, record.status, record.reason))
    return sorted(settled, key=lambda s: s.change.key, reverse=True)
