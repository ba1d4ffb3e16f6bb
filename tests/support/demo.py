"""`make demo` as a user runs it (a fresh interpreter in an empty folder), run once per test
session and shared by the tests that read what that run printed and wrote
(tests/e2e/test_demo.py, tests/e2e/test_demo_report.py): a demo takes 20 to 50 s, and these
tests check the same run. Under pytest-xdist the first worker to ask runs it while holding a
file lock in the session's shared temporary folder; the others wait for it and read its result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from filelock import FileLock

from budget_sync_local.seed import SEED_ENV

#: The delivery seed of the shared run, unless BUDGET_SYNC_LOCAL_SEED is set (a session fixture
#: starts before each test's own seed is set: tests/conftest.py).
DEMO_SEED = "42"


@dataclass(frozen=True)
class DemoRun:
    done: subprocess.CompletedProcess[str]
    folder: Path
    seed: str


def _run(folder: Path) -> DemoRun:
    seed = os.environ.get(SEED_ENV) or DEMO_SEED
    done = subprocess.run(
        [sys.executable, "-m", "budget_sync_local", "demo"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, SEED_ENV: seed},
    )
    return DemoRun(done, folder, seed)


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """``python -m budget_sync_local demo`` in an empty folder: its exit status, output and folder."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return _run(tmp_path_factory.mktemp("demo"))
    shared = tmp_path_factory.getbasetemp().parent  # this session's, common to its workers
    folder, result = shared / "demo", shared / "demo.json"
    with FileLock(str(shared / "demo.lock")):
        if not result.is_file():
            folder.mkdir()
            run = _run(folder)
            answer = {"returncode": run.done.returncode, "stdout": run.done.stdout, "stderr": run.done.stderr}
            result.write_text(json.dumps({**answer, "seed": run.seed}), encoding="utf-8")
    saved = json.loads(result.read_text(encoding="utf-8"))
    done = subprocess.CompletedProcess(
        [sys.executable, "-m", "budget_sync_local", "demo"],
        saved["returncode"],
        saved["stdout"],
        saved["stderr"],
    )
    return DemoRun(done, folder, saved["seed"])
