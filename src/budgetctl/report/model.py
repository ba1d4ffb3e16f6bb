"""The report's data: one line per account, the organisation's totals. Pure: no AWS, no output.

Each line joins what the reconciler's inspection read from the spoke (the budget's limit and
its calculated actual and forecasted spend, and the drift against the budgets table), the
status table's word on the pipeline (``Status`` and ``Reason``, shown as they are: the set of
states may grow; ``ConfirmedCostBasis``: what the budget counts as spend), and the account's
name from AWS Organizations. An account whose spoke could not be read is a line with the reason
and no numbers, never a gap. The changes this period (since the first day of the month, UTC: a
budget's period) come from the history table, each with what came of it
(budget_sync.history.settled_changes).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from budget_sync.cost_basis import confirmed_text
from budget_sync.history import Settled
from budget_sync.reconcile import REPAIRABLE, AccountReport, Drift, limit_reason

#: Forecast at or above this share of the limit marks an account as near (the spoke's first
#: ACTUAL alert is at 80 %, template-spoke.yaml).
DEFAULT_NEAR_PERCENT = Decimal(80)
HUNDRED = Decimal(100)
_PERCENT = Decimal("0.1")


class Level(StrEnum):
    """Where an account stands against its limit."""

    OVER = "OVER"  # actual or forecasted spend above the limit (AWS's alerts: GREATER_THAN 100 %)
    NEAR = "NEAR"  # forecast at or above the near threshold
    OK = "OK"
    NO_DATA = "NO_DATA"  # no limit or no spend could be read: the reason says why


@dataclass(frozen=True, slots=True)
class AccountLine:
    """One account of the report."""

    account_id: str
    name: str = ""
    limit: Decimal | None = None
    actual: Decimal | None = None
    forecast: Decimal | None = None
    status: str = ""  # the status table's Status, as it is ("" if the table has none)
    status_reason: str = ""
    drift: str = ""  # budget_sync.reconcile.Drift value
    reason: str = ""  # why there are no numbers, or what drifted
    read_at: datetime | None = None  # when the spoke's budget was read
    #: what the budget counts, as the spoke confirmed it (budget_sync.cost_basis.confirmed_text)
    cost_basis: str = ""
    near_percent: Decimal = DEFAULT_NEAR_PERCENT
    incident: str = ""  # its open ServiceNow incident number(s), if any (docs/itsm.md)

    @property
    def actual_percent(self) -> Decimal | None:
        return _percent(self.actual, self.limit)

    @property
    def forecast_percent(self) -> Decimal | None:
        return _percent(self.forecast, self.limit)

    @property
    def level(self) -> Level:
        actual, forecast = self.actual_percent, self.forecast_percent
        if actual is None or forecast is None:
            return Level.NO_DATA
        if actual > HUNDRED or forecast > HUNDRED:
            return Level.OVER
        if forecast >= self.near_percent:
            return Level.NEAR
        return Level.OK

    @property
    def failed(self) -> bool:
        """The pipeline failed for this account, its spoke or item is unusable, or AWS reports
        its budget UNHEALTHY."""
        return self.status == "FAILED" or self.drift in (
            Drift.UNREACHABLE,
            Drift.INVALID_ITEM,
            Drift.UNHEALTHY,
        )

    @property
    def drifted(self) -> bool:
        """The spoke does not hold the table's value (the reconciler repairs it)."""
        return self.drift in REPAIRABLE

    @property
    def attention(self) -> bool:
        return self.failed or self.drifted

    @property
    def sort_key(self) -> tuple[bool, Decimal, bool, str]:
        """Highest forecast share first; then the lines without figures, those needing attention first."""
        share = self.forecast_percent
        if share is None:
            return (True, Decimal(0), not self.attention, self.account_id)
        return (False, -share, False, self.account_id)


@dataclass(frozen=True, slots=True)
class Totals:
    """The organisation: sums over the accounts whose budget could be read."""

    accounts: int
    charted: int  # accounts with a limit and spend
    limit: Decimal
    actual: Decimal
    forecast: Decimal
    over: int
    over_forecast: Decimal  # the forecast of the over-budget accounts
    near: int
    failed: int
    drifted: int
    no_data: int

    @property
    def actual_percent(self) -> Decimal | None:
        return _percent(self.actual, self.limit)

    @property
    def forecast_percent(self) -> Decimal | None:
        return _percent(self.forecast, self.limit)

    @property
    def over_share_percent(self) -> Decimal | None:
        """The over-budget accounts' forecast as a share of the organisation's forecast."""
        return _percent(self.over_forecast, self.forecast)


