"""``budgetctl history`` over a month of 5,000 accounts (``BENCH_HISTORY_ACCOUNTS``), on modelled
AWS latency: seconds to read and print the organisation's month, and one account's history.

The history a month makes: each account changes its budget four times (each change a CHANGED
record and the spoke's APPLIED outcome: 8 records), one account in ten is repaired once (a
REPAIRED and its outcome: 2), and 50 OU defaults change twice (100): 41,100 records for 5,000
accounts. Each is stored as ``budget_sync.history_table.to_item`` writes it (a principal's ARN,
a reason on the repairs), so a page holds what DynamoDB's 1 MB Query limit lets it hold (the
item's size counted as its attribute names and values, as DynamoDB counts it).

Modelled AWS (as ``bench.modelled_aws``): every call is answered after ``BENCH_HISTORY_LATENCY_MS``
(default 30) milliseconds with a response of the shape the botocore model gives Query (its
``ProjectionExpression`` applied, pages cut at 1 MB before the projection, as DynamoDB does); the
figure is budget-sync's code, botocore (signing, parsing 41,100 items) and the wait. Not
modelled: DynamoDB's own variability, throttling, TLS.

Timed, as an operator types them (budgetctl in-process, output to a buffer):
``budgetctl history --org --since 30d --output json`` (one Query per day on ``ByDay``, paged) and
``budgetctl history ACCOUNT`` (one Query).
"""

from __future__ import annotations

import io
import json
import os
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.awsrequest import AWSPreparedRequest, AWSResponse

from bench.modelled_aws import _fail, _json
from budget_sync.history import HistoryRecord, Kind, Stream, record_key
from budget_sync.history_table import to_item
from budgetctl.cli import main

ACCOUNTS = int(os.environ.get("BENCH_HISTORY_ACCOUNTS", "5000"))
LATENCY = int(os.environ.get("BENCH_HISTORY_LATENCY_MS", "30")) / 1000
TABLE = "BlogBudgetsHistory"
PAGE_BYTES = 1024 * 1024  # Query: at most 1 MB of items per page
OPERATOR = "arn:aws:sts::123456789012:assumed-role/FinanceOps/alice@example.com"


def month_of_history(accounts: int, now: datetime) -> list[HistoryRecord]:
    """What a month of budget-sync writes for ``accounts`` accounts (see the module's text)."""
    records: list[HistoryRecord] = []
    sequence = 0

    def add(subject: str, at: datetime, kind: Kind, **fields: str) -> None:
        nonlocal sequence
        sequence += 1
        when = at.isoformat(timespec="seconds")
        records.append(
            HistoryRecord(subject, record_key(when, Stream.STATUS, str(sequence)), when, kind, **fields)
        )

    month = timedelta(days=30)
    for index in range(accounts):
        account = f"{100000000000 + index:012d}"
        value = 1000
        for change in range(4):
            at = now - month + timedelta(days=7 * change + 1, minutes=index % 1440)
            add(
                account,
                at,
                Kind.CHANGED,
                status="SENT",
                previous=str(value),
                value=str(value + 50),
                by=OPERATOR,
                via="item",
                event_id=f"e{sequence}",
            )
            add(
                account,
                at + timedelta(seconds=20),
                Kind.OUTCOME,
                status="APPLIED",
                value=str(value + 50),
                by="budget-sync (spoke)",
                via="spoke",
                event_id=f"e{sequence}",
            )
            value += 50
        if index % 10 == 0:
            at = now - timedelta(days=2, minutes=index % 1440)
            add(
                account,
                at,
                Kind.REPAIRED,
                status="SENT",
                value=str(value),
                by=OPERATOR,
                via="reconciler",
                reason=f"repaired by the reconciler: the budget's limit was 5000, the table says {value}",
                event_id=f"e{sequence}",
            )
            add(
                account,
                at + timedelta(seconds=20),
                Kind.OUTCOME,
                status="APPLIED",
                value=str(value),
                by="budget-sync (spoke)",
                via="spoke",
                event_id=f"e{sequence}",
            )
    for ou in range(50):
        for change in range(2):
            add(
                f"ou-ab12-{ou:08d}",
                now - timedelta(days=20 - 10 * change, hours=ou),
                Kind.DEFAULT_SET,
                previous="300",
                value="350",
                by=OPERATOR,
                via=f"ou-ab12-{ou:08d}",
                event_id=f"e{sequence}",
            )
    return records


