"""CSV import and CSV/JSON export of the budgets table.

Import file: a header line with ``AccountId`` and ``BudgetValue`` (other columns, such as the
``UpdatedBy`` and ``UpdatedAt`` an export writes, are ignored), then one row per account.
Optional columns ``AlertEmails``, ``AlertThresholds``, ``ForecastedThreshold``, ``CostMetric``,
``CostExclusions`` (as an export writes them): a column the header names sets that attribute,
an empty cell removes it (the spoke stack's default); a column the header leaves out is not
touched.
A cell that an export guarded against spreadsheet formulas (``'+ops@example.com``) is read
without the guard (``budgetctl.output.csv_text``), so an export imports back exactly.
Every row is validated by the pipeline's own item contract (budget_sync.domain) before
anything is read from or written to AWS; each bad row is reported with its line number.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TextIO

from budget_sync.alerts import ALERT_FIELDS, alert_attributes, parse_alerts
from budget_sync.cost_basis import (
    COST_EXCLUSIONS_FIELD,
    COST_FIELDS,
    COST_METRIC_FIELD,
    cost_basis_attributes,
    own_attributes,
)
from budget_sync.domain import (
    ACCOUNT_ID_FIELD,
    BUDGET_VALUE_FIELD,
    format_amount,
    parse_account_id,
    parse_budget_text,
)
from budget_sync.errors import InvalidItemError
from budget_sync.incidents.lifecycle import INCIDENT_FIELDS, incident_attributes
from budgetctl.output import csv_cell, csv_text
from budgetctl.rows import incident_columns

EXPORT_COLUMNS = (
    ACCOUNT_ID_FIELD,
    BUDGET_VALUE_FIELD,
    "UpdatedBy",
    "UpdatedAt",
    *ALERT_FIELDS,
    *COST_FIELDS,
    *INCIDENT_FIELDS,
)


@dataclass(frozen=True, slots=True)
class Row:
    line: int
    account_id: str
    amount: Decimal
    #: the alert columns the file has: canonical text, None to remove (budget_sync.alerts)
    alerts: dict[str, object] = field(default_factory=dict)


@dataclass(slots=True)
class ParsedFile:
    rows: list[Row] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # e.g. which of an account's rows is kept


def parse_csv(stream: TextIO, source: str = "input") -> ParsedFile:
    """Validate every row; collect ``"FILE:LINE: reason"`` for each bad one."""
    parsed = ParsedFile()
    reader = csv.reader(stream)
    header: list[str] | None = None
    seen: dict[str, int] = {}
    for record in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in record):
            continue  # blank line
        if header is None:
            header = [cell.strip().lstrip("\ufeff") for cell in record]
            missing = [c for c in (ACCOUNT_ID_FIELD, BUDGET_VALUE_FIELD) if c not in header]
            if missing:
                parsed.errors.append(
                    f"{source}:{line}: the header must name the columns {ACCOUNT_ID_FIELD} and "
                    f"{BUDGET_VALUE_FIELD}; missing {', '.join(missing)} (header: {','.join(header)})"
                )
                return parsed
            continue
        if len(record) > len(header):
            parsed.errors.append(f"{source}:{line}: {len(record)} fields, the header has {len(header)}")
            continue
        cells = dict(zip(header, (csv_text(cell.strip()) for cell in record), strict=False))
        try:
            account_id = parse_account_id(cells.get(ACCOUNT_ID_FIELD, ""))
            amount = parse_budget_text(cells.get(BUDGET_VALUE_FIELD, ""), account_id)
            emails, thresholds, forecasted = (cells.get(c) if c in header else None for c in ALERT_FIELDS)
            alerts = alert_attributes(emails, thresholds, forecasted, account_id)
            metric, exclude = (
                cells.get(c) if c in header else None for c in (COST_METRIC_FIELD, COST_EXCLUSIONS_FIELD)
            )
            alerts.update(cost_basis_attributes(metric, exclude, account_id))
            alerts.update(
                incident_attributes({c: cells.get(c) for c in INCIDENT_FIELDS if c in header}, account_id)
            )
        except InvalidItemError as exc:
            parsed.errors.append(f"{source}:{line}: {exc}")
            continue
        if account_id in seen:
            parsed.notices.append(duplicate_notice(source, account_id, seen[account_id], line))
            parsed.rows = [row for row in parsed.rows if row.account_id != account_id]
        seen[account_id] = line
        parsed.rows.append(Row(line, account_id, amount, alerts))
    if header is None:
        parsed.errors.append(
            f"{source}: empty file; expected a header {ACCOUNT_ID_FIELD},{BUDGET_VALUE_FIELD}"
        )
    return parsed


def duplicate_notice(source: str, account_id: str, earlier: int, line: int) -> str:
    """An account listed twice: the last row wins, as the newest write does in the pipeline."""
    return (
        f"{source}:{line}: {ACCOUNT_ID_FIELD} {account_id!r} appears again (line {earlier}); "
        f"the last row, line {line}, is kept"
    )


def not_round_tripping(rows: Sequence[dict[str, str]], fmt: str) -> list[str]:
    """One line per exported row that `budgetctl import` would refuse, naming the account,
    the reason and where the row is in the file (CSV line, or JSON index)."""
    problems = []
    for index, row in enumerate(rows):
        try:
            parse_budget_text(row[BUDGET_VALUE_FIELD], parse_account_id(row[ACCOUNT_ID_FIELD]))
        except InvalidItemError as exc:
            where = f"item [{index}]" if fmt == "json" else f"line {index + 2}"
            problems.append(f"{where}: {exc}")
    return problems


def export_rows(items: Iterable[dict[str, Any]]) -> list[dict[str, str]]:
    """Items as export rows: amounts in canonical text, so that import reads them back equal."""
    rows = []
    for item in items:
        value = item.get(BUDGET_VALUE_FIELD)
        text = format_amount(value) if isinstance(value, Decimal) and _is_cents(value) else _raw(value)
        rows.append(
            {
                ACCOUNT_ID_FIELD: str(item.get(ACCOUNT_ID_FIELD, "")),
                BUDGET_VALUE_FIELD: text,
                "UpdatedBy": str(item.get("UpdatedBy", "")),
                "UpdatedAt": str(item.get("UpdatedAt", "")),
                **_alert_cells(item),
            }
        )
    return rows


def write_csv(rows: Sequence[dict[str, str]], stream: TextIO) -> None:
    writer = csv.DictWriter(stream, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows([{k: csv_cell(v) for k, v in row.items()} for row in rows])


def write_json(rows: Sequence[dict[str, str]], stream: TextIO) -> None:
    json.dump(list(rows), stream, indent=2)
    stream.write("\n")


def to_text(rows: Sequence[dict[str, str]], fmt: str) -> str:
    buffer = io.StringIO()
    (write_json if fmt == "json" else write_csv)(rows, buffer)
    return buffer.getvalue()


def _alert_cells(item: dict[str, Any]) -> dict[str, str]:
    incidents = {f: v or "" for f, v in incident_columns(item).items()}  # as stored if invalid
    try:
        settings = parse_alerts(own_attributes(item))  # what it inherits is not its own
        columns = {**settings.columns(), **settings.cost_basis.columns()}
    except ValueError:  # exported as stored; import reports it
        return {**{f: _raw(item.get(f)) for f in (*ALERT_FIELDS, *COST_FIELDS)}, **incidents}
    return {**{f: columns[f] or "" for f in (*ALERT_FIELDS, *COST_FIELDS)}, **incidents}


def _raw(value: object) -> str:
    return "" if value is None else str(value)


def _is_cents(value: object) -> bool:
    return isinstance(value, Decimal) and value.is_finite() and value == value.quantize(Decimal("0.01"))
