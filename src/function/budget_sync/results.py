"""What the spokes report back: their Automation's outcome, recorded in the status table.

Two kinds of event reach the management account's result bus from every spoke (the spoke
stack's forwarding rules; template-spoke.yaml):

* ``budget-sync.spoke`` / ``Budget Update Result``: the Automation script's own report, for
  a success (old limit, new limit, what it did) and for a refusal or failure (its reason).
  It names the parameter version it applied, so it can be ordered against the status.
  The document's second step (``"Step": "ReconcileAlerts"``) reports the same way, about
  the parameter version the first step applied: the alert settings the budget now has
  (recorded as ConfirmedAlerts, with the alert parameter versions it applied), or the reason
  it could not apply them (FAILED, even after the limit step's APPLIED: nothing else would
  say so, because AWS's failure notice of an execution that reported is ignored). When alert
  settings were sent (SentAlertsVersion, recorded at SENT from PutParameter's answer), the
  status is APPLIED only once both the limit step confirmed the desired limit and the alerts
  step confirmed that alert parameter version or a newer one: whichever of the two reports
  comes last decides; until then the status stays SENT (and a run whose alerts step dies
  without a report fails at the bound). When the alert settings sent carry a cost basis
  (budget_sync.cost_basis), that verdict is APPLIED only if the alerts step's ``CostBasis``
  is that cost basis; otherwise FAILED with what the budget counts instead (a spoke script
  older than cost bases reports none: FAILED, update the spoke stack). The report's
  ``CostBasis`` is recorded as ConfirmedCostBasis. The report also names the budget's
  ``HealthStatus`` after the run: UNHEALTHY is a FAILED verdict with AWS's reason
  (budget_sync.health), as a refusal of the alerts step is; a later run's report of a healthy
  budget clears it.
* ``aws.ssm`` / ``EC2 Automation Execution Status-change Notification`` with a terminal
  failure (Failed, TimedOut, Cancelled): AWS's own word, which also covers a run that
  crashed, timed out or was cancelled before the script could report. EventBridge promises
  no order, so it can arrive before the same execution's report: it does not fail the status
  at once. It is recorded (EndedExecutionId, EndedStatus, EndedAt) and the report, if one
  comes, decides with the spoke's own reason; the schedule's check fails a SENT status whose
  execution ended so more than ENDED_GRACE (2 minutes) ago with no report since.

The account is always the event envelope's ``account`` (set by EventBridge, not by the
sender); everything in ``detail`` is text from another account: validated, bounded, and
stored and shown as text.

Ordering: a report is about one parameter version. It changes the status only if it is
about the version the status was sent with; a report about an older version never
overwrites a newer status; an alerts report is also ordered by the versions of the two alert
settings parameters it applied (``AlertsVersions``), so that of two alerts-only changes (the
same limit version) the older run's report, arriving last, does not overwrite the newer's;
a report about a version the status does not know yet (the run finished before the stream
function recorded SENT) is kept in the Confirmed*/Spoke* attributes, and the SENT write of
exactly that version takes its verdict from there (status.StatusStore). Such a held report
never makes the report of the version sent stale. A report is accepted only about the version
the pipeline last recorded (ParameterVersion) or at most ``MAX_AHEAD`` versions after it;
further ahead (no run of budget-sync's wrote it: a forged report) it is an invalid result,
counted and logged, and every number an event carries is bounded (``MAX_PARAMETER_VERSION``,
NewLimit). A held report that no SENT claims within the bound, under an APPLIED status,
confirmed someone else's write (a hand edit of the parameter): with another limit than the
desired one, or a failure, it is drift, and the status becomes FAILED (``decide_unclaimed``,
in the schedule's check), which the reconciler repairs. Every
write is conditional on the item as it was read (optimistic lock), so concurrent reports
and stream writes cannot overwrite each other; a lost race is read again and decided again.

A sent value that no report confirms within the bound (ConfirmTimeoutMinutes) becomes
FAILED (``expire_unconfirmed``). Every transition *into* FAILED is a new failure: counted
here in the metric ``SpokeFailed``, and published once to the alarm topic from the status
table's stream (budget_sync.notices), as every other writer's failures are.

Layers: this module is the logic (parsing, and pure decisions: ``decide_report``,
``decide_ended``, ``decide_unclaimed``, ``decide_due``, each returning a ``Decision``) and the
``ResultStore`` that reads, decides and writes through the ``ResultTable`` Protocol declared
here, in the project's types and errors. Its DynamoDB adapter is status_table.py (which alone
translates botocore's errors); its handlers are handlers/results.py (the result bus) and
handlers/unconfirmed.py (the schedule); tests/fakes/status_table.py is its in-memory fake.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from budget_sync.cost_basis import unconfirmed
from budget_sync.errors import TransientError
from budget_sync.health import UNHEALTHY, unhealthy_reason
from budget_sync.status import Status, limit_differs, now_text

REPORT_SOURCE = "budget-sync.spoke"
REPORT_DETAIL_TYPE = "Budget Update Result"
#: The document's steps that report; a report without ``Step`` is the limit step's.
LIMIT_STEP = "UpdateBudgetLimit"
ALERTS_STEP = "ReconcileAlerts"
EXECUTION_SOURCE = "aws.ssm"
EXECUTION_DETAIL_TYPE = "EC2 Automation Execution Status-change Notification"
#: Automation statuses that end an execution without success.
FAILED_EXECUTION = frozenset({"Failed", "TimedOut", "Cancelled"})
SOURCE = "spoke"
MAX_TEXT = 1000  # characters kept of any text from a spoke (a reason, an id)
#: The largest parameter version a report may name. SSM numbers a parameter's versions from 1,
#: one per write (PutParameter's ``Version``, a long in botocore's model): a parameter written
#: every minute for a year is at 525,600. Anything larger is not a version of our parameter.
MAX_PARAMETER_VERSION = 1_000_000
#: How far ahead of the version the pipeline last recorded (ParameterVersion) a report may be:
#: the run of a version the stream function or the reconciler wrote but has not recorded yet
#: (its report can come first), or of a hand edit. Further ahead is not a version anyone sent.
MAX_AHEAD = 10
#: A NewLimit must be a number DynamoDB keeps exactly (38 significant digits) and a budget
#: could hold (not negative, below 10^20 USD).
_MAX_LIMIT = Decimal(10) ** 20
_ACCOUNT = re.compile(r"[0-9]{12}")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_LOCKED = (
    "SequenceNumber",
    "ParameterVersion",
    "ConfirmedVersion",
    "Status",
    "ExecutionId",
    "ConfirmedAlertsVersion",
)
_ATTEMPTS = 5
#: How long a SENT status whose execution AWS reported failed waits for that execution's own
#: report (delivered in no promised order) before the schedule's check fails it.
ENDED_GRACE = timedelta(minutes=2)


class InvalidResult(ValueError):
    """An event that is not a result this function understands. Names the field."""


@dataclass(frozen=True, slots=True)
class SpokeReport:
    """The Automation script's report (``Budget Update Result``)."""

    account_id: str
    execution_id: str
    parameter_version: int
    outcome: Status  # APPLIED or FAILED
    limit: Decimal | None  # the budget's limit after the run (success)
    old_limit: str = ""
    action: str = ""
    reason: str = ""
    step: str = LIMIT_STEP
    alerts: str = ""  # the alert settings the budget now has (ReconcileAlerts, success)
    #: ReconcileAlerts: the versions of the alert settings and defaults parameters it applied
    #: (None: a spoke script older than this field); two runs' reports are ordered by them.
    alerts_versions: tuple[int, int] | None = None
    #: ReconcileAlerts: the Metrics and excluded record types the budget now has (JSON; "" for no
    #: cost basis set anywhere; None: a spoke script older than cost bases).
    cost_basis: str | None = None
    #: ReconcileAlerts: the budget's HealthStatus after the run (budget_sync.health; "" unknown)
    #: and AWS's reason with UNHEALTHY.
    health: str = ""
    health_reason: str = ""


