"""``get``, ``set``, ``delete``: one account's item, with conditional writes."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from budget_sync.domain import (
    BUDGET_VALUE_FIELD,
    amount_text,
    format_amount,
)
from budget_sync.effective_budget import INHERITED_FROM_FIELD, Source, effective
from budget_sync.errors import BudgetSyncError
from budget_sync.organizations import OrganizationsReader
from budget_sync.resolve import read_defaults
from budgetctl.budgets_table import Write
from budgetctl.commands import Command
from budgetctl.commands.approvals import add_stack_name, held_notice
from budgetctl.commands.defaults import DEFAULT_DEFAULTS_TABLE
from budgetctl.context import OUTSIDE_HINT, Context
from budgetctl.errors import ExitCode, UsageError
from budgetctl.rows import (
    ITEM_COLUMNS,
    alert_columns,
    item_row,
)

#: The help of every ACCOUNT argument.
ACCOUNT_HELP = "the member account's 12-digit id, e.g. 111111111111"


def register(command: Command) -> None:
    get = command("get", cmd_get, "show one account's item")
    get.add_argument("account", metavar="ACCOUNT", help=ACCOUNT_HELP)

    set_ = command("set", cmd_set, "set one account's monthly budget (conditional write)")
    set_.add_argument("account", metavar="ACCOUNT", help=ACCOUNT_HELP)
    set_.add_argument("amount", metavar="AMOUNT", help="USD, at most two decimals: 1000, 1250.50")
    set_.add_argument(
        "--alert-emails",
        metavar="A,B",
        help="the account's alert recipients, comma separated (at most 10); '' = the spoke stack's default",
    )
    set_.add_argument(
        "--thresholds", metavar="P,Q", help="ACTUAL alert thresholds, percent of the limit; '' = default"
    )
    set_.add_argument(
        "--forecasted", metavar="P", help="FORECASTED alert threshold (percent) or 'none'; '' = default"
    )
    set_.add_argument(
        "--metric",
        metavar="M",
        help="what the budget counts: unblended, blended, amortized, net-unblended, net-amortized; "
        "'' = default (docs/cost-basis.md)",
    )
    set_.add_argument(
        "--exclude",
        metavar="R,S",
        help="record types the budget leaves out: credits, refunds, tax, support, upfront, or 'none'; '' = default",
    )
    set_.add_argument(
        "--incident-urgency",
        metavar="N",
        help="the account's ServiceNow urgency: 1 high to 3 low; '' = default",
    )
    set_.add_argument(
        "--incident-impact",
        metavar="N",
        help="the account's ServiceNow impact: 1 high to 3 low; '' = default",
    )
    set_.add_argument(
        "--incident-assignment-group",
        metavar="SYS_ID",
        help="the account's incidents' assignment group (a 32-hex sys_id); '' = default (docs/itsm.md)",
    )
    set_.add_argument(
        "--incident-caller", metavar="SYS_ID", help="the account's incidents' caller (a sys_id); '' = default"
    )
    outside_organization(set_)
    add_stack_name(set_)
    _guard(set_)

    delete = command(
        "delete",
        cmd_delete,
        "remove an account's item (the nearest OU or root default then applies; "
        "without one, the account keeps its last budget)",
    )
    delete.add_argument("account", metavar="ACCOUNT", nargs="?", help=ACCOUNT_HELP)
    delete.add_argument(
        "--stale",
        metavar="KEY",
        help="instead of ACCOUNT: remove the budgets item and the status row stored under KEY, a key "
        "that is no account of the organisation (a malformed id such as acct-1, an account that left)",
    )
    delete.add_argument("--dry-run", action="store_true", help="show what would be removed; remove nothing")
    delete.add_argument(
        "--defaults-table",
        default=DEFAULT_DEFAULTS_TABLE,
        help=f"defaults table, to say which default replaces the item ({DEFAULT_DEFAULTS_TABLE})",
    )
    _guard(delete)


def outside_organization(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--outside-organization",
        action="store_true",
        help="write even for an account that is not in the organisation (no Organizations check)",
    )


def check_members(ctx: Context, accounts: list[str]) -> list[str]:
    """The accounts that are not in the organisation (none with --outside-organization)."""
    if ctx.args.outside_organization or not accounts:
        return []
    members = ctx.members(accounts)
    return [a for a in accounts if a not in members]


def cmd_get(ctx: Context) -> int:
    item = ctx.table.get(ctx.args.account)
    if item is None:
        ctx.out.error(f"no item for account {ctx.args.account} in {ctx.args.table}")
        return ExitCode.PROBLEM
    ctx.out.rows([item_row(item)], ITEM_COLUMNS, single=True)
    return ExitCode.OK


def cmd_set(ctx: Context) -> int:
    args = ctx.args
    if check_members(ctx, [args.account]):
        raise UsageError(
            f"AccountId {args.account!r} is not an account of this organisation; nothing written "
            f"({OUTSIDE_HINT})"
        )
    previous = ctx.table.get(args.account) if args.expect == "read" else None
    alerts: dict[str, object] = args.alerts
    if (
        previous is not None
        and not previous.get(INHERITED_FROM_FIELD)  # an inherited item becomes the operator's: written
        and previous.get(BUDGET_VALUE_FIELD) == args.amount
        and all(alert_columns(previous)[field] == text for field, text in alerts.items())
    ):
        ctx.out.info(f"account {args.account} already has {format_amount(args.amount)}; nothing written")
        ctx.out.rows([item_row(previous)], ITEM_COLUMNS, single=True)
        return ExitCode.OK
    outcome = ctx.table.write(Write(args.account, args.amount, previous, args.expect, alerts))
    if outcome.get("retried"):
        ctx.out.info(
            f"account {args.account}: the first response was lost and the call retried; "
            "the item holds this write, so it succeeded"
        )
    written = ctx.table.get(args.account) or {}
    ctx.out.rows([item_row(written)], ITEM_COLUMNS, single=True)
    held_notice(ctx, [(args.account, args.amount)])
    return ExitCode.OK


def cmd_delete(ctx: Context) -> int:
    args = ctx.args
    if (args.account is None) == (args.stale is None):
        raise UsageError("delete takes ACCOUNT or --stale KEY (one of them)")
    if args.stale is not None:
        if args.expect != "read":
            raise UsageError("delete --stale does not take --expect or --force; nothing done")
        return delete_stale(ctx, args.stale)
    previous = ctx.table.get(args.account) if args.expect == "read" or args.dry_run else None
    if args.expect == "read" and previous is None:
        ctx.out.error(f"no item for account {args.account} in {args.table}")
        return ExitCode.PROBLEM
    what = after_delete(ctx, args.account, previous)
    if args.dry_run:
        shown = amount_text((previous or {}).get(BUDGET_VALUE_FIELD)) or "no item"
        ctx.out.info(
            f"account {args.account}'s item ({shown}) would be deleted; then {what}; nothing written (dry run)"
        )
        return ExitCode.OK
    ctx.out.info(f"account {args.account} without its item: {what}")
    ctx.table.write(Write(args.account, None, previous, args.expect))
    ctx.out.info(f"deleted account {args.account}'s item")
    return ExitCode.OK


def after_delete(ctx: Context, account: str, previous: dict[str, object] | None) -> str:
    """What happens to the account once its item is gone, said before it happens: the default
    of its nearest OU or root (the defaults table, the account's path from Organizations),
    which the resolver then writes, or, without one, its last budget stays."""
    try:
        tree = OrganizationsReader(ctx.client("organizations"), max_rps=0).account(account)
        defaults = read_defaults(ctx.dynamodb, ctx.args.defaults_table)
    except BudgetSyncError as exc:
        return (
            f"cannot tell whether a default replaces it ({exc}); without one, "
            "the account keeps its last budget (status UNMANAGED)"
        )
    keeps = "the account keeps its last budget (status UNMANAGED)"
    found = tree.accounts.get(account)
    if found is None:
        return f"it is not in the organisation, so no default applies to it: {keeps}"
    if account == tree.management_account:
        return f"defaults do not apply to the management account: {keeps}"
    wanted = effective(found, None, defaults)
    if wanted.source is not Source.DEFAULT or wanted.value is None:
        return f"no default applies to it: {keeps}"
    if not found.active:
        return f"the account is {found.state}: the resolver skips it, so {keeps}"
    try:
        unit = OrganizationsReader(ctx.client("organizations"), max_rps=0).describe_target(wanted.target_id)
        name = f"{'OU' if wanted.target_id.startswith('ou-') else 'root'} {unit.name} ({wanted.target_id})"
    except BudgetSyncError:
        name = wanted.target_id
    old = (previous or {}).get(BUDGET_VALUE_FIELD)
    was = f" (was {format_amount(old)})" if isinstance(old, Decimal) else ""
    return (
        f"the default of {name} applies: its budget becomes {format_amount(wanted.value)}{was}, "
        "written by the resolver when it sees the removal"
    )


def _guard(sub: argparse.ArgumentParser) -> None:
    group = sub.add_mutually_exclusive_group()
    group.add_argument(
        "--expect",
        metavar="VALUE",
        help="write only if the item now holds VALUE ('none': only if there is no item)",
    )
    group.add_argument("--force", action="store_true", help="write without any condition")


def delete_stale(ctx: Context, key: str) -> int:
    """Remove what is stored under ``key`` in the budgets table and the status table, for a key
    that is no account of the organisation (checked with ListAccounts first): such rows stay in
    ``report`` and ``status --org`` forever otherwise, and plain ``delete`` refuses a malformed
    key. Each removal is conditional on the row still existing."""
    args = ctx.args
    if not key.strip() or len(key.encode("utf-8")) > _MAX_KEY_BYTES:
        raise UsageError(f"--stale {key!r} must be 1 to {_MAX_KEY_BYTES} bytes")
    if ctx.members([key], list_all=True):
        raise UsageError(
            f"--stale {key!r} is an account of the organisation: remove its item with "
            f"`budgetctl delete {key}` (the pipeline keeps its status row); nothing removed"
        )
    found = [
        (table, item)
        for table in (args.table, args.status_table)
        if (
            item := ctx.dynamodb.get_item(
                TableName=table, Key={"AccountId": {"S": key}}, ConsistentRead=True
            ).get("Item")
        )
    ]
    if not found:
        ctx.out.error(f"nothing stored under {key!r} in {args.table} or {args.status_table}")
        return ExitCode.PROBLEM
    for table, item in found:
        what = ", ".join(
            f"{name}={_shown(value)}" for name, value in sorted(item.items()) if name != "AccountId"
        )
        if args.dry_run:
            ctx.out.info(f"would remove {key!r} from {table}: {what}")
            continue
        try:
            ctx.dynamodb.delete_item(
                TableName=table,
                Key={"AccountId": {"S": key}},
                ConditionExpression="attribute_exists(AccountId)",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
        ctx.out.info(f"removed {key!r} from {table}: {what}")
    if args.dry_run:
        ctx.out.info("nothing removed (dry run)")
    return ExitCode.OK


#: DynamoDB's limit on a partition key.
_MAX_KEY_BYTES = 2048


def _shown(value: Mapping[str, Any]) -> str:
    """One attribute of a raw item, short: its value for strings and numbers, else its type."""
    for kind in ("S", "N"):
        if kind in value:
            text = str(value[kind])
            return text if len(text) <= 40 else text[:39] + "…"
    return f"({'/'.join(value)})"
