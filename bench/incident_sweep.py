"""The incident function's hourly sweep (docs/itsm.md) over 5,000 accounts
(``BENCH_SWEEP_ACCOUNTS``) on modelled AWS and ServiceNow latency: its wall time against the
function's timeout, and against the same sweep one account after another (the ratio).

The organisation, an hourly run in the middle of a month: 8 % of the accounts are in alarm
with their incident already open and reported (``unchanged``), 1 % newly in alarm (an incident
``opened``: their settings read from the budgets and defaults tables and Organizations), 1 %
whose alarm ended (``resolved``), the rest under their thresholds with no incident (``none``);
and 1 % of the accounts have an incident of last month still open (resolved first: its period
has ended). Each account is in one of 50 OUs under the root.

Modelled (as ``bench.modelled_aws``): every AWS call is answered after ``BENCH_SWEEP_LATENCY_MS``
(default 60) milliseconds with a response of the shape AWS documents (DynamoDB Scan, GetItem
and conditional PutItem, STS AssumeRole, Budgets DescribeBudget and
DescribeNotificationsForBudget, Organizations DescribeAccount, ListParents and
DescribeOrganization, Secrets Manager GetSecretValue), and every ServiceNow request after
``BENCH_SWEEP_SERVICENOW_MS`` (default 300). Organizations is paced at the function's 4 calls
a second, for real. With about four calls an account, 60 ms a call is the 0.3 s of AWS calls
an account costs that issue 23 counts on. The figure is budget-sync's code, botocore (signing,
parsing), the threads and the wait; not AWS's variability, throttling or TLS, and not Lambda's
CPU share (below).

Timed, through the handler the template names, with a context whose remaining time is the
template's ``Timeout`` counting down from the call: the sweep of ``BENCH_SWEEP_ACCOUNTS`` at the
template's ``INCIDENT_SWEEP_CONCURRENCY``; then, for the ratio in the same run, the same sweep of
``BENCH_SWEEP_SEQUENTIAL_ACCOUNTS`` (default 300: one after another, 5,000 would take about
25 minutes) at concurrency 1 and at the template's. Each sweep gets an organisation of its own
(a sweep changes the incidents).

Lambda gives a function CPU in proportion to its memory (one vCPU at 1,769 MB, AWS Lambda
documentation, "Configure Lambda function memory"); the CPU seconds the sweep used here are
printed beside what they would take at the template's ``MemorySize``.
"""

from __future__ import annotations

import io
import json
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
from botocore.awsrequest import AWSPreparedRequest, AWSResponse

from bench.modelled_aws import _account, _fail, _json, _response
from budget_sync.handlers import incidents as handler_module
from budget_sync.incidents.config import IncidentFunctionSettings
from budget_sync.incidents.servicenow import HttpResponse
from budget_sync_local.templates import MANAGEMENT_TEMPLATE, load

ACCOUNTS = int(os.environ.get("BENCH_SWEEP_ACCOUNTS", "5000"))
SEQUENTIAL_ACCOUNTS = int(os.environ.get("BENCH_SWEEP_SEQUENTIAL_ACCOUNTS", "300"))
LATENCY = float(os.environ.get("BENCH_SWEEP_LATENCY_MS", "60")) / 1000
SERVICENOW_LATENCY = float(os.environ.get("BENCH_SWEEP_SERVICENOW_MS", "300")) / 1000
OUS = 50
ONE_VCPU_MB = 1769  # AWS Lambda: one vCPU at 1,769 MB of memory
REGION = "us-east-1"
BUDGET = "SpokeAccountBudget"
MANAGEMENT = "999999999999"
ROOT = "r-ab12"
SECRET = f"arn:aws:secretsmanager:{REGION}:{MANAGEMENT}:secret:servicenow-AbCdEf"
NOW = datetime(2026, 12, 15, 10, 0, tzinfo=UTC)  # mid-month: this month began 2026-12-01
THIS_MONTH, LAST_MONTH = "2026-12-01", "2026-11-01"
TABLES = {
    "budgets": "BlogBudgetsDynamoDB",
    "defaults": "BlogBudgetsDefaults",
    "incidents": "BudgetSyncIncidents",
}


def _kind(index: int) -> str:
    """What account ``index`` is in this run (see the module's text)."""
    return {8: "new", 9: "ended alarm"}.get(index % 100, "reported" if index % 100 < 8 else "quiet")