@dataclass(frozen=True, slots=True)
class ExecutionEnded:
    """AWS's status-change notification of an execution that ended without success."""

    account_id: str
    execution_id: str
    status: str


@dataclass(frozen=True, slots=True)
class Transition:
    """What a write did to an account's status (``old`` None: there was no status)."""

    account_id: str
    old: str | None
    new: str | None
    reason: str = ""

    @property
    def new_failure(self) -> bool:
        return self.new == Status.FAILED and self.old != Status.FAILED


def text(value: object, field: str) -> str:
    """Text from another account: a string, control characters removed, bounded."""
    if value is None:
        return ""
    if not isinstance(value, str | int | float):
        raise InvalidResult(f"{field} {value!r} is not text")
    return _CONTROL.sub(" ", str(value))[:MAX_TEXT]


def parse_event(event: Mapping[str, Any]) -> SpokeReport | ExecutionEnded | None:
    """The result an EventBridge event carries; None for a status-change that is no failure."""
    account = event.get("account")
    if not isinstance(account, str) or not _ACCOUNT.fullmatch(account):
        raise InvalidResult(f"account {account!r} is not a 12-digit account id")
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise InvalidResult("detail is not an object")
    source, kind = event.get("source"), event.get("detail-type")
    if source == EXECUTION_SOURCE and kind == EXECUTION_DETAIL_TYPE:
        status = text(detail.get("Status"), "Status")
        if status not in FAILED_EXECUTION:
            return None
        return ExecutionEnded(account, _required(detail, "ExecutionId"), status)
    if source == REPORT_SOURCE and kind == REPORT_DETAIL_TYPE:
        return _parse_report(account, detail)
    raise InvalidResult(f"source {source!r} / detail-type {kind!r} is not a spoke result")


