"""`make bench`: run every benchmark (or those named: python -m bench handler status)."""

from __future__ import annotations

import importlib
import sys
import time

from budget_sync_local.quiet import silence_library_warnings

#: module name -> what it measures. Each module has run() -> None and prints its figures.
BENCHMARKS = {
    "artifact": "cold-start import of the artifact `sam build` produced, against import boto3; its size",
    "handler": "stream handler vs a per-record baseline; API calls",
    "local_org": "1,000 spoke accounts: 1,000 items at once until every budget shows its value",
    "status": "budgetctl status over 500 spoke accounts: seconds and API calls per account",
    "report": "budgetctl report --file over 5,000 spoke accounts: seconds, page size, API calls",
    "resolve": "OU defaults: full resolution of 5,000 accounts in 50 OUs; one default change to sent",
    "history": "budgetctl history --org --since 30d over 5,000 accounts' month (41,100 records), modelled latency",
    "incident_sweep": "the incident function's hourly sweep of 5,000 accounts, modelled latency: vs its timeout, vs one after another",
    "local_load": "make local under load: 2,000 writes from 8 concurrent clients over 53 accounts until settled",
    "local_start": "make local from start to ready, with the incidents (its default) and without, alternating",
}


def main(argv: list[str]) -> int:
    silence_library_warnings()
    names = argv or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}", file=sys.stderr)
        return 2
    for name in names:
        print(f"\n=== bench {name}: {BENCHMARKS[name]}", flush=True)
        started = time.perf_counter()
        importlib.import_module(f"bench.{name}").run()
        print(f"--- bench {name} finished in {time.perf_counter() - started:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
