"""The stand-ins for what moto 5.2 lacks behave as the AWS APIs they stand in for, and
leave moto as it was when they are uninstalled."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.support.lazy import lazy
from tests.support.spoke_account import REGION

if TYPE_CHECKING:
    import moto

    from budget_sync_local import standins
else:  # moto: imported by the first test that uses it, not at collection (make unit)
    standins = lazy("budget_sync_local.standins")
    moto = lazy("moto")

ACCOUNT = "123456789012"  # moto's default account
BUDGET = {
    "BudgetName": "b1",
    "BudgetType": "COST",
    "TimeUnit": "MONTHLY",
    "BudgetLimit": {"Amount": "100", "Unit": "USD"},
}
NOTIFICATION = {
    "Notification": {
        "NotificationType": "ACTUAL",
        "ComparisonOperator": "GREATER_THAN",
        "Threshold": 80.0,
        "ThresholdType": "PERCENTAGE",
    },
    "Subscribers": [{"SubscriptionType": "EMAIL", "Address": "a@example.com"}],
}


@pytest.fixture
def installed() -> Iterator[standins.StandIns]:
    with moto.mock_aws(), standins.installed() as stand_ins:
        yield stand_ins


@pytest.mark.aws
def test_update_budget_replaces_the_definition_keeps_notifications_and_the_spend_reads_zero(
    installed: standins.StandIns,
):
    budgets = boto3.client("budgets", region_name=REGION)
    budgets.create_budget(AccountId=ACCOUNT, Budget=BUDGET, NotificationsWithSubscribers=[NOTIFICATION])
    standins.set_calculated_spend(ACCOUNT, "b1", actual=Decimal("12.5"), forecasted=Decimal(0))

    budgets.update_budget(
        AccountId=ACCOUNT,
        NewBudget={
            **BUDGET,
            "BudgetLimit": {"Amount": "250", "Unit": "USD"},
            "CostFilters": {"Region": ["eu-west-1"]},
        },
    )

    budget = budgets.describe_budget(AccountId=ACCOUNT, BudgetName="b1")["Budget"]
    assert budget["BudgetLimit"] == {"Amount": "250", "Unit": "USD"}
    assert budget["CostFilters"] == {"Region": ["eu-west-1"]}
    # "When you modify a budget, the calculatedSpend drops to zero until Amazon Web Services
    # has new usage data" (UpdateBudget, API reference)
    assert budget["CalculatedSpend"]["ActualSpend"]["Amount"] == "0"
    assert standins.notifications_with_subscribers(ACCOUNT, "b1") == [
        (NOTIFICATION["Notification"], NOTIFICATION["Subscribers"])
    ]


@pytest.mark.aws
def test_update_budget_of_a_missing_budget_is_not_found(installed: standins.StandIns):
    budgets = boto3.client("budgets", region_name=REGION)
    with pytest.raises(budgets.exceptions.NotFoundException):
        budgets.update_budget(AccountId=ACCOUNT, NewBudget=BUDGET)


@pytest.mark.aws
def test_every_parameter_write_and_delete_is_a_parameter_store_change_event(installed: standins.StandIns):
    seen: list[dict[str, Any]] = []
    installed.subscribe(seen.append)
    ssm = boto3.client("ssm", region_name=REGION)

    ssm.put_parameter(Name="/a/b", Value="1", Type="String", Description="d")
    ssm.put_parameter(Name="/a/b", Value="2", Overwrite=True)
    ssm.delete_parameter(Name="/a/b")
    ssm.put_parameter(Name="c", Value="1", Type="String")
    ssm.delete_parameters(Names=["c", "missing"])

    assert [(e["detail"]["name"], e["detail"]["operation"]) for e in seen] == [
        ("/a/b", "Create"),
        ("/a/b", "Update"),
        ("/a/b", "Delete"),
        ("c", "Create"),
        ("c", "Delete"),
    ]
    first = seen[0]
    assert first == {
        **first,
        "source": "aws.ssm",
        "detail-type": "Parameter Store Change",
        "account": ACCOUNT,
        "region": REGION,
        "resources": [f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/a/b"],
        "detail": {"name": "/a/b", "type": "String", "operation": "Create", "description": "d"},
    }
    assert seen[3]["resources"] == [f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/c"]


@pytest.mark.aws
def test_a_refused_write_produces_no_event_and_a_failing_subscriber_does_not_fail_the_write(
    installed: standins.StandIns,
):
    seen: list[dict[str, Any]] = []

    def broken(_: dict[str, Any]) -> None:
        raise RuntimeError("subscriber bug")

    installed.subscribe(broken)
    installed.subscribe(seen.append)
    ssm = boto3.client("ssm", region_name=REGION)
    ssm.put_parameter(Name="/p", Value="5", Type="String", AllowedPattern="^[0-9]$")
    with pytest.raises(ClientError) as error:
        ssm.put_parameter(Name="/p", Value="55", Overwrite=True)
    assert error.value.response["Error"]["Code"] == "ParameterPatternMismatchException"
    assert [e["detail"]["operation"] for e in seen] == ["Create"]


@pytest.mark.aws
def test_installed_is_reentrant_and_uninstalling_restores_moto():
    with moto.mock_aws():
        with standins.installed() as outer, standins.installed() as inner:
            assert inner is outer
            seen: list[dict[str, Any]] = []
            outer.subscribe(seen.append)
            boto3.client("ssm", region_name=REGION).put_parameter(Name="/x", Value="1", Type="String")
            assert len(seen) == 1  # patched once: one write, one event
        from moto.budgets.responses import BudgetsResponse

        assert not hasattr(BudgetsResponse, "update_budget")
        with pytest.raises(NotImplementedError):
            boto3.client("budgets", region_name=REGION).update_budget(AccountId=ACCOUNT, NewBudget=BUDGET)


@pytest.mark.aws
def test_the_stand_ins_also_serve_a_threaded_moto_server_in_the_same_process():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        with standins.installed() as stand_ins:
            seen: list[str] = []
            stand_ins.subscribe(lambda event: seen.append(threading.current_thread().name))
            ssm = boto3.client("ssm", region_name=REGION, endpoint_url=endpoint)
            ssm.put_parameter(Name="/srv", Value="1", Type="String")
            budgets = boto3.client("budgets", region_name=REGION, endpoint_url=endpoint)
            budgets.create_budget(AccountId=ACCOUNT, Budget=BUDGET)
            budgets.update_budget(
                AccountId=ACCOUNT, NewBudget={**BUDGET, "BudgetLimit": {"Amount": "7", "Unit": "USD"}}
            )
            limit = budgets.describe_budget(AccountId=ACCOUNT, BudgetName="b1")["Budget"]["BudgetLimit"]
        assert len(seen) == 1
        assert limit == {"Amount": "7", "Unit": "USD"}
    finally:
        server.stop()


@pytest.mark.aws  # moto: EventBridge's matcher is moto's (standins.pattern_matches), seconds of import
def test_pattern_matches_uses_eventbridge_semantics():
    event = standins.parameter_store_change_event(ACCOUNT, REGION, "/BlogBudgets/CostThreshold", "Update")
    assert standins.pattern_matches({"detail": {"name": [{"prefix": "/BlogBudgets/"}]}}, event)
    assert not standins.pattern_matches({"detail": {"operation": [{"anything-but": ["Update"]}]}}, event)
    assert standins.pattern_matches('{"source": ["aws.ssm"]}', event)


@pytest.mark.aws
def test_given_a_transaction_that_fails_then_every_table_it_touched_is_rolled_back(installed):
    # The stand-ins snapshot each table once per transaction (moto copies it per item).
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    for name in ("first", "second"):
        dynamodb.create_table(
            TableName=name,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        dynamodb.put_item(TableName=name, Item={"k": {"S": "kept"}, "v": {"N": "1"}})
    writes = [{"Put": {"TableName": "first", "Item": {"k": {"S": f"new{i}"}}}} for i in range(3)] + [
        {"Put": {"TableName": "second", "Item": {"k": {"S": "kept"}, "v": {"N": "2"}}}},
        {
            "Put": {
                "TableName": "first",
                "Item": {"k": {"S": "kept"}, "v": {"N": "3"}},
                "ConditionExpression": "attribute_not_exists(k)",  # fails: the item exists
            }
        },
    ]

    with pytest.raises(ClientError, match="TransactionCanceledException"):
        dynamodb.transact_write_items(TransactItems=writes)

    streams = boto3.client("dynamodbstreams", region_name=REGION)
    for name in ("first", "second"):
        items = dynamodb.scan(TableName=name)["Items"]
        assert items == [{"k": {"S": "kept"}, "v": {"N": "1"}}], name
        # and its stream holds no record of the cancelled transaction (the first put's only)
        arn = dynamodb.describe_table(TableName=name)["Table"]["LatestStreamArn"]
        (shard,) = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records = streams.get_records(ShardIterator=iterator)["Records"]
        assert [(r["eventName"], r["dynamodb"]["NewImage"]["v"]) for r in records] == [
            ("INSERT", {"N": "1"})
        ], name


@pytest.mark.aws
def test_given_an_assumed_role_key_then_requests_with_it_act_in_the_role_account(installed):
    sts = boto3.client("sts", region_name=REGION)
    for account in ("111111111111", "222222222222"):
        keys = sts.assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole", RoleSessionName="test"
        )["Credentials"]
        caller = boto3.client(
            "sts",
            region_name=REGION,
            aws_access_key_id=keys["AccessKeyId"],
            aws_secret_access_key=keys["SecretAccessKey"],
            aws_session_token=keys["SessionToken"],
        ).get_caller_identity()
        assert caller["Account"] == account


@pytest.mark.aws
def test_given_a_new_parameter_whose_value_breaks_its_own_pattern_then_it_is_not_created(installed):
    ssm = boto3.client("ssm", region_name=REGION)

    with pytest.raises(ClientError) as error:
        ssm.put_parameter(
            Name="/new", Value="12.345", Type="String", AllowedPattern="^[0-9]+(\\.[0-9]{1,2})?$"
        )

    assert error.value.response["Error"]["Code"] == "ParameterPatternMismatchException"
    with pytest.raises(ClientError, match="ParameterNotFound"):
        ssm.get_parameter(Name="/new")


@pytest.mark.aws
def test_an_assumed_session_builds_its_boto3_session_once_and_only_when_asked(installed):
    from budget_sync_local.organisation import _AssumedSession

    keys = {"AccessKeyId": "ASIAEXAMPLE", "SecretAccessKey": "secret", "SessionToken": "token"}
    session = _AssumedSession(keys, REGION)
    # clients, credentials and region need no botocore session of its own
    assert session.get_credentials().access_key == "ASIAEXAMPLE"
    assert session.region_name == REGION
    assert session.client("sts").meta.region_name == REGION
    assert "_session" not in vars(session)
    # anything else builds it, once, whichever of several threads asks first
    seen: list[object] = []
    threads = [threading.Thread(target=lambda: seen.append(session._session)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 8
    assert len({id(s) for s in seen}) == 1
    assert session._session.get_credentials().access_key == "ASIAEXAMPLE"
    with pytest.raises(AttributeError, match="no_such_thing"):
        _ = session.no_such_thing
