"""``status`` and ``reconcile``: desired value, spoke parameter and budget per account."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from budget_sync.reconcile import REPAIRABLE, AccountReport, Drift, read_desired, read_statuses
from budgetctl.alerts_view import add_alert_columns
from budgetctl.commands import Command
from budgetctl.context import Context
from budgetctl.errors import ExitCode
from budgetctl.rows import (
    ALERT_STATUS_COLUMNS,
    RECONCILE_COLUMNS,
    STATUS_COLUMNS,
    reconcile_row,
    status_row,
)

#: Accounts whose spoke is not read (no budget-sync item, or not in the organisation).
_NO_SPOKE = (Drift.NOT_MANAGED, Drift.NOT_IN_ORGANIZATION)


def register(command: Command) -> None:
    status = command("status", cmd_status, "per account: desired, parameter, budget, spend, drift")
    _accounts(status)

    reconcile = command("reconcile", cmd_reconcile, "show drift; with --apply, repair it")
    reconcile.add_argument("--apply", action="store_true", help="re-write the parameter where drifted")
    _accounts(reconcile)


def cmd_status(ctx: Context) -> int:
    reports = _inspect(ctx, apply=False)
    rows = [status_row(r) for r in reports]
    add_alert_columns(ctx, rows, {r.account_id for r in reports if r.drift not in _NO_SPOKE})
    ctx.out.rows(rows, (*STATUS_COLUMNS, *ALERT_STATUS_COLUMNS), title="budget-sync status")
    _summary(ctx, reports)
    return ExitCode.OK if all(r.drift is Drift.IN_SYNC for r in reports) else ExitCode.PROBLEM


def cmd_reconcile(ctx: Context) -> int:
    reports = _inspect(ctx, apply=ctx.args.apply)
    ctx.out.rows([reconcile_row(r) for r in reports], RECONCILE_COLUMNS, title="budget-sync reconcile")
    _summary(ctx, reports)
    if not ctx.args.apply and any(r.drift in REPAIRABLE for r in reports):
        ctx.out.info("run `budgetctl reconcile --apply` to repair the drifted accounts")
    return ExitCode.OK if all(r.ok for r in reports) else ExitCode.PROBLEM


def _inspect(ctx: Context, apply: bool) -> list[AccountReport]:
    args = ctx.args
    items = read_desired(ctx.dynamodb, args.table)
    statuses = read_statuses(ctx.dynamodb, args.status_table)
    if args.account:
        wanted = set(args.account)
        items = [i for i in items if i.account_id in wanted]
        missing = wanted - {i.account_id for i in items}
        for account in sorted(missing):
            ctx.out.error(f"no item for account {account} in {args.table}")
    outside: list[AccountReport] = []
    unmanaged: list[AccountReport] = []
    if args.org:
        organisation = ctx.organisation_accounts()
        outside = [
            AccountReport(
                i.account_id,
                Drift.NOT_IN_ORGANIZATION,
                desired=i.value,
                reason="not an account of the organisation",
            )
            for i in items
            if i.account_id not in organisation
        ]
        items = [i for i in items if i.account_id in organisation]
        with_item = {i.account_id for i in items} | {r.account_id for r in outside}
        unmanaged = [
            AccountReport(
                account, Drift.NOT_MANAGED, reason=f"{name or 'account'} has no item in {args.table}"
            )
            for account, name in sorted(organisation.items())
            if account not in with_item and not args.account
        ]
    reconciler = ctx.reconciler(apply)
    with ctx.out.progress("reading spoke accounts", len(items)) as advance:
        summary = reconciler.run(items, statuses, apply=apply, on_account=lambda _: advance(1))
    return sorted([*summary.reports, *outside, *unmanaged], key=lambda r: r.account_id)


def _summary(ctx: Context, reports: Sequence[AccountReport]) -> None:
    counts: dict[str, int] = {}
    for report in reports:
        counts[report.drift.value] = counts.get(report.drift.value, 0) + 1
    repaired = sum(1 for r in reports if r.action.value == "REPAIRED")
    text = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "no accounts"
    ctx.out.info(f"{len(reports)} account(s): {text}" + (f"; repaired {repaired}" if repaired else ""))


def _accounts(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--org", action="store_true", help="also list organisation accounts without an item")
    sub.add_argument("--account", action="append", default=[], metavar="ACCOUNT", help="only these (repeat)")
