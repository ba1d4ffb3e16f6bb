"""moto fixtures: a management account with the template's tables, spoke accounts with the
spoke role and parameter, and the behaviours of real AWS that moto leaves out and these
tests rely on (AssumeRole of a missing role is refused; a parameter's AllowedPattern holds),
from the local organisation's one module of stand-ins (budget_sync_local.standins)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto import mock_aws

from budget_sync.domain import AMOUNT_PATTERN
from budget_sync.handlers import update as update_handler
from budget_sync_local import standins
from budget_sync_local.lambda_runtime import function_spec, invoke
from budget_sync_local.streams import lambda_event, read_from_start
from budget_sync_local.templates import MANAGEMENT_TEMPLATE, Resolver, load

REGION = "us-east-1"
MANAGEMENT = "123456789012"
SPOKES = ("111111111111", "222222222222", "333333333333")
PARAMETER = "/BlogBudgets/CostThreshold"
SPOKE_ROLE = "BlogBudgetsSpokeRole"
SPOKE_READ_ROLE = "BlogBudgetsSpokeReadRole"  # operators read through it (budgetctl status)
ADMIN_ROLE = standins.ADMIN_ROLE


@dataclass
class Org:
    """Handles on the moto organisation one test works with."""

    management: boto3.Session
    budgets_table: str
    status_table: str
    stream_arn: str
    spokes: dict[str, boto3.Session] = field(default_factory=dict)
    consumed: int = 0

    def put(self, account: str, value: Any, **extra: Any) -> None:
        item = {"AccountId": account, "BudgetValue": value, **extra}
        self.management.resource("dynamodb").Table(self.budgets_table).put_item(Item=item)

    def put_raw(self, item: dict[str, Any]) -> None:
        self.management.client("dynamodb").put_item(TableName=self.budgets_table, Item=item)

    def delete(self, account: str) -> None:
        self.management.resource("dynamodb").Table(self.budgets_table).delete_item(Key={"AccountId": account})

    def new_records(self) -> list[dict[str, Any]]:
        """Stream records not yet handed to the function (like a Lambda poller's position)."""
        records = read_from_start(self.management.client("dynamodbstreams"), self.stream_arn)
        fresh, self.consumed = records[self.consumed :], len(records)
        return fresh

    def invoke(self, records: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The template's handler, on the stream's new records, as Lambda calls it."""
        event = lambda_event(self.new_records() if records is None else records)
        result: dict[str, Any] = invoke(function_spec(), event, REGION, MANAGEMENT)
        return result

    def parameter(self, account: str) -> str:
        return self.spokes[account].client("ssm").get_parameter(Name=PARAMETER)["Parameter"]["Value"]

    def status(self, account: str) -> dict[str, Any] | None:
        table = self.management.resource("dynamodb").Table(self.status_table)
        item: dict[str, Any] | None = table.get_item(Key={"AccountId": account}).get("Item")
        return item


def session_in(account: str) -> boto3.Session:
    """Administrator credentials in an account (moto: any assumed role acts in its account)."""
    return assume(f"arn:aws:iam::{account}:role/{ADMIN_ROLE}", "test-admin")


def assume(role_arn: str, session_name: str) -> boto3.Session:
    """A session with the role's credentials (the stand-ins refuse a role that does not exist)."""
    credentials = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=role_arn, RoleSessionName=session_name
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=REGION,
    )


def create_table(session: boto3.Session, logical_id: str) -> Any:
    """Create a table from template-management.yaml's own properties for it."""
    properties = Resolver(load(MANAGEMENT_TEMPLATE), region=REGION).properties(logical_id)
    arguments: dict[str, Any] = {
        key: properties[key] for key in ("TableName", "BillingMode", "AttributeDefinitions", "KeySchema")
    }
    if "StreamSpecification" in properties:
        arguments["StreamSpecification"] = {"StreamEnabled": True, **properties["StreamSpecification"]}
    if properties.get("SSESpecification", {}).get("SSEEnabled"):
        arguments["SSESpecification"] = {"Enabled": True}
    arguments["DeletionProtectionEnabled"] = bool(properties.get("DeletionProtectionEnabled", False))
    return session.client("dynamodb").create_table(**arguments)["TableDescription"]


def add_spoke(
    org: Org, account: str, *, role: bool = True, pattern: str = AMOUNT_PATTERN, initial: str = "1000"
) -> None:
    session = session_in(account)
    if role:
        session.client("iam").create_role(RoleName=SPOKE_ROLE, AssumeRolePolicyDocument="{}")
        session.client("iam").create_role(RoleName=SPOKE_READ_ROLE, AssumeRolePolicyDocument="{}")
    session.client("ssm").put_parameter(Name=PARAMETER, Value=initial, Type="String", AllowedPattern=pattern)
    org.spokes[account] = session


@pytest.fixture
def org() -> Iterator[Org]:
    update_handler.build_service.cache_clear()  # clients of an earlier moto must not leak in
    with mock_aws(), standins.installed():
        management = boto3.Session(region_name=REGION)
        budgets = create_table(management, "BudgetsTable")
        status = create_table(management, "StatusTable")
        organisation = Org(management, budgets["TableName"], status["TableName"], budgets["LatestStreamArn"])
        for account in SPOKES:
            add_spoke(organisation, account)
        yield organisation
    update_handler.build_service.cache_clear()
