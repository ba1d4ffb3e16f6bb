"""`make local`: any AWS client talks to the local organisation through its endpoint and
sees a write in the management table reach the budget of a spoke account."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from budget_sync_local import server

pytestmark = pytest.mark.e2e

SPOKE = "111111111111"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def client(endpoint: str, service: str, **credentials: Any) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", **credentials)


def wait_for_port(port: int, process: subprocess.Popen[str], timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode}: {process.communicate()[0]}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError("the port never opened")


def test_given_make_local_when_a_client_writes_a_budget_then_the_spoke_budget_shows_it():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "budget_sync_local", "serve", "--port", str(port), "--accounts", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_port(port, process)
        endpoint = f"http://127.0.0.1:{port}"
        client(endpoint, "dynamodb").put_item(
            TableName="BlogBudgetsDynamoDB",
            Item={
                "AccountId": {"S": SPOKE},
                "BudgetValue": {"N": "1234.56"},
                "AlertEmails": {"S": "local-owner@example.com"},
            },
        )
        assumed = client(endpoint, "sts").assume_role(
            RoleArn=f"arn:aws:iam::{SPOKE}:role/OrganizationAccountAccessRole", RoleSessionName="reader"
        )["Credentials"]
        credentials = {
            "aws_access_key_id": assumed["AccessKeyId"],
            "aws_secret_access_key": assumed["SecretAccessKey"],
            "aws_session_token": assumed["SessionToken"],
        }
        budgets = client(endpoint, "budgets", **credentials)
        deadline, amount = time.monotonic() + 30, None
        while time.monotonic() < deadline:
            budget = budgets.describe_budget(AccountId=SPOKE, BudgetName="SpokeAccountBudget")["Budget"]
            amount = Decimal(budget["BudgetLimit"]["Amount"])
            if amount == Decimal("1234.56"):
                break
            time.sleep(0.2)
        assert amount == Decimal("1234.56")
        # the subscriber stand-ins answer the endpoint too (aws budgets describe-subscribers-for-notification)
        notification = {"NotificationType": "ACTUAL", "ComparisonOperator": "GREATER_THAN", "Threshold": 80.0}
        deadline, addresses = time.monotonic() + 30, None
        while time.monotonic() < deadline:
            subscribers = budgets.describe_subscribers_for_notification(
                AccountId=SPOKE, BudgetName="SpokeAccountBudget", Notification=notification
            )["Subscribers"]
            addresses = [s["Address"] for s in subscribers]
            if addresses == ["local-owner@example.com"]:
                break
            time.sleep(0.2)
        assert addresses == ["local-owner@example.com"]
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "ready at" in output
    assert f"{SPOKE}: rule matched" in output  # the pipeline's steps are shown as they happen


def test_given_a_port_in_use_when_make_local_starts_then_it_exits_at_once_with_the_message():
    port = free_port()
    with socket.create_server(("127.0.0.1", port)):  # the first server on that port
        started = time.monotonic()
        second = subprocess.run(
            [sys.executable, "-m", "budget_sync_local", "serve", "--port", str(port), "--accounts", "1"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert second.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in second.stdout
    assert "in use" in second.stdout
    assert "Traceback" not in second.stdout + second.stderr
    assert time.monotonic() - started < 30  # not after provisioning, and no hang


def test_given_two_local_servers_on_one_port_when_the_second_binds_after_provisioning_then_it_ends():
    port = free_port()
    first = subprocess.Popen(
        [sys.executable, "-m", "budget_sync_local", "serve", "--port", str(port), "--accounts", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_port(port, first)
        with pytest.raises(server.ServerError, match=f"cannot listen on 127.0.0.1:{port}"):
            server._bind("127.0.0.1", port)  # the bind after provisioning, the port taken meanwhile
        stopped = threading.Event()
        with pytest.raises(server.ServerError, match="in use"):
            server.serve(["111111111111"], port, stop=stopped)
    finally:
        first.send_signal(signal.SIGTERM)
        output, _ = first.communicate(timeout=30)
    assert first.returncode == 0, output


def test_given_make_local_when_invalid_and_unreachable_items_arrive_then_the_console_shows_each_reason():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "budget_sync_local", "serve", "--port", str(port), "--accounts", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_port(port, process)
        dynamodb = client(f"http://127.0.0.1:{port}", "dynamodb")
        dynamodb.put_item(
            TableName="BlogBudgetsDynamoDB", Item={"AccountId": {"S": SPOKE}, "BudgetValue": {"N": "12.345"}}
        )
        dynamodb.put_item(
            TableName="BlogBudgetsDynamoDB",
            Item={"AccountId": {"S": "999999999999"}, "BudgetValue": {"N": "100"}},
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status = dynamodb.get_item(
                TableName="BlogBudgetsStatus", Key={"AccountId": {"S": "999999999999"}}
            )
            if status.get("Item"):
                break
            time.sleep(0.2)
        time.sleep(1)  # the console line follows the status write
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    lines = output.splitlines()
    assert any(f"{SPOKE}: FAILED" in line and "12.345" in line for line in lines), output
    assert any("999999999999: FAILED" in line for line in lines), output
    assert "UserWarning" not in output
    assert "No application metrics" not in output
    assert '"_aws"' not in output  # no EMF metric line


def test_given_make_local_when_a_planned_limits_budget_gets_555_then_the_status_says_failed_with_the_spokes_reason():
    # GIVEN `make local` running (a user's first try, as the issue describes it)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "budget_sync_local", "serve", "--port", str(port), "--accounts", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_port(port, process)
        endpoint = f"http://127.0.0.1:{port}"
        assumed = client(endpoint, "sts").assume_role(
            RoleArn=f"arn:aws:iam::{SPOKE}:role/OrganizationAccountAccessRole", RoleSessionName="me"
        )["Credentials"]
        budgets = client(
            endpoint,
            "budgets",
            aws_access_key_id=assumed["AccessKeyId"],
            aws_secret_access_key=assumed["SecretAccessKey"],
            aws_session_token=assumed["SessionToken"],
        )
        # AND account 111111111111's budget replaced by one with planned limits
        budgets.delete_budget(AccountId=SPOKE, BudgetName="SpokeAccountBudget")
        budgets.create_budget(
            AccountId=SPOKE,
            Budget={
                "BudgetName": "SpokeAccountBudget",
                "BudgetType": "COST",
                "TimeUnit": "MONTHLY",
                "PlannedBudgetLimits": {"1767225600": {"Amount": "100", "Unit": "USD"}},
            },
        )
        # WHEN BudgetValue 555 is written for it
        dynamodb = client(endpoint, "dynamodb")
        dynamodb.put_item(
            TableName="BlogBudgetsDynamoDB", Item={"AccountId": {"S": SPOKE}, "BudgetValue": {"N": "555"}}
        )
        # THEN within a minute the status table says FAILED, with the spoke's own reason
        deadline, status = time.monotonic() + 60, {}
        while time.monotonic() < deadline:
            status = dynamodb.get_item(TableName="BlogBudgetsStatus", Key={"AccountId": {"S": SPOKE}}).get(
                "Item", {}
            )
            if status.get("Status", {}).get("S") == "FAILED":
                break
            time.sleep(0.2)
        assert status["Status"]["S"] == "FAILED"
        assert status["Reason"]["S"].startswith("spoke: ")
        assert "PlannedBudgetLimits" in status["Reason"]["S"]
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "management result bus" in output


def test_given_make_local_when_a_client_creates_and_moves_an_account_then_it_is_enrolled_by_its_ous_default():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "budget_sync_local", "serve", "--port", str(port), "--accounts", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_port(port, process)
        endpoint = f"http://127.0.0.1:{port}"
        organizations = client(endpoint, "organizations")
        root = organizations.list_roots()["Roots"][0]["Id"]
        units = organizations.list_organizational_units_for_parent(ParentId=root)["OrganizationalUnits"]
        sandbox = next(u["Id"] for u in units if u["Name"] == "Sandbox")
        # GIVEN a Sandbox default written by any client
        client(endpoint, "dynamodb").put_item(
            TableName="BlogBudgetsDefaults", Item={"TargetId": {"S": sandbox}, "BudgetValue": {"N": "100"}}
        )
        # WHEN an administrator creates an account and moves it to Sandbox, as on AWS
        status = organizations.create_account(AccountName="newcomer", Email="newcomer@example.com")
        account = status["CreateAccountStatus"]["AccountId"]
        organizations.move_account(AccountId=account, SourceParentId=root, DestinationParentId=sandbox)

        # THEN its spoke stack appears and its budget becomes the default, with no operator
        deadline, amount = time.monotonic() + 60, None
        while time.monotonic() < deadline:
            try:
                assumed = client(endpoint, "sts").assume_role(
                    RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole",
                    RoleSessionName="reader",
                )["Credentials"]
                budgets = client(
                    endpoint,
                    "budgets",
                    aws_access_key_id=assumed["AccessKeyId"],
                    aws_secret_access_key=assumed["SecretAccessKey"],
                    aws_session_token=assumed["SessionToken"],
                )
                budget = budgets.describe_budget(AccountId=account, BudgetName="SpokeAccountBudget")["Budget"]
                amount = Decimal(budget["BudgetLimit"]["Amount"])
            except ClientError:  # the spoke stack (its role, its budget) is not there yet
                amount = None
            if amount == Decimal("100"):
                break
            time.sleep(0.3)
        assert amount == Decimal("100")
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert f"{account}: event CreateAccountResult" in output
    assert f"{account}: StackSet budget-sync-spoke deployed the spoke stack" in output
