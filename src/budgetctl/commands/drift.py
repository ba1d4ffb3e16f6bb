"""``status`` and ``reconcile``: desired value, spoke parameter and budget per account."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from budget_sync.budgets_table import read_desired
from budget_sync.domain import ACCOUNT_ID_FIELD
from budget_sync.effective_budget import INHERITED_FROM_FIELD
from budget_sync.observability import logger
from budget_sync.organizations import OrganizationsReader
from budget_sync.reconcile import REPAIRABLE, AccountReport, DesiredItem, Drift
from budget_sync.requested import report_fields
from budget_sync.status import Status
from budget_sync.status_scan import read_statuses
from budgetctl.alerts_view import add_alert_columns
from budgetctl.commands import Command, add_wide
from budgetctl.context import Context
from budgetctl.errors import ExitCode
from budgetctl.repair import invoke_reconciler
from budgetctl.rows import (
    ALERT_STATUS_COLUMNS,
    RECONCILE_COLUMNS,
    STATUS_BRIEF,
    STATUS_COLUMNS,
    STATUS_WIDE,
    status_row,
)

#: Accounts whose spoke is not read (no budget-sync item, or not in the organisation).
_NO_SPOKE = (Drift.NOT_MANAGED, Drift.NOT_IN_ORGANIZATION)
#: What ``status`` exits 1 for, as ``report`` does (budgetctl.report.model): a failure (the last
#: status FAILED, a spoke that cannot be read, an item breaking the contract), a drift the
#: reconciler repairs, or a row for no account of the organisation (``delete --stale`` clears
#: it). An account without an item (NOT_MANAGED, the management account included) is no problem.
_PROBLEMS = frozenset({*REPAIRABLE, Drift.UNREACHABLE, Drift.INVALID_ITEM, Drift.NOT_IN_ORGANIZATION})


def needs_attention(report: AccountReport) -> bool:
    return report.drift in _PROBLEMS or report.last_status == Status.FAILED


def register(command: Command) -> None:
    status = command("status", cmd_status, "per account: desired, parameter, budget, spend, drift")
    _accounts(status)
    add_wide(status)

    reconcile = command("reconcile", cmd_reconcile, "show drift; with --apply, repair it")
    reconcile.add_argument(
        "--apply",
        action="store_true",
        help="have the reconciler function repair the drifted accounts (recorded as asked by you)",
    )
    _accounts(reconcile)


def cmd_status(ctx: Context) -> int:
    # With --org the organisation must be read (an error if it cannot); without, only for names.
    names = ctx.organisation_accounts() if ctx.args.org else _account_names(ctx)
    reports = _inspect(ctx, names)
    sources = _sources(ctx, reports)
    rows = [status_row(r, sources.get(r.account_id), names.get(r.account_id)) for r in reports]
    add_alert_columns(ctx, rows, {r.account_id for r in reports if r.drift not in _NO_SPOKE})
    ctx.out.rows(
        rows,
        (*STATUS_COLUMNS, *ALERT_STATUS_COLUMNS),
        title="budget-sync status",
        brief=STATUS_BRIEF,
        wide=STATUS_WIDE,
    )
    _summary(ctx, reports)
    missing = _missing(ctx, reports)
    return ExitCode.PROBLEM if missing or any(needs_attention(r) for r in reports) else ExitCode.OK


def _missing(ctx: Context, reports: Sequence[AccountReport]) -> list[str]:
    """The --account accounts that have no row (each was named on stderr: ``no item ...``)."""
    shown = {r.account_id for r in reports}
    return [a for a in ctx.args.account if a not in shown]


def cmd_reconcile(ctx: Context) -> int:
    if ctx.args.apply:
        return _apply(ctx)
    reports = _inspect(ctx)
    ctx.out.rows([report_fields(r) for r in reports], RECONCILE_COLUMNS, title="budget-sync reconcile")
    _summary(ctx, reports)
    if not ctx.args.apply and any(r.drift in REPAIRABLE for r in reports):
        ctx.out.info("run `budgetctl reconcile --apply` to repair the drifted accounts")
    return ExitCode.OK if all(r.ok for r in reports) and not _missing(ctx, reports) else ExitCode.PROBLEM


def _apply(ctx: Context) -> int:
    """The repair by budget-sync's reconciler function (budgetctl.repair), shown as a table."""
    items = _wanted(ctx, read_desired(ctx.dynamodb, ctx.args.table))
    statuses = read_statuses(ctx.dynamodb, ctx.args.status_table) if ctx.args.org else {}
    items, outside, unmanaged = _organisation(ctx, items, statuses)
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


def _account_names(ctx: Context) -> dict[str, str]:
    """The organisation's account names (``organizations:ListAccounts``); none where the
    caller may not list the accounts (the Name column stays empty, nothing else changes)."""
    try:
        return ctx.organisation_accounts()
    except (ClientError, BotoCoreError) as exc:
        logger.info("account names not read", extra={"error": str(exc)})
        return {}


