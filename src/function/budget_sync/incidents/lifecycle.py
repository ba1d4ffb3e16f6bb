"""Incidents: one ServiceNow incident per account, budget and period. Pure Python.

The logic talks to ServiceNow through the ``IncidentDesk`` Protocol (its adapter:
servicenow.ServiceNowDesk) and keeps what it opened in the ``IncidentStore`` Protocol (its
adapter: table.DynamoIncidentStore, the management account's incidents table).

The rules (docs/itsm.md states them for users):

- A budget whose notifications are in ALARM (``BudgetState.breaches``) has one incident for
  its account, budget and period. Its ``correlation_id`` is ``ACCOUNT/BUDGET/PERIOD-START``
  (``correlation_id``), at most 100 characters (the incident table's column).
- The first alarm opens it (state New, urgency and impact from ``IncidentSettings``, the
  assignment group and caller if configured; priority is never sent: ServiceNow derives it
  from impact and urgency). A later alarm for the same key whose notification was not yet
  reported adds a work note, and raises the urgency by one step (never lowers it) once an
  ACTUAL threshold of 100 % or more is crossed (``urgency_for``). An alarm already reported
  (the same notification delivered twice) changes nothing.
- Never two: the first writer of the key in the store wins a conditional write (``OPENING``,
  ``IncidentStore.put`` with the version it read); a delivery that loses re-reads and updates
  the incident the winner opened, or, while the winner is still creating it, fails with
  ``TransientError`` so its message is delivered again later. A claim whose creator died
  before recording the incident (``OPENING`` older than ``claim_timeout``), or whose creator
  found ServiceNow unavailable (the claim is given up at once: the incident may or may not
  exist), is taken over only after a lookup by ``correlation_id`` (``IncidentDesk.find``) finds
  no open incident; one it finds is recorded and updated instead.
- A budget no longer in alarm, or a period that has ended (``sweep``), resolves the incident
  (state 6 with ``close_code`` and ``close_notes``). If the same budget alarms again in the same
  period, a new incident is opened with the same correlation id; the resolved one stays
  resolved.
- ServiceNow unavailable (``IncidentDeskUnavailable``, after the client's retries) leaves the
  store as it was and raises: the caller keeps the message and delivers it later. ServiceNow
  refusing the request (``IncidentRejected``: a bad credential, a missing role) is recorded on
  the key (``failure``) and published once to the alarm topic, with ServiceNow's message; the
  same failure again is not published again, and the call does not raise (retrying cannot
  help). The next alarm tries again.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from budget_sync.errors import (
    IncidentDeskUnavailable,
    IncidentNotFound,
    IncidentRejected,
    InvalidItemError,
    TransientError,
)
from budget_sync.notices import AlarmTopic

OPENING, OPEN, RESOLVED = "OPENING", "OPEN", "RESOLVED"
#: ServiceNow's incident ``state`` values the logic sends or reads.
STATE_RESOLVED = "6"
CLOSED_STATES = frozenset({"6", "7", "8"})  # Resolved, Closed, Canceled
#: The incident table's ``correlation_id`` is a string of at most 100 characters.
MAX_CORRELATION_ID = 100
#: ``short_description`` is a string of at most 160 characters.
MAX_SHORT_DESCRIPTION = 160

URGENCY_FIELD = "IncidentUrgency"
IMPACT_FIELD = "IncidentImpact"
GROUP_FIELD = "IncidentAssignmentGroup"
CALLER_FIELD = "IncidentCaller"
INCIDENT_FIELDS = (URGENCY_FIELD, IMPACT_FIELD, GROUP_FIELD, CALLER_FIELD)
_SYS_ID = re.compile(r"[0-9a-f]{32}")
_SAFE_NAME = re.compile(r"[\w .()+@-]+")
_UNSAFE = re.compile(r"[^\w .()+@-]")


@dataclass(frozen=True, slots=True)
class Breach:
    """One of the budget's notifications in ALARM: ``ACTUAL`` or ``FORECASTED``, its threshold."""

    notification_type: str
    threshold: Decimal
    threshold_type: str = "PERCENTAGE"

    @property
    def key(self) -> str:
        unit = "%" if self.threshold_type == "PERCENTAGE" else ""
        return f"{self.notification_type} {self.threshold.normalize():f}{unit}"