def _size(item: dict[str, Any]) -> int:
    """DynamoDB's item size: attribute names and values (UTF-8), numbers about their digits."""
    return sum(len(name) + len(next(iter(value.values()))) for name, value in item.items())


class ModelledHistory:
    """Query on the history table and its ByDay index, 1 MB pages, after ``latency`` seconds."""

    def __init__(self, records: list[HistoryRecord], latency: float) -> None:
        self.latency = latency
        self.calls = 0
        self._lock = threading.Lock()
        self.by_subject: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.by_day: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for record in sorted(records, key=lambda r: r.key, reverse=True):
            item = to_item(record, 400)
            self.by_subject[record.subject].append(item)
            self.by_day[record.day].append(item)

    def install(self, session: boto3.Session) -> None:
        session.events.register("before-send", self._answer)

    def _answer(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        time.sleep(self.latency)
        with self._lock:
            self.calls += 1
        target = request.headers.get("X-Amz-Target", b"")
        operation = (target.decode() if isinstance(target, bytes) else target).rsplit(".", 1)[-1]
        if operation != "Query":
            return _fail(operation)
        body = json.loads(request.body or b"{}")
        key = next(iter(body["ExpressionAttributeValues"].values()))["S"]
        items = (self.by_day if body.get("IndexName") == "ByDay" else self.by_subject).get(key, [])
        start = int(body.get("ExclusiveStartKey", {}).get("Offset", {}).get("N", 0))
        names = body.get("ExpressionAttributeNames", {})
        wanted = {names.get(p.strip(), p.strip()) for p in body.get("ProjectionExpression", "").split(",")}
        page, size = [], 0
        for item in items[start:]:
            size += _size(item)  # the 1 MB is counted before the projection, as DynamoDB does
            if size > PAGE_BYTES:
                break
            page.append({k: v for k, v in item.items() if k in wanted} if wanted != {""} else item)
        answer: dict[str, Any] = {"Items": page, "Count": len(page), "ScannedCount": len(page)}
        if start + len(page) < len(items):
            answer["LastEvaluatedKey"] = {"Offset": {"N": str(start + len(page))}}
        return _json(answer)


def _timed(session: boto3.Session, *argv: str) -> tuple[float, str]:
    out, err = io.StringIO(), io.StringIO()
    started = time.perf_counter()
    code = main(list(argv), stdout=out, stderr=err, session=session)
    elapsed = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"budgetctl {' '.join(argv)} failed ({code}): {err.getvalue()}")
    return elapsed, out.getvalue()


def run() -> None:
    now = datetime.now(UTC)
    records = month_of_history(ACCOUNTS, now)
    modelled = ModelledHistory(records, LATENCY)
    session = boto3.Session(
        aws_access_key_id="bench",
        aws_secret_access_key="bench",  # noqa: S106 - the modelled AWS takes any key
        region_name="us-east-1",
    )
    modelled.install(session)
    print(
        f"{len(records):,} records: {ACCOUNTS:,} accounts x (4 changes + outcomes), a repair for one in "
        f"ten, 50 defaults changed twice; modelled latency {LATENCY * 1000:.0f} ms per call",
        flush=True,
    )
    seconds, text = _timed(session, "history", "--org", "--since", "30d", "--output", "json")
    shown = len(json.loads(text))
    print(
        f"history --org --since 30d --output json: {shown:,} records in {seconds:.2f} s, {modelled.calls} Query calls"
    )
    calls = modelled.calls
    seconds, text = _timed(session, "history", "100000000000")
    print(f"history ACCOUNT (table): {seconds:.2f} s, {modelled.calls - calls} Query call(s)")