def _parse_report(account: str, detail: Mapping[str, Any]) -> SpokeReport:
    """The detail of a spoke's report (its account already checked)."""
    outcome = detail.get("Outcome")
    if outcome not in (Status.APPLIED, Status.FAILED):
        raise InvalidResult(f"Outcome {outcome!r} is neither APPLIED nor FAILED")
    version = detail.get("ParameterVersion")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_PARAMETER_VERSION:
        raise InvalidResult(
            f"ParameterVersion {version!r} is not a whole number from 1 to {MAX_PARAMETER_VERSION}"
        )
    step = detail.get("Step", LIMIT_STEP)
    if step not in (LIMIT_STEP, ALERTS_STEP):
        raise InvalidResult(f"Step {step!r} is neither {LIMIT_STEP} nor {ALERTS_STEP}")
    limit: Decimal | None = None
    alerts = ""
    alerts_versions = None
    cost_basis: str | None = None
    if step == ALERTS_STEP:
        alerts = _required(detail, "Applied") if outcome == Status.APPLIED else ""
        alerts_versions = _versions(detail.get("AlertsVersions"))
        cost_basis = text(detail.get("CostBasis"), "CostBasis") if "CostBasis" in detail else None
    elif outcome == Status.APPLIED:
        limit = _new_limit(detail)
    return SpokeReport(
        account_id=account,
        execution_id=_required(detail, "ExecutionId"),
        parameter_version=version,
        outcome=Status(outcome),
        limit=limit,
        old_limit=text(detail.get("OldLimit"), "OldLimit"),
        action=text(detail.get("Action"), "Action"),
        reason=text(detail.get("Reason"), "Reason")
        or ("" if outcome == Status.APPLIED else "no reason given"),
        step=step,
        alerts=alerts,
        alerts_versions=alerts_versions,
        cost_basis=cost_basis,
        health=text(detail.get("HealthStatus"), "HealthStatus"),
        health_reason=text(detail.get("HealthReason"), "HealthReason"),
    )


def _new_limit(detail: Mapping[str, Any]) -> Decimal:
    """``NewLimit`` of an APPLIED limit step: an amount the status table can hold."""
    try:
        limit = Decimal(_required(detail, "NewLimit"))
    except InvalidOperation as exc:
        raise InvalidResult(f"NewLimit {detail.get('NewLimit')!r} is not a number") from exc
    if not limit.is_finite():
        raise InvalidResult(f"NewLimit {detail.get('NewLimit')!r} is not a number")
    if not Decimal(0) <= limit < _MAX_LIMIT or len(limit.as_tuple().digits) > 38:
        raise InvalidResult(
            f"NewLimit {detail.get('NewLimit')!r} is not an amount from 0 to below 10^20 "
            "with at most 38 digits"
        )
    return limit


def _versions(value: object) -> tuple[int, int] | None:
    """``AlertsVersions``: two parameter versions (0: the parameter is missing), or absent."""
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_PARAMETER_VERSION for v in value
        )
    ):
        raise InvalidResult(
            f"AlertsVersions {value!r} is not two whole numbers from 0 to {MAX_PARAMETER_VERSION}"
        )
    return value[0], value[1]


