"""The stream handler against a straightforward per-record baseline, in one run on moto.

Baseline, for every record: assume the spoke role, build a new SSM client, put the value.
The handler: newest value per account, cached cross-account clients, bounded concurrency.
Both work on the same 100 real stream records over 20 accounts. API calls are counted
with a botocore hook on every client; import time is measured in fresh interpreters.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import boto3
from botocore.client import BaseClient
from moto import mock_aws

from budget_sync import observability
from budget_sync.handlers import update as update_handler
from budget_sync_local import standins
from budget_sync_local.lambda_runtime import FunctionSpec, function_spec, invoke
from budget_sync_local.streams import lambda_event, read_from_start
from budget_sync_local.templates import MANAGEMENT_TEMPLATE, Resolver, load

REGION = "us-east-1"
ACCOUNTS = [f"{100000000000 + i:012d}" for i in range(1, 21)]
RECORDS = 100
PARAMETER = "/BlogBudgets/CostThreshold"
ROLE = "BlogBudgetsSpokeRole"
#: rounds of each scenario (bench-quick runs one of each)
ROUNDS = int(os.environ.get("BENCH_HANDLER_ROUNDS", "5"))
RTT = 0.020  # a typical in-region round trip to an AWS API
RTT_ROUNDS = int(os.environ.get("BENCH_HANDLER_RTT_ROUNDS", "2"))


@contextmanager
def counting_calls(rtt: float = 0.0) -> Iterator[Counter[str]]:
    """Count every AWS call; with ``rtt``, each call also waits that long, as on a network."""
    calls: Counter[str] = Counter()
    original = BaseClient._make_api_call

    def counted(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        calls[f"{client.meta.service_model.service_name}:{operation}"] += 1
        if rtt:
            time.sleep(rtt)
        return original(client, operation, params)

    BaseClient._make_api_call = counted  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        BaseClient._make_api_call = original  # type: ignore[method-assign]


def _setup() -> tuple[boto3.Session, str, str]:
    session = boto3.Session(region_name=REGION)
    resolver = Resolver(load(MANAGEMENT_TEMPLATE))
    names = {}
    for logical_id in ("BudgetsTable", "StatusTable"):
        properties = resolver.properties(logical_id)
        stream = properties.get("StreamSpecification")
        extra = {"StreamSpecification": {"StreamEnabled": True, **stream}} if stream else {}
        description = session.client("dynamodb").create_table(
            TableName=properties["TableName"],
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=properties["AttributeDefinitions"],
            KeySchema=properties["KeySchema"],
            **extra,
        )["TableDescription"]
        names[logical_id] = description
    sts = session.client("sts")
    for account in ACCOUNTS:
        credentials = sts.assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole", RoleSessionName="setup"
        )["Credentials"]
        admin = boto3.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=REGION,
        )
        admin.client("iam").create_role(RoleName=ROLE, AssumeRolePolicyDocument="{}")
        admin.client("ssm").put_parameter(Name=PARAMETER, Value="1000", Type="String")
    return session, names["BudgetsTable"]["TableName"], names["BudgetsTable"]["LatestStreamArn"]


def _write_batch(
    session: boto3.Session, table: str, stream_arn: str, start: int, same: bool = False
) -> dict[str, Any]:
    """RECORDS writes, round-robin over the accounts; returns them as one Lambda event.

    With ``same``, every write repeats the value 1000: once the items hold 1000, the
    records are MODIFY events that change nothing.
    """
    before = len(read_from_start(session.client("dynamodbstreams"), stream_arn))
    items = session.resource("dynamodb").Table(table)
    for i in range(RECORDS):
        value = 1000 if same else start + i
        items.put_item(Item={"AccountId": ACCOUNTS[i % len(ACCOUNTS)], "BudgetValue": Decimal(value)})
    records = read_from_start(session.client("dynamodbstreams"), stream_arn)[before:]
    return lambda_event(records)


def _baseline(event: dict[str, Any], session: boto3.Session) -> None:
    """What a first version would do: assume, build a client, put, for every record."""
    sts = session.client("sts")
    for record in event["Records"]:
        image = record["dynamodb"]["NewImage"]
        account = image["AccountId"]["S"]
        credentials = sts.assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/{ROLE}", RoleSessionName="baseline"
        )["Credentials"]
        ssm = session.client(
            "ssm",
            region_name=REGION,
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )
        ssm.put_parameter(Name=PARAMETER, Value=image["BudgetValue"]["N"], Type="String", Overwrite=True)


def _timed(action: Callable[[], object], rtt: float) -> tuple[float, Counter[str]]:
    with counting_calls(rtt) as calls:
        started = time.perf_counter()
        action()
        return time.perf_counter() - started, calls


def _spoke_calls(calls: Counter[str]) -> int:
    return calls["sts:AssumeRole"] + calls["ssm:PutParameter"]


@dataclass
class Figures:
    seconds: list[float] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)

    def add(self, measured: tuple[float, Counter[str]]) -> None:
        self.seconds.append(measured[0])
        self.calls = measured[1]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def _scenario(spec: FunctionSpec, rtt: float, rounds: int) -> dict[str, Figures]:
    """Each round: the handler cold (new execution environment) and warm, and the baseline
    cold (new session: models load, as in a cold start) and warm, on the same records."""
    figures = {name: Figures() for name in ("handler cold", "handler warm", "baseline cold", "baseline warm")}
    # The stand-ins give moto's TransactWriteItems one snapshot per table instead of one per
    # item (a moto cost DynamoDB does not have, which would otherwise be charged to the handler).
    with mock_aws(), standins.installed(), contextlib.redirect_stdout(io.StringIO()):  # EMF metric lines
        session, table, stream_arn = _setup()
        warm_session = boto3.Session(region_name=REGION)
        for number in range(rounds):
            event = _write_batch(session, table, stream_arn, start=2000 + number * 1000)
            update_handler.build_service.cache_clear()
            figures["handler cold"].add(_timed(lambda e=event: invoke(spec, e, REGION), rtt))
            warm = _write_batch(session, table, stream_arn, start=50000 + number * 1000)
            figures["handler warm"].add(_timed(lambda e=warm: invoke(spec, e, REGION), rtt))
            fresh = boto3.Session(region_name=REGION)
            figures["baseline cold"].add(_timed(lambda e=event, s=fresh: _baseline(e, s), rtt))
            figures["baseline warm"].add(_timed(lambda e=event: _baseline(e, warm_session), rtt))
    return figures


def _report(title: str, figures: dict[str, Figures]) -> None:
    changed = len(ACCOUNTS)
    print(title)
    for name, figure in figures.items():
        spoke = _spoke_calls(figure.calls)
        line = f"  {name:14s} {figure.median * 1000:8.1f} ms   spoke calls {spoke:4d} ({spoke / changed:.1f}/account)"
        if name.startswith("handler"):
            baseline = figures[name.replace("handler", "baseline")].median
            line += f"   {baseline / figure.median:5.1f}x faster than the baseline {name.split()[1]}"
        print(line)


def _quiet_function_logs() -> None:
    """The function's JSON log lines (one per account) are not the benchmark's output; they
    are still formatted and written, so their cost stays in the figures."""
    sink = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    for handler in observability.logger.handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sink)


def run() -> None:
    _quiet_function_logs()
    spec = function_spec()
    print(
        f"{RECORDS} records over {len(ACCOUNTS)} accounts per batch (5 values per account), moto in-process"
    )
    cpu = _scenario(spec, rtt=0.0, rounds=ROUNDS)
    _report(f"A. no network latency (moto's own CPU time only), median of {ROUNDS} rounds:", cpu)
    print(f"  calls, handler cold batch: {dict(sorted(cpu['handler cold'].calls.items()))}")
    print(f"  calls, handler warm batch: {dict(sorted(cpu['handler warm'].calls.items()))}")
    rtt = _scenario(spec, rtt=RTT, rounds=RTT_ROUNDS)
    _report(
        f"B. every AWS call also waits {RTT * 1000:.0f} ms, as over a network, median of {RTT_ROUNDS} rounds:",
        rtt,
    )

    with mock_aws(), contextlib.redirect_stdout(io.StringIO()):  # EMF metric lines
        session, table, stream_arn = _setup()
        _write_batch(session, table, stream_arn, start=0, same=True)
        unchanged = _write_batch(session, table, stream_arn, start=0, same=True)
        _, unchanged_calls = _timed(lambda: invoke(spec, unchanged, REGION), 0.0)
    print(
        f"unchanged batch ({RECORDS} MODIFY records, same value): {sum(unchanged_calls.values())} AWS calls"
    )

    print("import time: see `bench artifact` (the built artifact, as Lambda loads it)")
