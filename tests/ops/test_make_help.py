"""`make help` shows the values a target will really use."""

from __future__ import annotations

import subprocess

import pytest

from budget_sync_local.templates import ROOT

pytestmark = pytest.mark.process


def test_given_a_port_when_make_help_runs_then_the_local_target_shows_that_port():
    shown = subprocess.run(
        ["make", "-s", "help", "PORT=6123"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout

    local = next(line for line in shown.splitlines() if "make local" in line)
    assert "127.0.0.1:6123" in local
    assert "$(PORT)" not in shown


@pytest.mark.parametrize(
    ("given", "passed"), [((), "--incidents on"), (("INCIDENTS=off",), "--incidents off")]
)
def test_given_incidents_when_make_local_runs_then_serve_gets_them(given: tuple[str, ...], passed: str):
    shown = subprocess.run(
        ["make", "-s", "-n", "local", *given], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout

    [serve] = [line for line in shown.splitlines() if "budget_sync_local serve" in line]
    assert serve.endswith(passed)
