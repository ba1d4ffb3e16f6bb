"""``report``: every account's limit, spend and forecast, and the pipeline's health; as text
rows (``--output``) or as one self-contained HTML page (``--file report.html``)."""

from __future__ import annotations

import importlib.util
import os
from decimal import Decimal, InvalidOperation
from pathlib import Path

from budget_sync.config import TABLE_NAME
from budgetctl.commands import Command, add_wide
from budgetctl.commands.history import DEFAULT_HISTORY_TABLE
from budgetctl.context import Context
from budgetctl.errors import ExitCode, UsageError
from budgetctl.incidents_view import add_incidents_table_option
from budgetctl.report.model import DEFAULT_NEAR_PERCENT


def register(command: Command) -> None:
    report = command(
        "report", cmd_report, "every account's limit, spend and forecast; with --file, an HTML page"
    )
    report.add_argument(
        "--file", metavar="PATH", help="write the HTML page here (self-contained, opens offline)"
    )
    report.add_argument(
        "--near",
        metavar="PERCENT",
        default=str(DEFAULT_NEAR_PERCENT),
        help=f"forecast share of the limit from which an account is 'near' ({DEFAULT_NEAR_PERCENT})",
    )
    report.add_argument(
        "--history-table",
        default=DEFAULT_HISTORY_TABLE,
        help=f"the history table, for the changes this period ({DEFAULT_HISTORY_TABLE})",
    )
    add_wide(report)
    add_incidents_table_option(report)


def cmd_report(ctx: Context) -> int:
    # Imported here: the other commands do not pay for Jinja2 and matplotlib.
    from budgetctl.report.gather import gather
    from budgetctl.report.render import REPORT_BRIEF, REPORT_COLUMNS, render_html, report_row, summary

    near = _near(ctx.args.near)
    if not TABLE_NAME.fullmatch(ctx.args.history_table):
        raise UsageError(f"--history-table {ctx.args.history_table!r} is not valid")
    if ctx.args.file:
        _require("jinja2", "matplotlib")
    target = Path(ctx.args.file) if ctx.args.file else None
    if target is not None and not target.parent.is_dir():
        raise UsageError(f"--file {ctx.args.file!r}: the folder {str(target.parent)!r} does not exist")
    report = gather(ctx, near)
    if target is None:
        ctx.out.rows(
            [report_row(line) for line in report.lines],
            REPORT_COLUMNS,
            title="budget-sync report",
            brief=REPORT_BRIEF,
        )
    else:
        _write(target, render_html(report, near))
        ctx.out.info(f"wrote {target} ({len(report.lines)} accounts)")
    ctx.out.info(summary(report))
    return ExitCode.PROBLEM if report.attention else ExitCode.OK


def _require(*modules: str) -> None:
    """The page's libraries are an extra (``report``): say how to get them, before any AWS call."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(
            f"--file needs {', '.join(missing)}: pip install 'budget-sync[report]' (make venv installs it)"
        )


def _near(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise UsageError(f"--near {text!r} is not a number") from None
    if not value.is_finite() or not 0 < value <= 100:
        raise UsageError(f"--near {text!r} must be a percentage above 0 and at most 100")
    return value


def _write(target: Path, text: str) -> None:
    """Write the whole page or nothing: a reader never opens half a file."""
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")  # created with the umask's mode
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
