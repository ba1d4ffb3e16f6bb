"""moto fixtures: a management account with the template's tables, spoke accounts with the
spoke role and parameter, and the behaviours of real AWS that moto leaves out and these
tests rely on (AssumeRole of a missing role is refused; a parameter's AllowedPattern holds),
from the local organisation's one module of stand-ins (budget_sync_local.standins).

``enforced_org`` is the same organisation under the local organisation's IAM
(``standins.authorisation``): an AWS Organization holds the accounts, the update function's
role and each spoke role are the templates' own (``FunctionRole`` of template-management.yaml,
``SpokeRole`` of template-spoke.yaml: trust and policies), the handler runs with the function
role's credentials as Lambda gives them, and every call is authorised. A test module opts in
by defining ``org`` as ``enforced_org``.

Each is built once per worker process and restored per test (``built_once``): the first test
that asks builds it on moto and keeps a copy of the state it left (``budget_sync_local.snapshot``,
as the local organisation does with its deployments); every later one starts from a fresh copy
of that state, with its own ``Org`` on the same credentials. Nothing one test writes reaches the
next (tests/e2e/test_provisioned_once.py checks both for these fixtures too).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar
from unittest import mock

import boto3
import pytest

from budget_sync.domain import AMOUNT_PATTERN
from budget_sync.handlers import update as update_handler
from budget_sync_local.streams import lambda_event, read_from_start

# moto, the stand-ins and the templates' reader (cfn-lint) are imported where they are used, not
# here: this module is a plugin of tests/conftest.py, and `make unit` collects without them.
if TYPE_CHECKING:
    from budget_sync_local.snapshot import State

T = TypeVar("T")

REGION = "us-east-1"
MANAGEMENT = "123456789012"
SPOKES = ("111111111111", "222222222222", "333333333333")
PARAMETER = "/BlogBudgets/CostThreshold"
SPOKE_ROLE = "BlogBudgetsSpokeRole"
SPOKE_READ_ROLE = "BlogBudgetsSpokeReadRole"  # operators read through it (budgetctl status)


@dataclass
class Org:
    """Handles on the moto organisation one test works with."""

    management: boto3.Session
    budgets_table: str
    status_table: str
    stream_arn: str
    spokes: dict[str, boto3.Session] = field(default_factory=dict)
    consumed: int = 0
    #: the update function's execution role credentials (enforced_org); None: the administrator
    credentials: tuple[str, str, str] | None = None

    @property
    def enforced(self) -> bool:
        return self.credentials is not None

    def function_session(self) -> boto3.Session:
        """The update function's execution role, as Lambda gives it (the administrator's
        session outside enforced_org)."""
        if self.credentials is None:
            return boto3.Session(region_name=REGION)
        key, secret, token = self.credentials
        return boto3.Session(
            aws_access_key_id=key, aws_secret_access_key=secret, aws_session_token=token, region_name=REGION
        )

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
        from budget_sync_local.lambda_runtime import invoke

        event = lambda_event(self.new_records() if records is None else records)
        result: dict[str, Any] = invoke(self.spec(), event, REGION, MANAGEMENT)
        return result

    def spec(self) -> Any:
        """The update function's spec, with its execution role's credentials under enforced_org."""
        from budget_sync_local.lambda_runtime import function_spec

        return replace(function_spec(), credentials=self.credentials)

    def parameter(self, account: str) -> str:
        return self.spokes[account].client("ssm").get_parameter(Name=PARAMETER)["Parameter"]["Value"]

    def status(self, account: str) -> dict[str, Any] | None:
        table = self.management.resource("dynamodb").Table(self.status_table)
        item: dict[str, Any] | None = table.get_item(Key={"AccountId": account}).get("Item")
        return item


def session_in(account: str) -> boto3.Session:
    """Administrator credentials in an account (moto: any assumed role acts in its account)."""
    from budget_sync_local import standins

    return assume(f"arn:aws:iam::{account}:role/{standins.ADMIN_ROLE}", "test-admin")


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
    from budget_sync_local.templates import MANAGEMENT_TEMPLATE, Resolver, load

    properties = Resolver(load(MANAGEMENT_TEMPLATE), region=REGION).properties(logical_id)
    arguments: dict[str, Any] = {
        key: properties[key] for key in ("TableName", "BillingMode", "AttributeDefinitions", "KeySchema")
    }
    if "GlobalSecondaryIndexes" in properties:
        arguments["GlobalSecondaryIndexes"] = properties["GlobalSecondaryIndexes"]
    if "StreamSpecification" in properties:
        arguments["StreamSpecification"] = {"StreamEnabled": True, **properties["StreamSpecification"]}
    if properties.get("SSESpecification", {}).get("SSEEnabled"):
        arguments["SSESpecification"] = {"Enabled": True}
    arguments["DeletionProtectionEnabled"] = bool(properties.get("DeletionProtectionEnabled", False))
    return session.client("dynamodb").create_table(**arguments)["TableDescription"]


def add_spoke(
    org: Org, account: str, *, role: bool = True, pattern: str = AMOUNT_PATTERN, initial: str = "1000"
) -> None:
    from budget_sync_local import standins
    from budget_sync_local.templates import SPOKE_TEMPLATE

    if org.enforced and standins.authorisation.organisation_of(account) is None:
        join_organisation(org.management, account)
    session = session_in(account)
    if role and org.enforced:
        template_role(session, SPOKE_TEMPLATE, "SpokeRole", account, {"ManagementAccountId": MANAGEMENT})
    elif role:
        session.client("iam").create_role(RoleName=SPOKE_ROLE, AssumeRolePolicyDocument="{}")
        session.client("iam").create_role(RoleName=SPOKE_READ_ROLE, AssumeRolePolicyDocument="{}")
    session.client("ssm").put_parameter(Name=PARAMETER, Value=initial, Type="String", AllowedPattern=pattern)
    org.spokes[account] = session


#: What this process built, by what it is (``built_once``): the state it left and its results.
BUILT: dict[Hashable, tuple[State, Any]] = {}


def built_once(key: Hashable, build: Callable[[], T], fresh: Callable[[T], T]) -> T:
    """``build()`` the first time this process asks for ``key``, keeping a copy of the state it
    left in moto and the stand-ins; later, that state restored (a fresh copy: what a test
    writes never reaches the next) and ``fresh(result)``, the result with nothing shared that a
    test could change. Only inside the caller's own ``mock_aws()``, entered just before."""
    from budget_sync_local import snapshot

    built = BUILT.get(key)
    if built is None:
        result = build()
        BUILT[key] = (snapshot.capture(), result)
    else:
        state, result = built
        snapshot.restore(state)
    return fresh(result)


