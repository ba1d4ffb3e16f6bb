"""Level-triggered repair: per account, the table's value against the spoke's parameter and budget.

The stream function is edge-triggered, and EventBridge delivers ``Parameter Store Change``
events on a best-effort basis; a stack update or a hand edit can also change a budget. The
reconciler therefore compares, for every item of the budgets table:

  desired    the item's ``BudgetValue`` (validated by the one item contract, domain.py)
  parameter  the spoke parameter (ssm:GetParameter through the spoke role)
  budget     the spoke budget's limit and spend (budgets:ViewBudget through the spoke role)
  health     the budget's HealthStatus (the same DescribeBudget): UNHEALTHY is a failure with
             AWS's reason (Drift.UNHEALTHY, status FAILED, published once by the failure
             notices); once AWS reports it healthy again the next run finds it in sync and the
             status is APPLIED again
  alerts     the item's alert settings merged over the spoke stack's defaults (the parameter
             AlertDefaults, ssm:GetParameter through the spoke role; budget_sync.alerts.
             effective_alerts, the rule the spoke's Automation applies) against the budget's
             notifications and subscribers (budgets:ViewBudget), and the item's cost basis
             over the same defaults (budget_sync.cost_basis.expected_basis) against the
             budget's Metrics and RECORD_TYPE exclusion (DescribeBudget with
             ShowFilterExpression): a difference is an ALERT_DRIFT too, repaired the same way

and classifies the account (``Drift``): a limit drift first; with the limit in sync, an alert
drift (ALERT_DRIFT) if the budget's notifications are not the expected ones. Repair of a limit
drift is always the same act: write the desired value to the parameter again. The spoke's EventBridge rule then starts the Automation document,
which sets the budget's limit (and recreates a deleted budget). SSM creates a new parameter
version on every overwrite, even with an unchanged value, and every version is a ``Parameter
Store Change`` event: so a budget that drifted under a correct parameter is repaired too.

Nothing moves a budget backwards: the table is read once at the start of a run, so before
each repair the account's desired value is read again (consistently) and the repair is
skipped if it changed: the stream function applies the newer value. An operator's write can
still land between that re-read and the parameter write (and the stream function's write of
it come first): so after writing, the desired value is read once more and, if it changed,
the newer value is written over the repair (SKIPPED: the stream function's SENT of the newer
value is the status), so the parameter's last version, the one the spoke applies last, is
never older than the table. A repair writes SENT;
the spoke's report makes it APPLIED or FAILED (budget_sync.results).

Repair of an alert drift re-sends the item's alert settings as the stream function sends
them: the canonical JSON (AlertSettings.to_parameter) written to the alert parameter, whose
new version starts the spoke's Automation (its ReconcileAlerts step applies them and reports);
the status is SENT with SentAlertsVersion, so only the spoke's report of that version makes it
APPLIED. The item's alert settings are read again before and after the write, as the value is.
APPLIED "in sync (checked by the reconciler)" means the limit and the alerts were compared.

A repair that does not hold is a failure, not another repair: if the account's last status
is the spoke's failure (or an unconfirmed timeout) for the same desired value and parameter
version, or the drift is back under the very parameter version the last repair wrote, the
account is reported FAILED with that reason, and nothing is written. A desired value held
above the approval rule (status FAILED, Source ``approval``) is not repaired either: it is
reported with the status's own reason until a second person approves it.

The scheduled function (handlers/reconcile.py) and ``budgetctl status|reconcile`` run this code.

AWS is behind small Protocols defined here, beside the logic that consumes them: ``SpokeReader``
(the spoke accounts; spoke.SsmSpokeGateway), ``DesiredTable`` (the budgets table's consistent
re-read; budgets_table.BudgetsTable) and ``StatusWriter`` (the status table's writes;
status.StatusStore). The adapters own every boto3 call and ClientError translation; this module
sees only the project's types and errors (errors.py), so its decisions are tested with the
in-memory fakes of tests/fakes (tests/unit/test_reconcile.py). The handler builds the adapters
and injects them; it reads the statuses once per run (status_table.read_statuses).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

from budget_sync.alerts import AlertSettings, expected_notifications, notifications_differ, parse_alerts
from budget_sync.approvals import SOURCE as APPROVAL_SOURCE
from budget_sync.config import DEFAULT_BUDGET_NAME
from budget_sync.cost_basis import basis_differs, expected_basis
from budget_sync.domain import (
    ACCOUNT_ID_FIELD,
    BUDGET_VALUE_FIELD,
    format_amount,
    parse_account_id,
    parse_budget_text,
    parse_budget_value,
)
from budget_sync.errors import BudgetSyncError, InvalidItemError
from budget_sync.health import unhealthy_reason
from budget_sync.observability import logger
from budget_sync.spoke import AlertReading, BudgetReading, ParameterReading
from budget_sync.status import Status, StatusUpdate

SOURCE = "reconciler"
#: How many times a repair writes a newer desired value that landed during it, before it
#: leaves the rest to the stream function (which sends every newer value itself).
_REWRITES = 3


class Drift(StrEnum):
    """What one account looks like, from the table's point of view."""

    IN_SYNC = "IN_SYNC"  # parameter and budget limit both equal the desired value
    PARAMETER_DRIFT = "PARAMETER_DRIFT"  # the parameter holds another value (lost write, hand edit)
    MISSING_PARAMETER = "MISSING_PARAMETER"  # the parameter was deleted
    BUDGET_DRIFT = "BUDGET_DRIFT"  # the parameter is right, the budget limit is not (lost event, hand edit)
    ALERT_DRIFT = "ALERT_DRIFT"  # the limit is right, the budget's notifications or subscribers are not
    MISSING_BUDGET = "MISSING_BUDGET"  # the budget was deleted (the Automation recreates it)
    UNHEALTHY = "UNHEALTHY"  # the limit is right, AWS Budgets reports the budget UNHEALTHY (no repair)
    INVALID_ITEM = "INVALID_ITEM"  # the item breaks the contract: fix the item, nothing to apply
    UNREACHABLE = "UNREACHABLE"  # the spoke role cannot be assumed or may not read
    NOT_MANAGED = "NOT_MANAGED"  # (--org) an account of the organisation with no item
    NOT_IN_ORGANIZATION = "NOT_IN_ORGANIZATION"  # (--org) an item for an account outside it