def _required(detail: Mapping[str, Any], field: str) -> str:
    value = text(detail.get(field), field)
    if not value:
        raise InvalidResult(f"{field} is missing")
    return value


@dataclass(frozen=True, slots=True)
class Decision:
    """The attributes to set; ``status`` None keeps the status (the report is only kept)."""

    values: Mapping[str, Any]
    status: Status | None = None
    reason: str = ""


def decide_report(item: Mapping[str, Any] | None, report: SpokeReport) -> Decision | None:
    """What a spoke's report does to the status item as read. None: it is stale. Pure."""
    item = item or {}
    if _stale(item, report):
        return None
    if report.step == ALERTS_STEP:
        return _decide_alerts(item, report)
    confirmed = item.get("ConfirmedVersion")
    version = report.parameter_version
    if confirmed is not None and version == int(confirmed) and _alerts_failed(item):
        # This version's alerts were refused (this run's, or an overlapping run's, report came
        # first): the limit alone does not make it APPLIED; only the alerts step's success does.
        # A report without a limit (a failed limit step of an overlapping run) keeps nothing.
        return None if report.limit is None else Decision({"ConfirmedLimit": report.limit})
    kept: dict[str, Any] = {
        "ConfirmedVersion": version,
        "ConfirmedAt": now_text(),
        "ExecutionId": report.execution_id,
        "SpokeOutcome": report.outcome.value,
        "SpokeReason": report.reason,
        "SpokeStep": LIMIT_STEP,
    }
    if report.limit is not None:
        kept["ConfirmedLimit"] = report.limit
    desired = item.get("DesiredValue")
    if _takes_its_verdict_later(item, version):
        return Decision(kept)
    if report.outcome is Status.FAILED:
        return Decision(kept, Status.FAILED, f"spoke: {report.reason}")
    if report.limit != desired:
        return Decision(kept, Status.FAILED, limit_differs(report.limit, desired, version))
    if not alerts_confirmed(item):
        return Decision(kept)  # the alert settings sent wait for the alerts step's own report
    missing = unconfirmed(item.get("AlertSettings"), item.get("ConfirmedCostBasis"))
    if missing:  # the alerts step came first and did not confirm the cost basis sent
        return Decision(kept, Status.FAILED, f"spoke: {missing}")
    return Decision(kept, Status.APPLIED)


def _stale(item: Mapping[str, Any], report: SpokeReport) -> bool:
    """Whether the report is about an older value or older alert settings than the item holds;
    InvalidResult when it is about a version no run of budget-sync's can have written. Pure."""
    confirmed = item.get("ConfirmedVersion")
    sent = item.get("ParameterVersion")
    version = report.parameter_version
    if sent is not None and version > int(sent) + MAX_AHEAD:
        raise InvalidResult(
            f"ParameterVersion {version} is more than {MAX_AHEAD} versions ahead of version {int(sent)}, "
            "the last the pipeline sent: no run of budget-sync's wrote it"
        )
    if sent is not None and version < int(sent):
        return True  # about a value older than the one the status was sent with
    held = None if confirmed is None else int(confirmed)
    ahead = held is not None and (sent is None or held > int(sent))
    if ahead and held is not None and version < held and (sent is None or version > int(sent)):
        return True  # older than a report, held, about a version the pipeline has not recorded
    # about alert settings older than a report already recorded
    return (
        report.step == ALERTS_STEP
        and report.alerts_versions is not None
        and report.alerts_versions < _alerts_versions(item)
    )


def _takes_its_verdict_later(item: Mapping[str, Any], version: int) -> bool:
    """The SENT of this version is not recorded yet (it takes its verdict from the report), or
    the parameter was written outside the pipeline, or budget-sync no longer manages the account."""
    sent = item.get("ParameterVersion")
    return (
        sent is None
        or version > int(sent)
        or item.get("DesiredValue") is None
        or item.get("Status") == Status.UNMANAGED
    )


def alerts_confirmed(item: Mapping[str, Any]) -> bool:
    """Whether the spoke's alerts step reported the alert settings last sent (SentAlertsVersion)
    or newer ones; True when none were sent. Pure."""
    sent = item.get("SentAlertsVersion")
    return sent is None or int(item.get("ConfirmedAlertsVersion", 0)) >= int(sent)


