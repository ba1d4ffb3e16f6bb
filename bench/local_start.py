"""``make local`` from start to ready: with the optional incidents (its default) and without.

Each run starts ``python -m budget_sync_local serve`` as ``make local`` does (3 spoke accounts,
the reconciler's schedule off so that nothing runs meanwhile) in a process of its own and
measures the seconds from the start of the process to its port accepting a connection (the
port opens only once the organisation is provisioned and the pipeline runs: that is "ready").
The runs alternate ``--incidents on`` and ``--incidents off`` (the baseline beside it: the
organisation as the stacks' defaults deploy it, which is what ``make local`` deployed before
the incidents were on), so that a machine busy with other jobs weighs on both alike; it prints
each run, the median of each, and the ratio on / off. ``BENCH_START_ROUNDS`` (default 3) runs
of each. ``BENCH_START_BEFORE=DIR``: also, in the same rotation, the ``serve`` of another
checkout of the project (``DIR/src`` first on ``PYTHONPATH``, e.g. ``git archive main`` unpacked
there: the code before a change, run by this environment's Python), and the ratio on / before.
Figures measured: docs/local.md, "``make local``".
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROUNDS = int(os.environ.get("BENCH_START_ROUNDS", "3"))
BEFORE = os.environ.get("BENCH_START_BEFORE", "")
ACCOUNTS = int(os.environ.get("BENCH_START_ACCOUNTS", "3"))
TIMEOUT_S = 300.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_to_ready(incidents: str) -> float:
    """Seconds from starting ``serve --incidents INCIDENTS`` (``before``: BENCH_START_BEFORE's
    ``serve``, as it is) to its port accepting a connection."""
    port = _free_port()
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    }
    command = [
        *(sys.executable, "-m", "budget_sync_local", "serve", "--port", str(port)),
        *("--accounts", str(ACCOUNTS), "--reconcile-every", "0"),
    ]
    if incidents == "before":
        source = os.path.join(BEFORE, "src")
        env["PYTHONPATH"] = os.pathsep.join((os.path.join(source, "function"), source))
    else:
        command += ["--incidents", incidents]
    with tempfile.TemporaryDirectory() as cwd:  # its .local-org/ goes there
        started = time.perf_counter()
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd, env=env
        )
        try:
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"serve exited with {process.returncode}: {process.communicate()[0]}")
                with socket.socket() as probe:
                    if probe.connect_ex(("127.0.0.1", port)) == 0:
                        return time.perf_counter() - started
                if time.perf_counter() - started > TIMEOUT_S:
                    raise RuntimeError(f"serve was not ready after {TIMEOUT_S:.0f} s")
                time.sleep(0.05)
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
            process.communicate(timeout=60)


def run() -> None:
    print(
        f"make local start to ready, {ACCOUNTS} spoke accounts, {ROUNDS} runs each, in rotation "
        "(baseline: --incidents off, the stacks' defaults)",
        flush=True,
    )
    variants = ["off", "on", *(["before"] if BEFORE else [])]
    figures: dict[str, list[float]] = {variant: [] for variant in variants}
    for n in range(ROUNDS):
        order = variants[n % len(variants) :] + variants[: n % len(variants)]  # none always first
        for variant in order:
            seconds = start_to_ready(variant)
            figures[variant].append(seconds)
            load = os.getloadavg()[0]
            shown = f"--incidents {variant}" if variant != "before" else f"before ({BEFORE})"
            print(f"  run {n + 1} {shown}: ready after {seconds:.1f} s (load {load:.1f})", flush=True)
    median = {variant: statistics.median(seconds) for variant, seconds in figures.items()}
    print(
        f"median: --incidents on {median['on']:.1f} s, off {median['off']:.1f} s; "
        f"ratio on / off {median['on'] / median['off']:.2f}",
        flush=True,
    )
    if BEFORE:
        print(
            f"median before {median['before']:.1f} s; ratio on / before {median['on'] / median['before']:.2f}",
            flush=True,
        )


if __name__ == "__main__":
    run()
