"""``parked``: what the stream's on-failure queue holds, and re-applying those accounts.

Lambda parks a stream batch that exhausted its retries in the on-failure queue as a
description (shard, first and last sequence number), not as the records. ``parked`` reads
the queue without consuming it (each message becomes visible again after
``--visibility-timeout`` seconds), reads the described records back from the stream (kept
24 hours) to name their accounts, and lists them. ``--reapply`` asks the reconciler function
to repair those accounts from the table (with its own role, recorded as asked by the caller;
the desired value re-read before each write) and deletes a message once every account it
names is in sync or repaired.

The resolver parks its batches on the same queue: a batch of the defaults table's stream
names defaults (``TargetId``), not accounts. ``parked`` lists those targets; ``--reapply``
asks the resolver function (``--resolver-function``, ``lambda:InvokeFunction`` on it) for a
full resolution of the organisation, which does what the lost batch would have done, and
deletes the message once it succeeded.

``--history`` reads the history function's own queue (``HistoryFailureQueue``, the stack's
output ``HistoryFailureQueueUrl``) instead: batches of history records that could not be
appended. They are listed with the table whose stream they come from (the records themselves
are not read: the operators' policy has no read of those streams). ``--reapply`` sends each
batch's description to the history function (``--history-function``), which reads the
records back from the stream itself and appends them (nothing appended twice), and deletes
the message once every described record is appended. It needs ``lambda:InvokeFunction`` on
the history function, which the operators' policy leaves out: whoever may invoke that
function may append records of their own making (docs/operate.md). A record older than 24
hours is gone from its stream and cannot come back; the message is then kept, with a note.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from budget_sync.reconcile import Drift
from budgetctl.commands import Command
from budgetctl.context import Context
from budgetctl.errors import ExitCode, UsageError
from budgetctl.repair import INVOKE_CONFIG, invoke_reconciler

DEFAULT_STACK = "budget-sync"
COLUMNS = ("MessageId", "Shard", "FromSequence", "ToSequence", "Records", "Accounts", "Targets", "Note")
#: What the resolver's schedule sends it: a full resolution of the organisation.
FULL_RESOLUTION = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
#: Notes of a message whose work is done (it is deleted).
DONE = ("re-applied", "re-resolved", "re-appended")
_MAX_MESSAGES = 1000


@dataclass
class Parked:
    """One on-failure message: the batch it describes and the accounts of its records."""

    message_id: str
    receipt: str
    shard: str
    first: str
    last: str
    size: int
    stream_arn: str
    accounts: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)  # defaults (the resolver's batches)
    note: str = ""
    info: dict[str, Any] = field(default_factory=dict)  # the message's DDBStreamBatchInfo

    def row(self) -> dict[str, Any]:
        return {
            "MessageId": self.message_id,
            "Shard": self.shard,
            "FromSequence": self.first,
            "ToSequence": self.last,
            "Records": self.size,
            "Accounts": " ".join(self.accounts),
            "Targets": " ".join(self.targets),
            "Note": self.note,
        }


def register(command: Command) -> None:
    parked = command("parked", cmd_parked, "list the stream batches parked on the on-failure queue")
    parked.add_argument("--queue-url", help="the on-failure queue (default: the stack's OnFailureQueueUrl)")
    parked.add_argument(
        "--stack-name", default=DEFAULT_STACK, help="the management stack (default budget-sync)"
    )
    parked.add_argument(
        "--reapply",
        action="store_true",
        help="re-apply the parked accounts from the table; delete what is done",
    )
    parked.add_argument(
        "--resolver-function",
        default="BlogBudgetsOrgResolver",
        help="--reapply of a defaults batch: the resolver function (default BlogBudgetsOrgResolver)",
    )
    parked.add_argument(
        "--history",
        action="store_true",
        help="the history function's queue (HistoryFailureQueue) instead of the on-failure queue",
    )
    parked.add_argument(
        "--history-function",
        default="BlogBudgetsHistoryRecorder",
        help="--history --reapply: the history function (default BlogBudgetsHistoryRecorder)",
    )
    parked.add_argument(
        "--visibility-timeout",
        type=int,
        default=30,
        help="seconds a listed message stays hidden from other readers (default 30)",
    )


def cmd_parked(ctx: Context) -> int:
    args = ctx.args
    if not 0 <= args.visibility_timeout <= 43200:
        ctx.out.error(f"--visibility-timeout {args.visibility_timeout} must be from 0 to 43200")
        return ExitCode.USAGE
    output = "HistoryFailureQueueUrl" if args.history else "OnFailureQueueUrl"
    queue_url = args.queue_url or _queue_url(ctx, args.stack_name, output)
    sqs = ctx.client("sqs")
    messages = list(_receive(sqs, queue_url, args.visibility_timeout))
    if args.history:
        for message in messages:
            message.targets = [_table_of(message.stream_arn)] if message.stream_arn else []
    else:
        streams = ctx.client("dynamodbstreams")
        for message in messages:
            _name_accounts(streams, message)
    if args.reapply and messages:
        (_reappend if args.history else _reapply)(ctx, messages)
        for message in messages:
            if message.note.startswith(DONE):
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message.receipt)
    title = "parked on the history queue" if args.history else "parked on the on-failure queue"
    ctx.out.rows([m.row() for m in messages], COLUMNS, title=title)
    ctx.out.info(
        f"{len(messages)} parked batch(es)" + ("" if args.reapply or not messages else "; run with --reapply")
    )
    if not messages:
        return ExitCode.OK
    done = args.reapply and all(m.note.startswith(DONE) for m in messages)
    return ExitCode.OK if done else ExitCode.PROBLEM


def _queue_url(ctx: Context, stack_name: str, output: str) -> str:
    stacks = ctx.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    if output not in outputs:
        raise UsageError(f"stack {stack_name} has no output {output}: pass --queue-url")
    return str(outputs[output])


def _table_of(stream_arn: str) -> str:
    """``arn:...:table/BlogBudgetsStatus/stream/2026-...`` -> ``BlogBudgetsStatus``."""
    parts = stream_arn.split("/")
    return parts[1] if len(parts) >= 4 and parts[2] == "stream" else stream_arn


def _receive(sqs: Any, queue_url: str, visibility: int) -> Iterable[Parked]:
    seen: set[str] = set()
    while len(seen) < _MAX_MESSAGES:
        page = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=visibility, WaitTimeSeconds=0
        ).get("Messages", [])
        fresh = [m for m in page if m["MessageId"] not in seen]
        if not fresh:
            return
        for message in fresh:
            seen.add(message["MessageId"])
            yield _parse(message)


def _parse(message: Mapping[str, Any]) -> Parked:
    try:
        info = json.loads(message["Body"])["DDBStreamBatchInfo"]
        return Parked(
            message_id=message["MessageId"],
            receipt=message["ReceiptHandle"],
            shard=str(info["shardId"]),
            first=str(info["startSequenceNumber"]),
            last=str(info["endSequenceNumber"]),
            size=int(info.get("batchSize", 0)),
            stream_arn=str(info["streamArn"]),
            info=dict(info),
        )
    except (ValueError, KeyError, TypeError):
        return Parked(
            message["MessageId"],
            message["ReceiptHandle"],
            "",
            "",
            "",
            0,
            "",
            note="not a stream batch description",
        )


def _name_accounts(streams: Any, parked: Parked) -> None:
    """The accounts of the described records, read back from the stream."""
    if not parked.stream_arn:
        return
    accounts: set[str] = set()
    targets: set[str] = set()
    try:
        iterator = streams.get_shard_iterator(
            StreamArn=parked.stream_arn,
            ShardId=parked.shard,
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            SequenceNumber=parked.first,
        )["ShardIterator"]
        last = int(parked.last)
        while iterator:
            page = streams.get_records(ShardIterator=iterator, Limit=1000)
            records = page.get("Records", [])
            for record in records:
                if int(record["dynamodb"]["SequenceNumber"]) > last:
                    iterator = None
                    break
                keys = record["dynamodb"].get("Keys", {})
                account = keys.get("AccountId", {}).get("S")
                target = keys.get("TargetId", {}).get("S")
                if account:
                    accounts.add(str(account))
                if target:
                    targets.add(str(target))
            else:
                iterator = page.get("NextShardIterator") if records else None
    except (ClientError, BotoCoreError) as exc:
        parked.note = f"records no longer readable ({exc}); run `budgetctl reconcile --apply`"
    parked.accounts = sorted(accounts)
    parked.targets = sorted(targets)


def _reapply(ctx: Context, messages: list[Parked]) -> None:
    """The reconciler function repairs the parked accounts from the table with its own role,
    recorded as asked by the caller (budgetctl.repair): the operator never writes a spoke."""
    if any(m.targets and not m.accounts for m in messages):
        _reresolve(ctx, [m for m in messages if m.targets and not m.accounts])
    wanted = sorted({account for m in messages for account in m.accounts})
    if not wanted:  # an empty request would mean every account
        return
    result = invoke_reconciler(ctx, wanted)
    reports = [r for r in result["reports"] if isinstance(r, dict)]
    ok = {
        str(r.get("AccountId"))
        for r in reports
        if r.get("Drift") == Drift.IN_SYNC.value or r.get("Action") == "REPAIRED"
    }
    known = {str(r.get("AccountId")) for r in reports}
    for message in messages:
        if not message.accounts:
            continue
        missing = [a for a in message.accounts if a not in known]  # item deleted since: nothing to apply
        failed = [a for a in message.accounts if a in known and a not in ok]
        if failed:
            message.note = f"not re-applied: {' '.join(failed)} (see `budgetctl reconcile`)"
        else:
            message.note = "re-applied" + (f" (no item any more: {' '.join(missing)})" if missing else "")


def _reresolve(ctx: Context, messages: list[Parked]) -> None:
    """A parked batch of the defaults table's stream: the resolver function resolves the whole
    organisation again (what its schedule does), which covers every default the batch named."""
    client = ctx.session.client("lambda", endpoint_url=ctx.args.endpoint_url, config=INVOKE_CONFIG)
    try:
        response = client.invoke(
            FunctionName=ctx.args.resolver_function,
            InvocationType="RequestResponse",
            Payload=json.dumps(FULL_RESOLUTION).encode(),
        )
        failed = response.get("FunctionError")
        detail = response["Payload"].read().decode("utf-8", "replace")[:300] if failed else ""
    except (ClientError, BotoCoreError) as exc:
        failed, detail = "not invoked", str(exc)
    for message in messages:
        message.note = (
            f"not re-resolved: the resolver {ctx.args.resolver_function} failed ({failed}: {detail})"
            if failed
            else "re-resolved (the organisation was resolved again)"
        )


def _reappend(ctx: Context, messages: list[Parked]) -> None:
    """Parked history batches: the history function reads each one back from its stream and
    appends it (handlers/history.py ``reappend``); the caller sends positions, never records."""
    client = ctx.session.client("lambda", endpoint_url=ctx.args.endpoint_url, config=INVOKE_CONFIG)
    function = ctx.args.history_function
    for message in messages:
        if not message.info:
            continue  # not a stream batch description: its note says so, it is kept
        try:
            response = client.invoke(
                FunctionName=function,
                InvocationType="RequestResponse",
                Payload=json.dumps({"ParkedBatch": message.info}).encode(),
            )
            body = response["Payload"].read().decode("utf-8", "replace")
        except (ClientError, BotoCoreError) as exc:
            message.note = f"not re-appended: the history function {function} was not invoked ({exc})"
            continue
        if response.get("FunctionError"):
            message.note = f"not re-appended: the history function {function} failed ({body[:300]})"
            continue
        answer = json.loads(body)
        if answer.get("batchItemFailures"):
            message.note = (
                f"not re-appended: {answer['records']} record(s) read, appending failed from sequence "
                f"{answer['batchItemFailures'][0]['itemIdentifier']} (retry later)"
            )
        elif answer.get("missing"):
            message.note = (
                f"not re-appended: {answer['missing']} of {message.size} record(s) are no longer in the "
                "stream (DynamoDB Streams keeps records 24 hours) and cannot come back; "
                f"{answer['appended']} appended (docs/operate.md, History)"
            )
        else:
            message.note = (
                f"re-appended ({answer['appended']} appended, {answer['duplicates']} already there)"
            )
