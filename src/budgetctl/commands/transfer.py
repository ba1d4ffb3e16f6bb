"""``import`` and ``export``: the budgets table as a file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from budget_sync.domain import (
    BUDGET_VALUE_FIELD,
    amount_text,
    format_amount,
)
from budget_sync.effective_budget import INHERITED_FROM_FIELD
from budgetctl.budgets_table import InterruptedWriteError, PartialWriteError, Write, values_of
from budgetctl.commands import Command
from budgetctl.commands.approvals import add_stack_name, held_notice
from budgetctl.commands.items import check_members, outside_organization
from budgetctl.context import OUTSIDE_HINT, Context
from budgetctl.errors import ExitCode, UsageError
from budgetctl.files import export_rows, not_round_tripping, parse_csv, to_text
from budgetctl.rows import alert_columns


def register(command: Command) -> None:
    import_ = command("import", cmd_import, "write budgets from a CSV file (AccountId,BudgetValue)")
    import_.add_argument("file", metavar="FILE.csv", help="'-' reads stdin")
    import_.add_argument("--dry-run", action="store_true", help="show the difference, write nothing")
    import_.add_argument(
        "--skip-invalid",
        action="store_true",
        help="write the valid rows despite bad ones (rows for accounts outside the organisation included)",
    )
    outside_organization(import_)
    add_stack_name(import_)

    export = command("export", cmd_export, "write the budgets table as CSV or JSON")
    export.add_argument(
        "--format", choices=("csv", "json"), default=None, help="default: json with --output json, else csv"
    )
    export.add_argument("--file", metavar="PATH", help="write here instead of stdout")


def cmd_import(ctx: Context) -> int:
    args = ctx.args
    parsed = _read_import(args.file)
    _check_import(ctx, parsed)
    writes, diff, unchanged = _plan_import(values_of(ctx.table.scan()), parsed.rows)
    ctx.out.rows(
        diff,
        ("Line", "AccountId", "Change", "From", "To", "Attributes"),
        title="import" + (" (dry run)" if args.dry_run else ""),
    )
    added = sum(1 for d in diff if d["Change"] == "ADD")
    summary = f"{added} to add, {len(diff) - added} to change, {unchanged} unchanged"
    if parsed.errors:
        summary += f", {len(parsed.errors)} bad row(s) skipped"
    if args.dry_run or not writes:
        ctx.out.info(f"{summary}; nothing written" + (" (dry run)" if args.dry_run else ""))
        return skipped_exit(parsed.errors)
    lines = {d["AccountId"]: d["Line"] for d in diff}
    try:
        with ctx.out.progress("writing", len(writes)) as advance:
            conflicts = ctx.table.write_many(writes, advance)
    except PartialWriteError as stopped:
        _report_partial(ctx, stopped, lines)
        raise
    except InterruptedWriteError as interrupted:
        _report_interrupted(ctx, interrupted, lines)
        raise
    for _, message in conflicts:
        ctx.out.error(message)
    ctx.out.info(f"{summary}; written {len(writes) - len(conflicts)}, conflicts {len(conflicts)}")
    refused = {id(write) for write, _ in conflicts}
    held_notice(
        ctx, [(w.account_id, w.amount) for w in writes if id(w) not in refused and w.amount is not None]
    )
    return ExitCode.CONFLICT if conflicts else skipped_exit(parsed.errors)


def _check_import(ctx: Context, parsed: Any) -> None:
    """Every bad row printed; UsageError unless --skip-invalid (then the valid rows remain)."""
    args = ctx.args
    # The file's own errors refuse it before any AWS call; then its accounts are checked
    # against the organisation (one ListAccounts walk) before anything is written.
    if not parsed.errors or args.skip_invalid:
        outside = set(check_members(ctx, [row.account_id for row in parsed.rows]))
        parsed.errors.extend(
            f"{args.file}:{row.line}: AccountId {row.account_id!r} is not an account of this organisation"
            for row in parsed.rows
            if row.account_id in outside
        )
        parsed.rows = [row for row in parsed.rows if row.account_id not in outside]
        if outside:
            parsed.notices.append(OUTSIDE_HINT)
    for error in parsed.errors:
        ctx.out.error(error)
    for notice in parsed.notices:
        ctx.out.info(notice)
    if parsed.errors and not args.skip_invalid:
        raise UsageError(
            f"{len(parsed.errors)} bad row(s) in {args.file}; nothing written "
            "(fix them, or pass --skip-invalid to write the valid rows)"
        )


def _plan_import(current: dict[str, Any], rows: list[Any]) -> tuple[list[Write], list[dict[str, Any]], int]:
    """(the writes, the diff shown, how many rows are unchanged) of the rows against the table."""
    writes: list[Write] = []
    diff: list[dict[str, Any]] = []
    unchanged = 0
    for row in rows:
        previous = current.get(row.account_id)
        before = previous.get(BUDGET_VALUE_FIELD) if previous else None
        current_alerts = alert_columns(previous) if previous else {}
        explicit = not (previous or {}).get(INHERITED_FROM_FIELD)  # an inherited item becomes the operator's
        if (
            explicit
            and before == row.amount
            and all(current_alerts.get(f) == t for f, t in row.alerts.items())
        ):
            unchanged += 1
            continue
        writes.append(Write(row.account_id, row.amount, previous, alerts=row.alerts))
        diff.append(
            {
                "Line": row.line,
                "AccountId": row.account_id,
                "Change": "CHANGE" if previous else "ADD",
                "From": amount_text(before),
                "To": format_amount(row.amount),
                "Attributes": attribute_changes(previous, row.alerts),
            }
        )
    return writes, diff, unchanged


def skipped_exit(errors: list[str]) -> ExitCode:
    """--skip-invalid that skipped rows is a problem a script must see (exit 1), not success."""
    return ExitCode.PROBLEM if errors else ExitCode.OK


def export_format(given: str | None, output: str) -> str:
    """--format, else JSON when the output asked for is JSON, else CSV (what import reads)."""
    return given or ("json" if output == "json" else "csv")


def _report_partial(ctx: Context, stopped: PartialWriteError, lines: dict[str, int]) -> None:
    """Exactly which rows were written and which were not, by line; re-running is safe."""
    for label, writes in (("written", stopped.written), ("NOT written", stopped.unwritten)):
        for write in writes:
            ctx.out.info(f"{label}: line {lines.get(write.account_id, '?')} account {write.account_id}")
    ctx.out.info(
        f"{len(stopped.written)} row(s) written, {len(stopped.unwritten)} not written. Running the "
        "same import again is safe: written rows are now unchanged and skipped, the rest are written."
    )


def _report_interrupted(ctx: Context, stopped: InterruptedWriteError, lines: dict[str, int]) -> None:
    """Ctrl-C during an import: the rows written, those in flight, those not sent, by line."""
    groups = (
        ("written", stopped.written),
        ("in flight (written or not: `budgetctl get` tells)", stopped.in_flight),
        ("NOT written", stopped.unsent),
    )
    for label, writes in groups:
        if writes:
            shown = ", ".join(str(lines.get(w.account_id, "?")) for w in writes)
            ctx.out.info(f"{label}: {len(writes)} row(s), line(s) {shown}")
    ctx.out.info(
        f"interrupted: {len(stopped.written)} row(s) written, {len(stopped.in_flight)} in flight, "
        f"{len(stopped.unsent)} not written. Running the same import again is safe: written rows "
        "are now unchanged and skipped, the rest are written."
    )


def attribute_changes(previous: dict[str, Any] | None, alerts: dict[str, object]) -> str | None:
    """Every attribute besides BudgetValue that the write changes: the alert columns of the row
    (an empty cell removes the account's own setting: the spoke stack's default applies) and an
    inherited item becoming the account's own."""
    current = alert_columns(previous) if previous else {}
    changes = [
        f"{field} {current.get(field) or '(default)'} -> {text or '(default)'}"
        for field, text in alerts.items()
        if current.get(field) != text
    ]
    if previous and previous.get(INHERITED_FROM_FIELD):
        changes.append(f"{INHERITED_FROM_FIELD} {previous[INHERITED_FROM_FIELD]} -> (own item)")
    return "; ".join(changes) or None


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
    fmt = export_format(ctx.args.format, ctx.args.output)
    _warn_round_trip(ctx, not_round_tripping(rows, fmt), len(rows), fmt)
    text = to_text(rows, fmt)
    if ctx.args.file:
        Path(ctx.args.file).write_text(text, encoding="utf-8")
        ctx.out.info(f"exported {len(rows)} item(s) to {ctx.args.file}")
    else:
        ctx.out.stdout.write(text)
    return ExitCode.OK


def _warn_round_trip(ctx: Context, problems: list[str], total: int, fmt: str) -> None:
    """What of this export `budgetctl import` will not take back, precisely."""
    for problem in problems:
        ctx.out.info(f"warning: will not import back: {problem}")
    if problems:
        ctx.out.info(
            f"warning: {len(problems)} of {total} exported item(s) break the item contract: "
            "`budgetctl import` refuses the file (exit 2), or with --skip-invalid writes the others "
            "and leaves these as they are"
        )
    if fmt == "json":
        ctx.out.info("note: `budgetctl import` reads CSV; export without --format json to import it back")


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
