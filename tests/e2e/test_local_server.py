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
from botocore.exceptions import ClientError

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