#: The states a parameter write repairs.
REPAIRABLE = frozenset(
    {
        Drift.PARAMETER_DRIFT,
        Drift.MISSING_PARAMETER,
        Drift.BUDGET_DRIFT,
        Drift.MISSING_BUDGET,
        Drift.ALERT_DRIFT,
    }
)


class Action(StrEnum):
    NONE = ""
    REPAIRED = "REPAIRED"  # the parameter was written again
    FAILED = "FAILED"  # the repair was tried and failed, or an earlier one did not hold
    SKIPPED = "SKIPPED"  # the desired value changed during the run: the stream applies the new one


class SpokeReader(Protocol):
    """What reconciliation needs from a spoke account (SsmSpokeGateway implements it)."""

    def read_parameter(self, account_id: str) -> ParameterReading: ...

    def read_budget(self, account_id: str, budget_name: str = ...) -> BudgetReading | None: ...

    def put_budget_value(self, account_id: str, amount_text: str) -> int: ...

    def read_alert_state(self, account_id: str, budget_name: str = ...) -> AlertReading | None: ...

    def put_alert_settings(self, account_id: str, settings_json: str) -> int: ...


class DesiredTable(Protocol):
    """What a repair needs from the budgets table (budgets_table.BudgetsTable implements it):
    one account's item, read again consistently right before and after a repair.

    ``read_item`` returns the validated item (an invalid one has ``value`` None), or None when
    the account has no item; it raises TransientError when the table cannot be read."""

    def read_item(self, account_id: str) -> DesiredItem | None: ...


class StatusWriter(Protocol):
    """What a reconciliation writes to the status table (status.StatusStore implements it).

    ``record_many`` writes each update under its sequence-number condition (an update older
    than the status it would replace is refused, not an error) and returns the accounts whose
    status could not be written."""

    def record_many(self, updates: list[StatusUpdate]) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class DesiredItem:
    """One budgets-table item, validated. ``value`` is None when ``error`` says why."""

    account_id: str
    value: Decimal | None
    error: str = ""
    updated_by: str = ""
    updated_at: str = ""
    alerts: AlertSettings = field(
        default_factory=AlertSettings
    )  # the item's own alert attributes (none: the stack's)


