"""`make local`: any AWS client talks to the local organisation through its endpoint and
sees a write in the management table reach the budget of a spoke account."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from decimal import Decimal
from typing import Any

import boto3
import pytest

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
            Item={"AccountId": {"S": SPOKE}, "BudgetValue": {"N": "1234.56"}},
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
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "ready at" in output
    assert f"{SPOKE}: rule matched" in output  # the pipeline's steps are shown as they happen


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
