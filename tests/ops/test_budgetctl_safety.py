"""Commands that do what they say (issue 19), as a user types them on moto: ``--dry-run``
writes nothing or is refused, an option a command does not use is a usage error, every option
is checked before anything is sent, ``set``/``import`` check the organisation, exit codes agree
with the words, the import preview shows every attribute it changes, stale rows can be cleared,
and ``--help`` reads."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from budgetctl import cli
from budgetctl.commands.defaults import ACTIONS
from budgetctl.errors import ExitCode
from tests.support.moto_org import REGION, SPOKES, Org, create_table
from tests.support.operators import BUDGET, CONSOLE_ENV, budgetctl, item

A, B, C = SPOKES
MANAGEMENT = "123456789012"
DEFAULTS_TABLE = "BlogBudgetsDefaults"


def state(org: Org) -> dict[str, Any]:
    """Everything a command could write: the three tables, each spoke's parameter and budget,
    the management account's queues and their messages."""
    dynamodb = org.management.client("dynamodb")
    tables = {
        name: sorted(
            (i for page in dynamodb.get_paginator("scan").paginate(TableName=name) for i in page["Items"]),
            key=repr,
        )
        for name in dynamodb.list_tables()["TableNames"]
    }
    spokes = {}
    for account, session in org.spokes.items():
        parameter = session.client("ssm").get_parameter(Name="/BlogBudgets/CostThreshold")["Parameter"]
        budget = session.client("budgets").describe_budget(AccountId=account, BudgetName=BUDGET)["Budget"]
        spokes[account] = (parameter["Value"], parameter["Version"], budget["BudgetLimit"])
    sqs = org.management.client("sqs")
    queues = {
        url: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        for url in sqs.list_queues().get("QueueUrls", [])
    }
    return {"tables": tables, "spokes": spokes, "queues": queues}


def root_id() -> str:
    return str(boto3.client("organizations", region_name=REGION).list_roots()["Roots"][0]["Id"])


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_subcommand_with_dry_run_writes_nothing_or_is_refused(ops: Org, tmp_path: Path):
    # GIVEN a defaults table with the root's default, a malformed item written by hand, and
    # files that would change things
    create_table(ops.management, "DefaultsTable")
    root = root_id()
    ops.management.client("dynamodb").put_item(
        TableName=DEFAULTS_TABLE, Item={"TargetId": {"S": root}, "BudgetValue": {"N": "50"}}
    )
    ops.put_raw({"AccountId": {"S": "acct-1"}, "BudgetValue": {"N": "5"}})
    budgets = tmp_path / "budgets.csv"
    budgets.write_text(f"AccountId,BudgetValue\n{A},2000\n{B},3000\n")
    defaults = tmp_path / "defaults.csv"
    defaults.write_text(f"TargetId,BudgetValue\n{root},75\n")
    exported = tmp_path / "export.csv"
    runs: dict[str, list[str]] = {
        "get": ["get", A],
        "set": ["set", A, "2000"],
        "delete": ["delete", A],
        "delete --stale": ["delete", "--stale", "acct-1"],
        "import": ["import", str(budgets)],
        "export": ["export", "--file", str(exported)],
        "status": ["status", "--org"],
        "reconcile": ["reconcile", "--apply"],
        "parked": ["parked", "--reapply", "--queue-url", "http://example.com/q"],
        "report": ["report"],
        "history": ["history", A],
        "requests": ["requests"],
        "approve": ["approve", "REQ-0123456789ab"],
        "reject": ["reject", "REQ-0123456789ab"],
        **{f"default {a}": ["default", a] for a in ACTIONS},
    }
    runs["default set"] += [root, "100"]
    runs["default get"] += [root]
    runs["default delete"] += [root]
    runs["default import"] += [str(defaults)]
    runs["default export"] += ["--file", str(exported)]
    # every subcommand (and every default action) is walked
    assert {name.split()[0] for name in runs} == set(subcommands())
    assert {name.split()[1] for name in runs if name.startswith("default ")} == set(ACTIONS)
    before = state(ops)

    # WHEN each runs with --dry-run
    results = {name: budgetctl(*argv, "--dry-run") for name, argv in runs.items()}

    # THEN each honoured it (exit 0, said so) or refused it as a usage error; nothing was written
    honoured = {"delete", "delete --stale", "import", "default set", "default delete", "default import"}
    for name, result in results.items():
        if name in honoured:
            assert result.code == ExitCode.OK, (name, result.stderr)
            assert "dry run" in result.stderr, name
        else:
            assert result.code == ExitCode.USAGE, (name, result.stderr)
    assert state(ops) == before
    assert not exported.exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["default", "set", "ROOT", "100", "--file", "x.csv"],
        ["default", "set", "ROOT", "100", "--format", "json"],
        ["default", "delete", "ROOT", "--format", "csv"],
        ["default", "import", "FILE", "--expect", "50"],
        ["default", "export", "--force"],
        ["default", "list", "--dry-run"],
        ["default", "get", "ROOT", "--file", "x.csv"],
    ],
)
def test_an_option_the_default_action_does_not_use_is_a_usage_error(
    ops: Org,
    tmp_path: Path,
    argv: list[str],
    no_aws_calls: list[str],
):
    create_table(ops.management, "DefaultsTable")
    root = root_id()
    source = tmp_path / "defaults.csv"
    source.write_text(f"TargetId,BudgetValue\n{root},75\n")
    no_aws_calls.clear()
    typed = [root if a == "ROOT" else str(source) if a == "FILE" else a for a in argv]

    result = budgetctl(*typed)

    assert result.code == ExitCode.USAGE
    assert f"default {argv[1]} does not take --" in result.stderr
    assert no_aws_calls == []