@dataclass
class ModelledOrganisation:
    """The AWS side of the sweep: tables, spokes and Organizations, ``latency`` s a call."""

    accounts: list[str]
    latency: float
    incidents: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        for index, account in enumerate(self.accounts):
            if _kind(index) in ("reported", "ended alarm"):
                self._store(account, THIS_MONTH, "2027-01-01")
            if index % 100 == 50:  # last month's incident, still open: its period has ended
                self._store(account, LAST_MONTH, THIS_MONTH)
        self.kind = {account: _kind(index) for index, account in enumerate(self.accounts)}
        self.ou = {account: f"ou-ab12-{index % OUS:08d}" for index, account in enumerate(self.accounts)}

    def _store(self, account: str, start: str, end: str) -> None:
        cid = f"{account}/{BUDGET}/{start}"
        self.incidents[cid] = {
            "CorrelationId": {"S": cid},
            "AccountId": {"S": account},
            "BudgetName": {"S": BUDGET},
            "PeriodEnd": {"S": end},
            "IncidentState": {"S": "OPEN"},
            "Version": {"N": "2"},
            "ClaimedAt": {"N": "0"},
            "SysId": {"S": f"{account:0>32}"},
            "Number": {"S": f"INC{account[-7:]}"},
            "Urgency": {"N": "3"},
            "Notified": {"L": [{"S": "ACTUAL 80%"}]},
            "Opened": {"N": "1"},
            "Failure": {"S": ""},
        }

    def install(self, session: boto3.Session) -> None:
        session.events.register("before-send", self._answer)

    def _answer(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        time.sleep(self.latency)
        target = request.headers.get("X-Amz-Target", b"")
        operation = (target.decode() if isinstance(target, bytes) else target).rsplit(".", 1)[-1]
        body = request.body or b""
        text = body.decode() if isinstance(body, bytes) else str(body)
        if not operation:  # the query protocol (STS)
            form = parse_qs(text)
            operation = form.get("Action", ["?"])[0]
        with self._lock:
            self.calls[operation] += 1
        if operation == "AssumeRole":
            return _assume_role(parse_qs(text)["RoleArn"][0])
        handlers: Mapping[str, Callable[[dict[str, Any], AWSPreparedRequest], AWSResponse]] = {
            "Scan": self._scan,
            "GetItem": self._get_item,
            "PutItem": self._put_item,
            "DescribeBudget": self._describe_budget,
            "DescribeNotificationsForBudget": self._notifications,
            "DescribeAccount": self._describe_account,
            "ListParents": self._list_parents,
            "DescribeOrganization": lambda _b, _r: _json({"Organization": {"MasterAccountId": MANAGEMENT}}),
            "GetSecretValue": lambda _b, _r: _json(
                {
                    "ARN": SECRET,
                    "Name": "servicenow",
                    "SecretString": json.dumps({"username": "u", "password": "p"}),
                }
            ),
        }
        if operation not in handlers:
            return _fail(operation)
        return handlers[operation](json.loads(text or "{}"), request)

    # -- DynamoDB --------------------------------------------------------------------------

    def _scan(self, body: dict[str, Any], _: AWSPreparedRequest) -> AWSResponse:
        if body["TableName"] == TABLES["budgets"]:
            rows = [{"AccountId": {"S": a}} for a in self.accounts]
        else:  # the incidents table: those not RESOLVED (the sweep's FilterExpression)
            with self._lock:
                rows = [dict(i) for i in self.incidents.values() if i["IncidentState"]["S"] != "RESOLVED"]
        return _json({"Items": rows, "Count": len(rows), "ScannedCount": len(rows)})

    def _get_item(self, body: dict[str, Any], _: AWSPreparedRequest) -> AWSResponse:
        key = next(iter(body["Key"].values()))["S"]
        if body["TableName"] == TABLES["incidents"]:
            with self._lock:
                item = self.incidents.get(key)
            return _json({"Item": dict(item)} if item else {})
        if body["TableName"] == TABLES["budgets"]:
            return _json({"Item": {"AccountId": {"S": key}, "BudgetValue": {"N": "1000"}}})
        return _json({})  # no OU or root default sets an incident field

    def _put_item(self, body: dict[str, Any], _: AWSPreparedRequest) -> AWSResponse:
        item = body["Item"]
        cid = item["CorrelationId"]["S"]
        expected = body.get("ExpressionAttributeValues", {}).get(":expected", {}).get("N")
        with self._lock:
            stored = self.incidents.get(cid)
            if (stored["Version"]["N"] if stored else None) != expected:
                return _response(
                    400,
                    json.dumps(
                        {
                            "__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
                            "message": "The conditional request failed",
                        }
                    ),
                    "application/x-amz-json-1.0",
                )
            self.incidents[cid] = item
        return _json({})

    # -- the spoke's budget ----------------------------------------------------------------

    def _describe_budget(self, body: dict[str, Any], request: AWSPreparedRequest) -> AWSResponse:
        account = _account(request)
        actual = "900" if self.kind[account] in ("reported", "new") else "300"
        return _json(
            {
                "Budget": {
                    "BudgetName": body["BudgetName"],
                    "BudgetLimit": {"Amount": "1000", "Unit": "USD"},
                    "TimeUnit": "MONTHLY",
                    "BudgetType": "COST",
                    "CalculatedSpend": {
                        "ActualSpend": {"Amount": actual, "Unit": "USD"},
                        "ForecastedSpend": {"Amount": actual, "Unit": "USD"},
                    },
                }
            }
        )

    def _notifications(self, _: dict[str, Any], request: AWSPreparedRequest) -> AWSResponse:
        state = "ALARM" if self.kind[_account(request)] in ("reported", "new") else "OK"
        notification = {
            "NotificationType": "ACTUAL",
            "ComparisonOperator": "GREATER_THAN",
            "Threshold": 80.0,
            "ThresholdType": "PERCENTAGE",
            "NotificationState": state,
        }
        return _json({"Notifications": [notification]})

    # -- Organizations ---------------------------------------------------------------------

    def _describe_account(self, body: dict[str, Any], _: AWSPreparedRequest) -> AWSResponse:
        account = body["AccountId"]
        return _json({"Account": {"Id": account, "Name": f"Sandbox {account[-4:]}", "Status": "ACTIVE"}})

    def _list_parents(self, body: dict[str, Any], _: AWSPreparedRequest) -> AWSResponse:
        child = body["ChildId"]
        parent = (
            {"Id": ROOT, "Type": "ROOT"}
            if child.startswith("ou-")
            else {"Id": self.ou[child], "Type": "ORGANIZATIONAL_UNIT"}
        )
        return _json({"Parents": [parent]})


def _assume_role(role_arn: str) -> AWSResponse:
    account = role_arn.split(":")[4]
    expires = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return _response(
        200,
        '<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>'
        f"<Credentials><AccessKeyId>ASIA{account}</AccessKeyId><SecretAccessKey>secret</SecretAccessKey>"
        f"<SessionToken>token</SessionToken><Expiration>{expires}</Expiration></Credentials>"
        f"<AssumedRoleUser><AssumedRoleId>AROA{account}:incidents</AssumedRoleId><Arn>{role_arn}</Arn>"
        "</AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>r</RequestId>"
        "</ResponseMetadata></AssumeRoleResponse>",
        "text/xml",
    )


class ModelledServiceNow:
    """The Table API's answers after ``latency`` seconds (create, find, update)."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._next = 20001

    def __call__(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None) -> HttpResponse:
        time.sleep(self.latency)
        with self._lock:
            self.calls[method] += 1
            number = self._next
            self._next += 1
        if method == "GET":
            return _servicenow(200, [])
        sys_id = urlsplit(url).path.rsplit("/", 1)[-1] if method == "PATCH" else f"{number:032x}"
        return _servicenow(201 if method == "POST" else 200, {"sys_id": sys_id, "number": f"INC{number:07d}"})


def _servicenow(status: int, result: Any) -> HttpResponse:
    return HttpResponse(status, {"Content-Type": "application/json"}, json.dumps({"result": result}).encode())


@dataclass
class _Context:
    """What Lambda's context gives the function: its remaining time counts down from the call."""

    timeout_s: int
    started: float = field(default_factory=time.monotonic)
    function_name: str = "BudgetSyncIncidents"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{MANAGEMENT}:function:BudgetSyncIncidents"
    aws_request_id: str = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self.timeout_s * 1000 - (time.monotonic() - self.started) * 1000))


