"""The report as text rows (``--output table|json|csv``) and as one self-contained HTML page.

The page is Jinja2 with autoescape on: every value from outside (account names from
Organizations, reasons from spokes and the status table, statuses) is escaped by the template
engine. The chart is the only markup passed through unescaped, and it is matplotlib's own
SVG (chart.py). The page has no external reference at all: styles inline, chart inline, no
script, no font or image fetched; it is laid out for the screen and for print.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from budgetctl.report.chart import CAP_PERCENT, chart_svg
from budgetctl.report.model import AccountLine, Level, Report

REPORT_COLUMNS = (
    "AccountId",
    "Name",
    "BudgetLimit",
    "ActualSpend",
    "ForecastedSpend",
    "ActualPercent",
    "ForecastPercent",
    "Level",
    "Status",
    "Drift",
    "Reason",
    "ReadAt",
    "CostBasis",
    "Incident",
)
#: The table without --wide: what fits 100 characters, one line per account.
REPORT_BRIEF = ("AccountId", "Name", "BudgetLimit", "ForecastPercent", "Level", "Drift", "Reason")

#: What a reader of the page is told about where the numbers come from.
SOURCE_NOTE = (
    "Limit, actual and forecasted spend are each spoke budget's own figures (AWS Budgets "
    "DescribeBudget, read through the spoke role, as budgetctl status reads them). "
    "AWS Budgets refreshes spend up to three times a day, typically 8 to 12 hours apart, "
    "so a figure can trail real usage by that much."
)


def report_row(line: AccountLine) -> dict[str, Any]:
    return {
        "AccountId": line.account_id,
        "Name": line.name or None,
        "BudgetLimit": money(line.limit),
        "ActualSpend": money(line.actual),
        "ForecastedSpend": money(line.forecast),
        "ActualPercent": _percent_text(line.actual_percent),
        "ForecastPercent": _percent_text(line.forecast_percent),
        "Level": line.level.value,
        "Status": line.status or None,
        "Drift": line.drift or None,
        "Reason": _reason(line) or None,
        "ReadAt": _time(line.read_at),
        "CostBasis": line.cost_basis or None,
        "Incident": line.incident or None,
    }


def summary(report: Report) -> str:
    """One line for stderr: the organisation's totals."""
    totals = report.totals
    return (
        f"{totals.accounts} account(s), {totals.charted} with a budget read: limits {money(totals.limit)}, "
        f"actual {money(totals.actual)} ({_percent_text(totals.actual_percent) or '—'} %), "
        f"forecast {money(totals.forecast)} ({_percent_text(totals.forecast_percent) or '—'} %); "
        f"over {totals.over}, near {totals.near}, failed {totals.failed}, drifted {totals.drifted}, "
        f"no data {totals.no_data}"
        + ("" if report.changes is None else f"; {len(report.changes)} change(s) this period")
    )


def render_html(report: Report, near_percent: Decimal) -> str:
    from jinja2 import Environment, PackageLoader, StrictUndefined
    from markupsafe import Markup

    environment = Environment(
        loader=PackageLoader("budgetctl.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["money"] = lambda value: money(value) or "—"
    environment.filters["percent"] = lambda value: "—" if value is None else f"{_percent_text(value)} %"
    environment.filters["time"] = _clock
    environment.filters["reason"] = _reason
    svg = chart_svg(report.lines, near_percent)
    return environment.get_template("report.html.j2").render(
        report=report,
        totals=report.totals,
        read_between=report.read_between,
        chart=Markup(svg),  # noqa: S704 - matplotlib's SVG of validated account ids, see chart.py
        cap_percent=CAP_PERCENT,
        near_percent=f"{near_percent:f}",
        period=report.generated_at.strftime("%B %Y"),
        levels=Level,
        source_note=SOURCE_NOTE,
    )


def money(value: Decimal | None) -> str | None:
    """USD with two decimals and thousands separators (1,250.50)."""
    if value is None:
        return None
    return f"{value.quantize(Decimal('0.01')):,.2f}"


def _percent_text(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:f}"


def _time(value: datetime | None) -> str | None:
    """ISO 8601 in UTC, to the second (2026-11-26T02:10:02+00:00)."""
    return None if value is None else value.astimezone(UTC).isoformat(timespec="seconds")


def _clock(value: datetime | None) -> str:
    """For people: 2026-11-26 02:10 UTC."""
    return "—" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _reason(line: AccountLine) -> str:
    """The line's reasons: the spoke's or the item's, then the status table's if it differs."""
    parts = [line.reason] if line.reason else []
    if line.status_reason and line.status_reason != line.reason:
        parts.append(f"status: {line.status_reason}")
    return "; ".join(parts)


__all__ = ["REPORT_BRIEF", "REPORT_COLUMNS", "render_html", "report_row", "summary"]
