"""Operations tests on moto: the integration organisation plus a budget in every spoke, and
``budgetctl`` called as a user types it (argv in, stdout/stderr/exit code out)."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.client import BaseClient

from budget_sync.handlers import reconcile as reconcile_handler
from budgetctl.cli import main
from tests.support.moto_org import REGION, SPOKES, Org, built_once

BUDGET = "SpokeAccountBudget"
CALLER = "arn:aws:sts::123456789012:user/moto"  # moto's identity for the test credentials
#: Text from another account that a page or a table must show as text, never run or link.
HOSTILE = '<script>document.title="pwned"</script><img src=x onerror=alert(1)>=HYPERLINK("http://x")'
#: Accounts of the ops organisation that have no spoke stack (items can be set for them).
MEMBERS_WITHOUT_SPOKE = ("444444444444", "555555555555")
RECONCILER_ROLE = "BlogBudgetsReconcilerRole"
#: The environment of a ``budgetctl`` console script run in a subprocess: fake credentials, the
#: region, and account-based endpoints off (moto does not route them).
CONSOLE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
}


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def budgetctl(*argv: str) -> Run:
    """``budgetctl ARGV...`` in-process, as the console script runs it."""
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return Run(code, out.getvalue(), err.getvalue())


def create_budget(
    org: Org, account: str, limit: str = "1000", actual: str = "0", forecast: str = "0"
) -> None:
    """The spoke stack's budget (moto's CloudFormation skips AWS::Budgets::Budget)."""
    org.spokes[account].client("budgets").create_budget(
        AccountId=account,
        Budget={
            "BudgetName": BUDGET,
            "BudgetLimit": {"Amount": limit, "Unit": "USD"},
            "BudgetType": "COST",
            "TimeUnit": "MONTHLY",
            "CalculatedSpend": {
                "ActualSpend": {"Amount": actual, "Unit": "USD"},
                "ForecastedSpend": {"Amount": forecast, "Unit": "USD"},
            },
        },
    )


def edit_budget_limit(org: Org, account: str, limit: str) -> None:
    """A hand edit of the limit in the console (moto 5.2 has no UpdateBudget: re-create it)."""
    budgets = org.spokes[account].client("budgets")
    budgets.delete_budget(AccountId=account, BudgetName=BUDGET)
    create_budget(org, account, limit)


def budget_limit(org: Org, account: str) -> Decimal:
    budget = org.spokes[account].client("budgets").describe_budget(AccountId=account, BudgetName=BUDGET)
    return Decimal(budget["Budget"]["BudgetLimit"]["Amount"])


def parameter_version(org: Org, account: str) -> int:
    ssm = org.spokes[account].client("ssm")
    return int(ssm.get_parameter(Name="/BlogBudgets/CostThreshold")["Parameter"]["Version"])


def deploy_reconciler(org: Org) -> str:
    """The reconciler function in moto's Lambda, as template-management.yaml defines it (its
    role, handler and environment); the stand-in runs it in-process when it is invoked."""
    from budget_sync_local.lambda_runtime import function_spec  # cfn-lint: not at collection

    spec = function_spec("ReconcilerFunction", {}, REGION)
    iam = org.management.client("iam")
    role = iam.create_role(
        RoleName=RECONCILER_ROLE,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("budget_sync/__init__.py", "")
    org.management.client("lambda").create_function(
        FunctionName=spec.function_name,
        Runtime="python3.13",
        Role=role,
        Handler=spec.handler,
        Code={"ZipFile": package.getvalue()},
        Timeout=spec.timeout_s,
        MemorySize=spec.memory_mb,
        Environment={"Variables": spec.environment},
    )
    return spec.function_name


def organisation_of(accounts: tuple[str, ...]) -> None:
    """An organisation (moto) with these member accounts, named as the tests have them."""
    organizations = boto3.client("organizations", region_name=REGION)
    organizations.create_organization(FeatureSet="ALL")
    for account in accounts:
        with mock.patch("moto.organizations.utils.make_random_account_id", return_value=account):
            organizations.create_account(AccountName=f"spoke-{account}", Email=f"{account}@example.com")


def item(org: Org, account: str) -> dict[str, Any] | None:
    table = org.management.resource("dynamodb").Table(org.budgets_table)
    found: dict[str, Any] | None = table.get_item(Key={"AccountId": account}, ConsistentRead=True).get("Item")
    return found


def give_spend(org: Org, account: str, limit: str, actual: str, forecast: str) -> None:
    """The spoke budget with this month's spend (AWS computes it; moto keeps what it is given)."""
    org.spokes[account].client("budgets").delete_budget(AccountId=account, BudgetName=BUDGET)
    create_budget(org, account, limit, actual, forecast)


def organisation_with_names(names: dict[str, str]) -> None:
    """An organisation (moto) whose members have these ids and names."""
    organizations = boto3.client("organizations", region_name="us-east-1")
    organizations.create_organization(FeatureSet="ALL")
    for account, name in names.items():
        with mock.patch("moto.organizations.utils.make_random_account_id", return_value=account):
            organizations.create_account(AccountName=name, Email=f"{account}@example.com")


@pytest.fixture
def no_aws_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fails nothing, records every AWS call: validation errors must come before any."""
    calls: list[str] = []
    original = BaseClient._make_api_call

    def recorded(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        calls.append(operation)
        return original(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recorded)
    return calls


@pytest.fixture
def ops(org: Org, request: pytest.FixtureRequest) -> Iterator[Org]:
    """Three spokes, each with parameter 1000 and a budget of 1000; the table says 1000 for all;
    the reconciler function deployed (``budgetctl reconcile --apply`` invokes it); an
    organisation whose members are the spokes (``set`` and ``import`` check it), unless the test
    is marked ``without_organisation``."""
    reconcile_handler.build.cache_clear()
    in_organisation = request.node.get_closest_marker("without_organisation") is None

    def build() -> int:
        if in_organisation:
            organisation_of((*SPOKES, *MEMBERS_WITHOUT_SPOKE))
        deploy_reconciler(org)
        for account in SPOKES:
            create_budget(org, account)
            org.put(account, Decimal("1000"))
        org.new_records()  # the stream's records so far are not these tests' subject
        return org.consumed

    # built once per process and restored per test, as ``org`` is (tests/support/moto_org.py)
    org.consumed = built_once(("ops", org.enforced, in_organisation), build, int)
    yield org
    reconcile_handler.build.cache_clear()