def fresh_org(built: Org) -> Org:
    """A test's own ``Org`` on the restored state: a new management session (the environment's
    credentials), its own dict of spokes and its own stream position. The spokes' sessions are
    the built ones: fixed credentials, valid again in every restored state, and a session keeps
    nothing of a test (clients and their handlers are each test's own)."""
    return replace(built, management=boto3.Session(region_name=REGION), spokes=dict(built.spokes))


def _build_org() -> Org:
    management = boto3.Session(region_name=REGION)
    budgets = create_table(management, "BudgetsTable")
    status = create_table(management, "StatusTable")
    organisation = Org(management, budgets["TableName"], status["TableName"], budgets["LatestStreamArn"])
    for account in SPOKES:
        add_spoke(organisation, account)
    return organisation


@pytest.fixture
def org() -> Iterator[Org]:
    from moto import mock_aws

    from budget_sync_local import standins

    update_handler.build_service.cache_clear()  # clients of an earlier moto must not leak in
    with mock_aws(), standins.installed():
        yield built_once("org", _build_org, fresh_org)
    update_handler.build_service.cache_clear()


def template_role(
    session: boto3.Session, template: Any, logical_id: str, account: str, parameters: dict[str, str]
) -> str:
    """Create a template's ``AWS::IAM::Role`` (its name, trust and inline policies, resolved
    for ``account``) as CloudFormation would; its ARN."""
    from budget_sync_local.templates import Resolver, load

    properties = Resolver(load(template), parameters, account_id=account, region=REGION).properties(
        logical_id
    )
    iam = session.client("iam")
    name = properties["RoleName"]
    iam.create_role(
        RoleName=name, AssumeRolePolicyDocument=json.dumps(properties["AssumeRolePolicyDocument"])
    )
    for policy in properties.get("Policies", []):
        iam.put_role_policy(
            RoleName=name,
            PolicyName=policy["PolicyName"],
            PolicyDocument=json.dumps(policy["PolicyDocument"]),
        )
    return f"arn:aws:iam::{account}:role/{name}"


def join_organisation(management: boto3.Session, account: str) -> None:
    """CreateAccount in the management account's organisation, with this account id."""
    with mock.patch("moto.organizations.utils.make_random_account_id", return_value=account):
        management.client("organizations").create_account(
            AccountName=f"spoke-{account}", Email=f"aws+{account}@example.com"
        )


@pytest.fixture
def enforced_org() -> Iterator[Org]:
    """``org`` under IAM: an AWS Organization of the management account and the spokes, the
    templates' function and spoke roles, the handler as its execution role."""
    from moto import mock_aws

    from budget_sync_local import standins
    from budget_sync_local.templates import MANAGEMENT_TEMPLATE

    def build() -> Org:
        management = boto3.Session(region_name=REGION)
        management.client("organizations").create_organization(FeatureSet="ALL")
        for account in SPOKES:
            join_organisation(management, account)
        budgets = create_table(management, "BudgetsTable")
        status = create_table(management, "StatusTable")
        role = template_role(management, MANAGEMENT_TEMPLATE, "FunctionRole", MANAGEMENT, {})
        with standins.authorisation.enforced():
            credentials = standins.service_credentials(
                role, "lambda.amazonaws.com", MANAGEMENT, REGION, "BlogBudgetsUpdateLambda"
            )
            organisation = Org(
                management,
                budgets["TableName"],
                status["TableName"],
                budgets["LatestStreamArn"],
                credentials=credentials,
            )
            for account in SPOKES:
                add_spoke(organisation, account)
        return organisation

    update_handler.build_service.cache_clear()
    with mock_aws(), standins.installed():
        organisation = built_once("enforced_org", build, fresh_org)
        with standins.authorisation.enforced():
            yield organisation
    update_handler.build_service.cache_clear()
