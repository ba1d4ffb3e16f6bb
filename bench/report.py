"""``budgetctl report --file`` over 5,000 spoke accounts (``BENCH_REPORT_ACCOUNTS``): seconds to
build the page, its size, and the API calls it took.

Two figures; the first is the one ``make bench`` prints, the second is opt-in:

* **modelled latency** (default): every AWS call of the report is answered by
  ``bench.modelled_aws`` after ``BENCH_REPORT_LATENCY_MS`` (default 30) milliseconds, with a
  response of the shape AWS documents, instead of by moto. The figure is budget-sync's code,
  botocore (clients, signing, parsing) and the wait, with the report's real ``--concurrency``
  (default 16): what an operator runs against AWS, less AWS's own variability, throttling and
  TLS. Its baseline, measured in the same run: the calls' modelled latency summed (the same
  calls made one after another); the ratio says how much of the wait ``--concurrency``
  overlaps.
* **emulator** (``BENCH_REPORT_MOTO=1``): the same command against the in-process moto with the
  local organisation's stand-ins. moto in-process is CPU-bound under one GIL: the reading part
  is mostly moto answering three calls per account and botocore building two clients per
  account, which threads cannot overlap here; it is the emulator's cost, not AWS's.

Emulator set-up (not timed): the management stack from its template, an organisation whose
members have fixed ids and names, and in every member exactly what the report reads through
the spoke role: the read role (``BlogBudgetsSpokeReadRole``), the parameter and the budget with a
simulated spend (2 % of accounts over their limit, 8 % near it, 5 % drifted), written to moto's
backends directly; one item per account in the budgets table and an ``APPLIED`` status for
each; 1 % of the items name an account without a spoke role (unreadable). The modelled AWS
holds the same organisation. Building 5,000 spoke stacks from the template with
CloudFormation, as the local organisation does, takes about 180 ms a stack here (15 minutes);
the report reads the same resources either way.

Timed: ``budgetctl report --file`` as an operator types it (budgetctl's own code, in-process),
its API calls counted by a botocore hook on the session it uses. Within that run, building the
page (``render_html``: the chart and the HTML) is timed apart from reading (the tables,
Organizations and every spoke through the reconciler's path, the part ``budgetctl status`` also
does).
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
from moto import mock_aws
from moto.budgets.models import budgets_backends
from moto.iam.models import iam_backends
from moto.organizations.models import organizations_backends
from moto.ssm.models import ssm_backends

from bench.modelled_aws import ModelledAws, Spoke
from budget_sync_local import management_stack, standins
from budget_sync_local.organisation import MANAGEMENT_ACCOUNT
from budgetctl.cli import main
from budgetctl.context import DEFAULT_CONCURRENCY as CONCURRENCY
from budgetctl.context import DEFAULT_READ_ROLE
from budgetctl.report import render

ACCOUNTS = int(os.environ.get("BENCH_REPORT_ACCOUNTS", "5000"))
TARGET_S = 60.0
LATENCY_MS = float(os.environ.get("BENCH_REPORT_LATENCY_MS", "30"))
EMULATOR = os.environ.get("BENCH_REPORT_MOTO", "") == "1"
REGION = "us-east-1"
ROLE = DEFAULT_READ_ROLE  # the role budgetctl reads spokes through (BlogBudgetsSpokeReadRole)
PARAMETER = "/BlogBudgets/CostThreshold"
BUDGET = "SpokeAccountBudget"


def _spend(i: int, limit: Decimal) -> tuple[Decimal, Decimal]:
    """Actual and forecast: 2 % over, 8 % near, the rest spread between 10 % and 75 %."""
    share = Decimal(115) if i % 50 == 0 else Decimal(90) if i % 12 == 1 else Decimal(10 + (i * 7) % 66)
    forecast = (limit * share / 100).quantize(Decimal("0.01"))
    return (forecast * Decimal("0.6")).quantize(Decimal("0.01")), forecast


def _organisation(accounts: list[str]) -> None:
    """Members with these ids and names (moto's backend, as its API would leave them)."""
    organizations = organizations_backends[MANAGEMENT_ACCOUNT]["aws"]
    organizations.create_organization(region=REGION, FeatureSet="ALL")
    for account in accounts:
        with mock.patch("moto.organizations.utils.make_random_account_id", return_value=account):
            organizations.create_account(AccountName=f"team-{account[-4:]}", Email=f"{account}@example.com")


def _spoke(account: str, limit: Decimal, spend: tuple[Decimal, Decimal], drifted: bool) -> None:
    """The spoke role, the parameter and the budget, written to moto's backends directly (set-up
    only: through the API this is four clients and four calls per account)."""
    iam_backends[account]["aws"].create_role(ROLE, "{}", "/", None, "", [], None)
    ssm_backends[account][REGION].put_parameter(
        PARAMETER, "", str(limit), "String", "", "", False, [], "text", None, None
    )
    budget_limit = limit + 100 if drifted else limit
    budgets_backends[account]["aws"].create_budget(
        account_id=account,
        budget={
            "BudgetName": BUDGET,
            "BudgetLimit": {"Amount": str(budget_limit), "Unit": "USD"},
            "BudgetType": "COST",
            "TimeUnit": "MONTHLY",
            "CalculatedSpend": {
                "ActualSpend": {"Amount": str(spend[0]), "Unit": "USD"},
                "ForecastedSpend": {"Amount": str(spend[1]), "Unit": "USD"},
            },
        },
        notifications=[],
    )


def _operator() -> boto3.Session:
    """An operator's credentials: an IAM access key of the management account. (moto looks up
    the account of an unknown key, as the default test key is, by scanning every account on
    every request: with 5,000 accounts that scan, not budget-sync, would be what is measured.)"""
    iam = boto3.client("iam", region_name=REGION)
    iam.create_user(UserName="operator")
    key = iam.create_access_key(UserName="operator")["AccessKey"]
    return boto3.Session(
        aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"], region_name=REGION
    )


def _timed(session: boto3.Session, argv: list[str]) -> tuple[float, float, int, Counter[str], str]:
    """Run ``budgetctl`` on ``session``: seconds in all, seconds building the page, exit code,
    API calls by operation, and what it wrote to stderr."""
    calls: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        calls[f"{model.service_model.service_name}:{model.name}"] += 1

    session.events.register("before-call", count)
    rendering: list[float] = []
    real_render = render.render_html

    def timed_render(*args: Any, **kwargs: Any) -> str:
        began = time.perf_counter()
        try:
            return real_render(*args, **kwargs)
        finally:
            rendering.append(time.perf_counter() - began)

    out, err = io.StringIO(), io.StringIO()
    with mock.patch.object(render, "render_html", timed_render):
        started = time.perf_counter()
        code = main(argv, stdout=out, stderr=err, session=session)
        seconds = time.perf_counter() - started
    return seconds, sum(rendering), code, calls, err.getvalue()


def _print(
    label: str, seconds: float, built: float, code: int, calls: Counter[str], err: str, page: Path
) -> None:
    if not page.exists():
        raise SystemExit(f"{label}: budgetctl report --file exited {code} and wrote no page: {err.strip()}")
    size = page.stat().st_size
    total = sum(calls.values())
    met = "met" if seconds < TARGET_S else "NOT met"
    print(
        f"{label}: budgetctl report --file: {seconds:.1f} s for {ACCOUNTS} accounts "
        f"({seconds / ACCOUNTS * 1000:.1f} ms/account; target < {TARGET_S:.0f} s: {met}); exit {code}"
    )
    print(f"  page: {size / 1e6:.2f} MB ({size / ACCOUNTS / 1e3:.2f} kB per account)")
    print(f"  {err.strip().splitlines()[-1]}")
    print(
        f"  of which building the page (chart + HTML): {built:.1f} s; reading (tables, "
        f"Organizations, spokes): {seconds - built:.1f} s"
    )
    print(
        f"  API calls: {total} ({total / ACCOUNTS:.2f} per account): "
        + ", ".join(f"{k} {v}" for k, v in sorted(calls.items()))
    )


def _accounts() -> tuple[list[str], set[str]]:
    accounts = [f"{800000000000 + i:012d}" for i in range(ACCOUNTS)]
    return accounts, {a for i, a in enumerate(accounts) if i % 100 == 99}


def modelled() -> None:
    """The report against the modelled AWS (bench.modelled_aws): our code, botocore, the wait."""
    accounts, unreadable = _accounts()
    spokes: dict[str, Spoke] = {}
    for i, account in enumerate(accounts):
        if account not in unreadable:
            limit = Decimal(1000 + i)
            actual, forecast = _spend(i, limit)
            spokes[account] = Spoke(limit, limit + 100 if i % 20 == 3 else limit, actual, forecast)
    aws = ModelledAws(
        latency=LATENCY_MS / 1000,
        role_name=ROLE,
        budgets_table="budgets",
        status_table="statuses",
        items=[(a, Decimal(1000 + i)) for i, a in enumerate(accounts)],
        names={a: f"team-{a[-4:]}" for a in accounts if a not in unreadable},
        spokes=spokes,
    )
    fake = {"aws_access_key_id": "AKIAOPERATOR", "aws_secret_access_key": "modelled"}  # never checked
    session = boto3.Session(**fake, region_name=REGION)
    aws.install(session)
    with tempfile.TemporaryDirectory() as folder:
        page = Path(folder) / "report.html"
        argv = ["report", "--file", str(page), "--table", "budgets", "--status-table", "statuses"]
        seconds, built, code, calls, err = _timed(session, argv)
        _print(
            f"modelled latency ({LATENCY_MS:.0f} ms per call, --concurrency {CONCURRENCY})",
            seconds,
            built,
            code,
            calls,
            err,
            page,
        )
    reading = seconds - built
    print(
        f"  baseline: the same {aws.calls} calls one after another wait {aws.waited:.1f} s; the run's "
        f"reading took {reading:.1f} s ({aws.waited / reading:.1f}x faster than one after another; "
        f"--concurrency {CONCURRENCY} bounds it at {CONCURRENCY}x)"
    )


def emulator() -> None:
    """The report against the in-process moto (the emulator's cost, CPU-bound under the GIL)."""
    accounts, unreadable = _accounts()
    started = time.perf_counter()
    os.environ.setdefault("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    with mock_aws(), standins.installed(), tempfile.TemporaryDirectory() as folder:
        management = _operator()
        # The result bus must admit someone (the template's rule); the report reads no results.
        stack = management_stack.deploy(
            management, MANAGEMENT_ACCOUNT, REGION, {"SpokeAccountIds": accounts[0]}
        )
        _organisation([a for a in accounts if a not in unreadable])
        dynamodb = management.resource("dynamodb")
        with (
            dynamodb.Table(stack.budgets_table).batch_writer() as items,
            dynamodb.Table(stack.status_table).batch_writer() as statuses,
        ):
            for i, account in enumerate(accounts):
                limit = Decimal(1000 + i)
                items.put_item(Item={"AccountId": account, "BudgetValue": limit})
                statuses.put_item(Item={"AccountId": account, "Status": "APPLIED", "SequenceNumber": "1"})
                if account not in unreadable:
                    _spoke(account, limit, _spend(i, limit), drifted=i % 20 == 3)
                if (i + 1) % 500 == 0:
                    print(f"  set-up: {i + 1}/{ACCOUNTS} accounts", file=sys.stderr, flush=True)
        print(
            f"emulator set-up: {ACCOUNTS} accounts ({len(unreadable)} without spoke role) and management "
            f"{MANAGEMENT_ACCOUNT} in {time.perf_counter() - started:.1f} s"
        )
        credentials = management.get_credentials()
        assert credentials is not None
        session = boto3.Session(  # a fresh session: the timed command builds its own clients
            aws_access_key_id=credentials.access_key,
            aws_secret_access_key=credentials.secret_key,
            region_name=REGION,
        )
        page = Path(folder) / "report.html"
        argv = [
            "report",
            "--file",
            str(page),
            "--table",
            stack.budgets_table,
            "--status-table",
            stack.status_table,
        ]
        seconds, built, code, calls, err = _timed(session, argv)
        _print("emulator (moto in-process, CPU-bound)", seconds, built, code, calls, err, page)


def run() -> None:
    modelled()
    if EMULATOR:
        emulator()
    else:
        print("  (the emulator figure, moto in-process: BENCH_REPORT_MOTO=1)")
