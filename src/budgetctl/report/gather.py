"""Read what the report shows, through the paths that already exist.

* the budgets table and the status table: one ``Scan`` each (``budget_sync.budgets_table``,
  ``budget_sync.status_table``);
* every item's spoke: the reconciler's own inspection (``Reconciler.run`` without ``apply``),
  which reads the parameter and the budget (limit, actual and forecasted spend) through the
  spoke role: ``sts:AssumeRole``, ``ssm:GetParameter``, ``budgets:DescribeBudget``;
* account names: ``organizations:ListAccounts`` when the caller may (the management account
  or a delegated administrator); otherwise the page says names are unavailable and why;
* the changes this period: the history table (``--history-table``), one Query per day since
  the first of the month on its ``ByDay`` index; if it cannot be read (a stack without it,
  no ``dynamodb:Query``), the page says so and why, and shows the rest.
* each account's open ServiceNow incident, if the optional incidents are deployed: one
  ``Scan`` of the incidents table (budgetctl.incidents_view); unreadable, the page says why.

A spoke that cannot be read is an ``UNREACHABLE`` report with its reason (the reconciler
never raises for one account), so it becomes a line of the report, not a gap.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

from botocore.exceptions import BotoCoreError, ClientError

from budget_sync.budgets_table import read_desired
from budget_sync.errors import TransientError
from budget_sync.history import Settled, settled_changes
from budget_sync.history_table import DynamoHistoryTable
from budget_sync.reconcile import AccountReport
from budget_sync.status_table import read_statuses
from budgetctl.context import Context
from budgetctl.incidents_view import incident_numbers
from budgetctl.report.model import Report, build_report


def gather(
    ctx: Context,
    near_percent: Decimal,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Report:
    args = ctx.args
    notes: list[str] = []
    items = read_desired(ctx.dynamodb, args.table)
    statuses = read_statuses(ctx.dynamodb, args.status_table)
    names: dict[str, str] = {}
    try:
        names = ctx.organisation_accounts()
    except (ClientError, BotoCoreError) as exc:
        note = f"Account names are not shown: organizations:ListAccounts failed ({_error_text(exc)})."
        notes.append(note)
        ctx.out.info(note)

    incidents, note = incident_numbers(ctx)
    if note:
        notes.append(note)
        ctx.out.info(note)

    read_at: dict[str, datetime] = {}
    lock = threading.Lock()
    reconciler = ctx.reconciler()
    with ctx.out.progress("reading spoke budgets", len(items)) as advance:

        def done(report: AccountReport) -> None:
            with lock:
                read_at[report.account_id] = clock()
            advance(1)

        summary = reconciler.run(items, statuses, apply=False, on_account=done)
    changes = this_period(ctx, clock(), notes)
    return build_report(
        summary.reports,
        statuses,
        names,
        read_at,
        generated_at=clock(),
        budget_name=args.budget_name,
        organisation=names,
        near_percent=near_percent,
        notes=notes,
        changes=changes,
        incidents=incidents,
    )


def this_period(ctx: Context, now: datetime, notes: list[str]) -> list[Settled] | None:
    """The changes since the first day of ``now``'s month (UTC), each with its outcome; None
    (and a note saying why) when the history table cannot be read."""
    table = DynamoHistoryTable(ctx.dynamodb, ctx.args.history_table, retention_days=0)
    try:
        records = table.since(now.date().replace(day=1), now.date())
    except TransientError as exc:
        note = f"Changes this period are not shown: the history table could not be read ({exc})."
        notes.append(note)
        ctx.out.info(note)
        return None
    return settled_changes(records)


def _error_text(exc: ClientError | BotoCoreError) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', '?')}: {error.get('Message', '')}"
    return str(exc)
