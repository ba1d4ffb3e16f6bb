"""`make test` runs make lint's every check and the whole pytest suite, side by side (make -j,
each part's output whole as it ends), and pytest writes Python's bytecode cache."""

from __future__ import annotations

import os
import subprocess

import pytest

from budget_sync_local.templates import ROOT

pytestmark = pytest.mark.process


def test_make_test_runs_every_lint_check_and_the_whole_suite_side_by_side():
    # WHEN make shows what `make test` would run (-n: nothing runs, recursive makes included)
    environment = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    shown = subprocess.run(
        ["make", "-n", "--no-print-directory", "test"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env=environment,
    ).stdout

    # THEN lint and pytest run in one make -j, with each part's output kept together
    assert "-j 3 --output-sync=target pytest lint" in shown  # pytest, the longest, first
    # and every check of make lint is there, and the whole suite with one worker per core
    for check in (
        "ruff check src tests bench",
        "ruff format --check src tests bench",
        "/mypy",
        "cfn-lint --append-rules cfn_lint_serverless.rules",
        "-m tests.template.lint_iam",
        "checkov --quiet --compact --skip-download",
        "sam validate --lint",
    ):
        assert check in shown, check
    pytest_line = next(line for line in shown.splitlines() if "/pytest " in line)
    assert pytest_line.startswith("env -u PYTHONDONTWRITEBYTECODE ")
    assert "-n auto --dist worksteal --durations=25" in pytest_line
    assert " -m " not in pytest_line
    assert " -k " not in pytest_line