def _function() -> dict[str, Any]:
    properties: dict[str, Any] = load(MANAGEMENT_TEMPLATE)["Resources"]["IncidentFunction"]["Properties"]
    return properties


@contextmanager
def _quiet_log() -> Iterator[io.StringIO]:
    """The function's log lines and metrics written to a buffer (they are still produced)."""
    buffer = io.StringIO()
    handlers = [h for h in logging.getLogger("budget-sync").handlers if isinstance(h, logging.StreamHandler)]
    saved = [h.setStream(buffer) for h in handlers]
    try:
        with redirect_stdout(buffer):
            yield buffer
    finally:
        for handler, stream in zip(handlers, saved, strict=True):
            if stream is not None:
                handler.setStream(stream)


@dataclass(frozen=True)
class Run:
    seconds: float
    cpu_seconds: float
    summary: dict[str, Any]
    aws: Counter[str]
    servicenow: Counter[str]


def sweep(accounts: int, concurrency: int) -> Run:
    """One scheduled invocation over a fresh organisation of ``accounts`` accounts."""
    ids = [f"{100000000000 + i:012d}" for i in range(accounts)]
    organisation = ModelledOrganisation(ids, LATENCY)
    servicenow = ModelledServiceNow(SERVICENOW_LATENCY)
    session = boto3.Session(
        aws_access_key_id="bench",
        aws_secret_access_key="bench",  # noqa: S106 - the modelled AWS takes any key
        region_name=REGION,
    )
    organisation.install(session)
    function = _function()
    env = {k: str(v) for k, v in function["Environment"]["Variables"].items() if isinstance(v, str | int)}
    settings = IncidentFunctionSettings.from_env(
        {
            **env,
            "INCIDENTS_TABLE_NAME": TABLES["incidents"],
            "BUDGETS_TABLE_NAME": TABLES["budgets"],
            "DEFAULTS_TABLE_NAME": TABLES["defaults"],
            "SERVICENOW_INSTANCE_URL": "https://example.service-now.com",
            "SERVICENOW_SECRET_ARN": SECRET,
            "SPOKE_ROLE_NAME": "BudgetSyncIncidentReadRole",
            "INCIDENT_SWEEP_CONCURRENCY": str(concurrency),
        }
    )
    ctx = handler_module.build_context(settings, session, servicenow)
    event = {"source": "aws.events", "detail-type": "Scheduled Event", "time": NOW.isoformat(), "detail": {}}
    context = _Context(int(function["Timeout"]), memory_limit_in_mb=int(function["MemorySize"]))
    with _quiet_log():
        cpu, started = time.process_time(), time.perf_counter()
        summary = handler_module.handler(event, context, ctx)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return Run(seconds, cpu, summary, organisation.calls, servicenow.calls)


