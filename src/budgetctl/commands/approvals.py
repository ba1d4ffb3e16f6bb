"""``requests``, ``approve``, ``reject``: values held above the approval rule (budget_sync.approvals).

    budgetctl requests [--account ACCOUNT] [--all]
    budgetctl approve REQ-0123456789ab
    budgetctl reject REQ-0123456789ab

``approve`` and ``reject`` check, in this order, before writing anything: the id's form, who
calls (STS GetCallerIdentity), the request (it exists, is PENDING and has not expired), that the
caller is not its requester (exit 6, ``ExitCode.REFUSED``) and, for ``approve``, that the
account's item still asks for the requested value. Then they write the decision under the
caller's ``aws:userid`` in the approvals table (the approver policy allows nothing else:
docs/operate.md, "Approvals"), mark the request, and (approve) set the item's ``ApprovalId`` and
``ApprovedBy``, which the stream carries to the update function: it checks the approval again
and sends the value.

``set`` and ``import`` call ``held_notice`` after writing: each value written above the rule (read
from the management stack's parameters, ``--stack-name``) over the account's applied value (the
status table) is said to wait for approval. Advisory only: the update function decides, for
every client alike; when the stack cannot be read, nothing is said.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from budget_sync.approvals import APPROVAL_ID_FIELD, APPROVED_BY_FIELD, ApprovalRule, State
from budget_sync.config import TABLE_NAME
from budget_sync.domain import ACCOUNT_ID_FIELD, BUDGET_VALUE_FIELD, amount_text
from budget_sync.status import _deserialize
from budgetctl.commands import Command, add_wide
from budgetctl.context import Context
from budgetctl.errors import ConflictError, ExitCode, RefusedError, UsageError

DEFAULT_STACK = "budget-sync"
DEFAULT_REQUESTS_TABLE = "BlogBudgetsApprovalRequests"
DEFAULT_APPROVALS_TABLE = "BlogBudgetsApprovals"
_REQUEST_ID = re.compile(r"REQ-[0-9a-f]{12}")
_CONDITION_FAILED = "ConditionalCheckFailedException"

REQUEST_COLUMNS = (
    "RequestId",
    "AccountId",
    "RequestedValue",
    "CurrentValue",
    "State",
    "RequestedBy",
    "RequestedAt",
    "ExpiresAt",
    "DecidedBy",
)
BRIEF_COLUMNS = (
    "RequestId",
    "AccountId",
    "RequestedValue",
    "CurrentValue",
    "State",
    "RequestedBy",
    "ExpiresAt",
)


def register(command: Command) -> None:
    requests = command("requests", cmd_requests, "list the requests for approval (pending ones by default)")
    requests.add_argument("--account", metavar="ACCOUNT", help="only this account's requests")
    requests.add_argument(
        "--all", action="store_true", help="every request the table holds (approved, rejected, expired too)"
    )
    _tables(requests, approvals=False)
    add_wide(requests)
    for name, run, text in (
        (
            "approve",
            cmd_approve,
            "approve a pending request: its value is sent to the account (not by its requester)",
        ),
        (
            "reject",
            cmd_reject,
            "reject a pending request: the account keeps its budget (not by its requester)",
        ),
    ):
        sub = command(name, run, text)
        sub.add_argument("request_id", metavar="ID", help="the request's id, e.g. REQ-0123456789ab")
        _tables(sub, approvals=True)


def _tables(sub: Any, *, approvals: bool) -> None:
    sub.add_argument(
        "--requests-table", default=DEFAULT_REQUESTS_TABLE, help=f"requests table ({DEFAULT_REQUESTS_TABLE})"
    )
    if approvals:
        sub.add_argument(
            "--approvals-table",
            default=DEFAULT_APPROVALS_TABLE,
            help=f"approvals table ({DEFAULT_APPROVALS_TABLE})",
        )


def _validate(ctx: Context) -> None:
    """What the user typed, before any AWS call."""
    args = ctx.args
    for option in ("requests_table", "approvals_table"):
        value = getattr(args, option, None)
        if value is not None and not TABLE_NAME.fullmatch(value):
            raise UsageError(f"--{option.replace('_', '-')} {value!r} is not valid")
    request_id = getattr(args, "request_id", None)
    if request_id is not None and not _REQUEST_ID.fullmatch(request_id):
        raise UsageError(
            f"request id {request_id!r} is not valid: it is REQ- and 12 hex digits, as budgetctl requests "
            "shows it; nothing written"
        )


def _now() -> datetime:
    return datetime.now(UTC)


def _row(item: dict[str, Any], now: datetime) -> dict[str, Any]:
    expires = int(item.get("ExpiresAt", 0))
    state = str(item.get("State", ""))
    if state == State.PENDING and expires <= now.timestamp():
        state = "EXPIRED"
    return {
        "RequestId": item.get("RequestId"),
        "AccountId": item.get("AccountId"),
        "RequestedValue": amount_text(item.get("RequestedValue")),
        "CurrentValue": amount_text(item.get("CurrentValue")),
        "State": state,
        "RequestedBy": item.get("RequestedBy") or "(not recorded: written outside budgetctl)",
        "RequestedAt": item.get("RequestedAt"),
        "ExpiresAt": datetime.fromtimestamp(expires, UTC).isoformat(timespec="minutes"),
        "DecidedBy": item.get("DecidedBy", ""),
    }


def cmd_requests(ctx: Context) -> int:
    _validate(ctx)
    args = ctx.args
    now = _now()
    items = []
    for page in ctx.dynamodb.get_paginator("scan").paginate(
        TableName=args.requests_table, ConsistentRead=True
    ):
        items += [{k: _deserialize(v) for k, v in raw.items()} for raw in page.get("Items", [])]
    rows = [
        _row(item, now) for item in items if args.account is None or item.get("AccountId") == args.account
    ]
    if not args.all:
        rows = [r for r in rows if r["State"] == State.PENDING]
    rows.sort(key=lambda r: (str(r["RequestedAt"]), str(r["RequestId"])))
    title = "budget-sync approval requests" + ("" if args.all else " (pending)")
    ctx.out.rows(rows, REQUEST_COLUMNS, title=title, brief=BRIEF_COLUMNS)
    return ExitCode.OK


def _caller(ctx: Context) -> tuple[str, str]:
    """(ARN, aws:userid) of the caller: the approval is keyed by the user id, which IAM proves."""
    identity = ctx.client("sts").get_caller_identity()
    return str(identity["Arn"]), str(identity["UserId"])


def _pending(ctx: Context, arn: str) -> dict[str, Any]:
    """The request, checked: it exists, is PENDING, not expired, and not the caller's own."""
    args = ctx.args
    raw = ctx.dynamodb.get_item(
        TableName=args.requests_table, Key={"RequestId": {"S": args.request_id}}, ConsistentRead=True
    ).get("Item")
    if raw is None:
        raise NoSuchRequest(
            f"no request {args.request_id} in {args.requests_table} (never made, or expired and deleted)"
        )
    request = {k: _deserialize(v) for k, v in raw.items()}
    row = _row(request, _now())
    if row["State"] != State.PENDING:
        decided = f" by {request['DecidedBy']}" if request.get("DecidedBy") else ""
        raise ConflictError(
            f"request {args.request_id} is {row['State']}{decided}, not PENDING; nothing written"
        )
    requester = str(request.get("RequestedBy") or "")
    if requester and requester == arn:
        raise RefusedError(
            f"request {args.request_id} was made by you ({arn}): another principal must "
            f"{ctx.args.command} it; nothing written"
        )
    return request