@dataclass(frozen=True, slots=True)
class BudgetState:
    """What AWS Budgets says about one budget now: its figures and the notifications in ALARM
    (empty: none is)."""

    account_id: str
    budget_name: str
    period_start: date
    period_end: date
    breaches: tuple[Breach, ...] = ()
    account_name: str = ""
    limit: Decimal | None = None
    actual: Decimal | None = None
    forecasted: Decimal | None = None
    unit: str = "USD"

    @property
    def correlation_id(self) -> str:
        return correlation_id(self.account_id, self.budget_name, self.period_start)


def correlation_id(account_id: str, budget_name: str, period_start: date) -> str:
    """``ACCOUNT/BUDGET/PERIOD-START``. A budget name with a character an encoded query gives a
    meaning to (``^``, ``=``, ``!``: AWS allows all but ``:`` and ``\\``), or too long for 100
    characters, is written as its safe characters, cut, then ``~`` and 8 hexadecimal characters
    of its SHA-256, so that two names never share an id."""
    whole = f"{account_id}/{budget_name}/{period_start.isoformat()}"
    if len(whole) <= MAX_CORRELATION_ID and _SAFE_NAME.fullmatch(budget_name):
        return whole
    digest = hashlib.sha256(budget_name.encode()).hexdigest()[:8]
    room = MAX_CORRELATION_ID - len(account_id) - len(period_start.isoformat()) - 2 - 9
    safe = _UNSAFE.sub("_", budget_name)[:room]
    return f"{account_id}/{safe}~{digest}/{period_start.isoformat()}"


@dataclass(frozen=True, slots=True)
class IncidentSettings:
    """Urgency and impact (1 high, 2 medium, 3 low), assignment group and caller (sys_ids).
    None: not set at this level (the next level's, else the stack's default)."""

    urgency: int | None = None
    impact: int | None = None
    assignment_group: str | None = None
    caller: str | None = None

    @classmethod
    def from_item(cls, item: Mapping[str, Any], account_id: str | None = None) -> IncidentSettings:
        """The optional ``Incident*`` attributes of a budgets-table or defaults-table item.
        InvalidItemError names the field and the value."""
        return cls(
            urgency=_level(item.get(URGENCY_FIELD), URGENCY_FIELD, account_id),
            impact=_level(item.get(IMPACT_FIELD), IMPACT_FIELD, account_id),
            assignment_group=_sys_id(item.get(GROUP_FIELD), GROUP_FIELD, account_id),
            caller=_sys_id(item.get(CALLER_FIELD), CALLER_FIELD, account_id),
        )

    def over(self, base: IncidentSettings) -> IncidentSettings:
        """These settings, each one not set taken from ``base``."""
        return IncidentSettings(
            urgency=self.urgency if self.urgency is not None else base.urgency,
            impact=self.impact if self.impact is not None else base.impact,
            assignment_group=self.assignment_group or base.assignment_group,
            caller=self.caller or base.caller,
        )

    def columns(self) -> dict[str, str | None]:
        """The four attributes as text (budgetctl, CSV): ``2``, a sys_id; None: not set here."""
        return {
            URGENCY_FIELD: None if self.urgency is None else str(self.urgency),
            IMPACT_FIELD: None if self.impact is None else str(self.impact),
            GROUP_FIELD: self.assignment_group,
            CALLER_FIELD: self.caller,
        }


def incident_attributes(values: Mapping[str, str | None], account_id: str | None = None) -> dict[str, object]:
    """Validated item attributes from an operator's text (budgetctl options, CSV columns),
    field -> text, by the same rules as ``IncidentSettings.from_item``: a field absent or None
    is left out (not touched); an empty text means "remove the attribute" (None in the result).
    InvalidItemError names the field and the value."""
    given = {f: values[f] for f in INCIDENT_FIELDS if values.get(f) is not None}
    columns = IncidentSettings.from_item(given, account_id).columns()
    return {f: columns[f] for f in given}


def effective_settings(stack: IncidentSettings, *layers: IncidentSettings) -> IncidentSettings:
    """The account's settings: ``layers`` nearest first (the account's item, then each OU's
    default up to the root), over the stack's defaults; urgency and impact 3 if none sets them."""
    settings = stack
    for layer in reversed(layers):
        settings = layer.over(settings)
    return settings.over(IncidentSettings(urgency=3, impact=3))