def _alerts_versions(item: Mapping[str, Any]) -> tuple[int, int]:
    """The alert settings versions of the last alerts report recorded ((0, 0): none)."""
    return int(item.get("ConfirmedAlertsVersion", 0)), int(item.get("ConfirmedAlertDefaultsVersion", 0))


def _alerts_failed(item: Mapping[str, Any]) -> bool:
    return item.get("SpokeStep") == ALERTS_STEP and item.get("SpokeOutcome") == Status.FAILED


def _decide_alerts(item: Mapping[str, Any], report: SpokeReport) -> Decision:
    """The alerts step's report (not stale): ConfirmedAlerts, or FAILED with its reason."""
    waits = _takes_its_verdict_later(item, report.parameter_version)  # as decide_report
    ordered: dict[str, Any] = {}
    if report.alerts_versions is not None:
        ordered = {
            "ConfirmedAlertsVersion": report.alerts_versions[0],
            "ConfirmedAlertDefaultsVersion": report.alerts_versions[1],
        }
    unhealthy = report.outcome is Status.APPLIED and report.health == UNHEALTHY
    if report.outcome is Status.APPLIED and not unhealthy:
        return _alerts_applied(item, report, ordered, waits=waits)
    refused: dict[str, Any] = {
        "ConfirmedVersion": report.parameter_version,
        "ConfirmedAt": now_text(),
        "ExecutionId": report.execution_id,
        "SpokeOutcome": Status.FAILED.value,
        "SpokeReason": f"alerts not applied: {report.reason}",
        "SpokeStep": ALERTS_STEP,
        **ordered,
    }
    if unhealthy:  # applied, but AWS reports the budget broken: a failure with AWS's reason
        refused["SpokeReason"] = unhealthy_reason(report.health_reason)
        refused["SpokeHealth"] = UNHEALTHY
        refused["ConfirmedAlerts"] = report.alerts
        if report.cost_basis is not None:
            refused["ConfirmedCostBasis"] = report.cost_basis
    if waits:
        return Decision(refused)
    return Decision(refused, Status.FAILED, f"spoke: {refused['SpokeReason']}")


def _confirmed_basis_and_health(report: SpokeReport) -> dict[str, Any]:
    """What an alerts report says of the budget's cost basis and health, as status attributes."""
    found: dict[str, Any] = {}
    if report.health:
        found["SpokeHealth"] = report.health
    if report.cost_basis is not None:
        found["ConfirmedCostBasis"] = report.cost_basis
    return found


def _alerts_applied(
    item: Mapping[str, Any], report: SpokeReport, ordered: Mapping[str, Any], *, waits: bool
) -> Decision:
    """The alerts step's success: ConfirmedAlerts, and the verdict when the limit's is in."""
    desired = item.get("DesiredValue")
    kept: dict[str, Any] = {
        "ConfirmedAlerts": report.alerts,
        "ConfirmedAt": now_text(),
        "ExecutionId": report.execution_id,
        **ordered,
        **_confirmed_basis_and_health(report),
    }
    if report.alerts_versions is None and item.get("SentAlertsVersion") is not None:
        # a spoke script older than AlertsVersions: its success is about what was sent
        kept["ConfirmedAlertsVersion"] = int(item["SentAlertsVersion"])
    recovered = _alerts_failed(item)
    if recovered:  # a later run applied the alerts that an earlier run of this version refused
        kept.update({"SpokeOutcome": Status.APPLIED.value, "SpokeReason": "", "SpokeStep": ALERTS_STEP})
    elif item.get("Status") != Status.SENT:
        return Decision(kept)  # the status stays the limit step's verdict
    limit = item.get("ConfirmedLimit")
    if waits or int(item.get("ConfirmedVersion", 0)) != report.parameter_version:
        return Decision(kept)  # the limit step's report of this version decides
    if not alerts_confirmed({**item, **kept}):
        return Decision(kept)  # about older settings than the ones sent
    missing = unconfirmed(item.get("AlertSettings"), report.cost_basis)
    if missing:  # APPLIED only when the spoke confirmed the cost basis sent
        return Decision(kept, Status.FAILED, f"spoke: {missing}")
    if item.get("SpokeStep") == LIMIT_STEP and item.get("SpokeOutcome") == Status.FAILED:
        return Decision(kept, Status.FAILED, f"spoke: {item.get('SpokeReason', '')}")
    if limit != desired:
        return Decision(kept, Status.FAILED, limit_differs(limit, desired, report.parameter_version))
    return Decision(kept, Status.APPLIED)


