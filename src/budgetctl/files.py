"""CSV import and CSV/JSON export of the budgets table.

Import file: a header line with ``AccountId`` and ``BudgetValue`` (other columns, such as the
``UpdatedBy`` and ``UpdatedAt`` an export writes, are ignored), then one row per account.
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

from budget_sync.domain import (
    ACCOUNT_ID_FIELD,
    BUDGET_VALUE_FIELD,
    format_amount,
    parse_account_id,
    parse_budget_text,
)
from budget_sync.errors import InvalidItemError
from budgetctl.output import csv_cell

EXPORT_COLUMNS = (ACCOUNT_ID_FIELD, BUDGET_VALUE_FIELD, "UpdatedBy", "UpdatedAt")


@dataclass(frozen=True, slots=True)
class Row:
    line: int
    account_id: str
    amount: Decimal


@dataclass(slots=True)
class ParsedFile:
    rows: list[Row] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


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
        cells = dict(zip(header, (cell.strip() for cell in record), strict=False))
        try:
            account_id = parse_account_id(cells.get(ACCOUNT_ID_FIELD, ""))
            amount = parse_budget_text(cells.get(BUDGET_VALUE_FIELD, ""), account_id)
        except InvalidItemError as exc:
            parsed.errors.append(f"{source}:{line}: {exc}")
            continue
        if account_id in seen:
            parsed.errors.append(
                f"{source}:{line}: {ACCOUNT_ID_FIELD} {account_id!r} appears again (first on line {seen[account_id]})"
            )
            continue
        seen[account_id] = line
        parsed.rows.append(Row(line, account_id, amount))
    if header is None:
        parsed.errors.append(
            f"{source}: empty file; expected a header {ACCOUNT_ID_FIELD},{BUDGET_VALUE_FIELD}"
        )
    return parsed


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


def _raw(value: object) -> str:
    return "" if value is None else str(value)


def _is_cents(value: object) -> bool:
    return isinstance(value, Decimal) and value.is_finite() and value == value.quantize(Decimal("0.01"))