def _absent(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _level(value: object, name: str, account_id: str | None) -> int | None:
    if _absent(value):
        return None
    try:
        number = Decimal(str(value).strip())
    except ArithmeticError:
        number = Decimal(0)
    if isinstance(value, bool) or number not in (1, 2, 3):
        raise InvalidItemError(name, value, "is not 1, 2 or 3 (1 high, 3 low)", account_id)
    return int(number)


def _sys_id(value: object, name: str, account_id: str | None) -> str | None:
    if _absent(value):
        return None
    if not isinstance(value, str) or not _SYS_ID.fullmatch(value.strip()):
        raise InvalidItemError(
            name, value, "is not a ServiceNow sys_id (32 hexadecimal characters)", account_id
        )
    return value.strip()


def urgency_for(breaches: Iterable[Breach], configured: int) -> int:
    """The configured urgency, one step higher (a lower number, at least 1) once an ACTUAL
    threshold of 100 % or more is crossed."""
    over = any(
        b.notification_type == "ACTUAL" and b.threshold_type == "PERCENTAGE" and b.threshold >= 100
        for b in breaches
    )
    return max(1, configured - 1) if over else configured


@dataclass(frozen=True, slots=True)
class IncidentRef:
    """An incident as ServiceNow returns it: its sys_id, number and state."""

    sys_id: str
    number: str
    state: str = "1"


class IncidentDesk(Protocol):
    """ServiceNow's incident table (the adapter: servicenow.ServiceNowDesk). Every method
    raises IncidentDeskUnavailable (retrying later can help) or IncidentRejected (it cannot);
    ``update`` raises IncidentNotFound when the incident no longer exists."""

    def create(self, fields: Mapping[str, str]) -> IncidentRef: ...

    def find(self, correlation_id: str) -> list[IncidentRef]:
        """The active incidents with this correlation id (Resolved ones included: they stay active)."""
        ...

    def update(self, sys_id: str, fields: Mapping[str, str]) -> IncidentRef: ...


@dataclass(frozen=True, slots=True)
class IncidentRecord:
    """What the store keeps for one correlation id. ``version`` rises with every write."""

    correlation_id: str
    account_id: str
    budget_name: str
    period_end: str  # ISO date: the day after the period's last day
    state: str = OPENING
    version: int = 1
    claimed_at: float = 0.0
    sys_id: str = ""
    number: str = ""
    urgency: int = 3
    notified: frozenset[str] = field(default_factory=frozenset)
    opened: int = 0  # incidents opened for this key (a re-alarm after resolution adds one)
    failure: str = ""


class IncidentStore(Protocol):
    """The incidents table (the adapter: table.DynamoIncidentStore)."""

    def get(self, correlation_id: str) -> IncidentRecord | None:
        """The record, read consistently; None if there is none."""
        ...

    def put(self, record: IncidentRecord, expected_version: int | None) -> bool:
        """Write ``record`` only if the stored one has ``expected_version`` (None: only if there
        is none). False if another writer came first. TransientError if the write failed."""
        ...

    def unresolved(self) -> Iterable[IncidentRecord]:
        """Every record not RESOLVED."""
        ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one call did: ``opened``, ``updated``, ``unchanged``, ``resolved``, ``none`` (nothing
    to resolve) or ``failed`` (ServiceNow refused; ``failure`` holds its message)."""

    action: str
    correlation_id: str
    number: str = ""
    failure: str = ""


#: How long an OPENING claim is its creator's: longer than the incident function's timeout
#: (300 s), shorter than the queue's visibility timeout (1,800 s; template-management.yaml).
CLAIM_TIMEOUT_S = 600.0
_CONFLICT_ROUNDS = 5


class Incidents:
    """The logic: ``alarm``, ``resolve``, ``observe`` (either, from a BudgetState) and ``sweep``."""

    def __init__(
        self,
        desk: IncidentDesk,
        store: IncidentStore,
        topic: AlarmTopic,
        *,
        close_code: str = "Solution provided",
        see_more: str = "budgetctl status --account {account_id}",
        clock: Callable[[], float] = time.time,
        claim_timeout: float = CLAIM_TIMEOUT_S,
    ) -> None:
        self._desk = desk
        self._store = store
        self._topic = topic
        self._close_code = close_code
        self._see_more = see_more
        self._clock = clock
        self._claim_timeout = claim_timeout

    def observe(self, state: BudgetState, settings: IncidentSettings) -> Outcome:
        """Open or update the incident if the budget is in alarm, else resolve it."""
        if state.breaches:
            return self.alarm(state, settings)
        return self.resolve(state.correlation_id, "The budget's notifications are no longer in alarm.")

    def alarm(self, state: BudgetState, settings: IncidentSettings) -> Outcome:
        cid = state.correlation_id
        try:
            for _ in range(_CONFLICT_ROUNDS):
                record = self._store.get(cid)
                if record is None or record.state == RESOLVED:
                    outcome = self._open(state, settings, record)
                elif record.state == OPENING:
                    outcome = self._adopt(state, settings, record)
                else:
                    outcome = self._update(state, settings, record)
                if outcome is not None:
                    return outcome
        except IncidentRejected as exc:
            return self._failed(cid, exc)
        raise TransientError(f"incident {cid}: too many concurrent writers, try again")

    def resolve(self, cid: str, notes: str) -> Outcome:
        try:
            for _ in range(_CONFLICT_ROUNDS):
                record = self._store.get(cid)
                if record is None or record.state == RESOLVED:
                    return Outcome("none", cid)
                if record.state == OPENING and not self._recover(record):
                    # an abandoned claim with no incident behind it: nothing to resolve
                    abandoned = replace(record, state=RESOLVED, version=record.version + 1)
                    if self._store.put(abandoned, record.version):
                        return Outcome("none", cid)
                    continue
                record = self._store.get(cid)
                if record is None or record.state != OPEN:
                    continue
                with contextlib.suppress(IncidentNotFound):  # deleted in ServiceNow: nothing to resolve
                    self._desk.update(
                        record.sys_id,
                        {"state": STATE_RESOLVED, "close_code": self._close_code, "close_notes": notes},
                    )
                if self._store.put(
                    replace(record, state=RESOLVED, version=record.version + 1, failure=""), record.version
                ):
                    return Outcome("resolved", cid, record.number)
        except IncidentRejected as exc:
            return self._failed(cid, exc)
        raise TransientError(f"incident {cid}: too many concurrent writers, try again")

    def sweep(self, today: date) -> list[Outcome]:
        """Resolve every incident whose budget period has ended (``period_end`` on or before
        ``today``). The caller resolves the ones no longer in alarm with ``observe``."""
        return [self.resolve_ended(cid) for cid in self.ended(today)]

    def ended(self, today: date) -> list[str]:
        """The correlation ids of the incidents not resolved whose period has ended
        (``period_end`` on or before ``today``), oldest period first."""
        return [
            r.correlation_id
            for r in sorted(self._store.unresolved(), key=lambda r: (r.period_end, r.correlation_id))
            if r.period_end <= today.isoformat()
        ]

    def resolve_ended(self, cid: str) -> Outcome:
        """Resolve the incident of a period that has ended (one of ``ended``)."""
        return self.resolve(cid, "The budget period has ended.")

    def unchanged(self, state: BudgetState) -> Outcome | None:
        """``unchanged`` if the budget is in alarm and its open incident already reports every
        notification in alarm (``alarm`` would change nothing); None otherwise. Lets the caller
        skip reading the account's settings (Organizations) for the many accounts whose
        incident does not change."""
        if not state.breaches:
            return None
        record = self._store.get(state.correlation_id)
        if record is None or record.state != OPEN:
            return None
        if any(b.key not in record.notified for b in state.breaches):
            return None
        return Outcome("unchanged", record.correlation_id, record.number)

    # -- the steps -------------------------------------------------------------------------

    def _open(
        self, state: BudgetState, settings: IncidentSettings, record: IncidentRecord | None
    ) -> Outcome | None:
        claim = IncidentRecord(
            correlation_id=state.correlation_id,
            account_id=state.account_id,
            budget_name=state.budget_name,
            period_end=state.period_end.isoformat(),
            state=OPENING,
            version=record.version + 1 if record else 1,
            claimed_at=self._clock(),
            opened=record.opened if record else 0,
            failure=record.failure if record else "",
        )
        if not self._store.put(claim, record.version if record else None):
            return None  # another delivery came first: read again
        return self._create(state, settings, claim)

    def _create(self, state: BudgetState, settings: IncidentSettings, claim: IncidentRecord) -> Outcome:
        urgency = urgency_for(state.breaches, settings.urgency or 3)
        fields = self._fields(state, settings, urgency)
        try:
            ref = self._desk.create(fields)
        except IncidentDeskUnavailable:
            # Perhaps created (a timeout after ServiceNow stored it), perhaps not: the claim is
            # given up at once, so the next delivery looks the incident up before opening one.
            self._store.put(replace(claim, version=claim.version + 1, claimed_at=0.0), claim.version)
            raise
        opened = replace(
            claim,
            state=OPEN,
            version=claim.version + 1,
            sys_id=ref.sys_id,
            number=ref.number,
            urgency=urgency,
            notified=frozenset(b.key for b in state.breaches),
            opened=claim.opened + 1,
            failure="",
        )
        if not self._store.put(opened, claim.version):
            # only a takeover after claim_timeout can get here; the lookup then finds this incident
            raise TransientError(
                f"incident {claim.correlation_id}: claim taken over while opening {ref.number}"
            )
        return Outcome("opened", claim.correlation_id, ref.number)

    def _adopt(
        self, state: BudgetState, settings: IncidentSettings, record: IncidentRecord
    ) -> Outcome | None:
        """An OPENING record: the winner's incident, once it is recorded; found by correlation id
        if its creator died; opened anew only if none exists."""
        if self._clock() - record.claimed_at < self._claim_timeout:
            raise TransientError(f"incident {record.correlation_id} is being opened by another delivery")
        if self._recover(record):
            return None  # recorded: update it in the next round
        taken = replace(record, version=record.version + 1, claimed_at=self._clock())
        if not self._store.put(taken, record.version):
            return None
        return self._create(state, settings, taken)

    def _recover(self, record: IncidentRecord) -> bool:
        """Look the key's open incident up in ServiceNow and record it; False if there is none
        (or the claim is still young). Raises TransientError while its creator may be at work."""
        if self._clock() - record.claimed_at < self._claim_timeout:
            raise TransientError(f"incident {record.correlation_id} is being opened by another delivery")
        found = [ref for ref in self._desk.find(record.correlation_id) if ref.state not in CLOSED_STATES]
        if not found:
            return False
        ref = found[-1]
        recorded = replace(
            record,
            state=OPEN,
            version=record.version + 1,
            sys_id=ref.sys_id,
            number=ref.number,
            opened=record.opened + 1,
        )
        self._store.put(recorded, record.version)
        return True

    def _update(
        self, state: BudgetState, settings: IncidentSettings, record: IncidentRecord
    ) -> Outcome | None:
        new = [b for b in state.breaches if b.key not in record.notified]
        if not new:
            return Outcome("unchanged", record.correlation_id, record.number)
        urgency = min(record.urgency, urgency_for(state.breaches, settings.urgency or 3))
        fields = {"work_notes": self._note(state, new)}
        if urgency < record.urgency:
            fields["urgency"] = str(urgency)
        try:
            self._desk.update(record.sys_id, fields)
        except IncidentNotFound:
            # deleted in ServiceNow: count it resolved, and open a new one in the next round
            gone = replace(record, state=RESOLVED, version=record.version + 1)
            self._store.put(gone, record.version)
            return None
        updated = replace(
            record,
            version=record.version + 1,
            urgency=urgency,
            notified=record.notified | {b.key for b in new},
            failure="",
        )
        if not self._store.put(updated, record.version):
            return None  # a concurrent writer: read again (at most a repeated work note)
        return Outcome("updated", record.correlation_id, record.number)

    def _failed(self, cid: str, exc: IncidentRejected) -> Outcome:
        """Record ServiceNow's refusal on the key and publish it once (a new reason: again). A
        claim whose incident could not be opened is released, so the next alarm tries again."""
        reason = str(exc)
        record = self._store.get(cid)
        if record is None or record.failure != reason:
            self._topic.publish(
                f"budget-sync: ServiceNow refused incident {cid}"[:99],
                f"ServiceNow refused the incident for {cid}: {reason}\n"
                "It is not retried: the next alarm of this budget, or the hourly reconciliation, "
                "tries again. See docs/itsm.md.",
            )
        if record is not None:
            failed = replace(record, version=record.version + 1, failure=reason)
            if record.state == OPENING and not record.sys_id:
                failed = replace(failed, state=RESOLVED)
            self._store.put(failed, record.version)
        return Outcome("failed", cid, record.number if record else "", reason)

    # -- what ServiceNow shows --------------------------------------------------------------

    def _fields(self, state: BudgetState, settings: IncidentSettings, urgency: int) -> dict[str, str]:
        fields = {
            "short_description": _short(state),
            "description": self._description(state),
            "correlation_id": state.correlation_id,
            "correlation_display": "budget-sync",
            "urgency": str(urgency),
            "impact": str(settings.impact or 3),
        }
        if settings.assignment_group:
            fields["assignment_group"] = settings.assignment_group
        if settings.caller:
            fields["caller_id"] = settings.caller
        return fields

    def _description(self, state: BudgetState) -> str:
        lines = [
            f"Account: {_account(state)}",
            f"Budget: {state.budget_name}, period {state.period_start.isoformat()} to {state.period_end.isoformat()}",
            f"Limit: {_amount(state.limit, state.unit)}",
            f"Actual spend: {_amount(state.actual, state.unit)}",
            f"Forecasted spend: {_amount(state.forecasted, state.unit)}",
            "Notifications in alarm: " + ", ".join(b.key for b in state.breaches),
            "See more: " + self._see_more.format(account_id=state.account_id),
        ]
        return "\n".join(lines)

    def _note(self, state: BudgetState, new: Iterable[Breach]) -> str:
        return (
            "AWS Budgets: " + ", ".join(b.key for b in new) + " crossed. "
            f"Actual {_amount(state.actual, state.unit)}, forecasted {_amount(state.forecasted, state.unit)}, "
            f"limit {_amount(state.limit, state.unit)}."
        )


def _account(state: BudgetState) -> str:
    return f"{state.account_name} ({state.account_id})" if state.account_name else state.account_id


def _amount(value: Decimal | None, unit: str) -> str:
    return "unknown" if value is None else f"{value:.2f} {unit}"


def _short(state: BudgetState) -> str:
    top = max(state.breaches, key=lambda b: (b.notification_type == "ACTUAL", b.threshold))
    text = f"AWS budget {state.budget_name} of {_account(state)}: {top.key} crossed"
    return text if len(text) <= MAX_SHORT_DESCRIPTION else text[: MAX_SHORT_DESCRIPTION - 1] + "…"


# -- what the incident function does with an account ---------------------------------------


class AlarmReader(Protocol):
    """The spoke budget's state (the adapter: budget_alarms.SpokeBudgetAlarms)."""

    def read(self, account_id: str, account_name: str = "", today: date | None = None) -> BudgetState | None:
        """The state now; ``today`` (UTC) picks the budget's current period (None: the clock's)."""
        ...


class AccountDirectory(Protocol):
    """The accounts with a budget and each one's incident settings (the adapter:
    accounts.TableAccountDirectory)."""

    def accounts(self) -> list[str]: ...

    def settings(self, account_id: str) -> tuple[IncidentSettings, str]:
        """The account's effective settings and its name (from Organizations; "" if unknown)."""
        ...


def observe_account(
    account_id: str,
    incidents: Incidents,
    alarms: AlarmReader,
    directory: AccountDirectory,
    today: date | None = None,
) -> Outcome:
    """Read the account's budget now and open, update or resolve its incident accordingly.

    The account's settings and name (its item, its OUs' defaults, Organizations: several calls,
    Organizations' paced) are read only when the incident is to be opened or updated: a budget
    not in alarm, or whose open incident already reports every notification in alarm, needs
    neither."""
    state = alarms.read(account_id, "", today)
    if state is None:
        return Outcome("none", f"{account_id}/(no budget)")
    if not state.breaches:
        return incidents.observe(state, IncidentSettings())
    unchanged = incidents.unchanged(state)
    if unchanged is not None:
        return unchanged
    settings, name = directory.settings(account_id)
    return incidents.observe(replace(state, account_name=name), settings)


__all__ = [
    "CLAIM_TIMEOUT_S",
    "INCIDENT_FIELDS",
    "AccountDirectory",
    "AlarmReader",
    "Breach",
    "BudgetState",
    "IncidentDesk",
    "IncidentDeskUnavailable",
    "IncidentRecord",
    "IncidentRef",
    "IncidentSettings",
    "IncidentStore",
    "Incidents",
    "Outcome",
    "correlation_id",
    "effective_settings",
    "observe_account",
    "urgency_for",
]