def _wanted(ctx: Context, items: list[DesiredItem]) -> list[DesiredItem]:
    """Only the --account accounts (if given), each missing one named."""
    if not ctx.args.account:
        return items
    wanted = set(ctx.args.account)
    missing = wanted - {i.account_id for i in items}
    for account in sorted(missing):
        ctx.out.error(f"no item for account {account} in {ctx.args.table}")
    return [i for i in items if i.account_id in wanted]


def _inspect(ctx: Context, organisation: Mapping[str, str] | None = None) -> list[AccountReport]:
    args = ctx.args
    items = _wanted(ctx, read_desired(ctx.dynamodb, args.table))
    statuses = read_statuses(ctx.dynamodb, args.status_table)
    items, outside, unmanaged = _organisation(ctx, items, statuses, organisation)
    reconciler = ctx.reconciler()
    with ctx.out.progress("reading spoke accounts", len(items)) as advance:
        summary = reconciler.run(items, statuses, on_account=lambda _: advance(1))
    return sorted([*summary.reports, *outside, *unmanaged], key=lambda r: r.account_id)


def _organisation(
    ctx: Context,
    items: list[DesiredItem],
    statuses: Mapping[str, Mapping[str, Any]],
    accounts: Mapping[str, str] | None = None,
) -> tuple[list[DesiredItem], list[AccountReport], list[AccountReport]]:
    """With --org: the items inside the organisation, those outside, the accounts without one.

    Every key of the status table is a row too, as in ``report``: a status row whose key is no
    account of the organisation (a malformed item written by hand, an account that left) is
    NOT_IN_ORGANIZATION, and ``budgetctl delete --stale KEY`` removes it.

    ``accounts``: the organisation's accounts if already read (ListAccounts once per command)."""
    args = ctx.args
    outside: list[AccountReport] = []
    unmanaged: list[AccountReport] = []
    if args.org:
        organisation = ctx.organisation_accounts() if accounts is None else accounts
        outside = [
            AccountReport(
                i.account_id,
                Drift.NOT_IN_ORGANIZATION,
                desired=i.value,
                reason=(f"{i.error}; " if i.error else "")
                + f"not an account of the organisation (`budgetctl delete --stale {i.account_id}` removes it)",
                last_status=str((statuses.get(i.account_id) or {}).get("Status", "")),
            )
            for i in items
            if i.account_id not in organisation
        ]
        items = [i for i in items if i.account_id in organisation]
        with_item = {i.account_id for i in items} | {r.account_id for r in outside}
        unmanaged = [
            _not_managed(account, name, args.table, statuses.get(account))
            for account, name in sorted(organisation.items())
            if account not in with_item and not args.account
        ]
        unmanaged += [
            AccountReport(
                key,
                Drift.NOT_IN_ORGANIZATION,
                reason=f"a status row with no item, for no account of the organisation "
                f"(`budgetctl delete --stale {key}` removes it)",
                last_status=str(status.get("Status", "")),
                last_reason=str(status.get("Reason", "")),
            )
            for key, status in sorted(statuses.items())
            if key not in organisation and key not in with_item and not args.account
        ]
    return items, outside, unmanaged


def _not_managed(account: str, name: str, table: str, status: Mapping[str, Any] | None) -> AccountReport:
    """An organisation account without an item; WAITING (for its spoke stack, a default
    applies) and SKIPPED (suspended, closed) come from the resolver's status."""
    last = str((status or {}).get("Status", ""))
    if last in (Status.WAITING, Status.SKIPPED):
        desired = (status or {}).get("DesiredValue")
        return AccountReport(
            account,
            Drift.NOT_MANAGED,
            desired=desired if isinstance(desired, Decimal) else None,
            reason=str((status or {}).get("Reason", "")),
            last_status=last,
        )
    return AccountReport(account, Drift.NOT_MANAGED, reason=f"{name or 'account'} has no item in {table}")


def _sources(ctx: Context, reports: Sequence[AccountReport]) -> dict[str, str]:
    """Per account, where its desired value comes from: its own item or an OU's default."""
    items = {str(i.get(ACCOUNT_ID_FIELD)): i for i in ctx.table.scan()}
    names: dict[str, str] = {}
    if ctx.args.org and any(INHERITED_FROM_FIELD in i for i in items.values()):
        names = {
            t: u.name for t, u in OrganizationsReader(ctx.client("organizations"), 0).full().units.items()
        }
    sources: dict[str, str] = {}
    for report in reports:
        item = items.get(report.account_id)
        if item is None:
            if report.last_status == Status.WAITING:
                sources[report.account_id] = "default (waiting)"
            continue
        inherited = item.get(INHERITED_FROM_FIELD)
        if inherited:
            name = names.get(str(inherited))
            sources[report.account_id] = f"default {inherited}" + (f" ({name})" if name else "")
        else:
            sources[report.account_id] = "item"
    return sources


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
