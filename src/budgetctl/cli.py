"""``budgetctl``: set, read and reconcile budget-sync's budgets from the command line.

    budgetctl set 111111111111 1250.50
    budgetctl get 111111111111 --output json
    budgetctl import budgets.csv --dry-run
    budgetctl export --file budgets.csv
    budgetctl status --org
    budgetctl reconcile --apply
    budgetctl --endpoint-url http://127.0.0.1:5000 status   # the local organisation

Every argument and every row of an import is validated (by the pipeline's own item
contract) before the first AWS call. Exit codes: see budgetctl.errors.ExitCode and
docs/operate.md.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import boto3
from botocore.exceptions import BotoCoreError, ClientError, ProfileNotFound

from budget_sync.domain import (
    ACCOUNT_ID_FIELD,
    BUDGET_VALUE_FIELD,
    format_amount,
    parse_account_id,
    parse_budget_text,
)
from budget_sync.errors import InvalidItemError
from budget_sync.observability import logger
from budget_sync.reconcile import REPAIRABLE, AccountReport, Drift, Reconciler, read_desired, read_statuses
from budget_sync.spoke import CLIENT_CONFIG, DEFAULT_BUDGET_NAME, SsmSpokeGateway
from budget_sync.status import StatusStore
from budgetctl.errors import CliError, ExitCode, UsageError
from budgetctl.files import export_rows, parse_csv, to_text
from budgetctl.output import FORMATS, Output
from budgetctl.table import BudgetsTable, Write, values_of

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

#: The templates' defaults (tests/ops checks them against both templates).
DEFAULT_TABLE = "BlogBudgetsDynamoDB"
DEFAULT_STATUS_TABLE = "BlogBudgetsStatus"
DEFAULT_ROLE = "BlogBudgetsSpokeRole"
DEFAULT_PARAMETER = "/BlogBudgets/CostThreshold"
DEFAULT_CONCURRENCY = 16
SESSION_NAME = "budgetctl"

_TABLE = re.compile(r"[\w.\-]{3,255}")
_ROLE = re.compile(r"[\w+=,.@-]{1,64}")
_PARAMETER = re.compile(r"/[\w.\-/]{1,1010}")
_BUDGET = re.compile(r"[^:\\]{1,100}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]+")
_ENDPOINT = re.compile(r"https?://[^\s/]+(/\S*)?")

STATUS_COLUMNS = (
    "AccountId",
    "Desired",
    "LastStatus",
    "Parameter",
    "BudgetLimit",
    "ActualSpend",
    "ForecastedSpend",
    "PercentOfLimit",
    "Drift",
    "Reason",
)
RECONCILE_COLUMNS = ("AccountId", "Desired", "Parameter", "BudgetLimit", "Drift", "Action", "Reason")
ITEM_COLUMNS = ("AccountId", "BudgetValue", "UpdatedBy", "UpdatedAt")


# --------------------------------------------------------------------------- arguments


def build_parser() -> argparse.ArgumentParser:
    # Global options are accepted before and after the command, as the AWS CLI does.
    common = argparse.ArgumentParser(add_help=False)
    aws = common.add_argument_group("AWS")
    aws.add_argument("--profile", default=argparse.SUPPRESS, help="named profile (~/.aws/config)")
    aws.add_argument("--region", default=argparse.SUPPRESS, help="the management region")
    aws.add_argument(
        "--endpoint-url", default=argparse.SUPPRESS, help="send every call here (e.g. http://127.0.0.1:5000)"
    )
    aws.add_argument(
        "--output", choices=FORMATS, default=argparse.SUPPRESS, help="table (default), json, csv"
    )
    aws.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="structured logs of each account on stderr",
    )
    names = common.add_argument_group("names (defaults: the templates' defaults)")
    names.add_argument("--table", default=argparse.SUPPRESS, help=f"budgets table ({DEFAULT_TABLE})")
    names.add_argument(
        "--status-table", default=argparse.SUPPRESS, help=f"status table ({DEFAULT_STATUS_TABLE})"
    )
    names.add_argument("--role-name", default=argparse.SUPPRESS, help=f"spoke role ({DEFAULT_ROLE})")
    names.add_argument(
        "--parameter-name", default=argparse.SUPPRESS, help=f"spoke parameter ({DEFAULT_PARAMETER})"
    )
    names.add_argument(
        "--budget-name", default=argparse.SUPPRESS, help=f"spoke budget ({DEFAULT_BUDGET_NAME})"
    )
    names.add_argument(
        "--spoke-region", default=argparse.SUPPRESS, help="region of the spoke stacks (default: --region)"
    )
    names.add_argument(
        "--concurrency",
        type=int,
        default=argparse.SUPPRESS,
        help=f"spoke accounts read at once ({DEFAULT_CONCURRENCY})",
    )

    parser = argparse.ArgumentParser(
        prog="budgetctl",
        parents=[common],
        description="Operate budget-sync: the budgets table, per-account status, drift repair.",
        epilog="Exit codes: 0 ok; 1 drift or problem found / no such item; 2 usage or validation "
        "error (nothing sent to AWS); 3 conflict (the item changed since it was read); 4 AWS error.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, run: Callable[[Context], int], help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[common], help=help_text, description=help_text)
        sub.set_defaults(run=run)
        return sub

    get = command("get", cmd_get, "show one account's item")
    get.add_argument("account", metavar="ACCOUNT")

    set_ = command("set", cmd_set, "set one account's monthly budget (conditional write)")
    set_.add_argument("account", metavar="ACCOUNT")
    set_.add_argument("amount", metavar="AMOUNT", help="USD, at most two decimals: 1000, 1250.50")
    _guard(set_)

    delete = command("delete", cmd_delete, "remove an account's item (the account keeps its last budget)")
    delete.add_argument("account", metavar="ACCOUNT")
    _guard(delete)

    import_ = command("import", cmd_import, "write budgets from a CSV file (AccountId,BudgetValue)")
    import_.add_argument("file", metavar="FILE.csv", help="'-' reads stdin")
    import_.add_argument("--dry-run", action="store_true", help="show the difference, write nothing")
    import_.add_argument("--skip-invalid", action="store_true", help="write the valid rows despite bad ones")

    export = command("export", cmd_export, "write the budgets table as CSV or JSON")
    export.add_argument("--format", choices=("csv", "json"), default="csv")
    export.add_argument("--file", metavar="PATH", help="write here instead of stdout")

    status = command("status", cmd_status, "per account: desired, parameter, budget, spend, drift")
    _accounts(status)

    reconcile = command("reconcile", cmd_reconcile, "show drift; with --apply, repair it")
    reconcile.add_argument("--apply", action="store_true", help="re-write the parameter where drifted")
    _accounts(reconcile)
    return parser


def _guard(sub: argparse.ArgumentParser) -> None:
    group = sub.add_mutually_exclusive_group()
    group.add_argument(
        "--expect",
        metavar="VALUE",
        help="write only if the item now holds VALUE ('none': only if there is no item)",
    )
    group.add_argument("--force", action="store_true", help="write without any condition")


def _accounts(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--org", action="store_true", help="also list organisation accounts without an item")
    sub.add_argument("--account", action="append", default=[], metavar="ACCOUNT", help="only these (repeat)")


_DEFAULTS: dict[str, Any] = {
    "profile": None,
    "region": None,
    "endpoint_url": None,
    "output": "table",
    "debug": False,
    "table": DEFAULT_TABLE,
    "status_table": DEFAULT_STATUS_TABLE,
    "role_name": DEFAULT_ROLE,
    "parameter_name": DEFAULT_PARAMETER,
    "budget_name": DEFAULT_BUDGET_NAME,
    "spoke_region": None,
    "concurrency": DEFAULT_CONCURRENCY,
}


def validate(args: argparse.Namespace) -> None:
    """Everything the user typed, checked before any AWS call. Errors name the option and value."""
    checks: list[tuple[str, str | None, re.Pattern[str]]] = [
        ("--table", args.table, _TABLE),
        ("--status-table", args.status_table, _TABLE),
        ("--role-name", args.role_name, _ROLE),
        ("--parameter-name", args.parameter_name, _PARAMETER),
        ("--budget-name", args.budget_name, _BUDGET),
        ("--region", args.region, _REGION),
        ("--spoke-region", args.spoke_region, _REGION),
        ("--endpoint-url", args.endpoint_url, _ENDPOINT),
    ]
    for option, value, pattern in checks:
        if value is not None and not pattern.fullmatch(value):
            raise UsageError(f"{option} {value!r} is not valid")
    if not 1 <= args.concurrency <= 64:
        raise UsageError(f"--concurrency {args.concurrency} must be from 1 to 64")
    if hasattr(args, "account") and isinstance(args.account, str):
        args.account = parse_account_id(args.account)
    if hasattr(args, "amount"):
        args.amount = parse_budget_text(args.amount, args.account)
    if getattr(args, "expect", None) is not None:
        args.expect = None if args.expect.strip().lower() == "none" else parse_budget_text(args.expect)
    elif not getattr(args, "force", False):
        args.expect = "read"
    else:
        args.expect = "force"
    if isinstance(getattr(args, "account", None), list):
        args.account = [parse_account_id(a) for a in args.account]


# --------------------------------------------------------------------------- AWS context


class Context:
    """The parsed arguments, the output, and AWS clients built on first use."""

    def __init__(self, args: argparse.Namespace, out: Output, session: boto3.Session | None = None) -> None:
        self.args = args
        self.out = out
        if session is not None:  # embedding (benchmarks): a session with hooks of its own
            self.__dict__["session"] = session

    @cached_property
    def session(self) -> boto3.Session:
        try:
            session = boto3.Session(profile_name=self.args.profile, region_name=self.args.region)
        except ProfileNotFound as exc:
            raise UsageError(f"--profile {self.args.profile!r}: {exc}") from exc
        if not session.region_name:
            raise UsageError("no region: pass --region, or set AWS_REGION or a region in the profile")
        return session

    def client(self, service: str) -> Any:
        endpoint: str | None = self.args.endpoint_url
        return self.session.client(service, endpoint_url=endpoint, config=CLIENT_CONFIG)  # type: ignore[call-overload]

    @cached_property
    def dynamodb(self) -> DynamoDBClient:
        client: DynamoDBClient = self.client("dynamodb")
        return client

    @cached_property
    def caller_arn(self) -> str:
        """Who writes: the ARN of the caller's identity, recorded as UpdatedBy."""
        return str(self.client("sts").get_caller_identity()["Arn"])

    @cached_property
    def table(self) -> BudgetsTable:
        return BudgetsTable(self.dynamodb, self.args.table, lambda: self.caller_arn)

    def reconciler(self, apply: bool) -> Reconciler:
        spokes = SsmSpokeGateway(
            parameter_name=self.args.parameter_name,
            role_name=self.args.role_name,
            region=self.args.spoke_region or self.session.region_name,
            session_name=SESSION_NAME,
            session=self.session,
            endpoint_url=self.args.endpoint_url,
        )
        status = StatusStore(self.dynamodb, self.args.status_table) if apply else None
        return Reconciler(
            spokes, status, budget_name=self.args.budget_name, max_concurrency=self.args.concurrency
        )

    def organisation_accounts(self) -> dict[str, str]:
        """Active accounts of the organisation: id -> name."""
        accounts: dict[str, str] = {}
        for page in self.client("organizations").get_paginator("list_accounts").paginate():
            for account in page.get("Accounts", []):
                if account.get("Status", "ACTIVE") == "ACTIVE":
                    accounts[account["Id"]] = account.get("Name", "")
        return accounts


