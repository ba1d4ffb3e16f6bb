"""``budgetctl`` keeps the AWS CLI's habits: output formats, AWS_DEFAULT_OUTPUT, one object
for one result, --query, --version; and it is on PATH after the README's commands."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from budget_sync_local.templates import ROOT
from budgetctl import cli
from budgetctl.errors import ExitCode
from tests.integration.conftest import SPOKES, Org
from tests.ops.conftest import budgetctl

A, B, _ = SPOKES


def test_given_an_item_when_get_with_output_json_then_one_object_is_printed(ops: Org):
    assert budgetctl("set", A, "1250.50").code == ExitCode.OK

    got = budgetctl("get", A, "--output", "json")
    written = budgetctl("set", B, "99", "--output", "json")

    assert got.code == ExitCode.OK, got.stderr
    assert isinstance(json.loads(got.stdout), dict)
    assert json.loads(got.stdout)["AccountId"] == A
    assert json.loads(written.stdout)["AccountId"] == B


def test_given_aws_default_output_json_when_no_output_option_then_json_is_printed(
    ops: Org, monkeypatch: pytest.MonkeyPatch
):
    budgetctl("set", A, "1250.50")
    monkeypatch.setenv("AWS_DEFAULT_OUTPUT", "json")

    got = budgetctl("get", A)
    table = budgetctl("get", A, "--output", "table")  # the option still wins

    assert json.loads(got.stdout)["AccountId"] == A
    assert not table.stdout.lstrip().startswith("{")


def test_given_items_when_export_with_output_json_then_json_is_written(ops: Org):
    budgetctl("set", A, "1250.50")
    budgetctl("set", B, "2000")

    exported = budgetctl("export", "--output", "json")

    assert exported.code == ExitCode.OK, exported.stderr
    rows = {row["AccountId"]: row["BudgetValue"] for row in json.loads(exported.stdout)}
    assert (rows[A], rows[B]) == ("1250.5", "2000")


def test_given_a_query_when_get_then_the_jmespath_result_is_printed(ops: Org):
    budgetctl("set", A, "1250.50")

    got = budgetctl("get", A, "--query", "AccountId")

    assert got.code == ExitCode.OK, got.stderr
    assert json.loads(got.stdout) == A


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]):
    assert cli.main(["--version"]) == ExitCode.OK
    assert re.fullmatch(r"budgetctl \d+\.\d+\.\d+\S*\n", capsys.readouterr().out)


def test_given_the_readme_commands_when_budgetctl_is_typed_then_it_runs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    setup = next(line for line in readme.splitlines() if ". .venv/bin/activate" in line)
    command = setup.split("#", 1)[0].strip()
    path = ":".join(p for p in os.environ["PATH"].split(":") if ".venv" not in p)

    typed = subprocess.run(
        ["bash", "-c", f"{command} >/dev/null && budgetctl --version"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": path},
        check=False,
    )

    assert typed.returncode == 0, typed.stderr
    assert typed.stdout.splitlines()[-1].startswith("budgetctl ")