def test_a_bad_query_is_a_usage_error_before_anything_is_sent(
    ops: Org,
    no_aws_calls: list[str],
):
    result = budgetctl("set", A, "1700", "--query", "BudgetValue[")

    assert result.code == ExitCode.USAGE
    assert "--query 'BudgetValue[' is not a valid JMESPath expression" in result.stderr
    assert no_aws_calls == []
    assert item(ops, A)["BudgetValue"] == 1000  # type: ignore[index]


def test_set_and_import_refuse_an_account_outside_the_organisation_unless_told(ops: Org, tmp_path: Path):
    outside = "999999999999"

    refused = budgetctl("set", outside, "500")

    assert refused.code == ExitCode.USAGE
    assert f"AccountId '{outside}' is not an account of this organisation; nothing written" in refused.stderr
    assert "--outside-organization" in refused.stderr
    assert item(ops, outside) is None

    source = tmp_path / "budgets.csv"
    source.write_text(f"AccountId,BudgetValue\n{A},2000\n{outside},300\n")
    imported = budgetctl("import", str(source))

    assert imported.code == ExitCode.USAGE
    assert f"budgets.csv:3: AccountId '{outside}' is not an account of this organisation" in imported.stderr
    assert item(ops, A)["BudgetValue"] == 1000  # type: ignore[index]

    skipped = budgetctl("import", str(source), "--skip-invalid")
    assert skipped.code == ExitCode.PROBLEM
    assert item(ops, A)["BudgetValue"] == 2000  # type: ignore[index]
    assert item(ops, outside) is None

    forced = budgetctl("set", outside, "500", "--outside-organization")
    assert forced.code == ExitCode.OK, forced.stderr
    assert item(ops, outside)["BudgetValue"] == 500  # type: ignore[index]