@dataclass(frozen=True, slots=True)
class AccountReport:
    """One account: what the table, the status table and the spoke say, and what was done."""

    account_id: str
    drift: Drift
    desired: Decimal | None = None
    reason: str = ""
    parameter: str | None = None
    parameter_version: int | None = None
    budget: BudgetReading | None = None
    last_status: str = ""
    last_reason: str = ""
    action: Action = Action.NONE
    new_version: int | None = None
    retryable: bool = False  # the failure was transient (throttling, timeout): no FAILED status
    alerts: AlertSettings | None = None  # the item's alert settings (None: not compared)
    alerts_version: int | None = None  # the alert parameter's version an alert repair wrote

    @property
    def budget_limit(self) -> Decimal | None:
        return self.budget.limit if self.budget else None

    @property
    def percent_of_limit(self) -> Decimal | None:
        """Actual spend as a percentage of the limit, one decimal."""
        if self.budget is None or not self.budget.limit or self.budget.actual is None:
            return None
        return (self.budget.actual * 100 / self.budget.limit).quantize(Decimal("0.1"))

    @property
    def ok(self) -> bool:
        """True if nothing is left for an operator to do (in sync, repaired just now, or
        superseded by a newer value during the run)."""
        return self.drift is Drift.IN_SYNC or self.action in (Action.REPAIRED, Action.SKIPPED)


@dataclass(slots=True)
class Summary:
    reports: list[AccountReport] = field(default_factory=list)

    @property
    def counts(self) -> Counter[str]:
        return Counter(r.drift.value for r in self.reports)

    @property
    def drifted(self) -> int:
        return sum(1 for r in self.reports if r.drift in REPAIRABLE)

    @property
    def repaired(self) -> int:
        return sum(1 for r in self.reports if r.action is Action.REPAIRED)

    @property
    def failed(self) -> int:
        """Accounts the reconciler could not bring in line: unreachable, invalid item, failed repair.
        A suspended or closed account (status SKIPPED, the resolver's) is not counted: it was
        reported once, when it was skipped."""
        return sum(
            1
            for r in self.reports
            if (
                r.action is Action.FAILED
                or r.drift in (Drift.UNREACHABLE, Drift.INVALID_ITEM, Drift.UNHEALTHY)
            )
            and r.last_status != Status.SKIPPED
        )


def classify(
    desired: Decimal, parameter: ParameterReading, budget: BudgetReading | None
) -> tuple[Drift, str]:
    """The drift state of an account with a valid item whose spoke could be read. Pure."""
    wanted = format_amount(desired)
    if parameter.value is None:
        return Drift.MISSING_PARAMETER, f"parameter missing; desired {wanted}"
    try:
        in_parameter: Decimal | None = parse_budget_text(parameter.value)
    except InvalidItemError:
        in_parameter = None
    if in_parameter != desired:
        return Drift.PARAMETER_DRIFT, f"parameter {parameter.value!r} differs from desired {wanted}"
    if budget is None:
        return Drift.MISSING_BUDGET, f"budget missing; desired {wanted}"
    if budget.limit is None:
        return Drift.BUDGET_DRIFT, limit_reason(budget)
    if budget.limit != desired:
        return Drift.BUDGET_DRIFT, f"budget limit {format_amount(budget.limit)} differs from desired {wanted}"
    if budget.health == "UNHEALTHY":
        return Drift.UNHEALTHY, unhealthy_reason(budget.health_reason)
    return Drift.IN_SYNC, ""


#: Why a budget with planned limits is not managed (the spoke script refuses it the same way).
PLANNED = (
    "the budget uses PlannedBudgetLimits; budget-sync manages one fixed monthly BudgetLimit: "
    "recreate the budget without planned limits"
)


def limit_reason(budget: BudgetReading) -> str:
    """Why a budget's limit (None) cannot be compared: planned limits, or another currency."""
    return PLANNED if budget.planned else f"budget limit is not a USD amount (unit {budget.unit!r})"