def decide_unclaimed(item: Mapping[str, Any]) -> Decision | None:
    """An APPLIED status under which the spoke reported a version the pipeline never recorded
    (ConfirmedVersion > ParameterVersion), longer ago than the bound in which the pipeline's
    SENT of that version would have come: someone else wrote the parameter (a hand edit).
    Its run confirmed another limit than the desired one, or failed: that is drift, FAILED
    (the reconciler writes the desired value again). The same limit: None, nothing is wrong. Pure."""
    if item.get("Status") != Status.APPLIED:
        return None
    version, desired = item.get("ConfirmedVersion"), item.get("DesiredValue")
    sent = item.get("ParameterVersion")
    if version is None or sent is None or desired is None or int(version) <= int(sent):
        return None
    written = (
        f"the spoke's parameter version {int(version)} was not written by budget-sync "
        f"(it sent version {int(sent)}; a hand edit or another writer)"
    )
    if item.get("SpokeOutcome") == Status.FAILED:
        return Decision(
            {}, Status.FAILED, f"drift: {written}, and the spoke failed: {item.get('SpokeReason', '')}"
        )
    limit = item.get("ConfirmedLimit")
    if limit is None or limit == desired:
        return None
    return Decision(
        {},
        Status.FAILED,
        f"drift: {written}: the budget's limit is {limit}, the desired value is {desired} "
        "(the reconciler writes the desired value again)",
    )


def decide_ended(item: Mapping[str, Any] | None, ended: ExecutionEnded) -> Decision | None:
    """What AWS's failure notification does: it is recorded, it does not fail the status. Pure.

    EventBridge promises no order: the execution's own report (with the spoke's reason) may
    arrive after this notice. So the notice of an execution that has not reported is kept on
    a SENT status (EndedExecutionId, EndedStatus, EndedAt), and a report that arrives later
    decides; the schedule's check (``ResultStore.expire_unconfirmed``) fails the status if no
    report came within ENDED_GRACE. None: nothing waits for it, the execution reported its own
    result, or the notice is a duplicate.
    """
    if not item or item.get("Status") != Status.SENT or item.get("ExecutionId") == ended.execution_id:
        return None  # nothing waits for it, or the execution reported its own reason
    if item.get("EndedExecutionId") == ended.execution_id:
        return None  # a duplicate delivery
    return Decision(
        {"EndedExecutionId": ended.execution_id, "EndedStatus": ended.status, "EndedAt": now_text()}
    )


def ended_reason(item: Mapping[str, Any]) -> str:
    """The reason of a SENT status whose execution ended without success and never reported."""
    return (
        f"spoke: Automation execution {item.get('EndedExecutionId')} ended {item.get('EndedStatus')} "
        "without reporting a result (see the execution in the spoke account)"
    )


class ResultTable(Protocol):
    """What the result store reads and writes (the adapter: status_table.DynamoStatusTable).

    In the project's own types and errors: TransientError when the table cannot be read,
    scanned or written; a write whose condition fails answers False.
    """

    def read(self, account_id: str) -> dict[str, Any] | None:
        """The account's status item, read consistently (None: no item)."""
        ...

    def update_if(self, account_id: str, values: Mapping[str, Any], expected: Mapping[str, Any]) -> bool:
        """Set ``values`` (numbers, text) on the account's item if every ``expected`` attribute
        still holds its value (None: is absent); False if one does not (nothing written)."""
        ...

    def due(self, cutoff: str, ended_cutoff: str) -> Iterable[dict[str, Any]]:
        """The items the unconfirmed check decides on (one Scan): SENT and sent before
        ``cutoff`` or ended (EndedAt) before ``ended_cutoff``; APPLIED with a ConfirmedVersion
        above its ParameterVersion confirmed before ``cutoff``."""
        ...


def expected(item: Mapping[str, Any] | None) -> dict[str, Any]:
    """The optimistic lock of a write decided on ``item``: the attributes that must be as they
    were read (None: absent), so that concurrent reports and stream writes cannot overwrite
    each other. Pure."""
    return {a: None if item is None else item.get(a) for a in _LOCKED}


