"""Read what the report shows, through the paths that already exist.

* the budgets table and the status table: one ``Scan`` each (``budget_sync.budgets_table``,
  ``budget_sync.status_table``);
* every item's spoke: the reconciler's own inspection (``Reconciler.run`` without ``apply``),
  which reads the parameter and the budget (limit, actual and forecasted spend) through the
  spoke role: ``sts:AssumeRole``, ``ssm:GetParameter``, ``budgets:DescribeBudget``;
* account names: ``organizations:ListAccounts`` when the caller may (the management account
  or a delegated administrator); otherwise the page says names are unavailable and why;
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
        incidents=incidents,
    )


def _error_text(exc: ClientError | BotoCoreError) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', '?')}: {error.get('Message', '')}"
    return str(exc)
