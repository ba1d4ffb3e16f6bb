"""``import`` and ``export``: the budgets table as a file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from budget_sync.domain import (
    ACCOUNT_ID_FIELD,
    BUDGET_VALUE_FIELD,
    format_amount,
    parse_account_id,
    parse_budget_text,
)
from budget_sync.errors import InvalidItemError
from budget_sync.org import INHERITED_FROM_FIELD
from budgetctl.commands import Command
from budgetctl.context import Context
from budgetctl.errors import ExitCode, UsageError
from budgetctl.files import export_rows, parse_csv, to_text
from budgetctl.rows import (
    amount_text,
)
from budgetctl.table import Write, values_of


def register(command: Command) -> None:
    import_ = command("import", cmd_import, "write budgets from a CSV file (AccountId,BudgetValue)")
    import_.add_argument("file", metavar="FILE.csv", help="'-' reads stdin")
    import_.add_argument("--dry-run", action="store_true", help="show the difference, write nothing")
    import_.add_argument("--skip-invalid", action="store_true", help="write the valid rows despite bad ones")

    export = command("export", cmd_export, "write the budgets table as CSV or JSON")
    export.add_argument("--format", choices=("csv", "json"), default="csv")
    export.add_argument("--file", metavar="PATH", help="write here instead of stdout")


def cmd_import(ctx: Context) -> int:
    args = ctx.args
    parsed = _read_import(args.file)
    for error in parsed.errors:
        ctx.out.error(error)
    if parsed.errors and not args.skip_invalid:
        raise UsageError(
            f"{len(parsed.errors)} bad row(s) in {args.file}; nothing written "
            "(fix them, or pass --skip-invalid to write the valid rows)"
        )
    current = values_of(ctx.table.scan())
    writes: list[Write] = []
    diff: list[dict[str, Any]] = []
    unchanged = 0
    for row in parsed.rows:
        previous = current.get(row.account_id)
        before = previous.get(BUDGET_VALUE_FIELD) if previous else None
        if before == row.amount:
            unchanged += 1
            continue
        writes.append(Write(row.account_id, row.amount, previous))
        diff.append(
            {
                "Line": row.line,
                "AccountId": row.account_id,
                "Change": "CHANGE" if previous else "ADD",
                "From": amount_text(before),
                "To": format_amount(row.amount),
            }
        )
    ctx.out.rows(
        diff,
        ("Line", "AccountId", "Change", "From", "To"),
        title="import" + (" (dry run)" if args.dry_run else ""),
    )
    added = sum(1 for d in diff if d["Change"] == "ADD")
    summary = f"{added} to add, {len(diff) - added} to change, {unchanged} unchanged"
    if parsed.errors:
        summary += f", {len(parsed.errors)} bad row(s) skipped"
    if args.dry_run or not writes:
        ctx.out.info(f"{summary}; nothing written" + (" (dry run)" if args.dry_run else ""))
        return ExitCode.OK
    with ctx.out.progress("writing", len(writes)) as advance:
        conflicts = ctx.table.write_many(writes, advance)
    for _, message in conflicts:
        ctx.out.error(message)
    ctx.out.info(f"{summary}; written {len(writes) - len(conflicts)}, conflicts {len(conflicts)}")
    return ExitCode.CONFLICT if conflicts else ExitCode.OK


def cmd_export(ctx: Context) -> int:
    # Inherited items are derived from the defaults (``budgetctl default export``): imported
    # back they would become explicit and stop following their OU's default.
    scanned = ctx.table.scan()
    items = [i for i in scanned if INHERITED_FROM_FIELD not in i]
    if len(items) < len(scanned):
        ctx.out.info(
            f"{len(scanned) - len(items)} inherited item(s) left out (they follow OU defaults: "
            "budgetctl default export)"
        )
    rows = export_rows(items)
    for row in rows:
        try:
            parse_budget_text(row[BUDGET_VALUE_FIELD], parse_account_id(row[ACCOUNT_ID_FIELD]))
        except InvalidItemError as exc:
            ctx.out.info(f"warning: exported an item that breaks the contract ({exc})")
    text = to_text(rows, ctx.args.format)
    if ctx.args.file:
        Path(ctx.args.file).write_text(text, encoding="utf-8")
        ctx.out.info(f"exported {len(rows)} item(s) to {ctx.args.file}")
    else:
        ctx.out.stdout.write(text)
    return ExitCode.OK


def _read_import(name: str) -> Any:
    if name == "-":
        return parse_csv(sys.stdin, "stdin")
    path = Path(name)
    try:
        with path.open(newline="", encoding="utf-8-sig") as stream:
            return parse_csv(stream, path.name)
    except OSError as exc:
        raise UsageError(f"cannot read {name!r}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"{name!r} is not UTF-8 text: {exc}") from exc
