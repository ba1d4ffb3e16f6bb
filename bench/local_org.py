"""1,000 spoke accounts on the local organisation: 1,000 items written at once, and the
time until every budget is *confirmed* (status APPLIED in the status table, which the result
function writes when the spoke reports that its budget holds the value), with the API calls
it took per account (management, spoke and the result path).

Provisioning (the two templates in 1,001 accounts) is timed apart: it is set-up, not the
pipeline. The pipeline's time runs from the first write to the moment one Scan of the
status table finds every account APPLIED with its value; every spoke budget is then read
back to check it. The status table's stream is read too (the result function's mapping for
new failures), as on AWS.
"""

from __future__ import annotations

import io
import os
import sys
import time
from collections import Counter
from decimal import Decimal

from bench.handler import counting_calls
from budget_sync_local.organisation import LocalOrganisation

ACCOUNTS = int(os.environ.get("BENCH_ACCOUNTS", "1000"))
TARGET_S = 60.0


def _progress(what: str, done: int, total: int) -> None:
    if done % 100 == 0 or done == total:
        print(f"  provisioning {what}: {done}/{total}", file=sys.stderr, flush=True)


def _unconfirmed(org: LocalOrganisation, wanted: dict[str, Decimal]) -> list[str]:
    """Accounts whose status is not APPLIED with the confirmed limit asked for (one Scan)."""
    table = org.management.resource("dynamodb").Table(org.stack.status_table)
    confirmed: dict[str, object] = {}
    kwargs: dict[str, object] = {}
    while True:
        page = table.scan(**kwargs)  # type: ignore[arg-type]
        for item in page["Items"]:
            if item.get("Status") == "APPLIED":
                confirmed[str(item["AccountId"])] = item.get("ConfirmedLimit")
        if "LastEvaluatedKey" not in page:
            break
        kwargs = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
    return [a for a, v in wanted.items() if confirmed.get(a) != v]


def run() -> None:
    accounts = [f"{500000000000 + i:012d}" for i in range(ACCOUNTS)]
    wanted = {a: Decimal(1000 + i) + Decimal("0.50") for i, a in enumerate(accounts)}
    started = time.perf_counter()
    with LocalOrganisation(accounts, function_output=io.StringIO(), progress=_progress) as org:
        provisioned = time.perf_counter() - started
        print(
            f"provisioned 1 management + {len(accounts)} spoke accounts in {provisioned:.1f} s "
            f"({provisioned / len(accounts) * 1000:.0f} ms per spoke stack)"
        )
        with counting_calls() as calls:
            began = time.perf_counter()
            table = org.management.resource("dynamodb").Table(org.stack.budgets_table)
            with table.batch_writer() as batch:
                for account, value in wanted.items():
                    batch.put_item(Item={"AccountId": account, "BudgetValue": value})
            written = time.perf_counter() - began
            org.pipeline.run_until_idle(timeout_s=600)
            unconfirmed = _unconfirmed(org, wanted)
            propagated = time.perf_counter() - began
        pipeline_calls = Counter(calls)
        with counting_calls() as reads:
            wrong = [a for a, v in wanted.items() if org.view(a).budget_limit != v]
        checked = time.perf_counter() - began - propagated

    print(f"items written (BatchWriteItem): {written:.1f} s")
    met = propagated < TARGET_S and not wrong and not unconfirmed
    print(
        f"every budget confirmed (APPLIED in the status table) after {propagated:.1f} s "
        f"(target < {TARGET_S:.0f} s: {'met' if met else 'NOT met'}); "
        f"verified in every spoke in {checked:.1f} s"
    )
    print(f"accounts not confirmed: {len(unconfirmed)}; accounts whose budget is wrong: {len(wrong)}")
    # Same-run baseline: the cost of one API call while the pipeline ran, against one call of
    # the plain read-back that follows it (a shared machine's load slows both alike).
    per_call = propagated / max(1, sum(pipeline_calls.values()))
    per_read = checked / max(1, sum(Counter(reads).values()))
    print(
        f"ms per API call: pipeline {per_call * 1000:.1f}, plain read-back {per_read * 1000:.1f} "
        f"(ratio {per_call / per_read:.2f})"
    )
    per_account = {k: v / len(accounts) for k, v in sorted(pipeline_calls.items())}
    print("API calls per account (write, stream, function, spoke side):")
    for name, count in per_account.items():
        print(f"  {name:45s} {count:6.2f}")
    print(f"  {'total':45s} {sum(per_account.values()):6.2f}")
    print(
        "not covered: AWS's latency and parallelism (here every account runs one after another "
        "on moto, in one process: the emulator's CPU and the project's calls); the time an "
        "Automation execution takes to start on AWS; spoke stack provisioning (timed apart)"
    )
