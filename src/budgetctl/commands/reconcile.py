"""``reconcile``: the drift ``status`` finds, as the reconciler classifies it; with ``--apply``,
repaired by budget-sync's reconciler function (budgetctl.repair)."""

from __future__ import annotations

from budget_sync.budgets_table import read_desired
from budget_sync.reconcile import REPAIRABLE, Drift
from budget_sync.requested import report_fields
from budget_sync.status_table import read_statuses
from budgetctl.commands import Command
from budgetctl.context import Context
from budgetctl.errors import ExitCode
from budgetctl.inspection import (
    add_account_options,
    inspect,
    missing_accounts,
    only_wanted,
    organisation_rows,
    summary,
)
from budgetctl.repair import invoke_reconciler
from budgetctl.rows import RECONCILE_COLUMNS


def register(command: Command) -> None:
    reconcile = command("reconcile", cmd_reconcile, "show drift; with --apply, repair it")
    reconcile.add_argument(
        "--apply",
        action="store_true",
        help="have the reconciler function repair the drifted accounts (recorded as asked by you)",
    )
    add_account_options(reconcile)


def cmd_reconcile(ctx: Context) -> int:
    if ctx.args.apply:
        return _apply(ctx)
    reports = inspect(ctx)
    ctx.out.rows([report_fields(r) for r in reports], RECONCILE_COLUMNS, title="budget-sync reconcile")
    summary(ctx, reports)
    if not ctx.args.apply and any(r.drift in REPAIRABLE for r in reports):
        ctx.out.info("run `budgetctl reconcile --apply` to repair the drifted accounts")
    return (
        ExitCode.OK if all(r.ok for r in reports) and not missing_accounts(ctx, reports) else ExitCode.PROBLEM
    )


def _apply(ctx: Context) -> int:
    """The repair by budget-sync's reconciler function (budgetctl.repair), shown as a table."""
    items = only_wanted(ctx, read_desired(ctx.dynamodb, ctx.args.table))
    statuses = read_statuses(ctx.dynamodb, ctx.args.status_table) if ctx.args.org else {}
    items, outside, unmanaged = organisation_rows(ctx, items, statuses)
    accounts = [i.account_id for i in items] if (ctx.args.account or ctx.args.org) else []
    if (ctx.args.account or ctx.args.org) and not accounts:
        rows = []
    else:
        result = invoke_reconciler(ctx, accounts)
        rows = list(result["reports"])
        for account in result.get("missing", []):
            ctx.out.error(f"no item for account {account} in {ctx.args.table}")
    rows += [report_fields(r) for r in [*outside, *unmanaged]]
    rows.sort(key=lambda r: str(r.get("AccountId")))
    ctx.out.rows(rows, RECONCILE_COLUMNS, title="budget-sync reconcile (by the reconciler function)")
    counts: dict[str, int] = {}
    for row in rows:
        counts[str(row.get("Drift"))] = counts.get(str(row.get("Drift")), 0) + 1
    repaired = sum(1 for r in rows if r.get("Action") == "REPAIRED")
    text = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "no accounts"
    ctx.out.info(f"{len(rows)} account(s): {text}" + (f"; repaired {repaired}" if repaired else ""))
    ok = all(r.get("Drift") == Drift.IN_SYNC.value or r.get("Action") == "REPAIRED" for r in rows)
    missing = [a for a in ctx.args.account if a not in {str(r.get("AccountId")) for r in rows}]
    return ExitCode.OK if ok and not missing else ExitCode.PROBLEM