@dataclass(frozen=True, slots=True)
class Report:
    lines: tuple[AccountLine, ...]
    generated_at: datetime
    budget_name: str
    notes: tuple[str, ...] = field(default_factory=tuple)
    #: changes this period (the history table), newest first; None: not read (see notes)
    changes: tuple[Settled, ...] | None = None

    @property
    def totals(self) -> Totals:
        charted = [line for line in self.lines if line.level is not Level.NO_DATA]
        over = [line for line in charted if line.level is Level.OVER]
        return Totals(
            accounts=len(self.lines),
            charted=len(charted),
            limit=_sum(line.limit for line in charted),
            actual=_sum(line.actual for line in charted),
            forecast=_sum(line.forecast for line in charted),
            over=len(over),
            over_forecast=_sum(line.forecast for line in over),
            near=sum(1 for line in charted if line.level is Level.NEAR),
            failed=sum(1 for line in self.lines if line.failed),
            drifted=sum(1 for line in self.lines if line.drifted),
            no_data=len(self.lines) - len(charted),
        )

    @property
    def charted(self) -> list[AccountLine]:
        return [line for line in self.lines if line.level is not Level.NO_DATA]

    @property
    def attention(self) -> list[AccountLine]:
        return [line for line in self.lines if line.attention]

    @property
    def read_between(self) -> tuple[datetime, datetime] | None:
        """The first and last time a spoke's budget was read."""
        times = [line.read_at for line in self.lines if line.read_at is not None]
        return (min(times), max(times)) if times else None


def build_report(
    reports: Sequence[AccountReport],
    statuses: Mapping[str, Mapping[str, Any]],
    names: Mapping[str, str],
    read_at: Mapping[str, datetime],
    *,
    generated_at: datetime,
    budget_name: str,
    organisation: Iterable[str] = (),
    near_percent: Decimal = DEFAULT_NEAR_PERCENT,
    notes: Sequence[str] = (),
    changes: Sequence[Settled] | None = None,
    incidents: Mapping[str, str] | None = None,
) -> Report:
    """The report from the reconciler's inspection of every item, the status table and names.

    Accounts of the organisation (``organisation``) or of the status table that have no item
    are lines too (``NOT_MANAGED``, or the status the table holds, e.g. ``UNMANAGED``), so that
    nothing the operator manages or could manage is missing from the page.
    """
    lines: dict[str, AccountLine] = {}
    for report in reports:
        status = statuses.get(report.account_id) or {}
        budget = report.budget
        reason = report.reason
        if report.drift not in (Drift.UNREACHABLE, Drift.INVALID_ITEM) and budget is None:
            reason = reason or "the spoke has no budget"
        elif budget is not None and budget.limit is None:
            reason = reason or limit_reason(budget)
        lines[report.account_id] = AccountLine(
            report.account_id,
            name=names.get(report.account_id, ""),
            limit=budget.limit if budget else None,
            actual=budget.actual if budget else None,
            forecast=budget.forecasted if budget else None,
            status=report.last_status or str(status.get("Status", "")),
            status_reason=report.last_reason or str(status.get("Reason", "")),
            drift=report.drift.value,
            reason=reason,
            read_at=read_at.get(report.account_id) if budget else None,
            cost_basis=confirmed_text(status.get("ConfirmedCostBasis")) or "",
            near_percent=near_percent,
            incident=(incidents or {}).get(report.account_id, ""),
        )
    for account in sorted({*organisation, *statuses} - set(lines)):
        status = statuses.get(account) or {}
        lines[account] = AccountLine(
            account,
            name=names.get(account, ""),
            status=str(status.get("Status", "")),
            status_reason=str(status.get("Reason", "")),
            drift=Drift.NOT_MANAGED.value,
            reason="no item in the budgets table: budget-sync does not manage its budget",
            near_percent=near_percent,
        )
    ordered = tuple(sorted(lines.values(), key=lambda line: line.sort_key))
    return Report(
        ordered, generated_at, budget_name, tuple(notes), None if changes is None else tuple(changes)
    )


def _percent(part: Decimal | None, whole: Decimal | None) -> Decimal | None:
    if part is None or whole is None or whole <= 0:
        return None
    return (part * HUNDRED / whole).quantize(_PERCENT)


def _sum(values: Iterable[Decimal | None]) -> Decimal:
    return sum((v for v in values if v is not None), Decimal(0))