class NoSuchRequest(ConflictError):
    code = ExitCode.PROBLEM


def _decide(ctx: Context, request: dict[str, Any], arn: str, user_id: str, decision: State) -> str:
    """The decision under the caller's aws:userid, then the request's State. Returns when."""
    args = ctx.args
    at = _now().isoformat(timespec="seconds")
    try:
        ctx.dynamodb.put_item(
            TableName=args.approvals_table,
            Item={
                "ApproverId": {"S": user_id},
                "RequestId": {"S": args.request_id},
                "Decision": {"S": decision.value},
                "ApproverArn": {"S": arn},
                "AccountId": {"S": str(request["AccountId"])},
                "RequestedValue": {"N": str(request["RequestedValue"])},
                "DecidedAt": {"S": at},
            },
            ConditionExpression="attribute_not_exists(RequestId)",
        )
        ctx.dynamodb.update_item(
            TableName=args.requests_table,
            Key={"RequestId": {"S": args.request_id}},
            UpdateExpression="SET #state = :decision, DecidedBy = :by, DecidedAt = :at",
            ConditionExpression="#state = :pending",
            ExpressionAttributeNames={"#state": "State"},
            ExpressionAttributeValues={
                ":decision": {"S": decision.value},
                ":by": {"S": arn},
                ":at": {"S": at},
                ":pending": {"S": State.PENDING.value},
            },
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == _CONDITION_FAILED:
            raise ConflictError(
                f"request {args.request_id} was decided by someone else meanwhile (budgetctl requests --all)"
            ) from exc
        raise
    return at


def cmd_approve(ctx: Context) -> int:
    _validate(ctx)
    args = ctx.args
    arn, user_id = _caller(ctx)
    request = _pending(ctx, arn)
    account, value = str(request["AccountId"]), request["RequestedValue"]
    item = ctx.table.get(account) or {}
    if item.get(BUDGET_VALUE_FIELD) != value:
        raise ConflictError(
            f"request {args.request_id} is for {amount_text(value)} USD, but account {account}'s item now "
            f"asks for {amount_text(item.get(BUDGET_VALUE_FIELD)) or 'nothing'}: the request is stale "
            "(the newer value has its own request if it needs one); nothing written"
        )
    _decide(ctx, request, arn, user_id, State.APPROVED)
    try:
        ctx.dynamodb.update_item(
            TableName=args.table,
            Key={ACCOUNT_ID_FIELD: {"S": account}},
            UpdateExpression=f"SET {APPROVAL_ID_FIELD} = :id, {APPROVED_BY_FIELD} = :by",
            ConditionExpression=f"attribute_exists({ACCOUNT_ID_FIELD})",
            ExpressionAttributeValues={":id": {"S": args.request_id}, ":by": {"S": user_id}},
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == _CONDITION_FAILED:
            raise ConflictError(
                f"request {args.request_id} is approved, but account {account}'s item was deleted meanwhile: "
                "nothing is sent"
            ) from exc
        raise
    ctx.out.info(
        f"request {args.request_id} approved: account {account}'s {amount_text(value)} USD goes to its spoke now "
        f"(budgetctl status --account {account} shows it SENT, then APPLIED)"
    )
    _show(ctx, account, value, State.APPROVED, arn)
    return ExitCode.OK


def cmd_reject(ctx: Context) -> int:
    _validate(ctx)
    args = ctx.args
    arn, user_id = _caller(ctx)
    request = _pending(ctx, arn)
    _decide(ctx, request, arn, user_id, State.REJECTED)
    account = str(request["AccountId"])
    ctx.out.info(
        f"request {args.request_id} rejected: account {account} keeps its budget; its item still asks for "
        f"{amount_text(request['RequestedValue'])} USD (status FAILED) until someone writes another value"
    )
    _show(ctx, account, request["RequestedValue"], State.REJECTED, arn)
    return ExitCode.OK


def _show(ctx: Context, account: str, value: Decimal, state: State, arn: str) -> None:
    row = {
        "RequestId": ctx.args.request_id,
        "AccountId": account,
        "RequestedValue": amount_text(value),
        "State": state.value,
        "DecidedBy": arn,
    }
    ctx.out.rows([row], tuple(row), single=True)


def add_stack_name(sub: Any) -> None:
    """``--stack-name`` of ``set`` and ``import``: where ``held_notice`` reads the approval rule."""
    sub.add_argument(
        "--stack-name",
        default=DEFAULT_STACK,
        help=f"the management stack, whose approval rule says which values wait for approval ({DEFAULT_STACK})",
    )


def _stack_rule(ctx: Context) -> ApprovalRule | None:
    """The management stack's approval rule (None: no rule, or the stack cannot be read)."""
    try:
        stacks = ctx.client("cloudformation").describe_stacks(StackName=ctx.args.stack_name)["Stacks"]
    except (ClientError, BotoCoreError):
        return None
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stacks[0].get("Parameters", [])}
    values = [parameters.get(k, "").strip() for k in ("ApprovalThresholdAmount", "ApprovalThresholdPercent")]
    try:
        amount, percent = (Decimal(v) if v else None for v in values)
    except ArithmeticError:
        return None
    rule = ApprovalRule(amount, percent)
    return rule if rule.active else None


def held_notice(ctx: Context, written: Sequence[tuple[str, Decimal]]) -> int:
    """Say, for each value written above the stack's approval rule, that it waits for approval.
    Returns how many were said to."""
    if not written:
        return 0
    rule = _stack_rule(ctx)
    if rule is None:
        return 0
    held = 0
    for account, value in written:
        try:
            raw = ctx.dynamodb.get_item(
                TableName=ctx.args.status_table, Key={ACCOUNT_ID_FIELD: {"S": account}}, ConsistentRead=True
            ).get("Item")
        except (ClientError, BotoCoreError):
            continue
        applied = _deserialize(raw["AppliedValue"]) if raw and "AppliedValue" in raw else None
        if not rule.needs_approval(applied if isinstance(applied, Decimal) else None, value):
            continue
        held += 1
        ctx.out.info(
            f"account {account}: {amount_text(value)} USD is {rule.describe()} (applied: "
            f"{amount_text(applied) or 'nothing yet'}): written, and held until another principal approves "
            f"it; a request is pending (budgetctl requests --account {account}, then budgetctl approve ID)"
        )
    return held
