"""``budgetctl status`` over 500 spoke accounts of the local organisation.

Set-up (not timed): the local organisation with 500 spoke stacks, one item per account
applied through the pipeline, and 25 accounts given drift (a hand-edited limit) so that the
command has something to find. Timed: ``budgetctl status --output json`` as an operator runs
it (the CLI's own code, in-process, against the in-process moto), with its API calls counted
by a botocore ``before-call`` event hook on the session it uses. Target: under 30 s.
moto in-process is CPU-bound under one GIL, so extra threads cannot help there; a last run
adds 20 ms to every call (as a network would) to show what the concurrency buys.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from collections import Counter
from decimal import Decimal
from typing import Any

import boto3

from budget_sync_local.organisation import LocalOrganisation
from budgetctl.cli import DEFAULT_CONCURRENCY, main

ACCOUNTS = int(os.environ.get("BENCH_STATUS_ACCOUNTS", "500"))
DRIFTED = max(1, ACCOUNTS // 20)
TARGET_S = 30.0
RTT = 0.020  # a typical in-region round trip to an AWS API (as bench/handler.py)


def _progress(what: str, done: int, total: int) -> None:
    if done % 100 == 0 or done == total:
        print(f"  provisioning {what}: {done}/{total}", file=sys.stderr, flush=True)


def _hand_edit(org: LocalOrganisation, account: str, amount: str) -> None:
    budget = org.budget(account)
    assert budget is not None
    budget["BudgetLimit"] = {"Amount": amount, "Unit": "USD"}
    for derived in ("CalculatedSpend", "LastUpdatedTime"):
        budget.pop(derived, None)
    org.session_in(account).client("budgets").update_budget(AccountId=account, NewBudget=budget)


def _timed_status(
    region: str, concurrency: int, rtt: float, operator: dict[str, str]
) -> tuple[float, int, Counter[str], list[dict[str, Any]]]:
    # as the operators' role: the spoke read role trusts only it (IAM is evaluated)
    session = boto3.Session(
        region_name=region,
        aws_access_key_id=operator["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=operator["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=operator["AWS_SESSION_TOKEN"],
    )
    calls: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        calls[f"{model.service_model.service_name}:{model.name}"] += 1
        if rtt:
            time.sleep(rtt)  # as over a network: the wait a real call spends off the CPU

    session.events.register("before-call", count)
    out, err = io.StringIO(), io.StringIO()
    started = time.perf_counter()
    code = main(
        ["status", "--output", "json", "--concurrency", str(concurrency)],
        stdout=out,
        stderr=err,
        session=session,
    )
    seconds = time.perf_counter() - started
    return seconds, code, calls, json.loads(out.getvalue())


def run() -> None:
    accounts = [f"{600000000000 + i:012d}" for i in range(ACCOUNTS)]
    started = time.perf_counter()
    with LocalOrganisation(accounts, function_output=io.StringIO(), progress=_progress) as org:
        table = org.management.resource("dynamodb").Table(org.stack.budgets_table)
        with table.batch_writer() as batch:
            for i, account in enumerate(accounts):
                batch.put_item(Item={"AccountId": account, "BudgetValue": Decimal(1000 + i)})
        org.pipeline.run_until_idle(timeout_s=600)
        for account in accounts[:DRIFTED]:
            _hand_edit(org, account, "99999")
        print(
            f"set-up: local organisation with {ACCOUNTS} spoke accounts, items applied, "
            f"{DRIFTED} budgets hand-edited, in {time.perf_counter() - started:.1f} s"
        )
        runs = [(c, 0.0) for c in sorted({1, DEFAULT_CONCURRENCY})] + [(DEFAULT_CONCURRENCY, RTT)]
        for concurrency, rtt in runs:
            if rtt:
                print(f"with {rtt * 1000:.0f} ms added to every AWS call, as over a network:")
            seconds, code, calls, rows = _timed_status(
                org.region, concurrency, rtt, org.operator_credentials()
            )
            drifted = sum(1 for r in rows if r["Drift"] == "BUDGET_DRIFT")
            if drifted != DRIFTED:  # a figure of a run that read no spoke would measure nothing
                reasons = sorted({str(r.get("Reason")) for r in rows if r["Drift"] != "IN_SYNC"})[:3]
                raise SystemExit(f"status found {drifted} of the {DRIFTED} hand-edited budgets: {reasons}")
            total = sum(calls.values())
            met = "met" if seconds < TARGET_S else "NOT met"
            print(
                f"budgetctl status --concurrency {concurrency:2d}: {seconds:6.1f} s for {len(rows)} accounts "
                f"({seconds / len(rows) * 1000:.1f} ms/account; target < {TARGET_S:.0f} s: {met}); "
                f"exit {code}; BUDGET_DRIFT found {drifted}/{DRIFTED}"
            )
            print(
                f"  API calls: {total} ({total / len(rows):.2f} per account): "
                + ", ".join(f"{k} {v}" for k, v in sorted(calls.items()))
            )