def desired_item(item: Mapping[str, Any]) -> DesiredItem:
    raw_account = item.get(ACCOUNT_ID_FIELD)
    by, at = str(item.get("UpdatedBy", "")), str(item.get("UpdatedAt", ""))
    try:
        account_id = parse_account_id(raw_account)
        value = parse_budget_value(item.get(BUDGET_VALUE_FIELD), account_id)
        alerts = parse_alerts(item, account_id)  # the item contract covers its alert attributes too
    except InvalidItemError as exc:
        return DesiredItem(str(raw_account), None, str(exc), updated_by=by, updated_at=at)
    return DesiredItem(account_id, value, updated_by=by, updated_at=at, alerts=alerts)


def did_not_hold(report: AccountReport, last: Mapping[str, Any] | None) -> str:
    """Why repairing this drifted account again would not help ('' if it may be repaired).

    * the last status is FAILED for this desired value and this parameter version (the
      spoke's own failure, or a value never confirmed): a new write would fail the same way;
    * the last repair wrote this parameter version and the drift is back (a hand edit that
      keeps coming back, a budget that cannot hold the limit);
    * the desired value is held for approval (the status's Source is ``approval``): never
      repaired until a second person approves it (budget_sync.approvals);
    * alert drift is back after the last alert repair was confirmed, with no newer alert
      settings sent since (notifications edited by hand again and again).
    A new value from the table, or any other write of the parameter, starts afresh.
    """
    if (
        last
        and last.get("Status") == Status.FAILED
        and last.get("Source") == APPROVAL_SOURCE
        and last.get("DesiredValue") == report.desired
    ):
        # held above the approval rule (budget_sync.approvals): a repair would send the very
        # value that waits for a second person. Its reason, unchanged, is the status's.
        return str(last.get("Reason", ""))
    if not last or report.parameter_version is None:
        return ""
    same_version = last.get("ParameterVersion") == report.parameter_version
    same_value = last.get("DesiredValue") == report.desired
    if (
        last.get("Status") == Status.FAILED
        and same_version
        and same_value
        and last.get("Source") in ("spoke", "timeout")
    ):
        if report.budget is not None and report.budget.planned:
            # the spoke refused the last repair because of the planned limits: say it once
            return f"{PLANNED}; not repaired again (the spoke refused the last repair for this reason)"
        return f"{report.reason}; not repaired again: {last.get('Reason', '')}"
    if report.drift is Drift.ALERT_DRIFT:  # RepairedVersion is a limit repair's version
        return _alert_repair_did_not_hold(report, last)
    if last.get("RepairedVersion") == report.parameter_version and last.get("Status") != Status.SENT:
        return f"{report.reason}; the repair of {last.get('UpdatedAt', '')} (parameter version {report.parameter_version}) did not hold"
    return ""