# --------------------------------------------------------------------------- commands


def cmd_get(ctx: Context) -> int:
    item = ctx.table.get(ctx.args.account)
    if item is None:
        ctx.out.error(f"no item for account {ctx.args.account} in {ctx.args.table}")
        return ExitCode.PROBLEM
    ctx.out.rows([_item_row(item)], ITEM_COLUMNS)
    return ExitCode.OK


def cmd_set(ctx: Context) -> int:
    args = ctx.args
    previous = ctx.table.get(args.account) if args.expect == "read" else None
    if previous is not None and previous.get(BUDGET_VALUE_FIELD) == args.amount:
        ctx.out.info(f"account {args.account} already has {format_amount(args.amount)}; nothing written")
        ctx.out.rows([_item_row(previous)], ITEM_COLUMNS)
        return ExitCode.OK
    ctx.table.write(Write(args.account, args.amount, previous, args.expect))
    written = ctx.table.get(args.account) or {}
    ctx.out.rows([_item_row(written)], ITEM_COLUMNS)
    return ExitCode.OK


def cmd_delete(ctx: Context) -> int:
    args = ctx.args
    previous = ctx.table.get(args.account) if args.expect == "read" else None
    if args.expect == "read" and previous is None:
        ctx.out.error(f"no item for account {args.account} in {args.table}")
        return ExitCode.PROBLEM
    ctx.table.write(Write(args.account, None, previous, args.expect))
    ctx.out.info(
        f"deleted account {args.account}'s item; the account keeps its last budget (status UNMANAGED)"
    )
    return ExitCode.OK


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
                "From": _amount(before),
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
    items = ctx.table.scan()
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