def test_when_the_organisation_cannot_be_read_set_says_what_to_do_and_writes_nothing(
    ops: Org, monkeypatch: pytest.MonkeyPatch
):
    # GIVEN an identity that may not call Organizations (AccessDeniedException is one of
    # DescribeAccount's errors in botocore's organizations model)
    original = BaseClient._make_api_call

    def denied(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if operation == "DescribeAccount":
            error = {
                "Code": "AccessDeniedException",
                "Message": "You don't have permissions to access this resource.",
            }
            raise ClientError({"Error": error}, operation)
        return original(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", denied)

    result = budgetctl("set", A, "500")

    assert result.code == ExitCode.AWS
    assert (
        "cannot check that the account(s) are in the organisation: organizations:DescribeAccount "
        "failed (AccessDeniedException: " in result.stderr
    )
    assert "management account" in result.stderr
    assert "--outside-organization" in result.stderr
    assert item(ops, A)["BudgetValue"] == 1000  # type: ignore[index]


def test_status_of_an_account_without_an_item_exits_1(ops: Org):
    result = budgetctl("status", "--account", "999999999999")

    assert "no item for account 999999999999" in result.stderr
    assert result.code == ExitCode.PROBLEM


def test_status_org_and_report_agree_that_accounts_without_an_item_are_no_problem(ops: Org):
    # GIVEN every spoke in sync; the management account and two members have no item
    status = budgetctl("status", "--org", "--output", "json")
    report = budgetctl("report", "--output", "json")

    drifts = {r["AccountId"]: r["Drift"] for r in status.json()}
    assert drifts[MANAGEMENT] == "NOT_MANAGED"
    assert {drifts[a] for a in SPOKES} == {"IN_SYNC"}
    assert (status.code, report.code) == (ExitCode.OK, ExitCode.OK), status.stderr + report.stderr
    assert {r["AccountId"] for r in status.json()} == {r["AccountId"] for r in report.json()}


def test_import_dry_run_shows_the_alert_changes_it_would_make(ops: Org, tmp_path: Path):
    assert budgetctl("set", A, "2000", "--alert-emails", "owner@example.com").code == ExitCode.OK
    source = tmp_path / "budgets.csv"
    source.write_text(f"AccountId,BudgetValue,AlertEmails\n{A},2000,\n")

    dry = budgetctl("import", str(source), "--dry-run", "--output", "json")

    assert dry.code == ExitCode.OK, dry.stderr
    assert dry.json() == [
        {
            "Line": 2,
            "AccountId": A,
            "Change": "CHANGE",
            "From": "2000",
            "To": "2000",
            "Attributes": "AlertEmails owner@example.com -> (default)",
        }
    ]
    assert item(ops, A)["AlertEmails"] == "owner@example.com"  # type: ignore[index]


def test_stale_rows_are_listed_by_status_and_report_alike_and_delete_stale_clears_them(ops: Org):
    # GIVEN a malformed item written by hand, with the failure the pipeline recorded for it, and a
    # status row left by an account that is no longer in the organisation
    ops.put_raw({"AccountId": {"S": "acct-1"}, "BudgetValue": {"N": "5"}})
    dynamodb = ops.management.client("dynamodb")
    for key in ("acct-1", "999999999999"):
        dynamodb.put_item(
            TableName=ops.status_table,
            Item={"AccountId": {"S": key}, "Status": {"S": "FAILED"}, "Reason": {"S": "no such account"}},
        )

    status = budgetctl("status", "--org", "--output", "json")
    report = budgetctl("report", "--output", "json")

    # THEN both show both keys and both exit 1
    shown = {r["AccountId"]: r for r in status.json()}
    assert shown["acct-1"]["Drift"] == shown["999999999999"]["Drift"] == "NOT_IN_ORGANIZATION"
    assert "budgetctl delete --stale 999999999999" in shown["999999999999"]["Reason"]
    assert {r["AccountId"] for r in status.json()} == {r["AccountId"] for r in report.json()}
    assert (status.code, report.code) == (ExitCode.PROBLEM, ExitCode.PROBLEM)
    assert budgetctl("delete", "acct-1").code == ExitCode.USAGE  # not an account id

    # WHEN the operator previews, then clears them
    preview = budgetctl("delete", "--stale", "acct-1", "--dry-run")
    assert preview.code == ExitCode.OK
    assert f"would remove 'acct-1' from {ops.budgets_table}: BudgetValue=5" in preview.stderr
    assert item(ops, "acct-1") is not None
    member = budgetctl("delete", "--stale", A)
    assert member.code == ExitCode.USAGE
    assert "is an account of the organisation" in member.stderr
    assert budgetctl("delete", "--stale", "acct-1").code == ExitCode.OK
    assert budgetctl("delete", "--stale", "999999999999").code == ExitCode.OK
    assert budgetctl("delete", "--stale", "999999999999").code == ExitCode.PROBLEM  # nothing left

    # THEN they are gone from both, and both exit 0
    assert item(ops, "acct-1") is None
    assert ops.status("acct-1") is None
    assert ops.status("999999999999") is None
    assert budgetctl("status", "--org").code == ExitCode.OK
    assert budgetctl("report").code == ExitCode.OK


def test_a_subcommands_help_lists_its_own_options_first_and_account_has_help(
    capsys: pytest.CaptureFixture[str],
):
    assert cli.main(["set", "--help"]) == ExitCode.OK
    text = capsys.readouterr().out
    usage = text.split("\n\n")[0]
    assert usage.startswith("usage: budgetctl set [-h] [--alert-emails A,B]")
    assert "--profile" not in usage
    assert "--alert-emails" in usage
    assert usage.rstrip().endswith("ACCOUNT AMOUNT [global options]")
    assert "ACCOUNT               the member account's 12-digit id" in text
    assert text.index("--alert-emails") < text.index("global options: AWS") < text.index("--profile")


@pytest.mark.process
def test_a_mistyped_option_or_command_suggests_the_right_one_in_the_console_script(tmp_path: Path):
    script = Path(sys.executable).with_name("budgetctl")

    option = subprocess.run(
        [str(script), "import", "x.csv", "--dryrun"], capture_output=True, text=True, check=False
    )
    command = subprocess.run([str(script), "stauts"], capture_output=True, text=True, check=False)

    assert option.returncode == ExitCode.USAGE
    assert "unrecognized arguments: --dryrun (did you mean --dry-run?)" in option.stderr
    assert command.returncode == ExitCode.USAGE
    assert "(did you mean status?)" in command.stderr


def test_every_command_says_which_global_names_it_uses():
    assert set(cli.NAMES_USED) == set(subcommands())


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["default", "list", "--table", "Other"], "default does not use --table"),
        (["get", A, "--concurrency", "4"], "get does not use --concurrency"),
        (["set", A, "5", "--reconciler-function", "Other"], "set does not use --reconciler-function"),
        (
            ["parked", "--budget-name", "Other", "--spoke-region", "eu-west-1"],
            "--budget-name, --spoke-region",
        ),
    ],
)
def test_a_global_option_the_command_does_not_use_is_a_usage_error(
    ops: Org,
    argv: list[str],
    message: str,
    no_aws_calls: list[str],
):
    result = budgetctl(*argv)

    assert result.code == ExitCode.USAGE
    assert message in result.stderr
    assert no_aws_calls == []


