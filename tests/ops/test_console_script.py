"""The installed ``budgetctl`` console script, run as a separate process against a moto server
on 127.0.0.1 through ``--endpoint-url`` (the way an operator uses the local organisation)."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest
import requests
from moto import mock_aws
from moto.server import ThreadedMotoServer

from budget_sync.domain import AMOUNT_PATTERN
from budget_sync_local import standins
from budget_sync_local.lambda_runtime import function_spec
from budget_sync_local.templates import MANAGEMENT_TEMPLATE, Resolver, load
from tests.support.operators import CONSOLE_ENV as ENV

pytestmark = [pytest.mark.aws, pytest.mark.process]

BIN = Path(sys.executable).parent
SPOKE = "111111111111"
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def endpoint() -> Iterator[str]:
    # In-process moto as well: the reconciler function that `reconcile --apply` invokes runs in
    # this process (the Lambda stand-in) and reaches the same backends, as in `make local`.
    with mock_aws(), standins.installed():
        port = free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        url = f"http://127.0.0.1:{port}"
        try:
            _provision(url)
            yield url
        finally:
            requests.post(f"{url}/moto-api/reset", timeout=10)
            server.stop()


def _provision(url: str) -> None:
    """The two tables from the template, an organisation, and one spoke (a member of it) with
    role, parameter and budget."""
    management = boto3.Session(region_name=REGION)
    organizations = management.client("organizations", endpoint_url=url)
    organizations.create_organization(FeatureSet="ALL")
    with mock.patch("moto.organizations.utils.make_random_account_id", return_value=SPOKE):
        organizations.create_account(AccountName="spoke", Email=f"{SPOKE}@example.com")
    dynamodb = management.client("dynamodb", endpoint_url=url)
    resolver = Resolver(load(MANAGEMENT_TEMPLATE))
    for logical_id in ("BudgetsTable", "StatusTable"):
        properties = resolver.properties(logical_id)
        dynamodb.create_table(
            **{k: properties[k] for k in ("TableName", "BillingMode", "AttributeDefinitions", "KeySchema")}
        )
    credentials = management.client("sts", endpoint_url=url).assume_role(
        RoleArn=f"arn:aws:iam::{SPOKE}:role/OrganizationAccountAccessRole", RoleSessionName="setup"
    )["Credentials"]
    spoke = boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=REGION,
    )
    for role in ("BlogBudgetsSpokeRole", "BlogBudgetsSpokeReadRole"):
        spoke.client("iam", endpoint_url=url).create_role(RoleName=role, AssumeRolePolicyDocument="{}")
    _deploy_reconciler(management, url)
    spoke.client("ssm", endpoint_url=url).put_parameter(
        Name="/BlogBudgets/CostThreshold", Value="1000", Type="String", AllowedPattern=AMOUNT_PATTERN
    )
    spoke.client("budgets", endpoint_url=url).create_budget(
        AccountId=SPOKE,
        Budget={
            "BudgetName": "SpokeAccountBudget",
            "BudgetLimit": {"Amount": "1000", "Unit": "USD"},
            "BudgetType": "COST",
            "TimeUnit": "MONTHLY",
        },
    )


def _deploy_reconciler(management: boto3.Session, url: str) -> None:
    """The template's reconciler function (role, handler, environment) in moto's Lambda."""
    spec = function_spec("ReconcilerFunction", {}, REGION)
    role = management.client("iam", endpoint_url=url).create_role(
        RoleName="BlogBudgetsReconcilerRole", AssumeRolePolicyDocument="{}"
    )["Role"]["Arn"]
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("budget_sync/__init__.py", "")
    management.client("lambda", endpoint_url=url).create_function(
        FunctionName=spec.function_name,
        Runtime="python3.13",
        Role=role,
        Handler=spec.handler,
        Code={"ZipFile": package.getvalue()},
        Environment={"Variables": spec.environment},
    )


def shell(*argv: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | ENV
    return subprocess.run(argv, capture_output=True, text=True, check=False, env=environment, timeout=120)


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(result.stdout)


def test_an_operator_sets_checks_and_repairs_a_budget_with_the_installed_command(endpoint: str):
    budgetctl = str(BIN / "budgetctl")

    # GIVEN the command as the user types it
    written = shell(budgetctl, "--endpoint-url", endpoint, "set", SPOKE, "1250.50")
    assert written.returncode == 0, written.stderr

    # THEN the item is there, with the caller as UpdatedBy
    item = as_json(
        shell(budgetctl, "--endpoint-url", endpoint, "get", SPOKE, "--output", "json")
    )  # one object
    assert item["BudgetValue"] == "1250.5"
    assert item["UpdatedBy"].startswith("arn:aws:")

    # WHEN nothing applied it (no stream function here), status reports the parameter's drift
    status = shell(budgetctl, "--endpoint-url", endpoint, "--output", "json", "status")
    assert status.returncode == 1, status.stderr
    assert [(r["AccountId"], r["Drift"]) for r in as_json(status)] == [(SPOKE, "PARAMETER_DRIFT")]

    # AND reconcile --apply (through python -m too) repairs it
    repaired = shell(sys.executable, "-m", "budgetctl", "--endpoint-url", endpoint, "reconcile", "--apply")
    assert repaired.returncode == 0, repaired.stderr
    assert "REPAIRED" in repaired.stdout
    ssm_status = as_json(shell(budgetctl, "--endpoint-url", endpoint, "status", "--output", "json"))[0]
    assert ssm_status["Parameter"] == "1250.5"
    assert ssm_status["LastStatus"] == "SENT"  # no spoke Automation here to confirm it

    # AND a bad value is refused with exit code 2, naming the field and the value
    refused = shell(budgetctl, "--endpoint-url", endpoint, "set", SPOKE, "12.345")
    assert refused.returncode == 2
    assert "BudgetValue '12.345' has more than two decimals" in refused.stderr
