"""What ``status`` and ``reconcile`` both show: per account, the desired value against the spoke's
parameter and budget (the reconciler's comparison, read-only), with the organisation's accounts
that have no item and the status rows of no account."""

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
from budget_sync.status import Status
from budget_sync.status_table import read_statuses
from budgetctl.context import Context

#: Accounts whose spoke is not read (no budget-sync item, or not in the organisation).
NO_SPOKE = (Drift.NOT_MANAGED, Drift.NOT_IN_ORGANIZATION)
#: What ``status`` exits 1 for, as ``report`` does (budgetctl.report.model): a failure (the last
#: status FAILED, a spoke that cannot be read, an item breaking the contract, a budget AWS
#: reports UNHEALTHY), a drift the
#: reconciler repairs, or a row for no account of the organisation (``delete --stale`` clears
#: it). An account without an item (NOT_MANAGED, the management account included) is no problem.
_PROBLEMS = frozenset(
    {*REPAIRABLE, Drift.UNREACHABLE, Drift.INVALID_ITEM, Drift.UNHEALTHY, Drift.NOT_IN_ORGANIZATION}
)


def needs_attention(report: AccountReport) -> bool:
    return report.drift in _PROBLEMS or report.last_status == Status.FAILED


def missing_accounts(ctx: Context, reports: Sequence[AccountReport]) -> list[str]:
    """The --account accounts that have no row (each was named on stderr: ``no item ...``)."""
    shown = {r.account_id for r in reports}
    return [a for a in ctx.args.account if a not in shown]


def account_names(ctx: Context) -> dict[str, str]:
    """The organisation's account names (``organizations:ListAccounts``); none where the
    caller may not list the accounts (the Name column stays empty, nothing else changes)."""
    try:
        return ctx.organisation_accounts()
    except (ClientError, BotoCoreError) as exc:
        logger.info("account names not read", extra={"error": str(exc)})
        return {}


def only_wanted(ctx: Context, items: list[DesiredItem]) -> list[DesiredItem]:
    """Only the --account accounts (if given), each missing one named."""
    if not ctx.args.account:
        return items
    wanted = set(ctx.args.account)
    missing = wanted - {i.account_id for i in items}
    for account in sorted(missing):
        ctx.out.error(f"no item for account {account} in {ctx.args.table}")
    return [i for i in items if i.account_id in wanted]


def inspect(ctx: Context, organisation: Mapping[str, str] | None = None) -> list[AccountReport]:
    args = ctx.args
    items = only_wanted(ctx, read_desired(ctx.dynamodb, args.table))
    statuses = read_statuses(ctx.dynamodb, args.status_table)
    items, outside, unmanaged = organisation_rows(ctx, items, statuses, organisation)
    reconciler = ctx.reconciler()
    with ctx.out.progress("reading spoke accounts", len(items)) as advance:
        summary = reconciler.run(items, statuses, on_account=lambda _: advance(1))
    return sorted([*summary.reports, *outside, *unmanaged], key=lambda r: r.account_id)


def organisation_rows(
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


def value_sources(ctx: Context, reports: Sequence[AccountReport]) -> dict[str, str]:
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


def summary(ctx: Context, reports: Sequence[AccountReport]) -> None:
    counts: dict[str, int] = {}
    for report in reports:
        counts[report.drift.value] = counts.get(report.drift.value, 0) + 1
    repaired = sum(1 for r in reports if r.action.value == "REPAIRED")
    text = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "no accounts"
    ctx.out.info(f"{len(reports)} account(s): {text}" + (f"; repaired {repaired}" if repaired else ""))


def add_account_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--org", action="store_true", help="also list organisation accounts without an item")
    sub.add_argument("--account", action="append", default=[], metavar="ACCOUNT", help="only these (repeat)")