class Reconciler:
    """Inspect accounts concurrently and, with ``apply``, repair what drifted."""

    def __init__(
        self,
        spokes: SpokeReader,
        status: StatusWriter | None = None,
        *,
        desired: DesiredTable | None = None,
        budget_name: str = DEFAULT_BUDGET_NAME,
        max_concurrency: int = 10,
        requested_by: str = "",
    ) -> None:
        """``desired`` reads an account's item again, consistently, right before and after a
        repair (its value for a limit repair, its alert settings for an alert repair);
        ``apply`` needs it and ``status``. Without them the reconciler only inspects."""
        self._spokes = spokes
        self._status = status
        self._desired = desired
        self._budget_name = budget_name
        self._max_concurrency = max_concurrency
        self._requested_by = requested_by  # an operator's request (budgetctl reconcile --apply)

    def run(
        self,
        items: Sequence[DesiredItem],
        statuses: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        apply: bool = False,
        on_account: Callable[[AccountReport], None] | None = None,
    ) -> Summary:
        """One report per item, in the items' order. ``on_account`` is called as each finishes.

        With ``apply``, repairable accounts get their parameter written again and the status
        table (if given) records the outcome with Source=reconciler.
        """
        statuses = statuses or {}
        if apply and (self._status is None or self._desired is None):
            raise ValueError("apply needs a status store and the budgets table to re-read the desired value")

        def one(item: DesiredItem) -> AccountReport:
            report = self._account(item, statuses.get(item.account_id), apply)
            if on_account is not None:
                on_account(report)
            return report

        if not items:
            return Summary()
        workers = max(1, min(self._max_concurrency, len(items)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="reconcile") as pool:
            reports = list(pool.map(one, items))
        if apply:
            self._record(reports, statuses)
        return Summary(reports)

    def _account(self, item: DesiredItem, status: Mapping[str, Any] | None, apply: bool) -> AccountReport:
        base = AccountReport(
            item.account_id,
            Drift.IN_SYNC,
            desired=item.value,
            last_status=str((status or {}).get("Status", "")),
            last_reason=str((status or {}).get("Reason", "")),
        )
        if item.value is None:
            return self._invalid(replace(base, drift=Drift.INVALID_ITEM, reason=item.error))
        if base.last_status == Status.SKIPPED:
            # suspended or closed (the resolver's SKIPPED says why, once): its spoke cannot be
            # reached and must not be repaired; reading it would only turn SKIPPED into FAILED
            return replace(
                base, drift=Drift.UNREACHABLE, reason=f"not managed (status SKIPPED): {base.last_reason}"
            )
        report = self._compare(base, item)
        if report.drift is Drift.UNREACHABLE:
            return report
        return self._act(report, status, apply)

    def _compare(self, base: AccountReport, item: DesiredItem) -> AccountReport:
        """The spoke's parameter and budget against the item; its alerts too once the limit is
        in sync. UNREACHABLE when the spoke cannot be read."""
        assert item.value is not None
        try:
            parameter = self._spokes.read_parameter(item.account_id)
            budget = self._spokes.read_budget(item.account_id, self._budget_name)
        except BudgetSyncError as exc:
            return replace(base, drift=Drift.UNREACHABLE, reason=str(exc), retryable=exc.retryable)
        except Exception as exc:  # a bug in one account must not hide the others
            logger.exception("unexpected error reading the spoke", extra={"account_id": item.account_id})
            return replace(base, drift=Drift.UNREACHABLE, reason=f"unexpected error: {exc!r}")
        drift, reason = classify(item.value, parameter, budget)
        report = replace(
            base,
            drift=drift,
            reason=reason,
            parameter=parameter.value,
            parameter_version=parameter.version,
            budget=budget,
        )
        if drift is not Drift.IN_SYNC:
            return report
        try:
            drift, reason = self._compare_alerts(item, budget)
        except BudgetSyncError as exc:
            return replace(report, drift=Drift.UNREACHABLE, reason=str(exc), retryable=exc.retryable)
        except Exception as exc:  # a bug in one account must not hide the others
            logger.exception("unexpected error reading the alerts", extra={"account_id": item.account_id})
            return replace(report, drift=Drift.UNREACHABLE, reason=f"unexpected error: {exc!r}")
        return replace(report, drift=drift, reason=reason, alerts=item.alerts)

    def _act(self, report: AccountReport, status: Mapping[str, Any] | None, apply: bool) -> AccountReport:
        """What a compared account's drift leads to: nothing, a repair, or FAILED when an
        earlier repair did not hold."""
        drift, reason = report.drift, report.reason
        if drift is not Drift.IN_SYNC:
            logger.warning(
                "account drifted",
                extra={"account_id": report.account_id, "drift": drift.value, "reason": reason},
            )
        if drift in REPAIRABLE and (failure := did_not_hold(report, status)):
            logger.error("repair did not hold", extra={"account_id": report.account_id, "reason": failure})
            return replace(report, action=Action.FAILED, reason=failure)
        if apply and drift is Drift.ALERT_DRIFT:
            return self._repair_alerts(report)
        if apply and drift in REPAIRABLE:
            return self._repair(report)
        return report

    def _compare_alerts(self, item: DesiredItem, budget: BudgetReading | None = None) -> tuple[Drift, str]:
        """IN_SYNC, or ALERT_DRIFT with what differs, for an account whose limit is in sync: its
        notifications, and (``budget`` given) what it counts against the cost basis."""
        reading = self._spokes.read_alert_state(item.account_id, self._budget_name)
        if reading is None:  # deleted since its limit was read
            return Drift.MISSING_BUDGET, "budget missing"
        try:
            expected = expected_notifications(item.alerts, reading.defaults)
            basis = expected_basis(item.alerts.cost_basis, reading.defaults)
        except InvalidItemError as exc:
            return Drift.ALERT_DRIFT, f"alerts: the spoke stack's alert defaults are invalid: {exc}"
        differences = notifications_differ(expected, reading.notifications)
        if basis is not None and budget is not None:
            counted = basis_differs(basis, budget.metrics, budget.filter_expression, budget.cost_types)
            if counted:
                return (
                    Drift.ALERT_DRIFT,
                    f"cost basis differs from the item's over the stack's defaults: {counted}",
                )
        if not differences:
            return Drift.IN_SYNC, ""
        return (
            Drift.ALERT_DRIFT,
            f"alerts differ from the item's settings over the stack's defaults: {differences}",
        )

    def _invalid(self, report: AccountReport) -> AccountReport:
        """An invalid item: nothing to compare or repair, but the spoke still holds its last
        good value, so its parameter and budget are read and shown (when the key is an
        account id at all, and the spoke answers)."""
        try:
            account_id = parse_account_id(report.account_id)
            parameter = self._spokes.read_parameter(account_id)
            budget = self._spokes.read_budget(account_id, self._budget_name)
        except (InvalidItemError, BudgetSyncError):
            return report
        except Exception:  # a bug in one account must not hide the others
            logger.exception("unexpected error reading the spoke", extra={"account_id": report.account_id})
            return report
        return replace(report, parameter=parameter.value, parameter_version=parameter.version, budget=budget)

    def _repair(self, report: AccountReport) -> AccountReport:
        assert report.desired is not None
        amount = format_amount(report.desired)
        try:
            current = self._desired_value(report.account_id)
        except BudgetSyncError as exc:
            return _unreadable(report, "desired value unreadable", exc)
        if current != report.desired:
            now = "no valid item" if current is None else format_amount(current)
            reason = f"{report.reason}; the desired value changed to {now} during the run: not repaired"
            logger.info("repair skipped", extra={"account_id": report.account_id, "reason": reason})
            return replace(report, action=Action.SKIPPED, reason=reason)
        try:
            version = self._spokes.put_budget_value(report.account_id, amount)
        except BudgetSyncError as exc:
            logger.error(
                "repair failed",
                extra={"account_id": report.account_id, "amount": amount, "reason": str(exc)},
            )
            return replace(
                report,
                action=Action.FAILED,
                reason=f"{report.reason}; repair failed: {exc}",
                retryable=exc.retryable,
            )
        newer = self._newer_after_write(report, version)
        if newer is not None:
            return newer
        if report.parameter_version is not None and version <= report.parameter_version:
            # No new version, no Parameter Store Change event: the Automation would not run.
            reason = f"{report.reason}; the parameter kept version {version}, so no change event was sent"
            logger.error("repair not confirmed", extra={"account_id": report.account_id, "reason": reason})
            return replace(report, action=Action.FAILED, reason=reason, new_version=version)
        logger.info(
            "account repaired",
            extra={"account_id": report.account_id, "amount": amount, "parameter_version": version},
        )
        return replace(report, action=Action.REPAIRED, new_version=version)

    def _repair_alerts(self, report: AccountReport) -> AccountReport:
        """Re-send the item's alert settings (the stream function's act): the alert parameter
        written again, read before and after so that a newer operator's write always ends last."""
        assert report.alerts is not None
        written = report.alerts
        version: int | None = None
        for attempt in range(_REWRITES + 1):
            try:
                current = self._desired_alerts(report.account_id)
            except BudgetSyncError as exc:
                return _unreadable(report, "alert settings unreadable", exc)
            if current == written and version is not None:
                break
            if current is None or (current != written and version is None):
                # changed before the repair wrote, or the item is gone: the stream function sends it
                reason = f"{report.reason}; the item changed during the run: alerts not repaired"
                logger.info("alert repair skipped", extra={"account_id": report.account_id, "reason": reason})
                return replace(report, action=Action.SKIPPED, reason=reason, alerts_version=version)
            if attempt == _REWRITES:
                break
            text = current.to_parameter()
            try:
                version = self._spokes.put_alert_settings(report.account_id, text)
            except BudgetSyncError as exc:
                logger.error(
                    "alert repair failed", extra={"account_id": report.account_id, "reason": str(exc)}
                )
                return replace(
                    report,
                    action=Action.FAILED,
                    reason=f"{report.reason}; repair failed: {exc}",
                    retryable=exc.retryable,
                )
            written = current
        if written != report.alerts:
            reason = (
                f"{report.reason}; the item's alert settings changed during the repair: the newer ones stand"
            )
            return replace(report, action=Action.SKIPPED, reason=reason, alerts_version=version)
        logger.info(
            "alerts repaired",
            extra={
                "account_id": report.account_id,
                "alerts": written.to_parameter(),
                "alerts_version": version,
            },
        )
        return replace(report, action=Action.REPAIRED, alerts_version=version)

    def _newer_after_write(self, report: AccountReport, version: int) -> AccountReport | None:
        """Close the window between the re-read and the write: read the desired value again.
        If an operator's write landed in between (its stream write of the parameter may have
        come before ours), the newer value is written over ours, so the parameter's last
        version is the newest value, never the reconciler's older one; the stream function's
        status (newer) says SENT for it. Returns the report of that, or None (unchanged)."""
        written = report.desired
        for _ in range(_REWRITES):
            try:
                current = self._desired_value(report.account_id)
            except BudgetSyncError as exc:
                return _unreadable(
                    report, "desired value unreadable after the repair", exc, new_version=version
                )
            if current == written:
                break
            if current is None:  # the item is gone or invalid: the stream function records it
                written = None
                break
            amount = format_amount(current)
            logger.info(
                "desired value changed during the repair: newer value written",
                extra={"account_id": report.account_id, "amount": amount},
            )
            try:
                version = self._spokes.put_budget_value(report.account_id, amount)
            except BudgetSyncError as exc:
                return replace(
                    report,
                    action=Action.FAILED,
                    reason=f"{report.reason}; newer value {amount} not written after the repair: {exc}",
                    retryable=exc.retryable,
                )
            written = current
        if written == report.desired:
            return None
        now = "no valid item" if written is None else format_amount(written)
        reason = (
            f"{report.reason}; the desired value changed to {now} during the repair: the newer value stands"
        )
        return replace(report, action=Action.SKIPPED, reason=reason, new_version=version)

    def _desired_value(self, account_id: str) -> Decimal | None:
        """The account's desired value, read again (None: no item, or an invalid one)."""
        assert self._desired is not None
        item = self._desired.read_item(account_id)
        return None if item is None else item.value

    def _desired_alerts(self, account_id: str) -> AlertSettings | None:
        """The account's alert settings, read again (None: no item, or an invalid one)."""
        assert self._desired is not None
        item = self._desired.read_item(account_id)
        return None if item is None or item.value is None else item.alerts

    def _record(self, reports: Sequence[AccountReport], statuses: Mapping[str, Mapping[str, Any]]) -> None:
        assert self._status is not None
        updates = [
            replace(update, requested_by=self._requested_by)
            for report in reports
            if (update := status_update(report, statuses.get(report.account_id))) is not None
        ]
        if not updates:
            return
        unwritten = self._status.record_many(updates)
        if unwritten:
            logger.warning("status not written", extra={"accounts": unwritten})


def _alert_repair_did_not_hold(report: AccountReport, last: Mapping[str, Any]) -> str:
    """Alert drift again after the reconciler's last alert repair was confirmed (APPLIED), and
    no newer alert settings were sent since (their send would start afresh): repairing it
    again would only be undone again."""
    repaired = last.get("RepairedAlertsVersion")
    if (
        repaired is not None
        and last.get("SentAlertsVersion") == repaired
        and last.get("Status") in (Status.APPLIED, Status.FAILED)
        and last.get("DesiredValue") == report.desired
    ):
        return f"{report.reason}; the alert repair of {last.get('UpdatedAt', '')} (alert parameter version {repaired}) did not hold"
    return ""


def _unreadable(report: AccountReport, what: str, exc: BudgetSyncError, **changes: Any) -> AccountReport:
    """A repair that could not re-read the budgets table: FAILED for this run only (retryable:
    no FAILED status; the next run tries again). ``what`` says which read, ``changes`` what
    else the report keeps (the version a write already made)."""
    return replace(
        report, action=Action.FAILED, reason=f"{report.reason}; {what}: {exc}", retryable=True, **changes
    )


def status_update(report: AccountReport, last: Mapping[str, Any] | None) -> StatusUpdate | None:
    """The status a reconciliation leaves, or None if the status table already says it.

    The update carries the sequence number of the status it read, so the status table's
    condition (never replace a newer status) also refuses it if the stream function wrote a
    newer status in the meantime: the stream's word on a newer value wins.
    """
    last = last or {}
    sequence = str(last.get("SequenceNumber", "0"))
    if report.action is Action.SKIPPED:
        return None  # the stream function records the newer value
    if last.get("Status") == Status.SKIPPED:
        return None  # suspended or closed: the resolver reported it once; no FAILED every run
    if report.action is Action.REPAIRED and report.drift is Drift.ALERT_DRIFT:
        assert report.alerts is not None
        return StatusUpdate(
            report.account_id,
            Status.SENT,
            sequence,
            desired=report.desired,
            applied=report.desired,
            reason=f"repaired by the reconciler: {report.reason}",
            source=SOURCE,
            alerts=report.alerts.to_parameter(),
            alerts_version=report.alerts_version,
            repaired=True,
        )
    if report.action is Action.REPAIRED:
        return StatusUpdate(
            report.account_id,
            Status.SENT,
            sequence,
            desired=report.desired,
            applied=report.desired,
            reason=f"repaired by the reconciler: {report.reason}",
            parameter_version=report.new_version,
            source=SOURCE,
            repaired=True,
        )
    failed = report.action is Action.FAILED or report.drift in (Drift.UNREACHABLE, Drift.UNHEALTHY)
    if failed and not report.retryable:  # a transient failure is simply tried again next run
        return _failed_update(report, last, sequence)
    if report.drift is Drift.IN_SYNC:
        already = last.get("Status") == Status.APPLIED and last.get("DesiredValue") == report.desired
        if already or last.get("Status") == Status.SENT:
            return None  # a SENT value waits for the spoke's own report (or its timeout)
        if alerts_unsettled(last):
            return None  # the limit is in sync; the alerts, which it did not compare, are not
        return StatusUpdate(
            report.account_id,
            Status.APPLIED,
            sequence,
            desired=report.desired,
            applied=report.desired,
            reason="in sync: limit and alerts (checked by the reconciler)",
            parameter_version=report.parameter_version,
            source=SOURCE,
        )
    return None


def _failed_update(report: AccountReport, last: Mapping[str, Any], sequence: str) -> StatusUpdate | None:
    """FAILED with the report's reason, unless the status already says it for this value."""
    if last.get("Status") == Status.FAILED and last.get("Reason") == report.reason:
        return None
    unchanged = (
        report.parameter_version is not None
        and last.get("ParameterVersion") == report.parameter_version
        and last.get("DesiredValue") == report.desired
    )
    if last.get("Status") == Status.FAILED and unchanged:
        return None  # already FAILED for this value and version, with the first (the spoke's) reason
    return StatusUpdate(
        report.account_id,
        Status.FAILED,
        sequence,
        desired=report.desired,
        reason=report.reason,
        source=SOURCE,
    )


def alerts_unsettled(last: Mapping[str, Any]) -> bool:
    """Whether the status says the spoke's alert settings are not applied: it refused them
    (its ReconcileAlerts step's FAILED report), or never confirmed the ones last sent. The
    reconciler compares the limit only, so it must not call such an account APPLIED. Pure."""
    refused = (
        last.get("SpokeStep") == "ReconcileAlerts"
        and last.get("SpokeOutcome") == Status.FAILED
        and last.get("SpokeHealth") != "UNHEALTHY"  # applied; AWS reported the budget unhealthy
    )
    sent = last.get("SentAlertsVersion")
    unconfirmed = sent is not None and int(last.get("ConfirmedAlertsVersion", 0)) < int(sent)
    return refused or unconfirmed