def cmd_status(ctx: Context) -> int:
    reports = _inspect(ctx, apply=False)
    ctx.out.rows([_status_row(r) for r in reports], STATUS_COLUMNS, title="budget-sync status")
    _summary(ctx, reports)
    return ExitCode.OK if all(r.drift is Drift.IN_SYNC for r in reports) else ExitCode.PROBLEM


def cmd_reconcile(ctx: Context) -> int:
    reports = _inspect(ctx, apply=ctx.args.apply)
    ctx.out.rows([_reconcile_row(r) for r in reports], RECONCILE_COLUMNS, title="budget-sync reconcile")
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


# --------------------------------------------------------------------------- rows


def _amount(value: object) -> str | None:
    if isinstance(value, Decimal):
        return (
            format_amount(value)
            if value.is_finite() and value == value.quantize(Decimal("0.01"))
            else str(value)
        )
    return None if value is None else str(value)


def _item_row(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "AccountId": item.get(ACCOUNT_ID_FIELD),
        "BudgetValue": _amount(item.get(BUDGET_VALUE_FIELD)),
        "UpdatedBy": item.get("UpdatedBy"),
        "UpdatedAt": item.get("UpdatedAt"),
    }


def _status_row(report: AccountReport) -> dict[str, Any]:
    budget = report.budget
    return {
        "AccountId": report.account_id,
        "Desired": _amount(report.desired),
        "LastStatus": report.last_status or None,
        "Parameter": report.parameter,
        "BudgetLimit": _amount(report.budget_limit),
        "ActualSpend": _amount(budget.actual) if budget else None,
        "ForecastedSpend": _amount(budget.forecasted) if budget else None,
        "PercentOfLimit": None if report.percent_of_limit is None else str(report.percent_of_limit),
        "Drift": report.drift.value,
        "Reason": report.reason or None,
    }