def _line(label: str, accounts: int, run: Run) -> str:
    actions = ", ".join(f"{n:,} {a}" for a, n in sorted(run.summary["actions"].items()))
    skipped = len(run.summary["skipped"]) + len(run.summary["skipped_ended"])
    return (
        f"  {label}: {accounts:,} accounts in {run.seconds:.1f} s ({actions}; "
        f"{len(run.summary['unfinished'])} failed, {skipped:,} skipped for the next hour); "
        f"{sum(run.aws.values()):,} AWS calls, {sum(run.servicenow.values())} ServiceNow requests; "
        f"CPU {run.cpu_seconds:.1f} s"
    )


def run() -> None:
    function = _function()
    timeout, memory = int(function["Timeout"]), int(function["MemorySize"])
    concurrency = int(function["Environment"]["Variables"]["INCIDENT_SWEEP_CONCURRENCY"])
    print(
        f"modelled latency {LATENCY * 1000:.0f} ms per AWS call, {SERVICENOW_LATENCY * 1000:.0f} ms per "
        f"ServiceNow request; Organizations paced at 4 calls/s; the function's Timeout {timeout} s "
        f"(no account started in its last {handler_module.SWEEP_RESERVE_MS // 1000} s), "
        f"INCIDENT_SWEEP_CONCURRENCY {concurrency}, MemorySize {memory} MB",
        flush=True,
    )
    full = sweep(ACCOUNTS, concurrency)
    print(_line(f"concurrency {concurrency}", ACCOUNTS, full), flush=True)
    per_call = {k: v for k, v in sorted(full.aws.items())}
    print(f"    AWS calls by operation: {per_call}", flush=True)
    share = memory / ONE_VCPU_MB
    print(
        f"    at MemorySize {memory} MB Lambda gives {share:.2f} of a vCPU: the {full.cpu_seconds:.1f} CPU "
        f"seconds used here would take at least {full.cpu_seconds / share:.0f} s there (this machine's "
        "core counted as one vCPU)",
        flush=True,
    )
    sequential = sweep(SEQUENTIAL_ACCOUNTS, 1)
    concurrent = sweep(SEQUENTIAL_ACCOUNTS, concurrency)
    print(_line("one after another", SEQUENTIAL_ACCOUNTS, sequential), flush=True)
    print(_line(f"concurrency {concurrency}", SEQUENTIAL_ACCOUNTS, concurrent), flush=True)
    print(
        f"  ratio (same run, {SEQUENTIAL_ACCOUNTS:,} accounts): concurrency {concurrency} takes "
        f"{concurrent.seconds / sequential.seconds:.3f}x the time of one after another "
        f"({sequential.seconds / concurrent.seconds:.1f}x faster); one after another, {ACCOUNTS:,} accounts "
        f"would take about {sequential.seconds * ACCOUNTS / SEQUENTIAL_ACCOUNTS:.0f} s (extrapolated, not run)",
        flush=True,
    )


if __name__ == "__main__":
    run()