def decide_due(
    item: Mapping[str, Any], cutoff: str, ended_cutoff: str, timeout: timedelta
) -> Decision | None:
    """What the unconfirmed check does to an item ``due`` found (ISO 8601 cutoffs). Pure.

    An APPLIED status: ``decide_unclaimed``. A SENT status whose execution AWS reported ended
    without success (``decide_ended``) before ``ended_cutoff`` with no report since, or sent
    before ``cutoff``: FAILED, saying which. None: nothing to do (yet)."""
    if item.get("Status") == Status.APPLIED:
        return decide_unclaimed(item)
    if item.get("Status") != Status.SENT:
        return None
    ended_at, sent_at = str(item.get("EndedAt", "")), str(item.get("SentAt", ""))
    if ended_at and ended_at < ended_cutoff and ended_at >= sent_at:
        return Decision({}, Status.FAILED, ended_reason(item))  # a notice of an earlier send does not count
    if sent_at < cutoff:
        minutes = int(timeout.total_seconds() // 60)
        return Decision(
            {},
            Status.FAILED,
            f"sent at {item.get('SentAt')} (parameter version {item.get('ParameterVersion')}) and "
            f"not confirmed by the spoke within {minutes} minutes: the Parameter Store Change "
            "event or the spoke's report was lost, the spoke's rule is disabled, or the start "
            "is parked in the rule's dead-letter queue",
        )
    return None


class ResultStore:
    """Spoke results and timeouts, decided here and written conditionally on a ``ResultTable``."""

    def __init__(self, table: ResultTable) -> None:
        self._table = table

    def read(self, account_id: str) -> dict[str, Any] | None:
        return self._table.read(account_id)

    def record(self, result: SpokeReport | ExecutionEnded) -> Transition | None:
        """Read, decide, write conditionally on what was read; again if someone wrote in between.

        Returns the transition, or None if the result was stale or changed nothing.
        Raises InvalidResult for a report about a version no run of budget-sync's wrote, and
        TransientError if the table cannot be read or written (EventBridge retries).
        """
        for _ in range(_ATTEMPTS):
            item = self.read(result.account_id)
            decision = (
                decide_report(item, result) if isinstance(result, SpokeReport) else decide_ended(item, result)
            )
            if decision is None:
                return None
            if self._write(result.account_id, item, decision):
                old = None if item is None else item.get("Status")
                new = decision.status.value if decision.status is not None else old
                return Transition(result.account_id, old, new, decision.reason)
        raise TransientError(f"account {result.account_id}: status kept changing; result not recorded")

    def expire_unconfirmed(
        self, now: datetime, timeout: timedelta, grace: timedelta = ENDED_GRACE
    ) -> Iterator[Transition]:
        """Every SENT status older than ``timeout`` becomes FAILED, saying so; so does one whose
        execution AWS reported ended without success (``decide_ended``) more than ``grace`` ago
        with no report since, with that execution's id and status; so does every APPLIED status
        under which the spoke reported, longer than ``timeout`` ago, a version the pipeline never
        recorded with another limit (``decide_unclaimed``). One Scan (``decide_due``)."""
        cutoff = (now - timeout).isoformat(timespec="seconds")
        ended_cutoff = (now - grace).isoformat(timespec="seconds")
        for item in self._table.due(cutoff, ended_cutoff):
            decision = decide_due(item, cutoff, ended_cutoff, timeout)
            account = str(item["AccountId"])
            if decision is not None and self._write(account, item, decision, source="timeout"):
                yield Transition(account, str(item.get("Status")), Status.FAILED.value, decision.reason)

    def _write(
        self, account_id: str, item: Mapping[str, Any] | None, decision: Decision, source: str = SOURCE
    ) -> bool:
        values = dict(decision.values)
        if decision.status is not None:
            values.update(
                {
                    "Status": decision.status.value,
                    "Reason": decision.reason,
                    "UpdatedAt": now_text(),
                    "Source": source,
                }
            )
        return self._table.update_if(account_id, values, expected(item))


__all__ = [
    "EXECUTION_DETAIL_TYPE",
    "EXECUTION_SOURCE",
    "REPORT_DETAIL_TYPE",
    "REPORT_SOURCE",
    "ExecutionEnded",
    "InvalidResult",
    "ResultStore",
    "ResultTable",
    "SpokeReport",
    "Transition",
    "alerts_confirmed",
    "decide_due",
    "decide_ended",
    "decide_report",
    "decide_unclaimed",
    "ended_reason",
    "parse_event",
]