def _reconcile_row(report: AccountReport) -> dict[str, Any]:
    return {
        "AccountId": report.account_id,
        "Desired": _amount(report.desired),
        "Parameter": report.parameter,
        "BudgetLimit": _amount(report.budget_limit),
        "Drift": report.drift.value,
        "Action": report.action.value or None,
        "Reason": report.reason or None,
    }


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


# --------------------------------------------------------------------------- entry point


@contextmanager
def _logs_to(stream: TextIO, debug: bool) -> Iterator[None]:
    """The shared code logs as the Lambda function does (JSON lines on stdout): here they go to
    stderr, and only with --debug, so that stdout carries nothing but the command's output.
    Restored afterwards (main() may run inside a longer process, e.g. the tests)."""
    handler = logger.registered_handler
    level = logger.log_level
    previous = handler.setStream(stream) if isinstance(handler, logging.StreamHandler) else None
    logger.setLevel("DEBUG" if debug else "CRITICAL")
    try:
        yield
    finally:
        logger.setLevel(level)
        if previous is not None and isinstance(handler, logging.StreamHandler):
            handler.setStream(previous)


def main(
    argv: Sequence[str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    session: boto3.Session | None = None,
) -> int:
    """The console script. Returns the exit code; ``session`` replaces --profile/--region."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code) if isinstance(exc.code, int) else ExitCode.USAGE
    for key, value in _DEFAULTS.items():
        if not hasattr(args, key):
            setattr(args, key, value)
    out = Output(args.output, stdout, stderr)
    try:
        validate(args)
        with _logs_to(out.stderr, args.debug):
            return int(args.run(Context(args, out, session)))
    except InvalidItemError as exc:
        out.error(str(exc))
        return ExitCode.USAGE
    except CliError as exc:
        out.error(str(exc))
        return exc.code
    except ClientError as exc:
        error = exc.response.get("Error", {})
        out.error(f"{exc.operation_name}: {error.get('Code', '?')}: {error.get('Message', '')}")
        return ExitCode.AWS
    except BotoCoreError as exc:
        out.error(str(exc))
        return ExitCode.AWS