@pytest.mark.process
def test_ctrl_c_in_the_installed_command_prints_one_line_and_exits_130():
    # GIVEN an endpoint that takes every connection and never answers
    held: list[socket.socket] = []
    requested = threading.Event()

    def take_connections(server: socket.socket) -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:  # the test closed the server
                return
            held.append(connection)
            connection.settimeout(60)
            if connection.recv(1):  # a request has started: the command waits for its answer
                requested.set()

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        port = server.getsockname()[1]
        taker = threading.Thread(target=take_connections, args=(server,), daemon=True)
        taker.start()
        command = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("budgetctl")),
                *("--endpoint-url", f"http://127.0.0.1:{port}", "get", A),
            ],
            env={**os.environ, **CONSOLE_ENV},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # a terminal's Ctrl-C, whatever this process ignores (a pytest-xdist worker ignores
            # SIGINT, and a child inherits an ignored signal)
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        assert requested.wait(60), "budgetctl never sent its request"
        # WHEN the operator presses Ctrl-C
        command.send_signal(signal.SIGINT)
        stdout, stderr = command.communicate(timeout=60)
        for connection in held:
            connection.close()

    # THEN one line, no traceback, exit 130
    assert command.returncode == 130, stderr
    assert stderr == "budgetctl: error: interrupted (Ctrl-C); nothing more was sent\n"
    assert stdout == ""
