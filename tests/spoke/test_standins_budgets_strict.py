"""The Budgets stand-in refuses what AWS Budgets refuses, whatever the client checks itself:
every request is validated against botocore's service model on the server side, with the
rules the API reference states beside it, and it serves what AWS serves (a missing budget's
notifications, paging, CostTypes, the last subscriber's notification)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.support.lazy import lazy
from tests.support.spoke_account import REGION

if TYPE_CHECKING:
    import moto

    from budget_sync_local import standins
else:  # moto: imported by the first test that uses it, not at collection (make unit)
    standins = lazy("budget_sync_local.standins")
    moto = lazy("moto")

ACCOUNT = "123456789012"
BUDGET = {
    "BudgetName": "b1",
    "BudgetType": "COST",
    "TimeUnit": "MONTHLY",
    "BudgetLimit": {"Amount": "100", "Unit": "USD"},
}
N80 = {"NotificationType": "ACTUAL", "ComparisonOperator": "GREATER_THAN", "Threshold": 80.0}
A = {"SubscriptionType": "EMAIL", "Address": "a@example.com"}
FILTER = {"Dimensions": {"Key": "REGION", "Values": ["eu-west-1"]}}
#: A client that sends whatever it is given, as the AWS CLI or another SDK might.
UNCHECKED = Config(parameter_validation=False)


@pytest.fixture
def budgets() -> Iterator[Any]:
    with moto.mock_aws(), standins.installed():
        client = boto3.client("budgets", region_name=REGION, config=UNCHECKED)
        client.create_budget(
            AccountId=ACCOUNT,
            Budget=BUDGET,
            NotificationsWithSubscribers=[{"Notification": N80, "Subscribers": [A]}],
        )
        yield client


def refused(call: Any, **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as error:
        call(**kwargs)
    return str(error.value.response["Error"]["Code"]), str(error.value.response["Error"]["Message"])


@pytest.mark.parametrize(
    ("change", "member", "value"),
    [
        ({"TimeUnit": "WEEKLY"}, "NewBudget.TimeUnit", "WEEKLY"),  # enum
        ({"BudgetName": "b" * 101}, "NewBudget.BudgetName", "b" * 101),  # max length
        (
            {"BudgetLimit": {"Amount": "1,000", "Unit": "USD"}},
            "NewBudget.BudgetLimit.Amount",
            "1,000",
        ),  # pattern
        ({"BudgetLimit": {"Amount": "100"}}, "NewBudget.BudgetLimit.Unit", "null"),  # required, nested
        (
            {"Metrics": ["UnblendedCost", "AmortizedCost"]},
            "NewBudget.Metrics",
            "['UnblendedCost', 'AmortizedCost']",
        ),
        ({"Metrics": ["Pennies"]}, "NewBudget.Metrics.1.member", "Pennies"),  # enum inside a list
        (
            {
                "AutoAdjustData": {
                    "AutoAdjustType": "HISTORICAL",
                    "HistoricalOptions": {"BudgetAdjustmentPeriod": 61},
                }
            },
            "NewBudget.AutoAdjustData.HistoricalOptions.BudgetAdjustmentPeriod",
            "61",
        ),  # range
        (
            {
                "FilterExpression": {"Dimensions": {"Key": "REGION", "Values": []}},
                "Metrics": ["UnblendedCost"],
            },
            "NewBudget.FilterExpression.Dimensions.Values",
            "[]",
        ),  # list min, nested
        (
            {"CostFilters": {"Region": [5]}},
            "NewBudget.CostFilters.Region.value.1.member",
            "5",
        ),  # type, in a map
    ],
)
@pytest.mark.aws
def test_given_an_unchecked_client_then_update_budget_refuses_what_the_model_refuses(
    budgets: Any, change: dict[str, Any], member: str, value: str
):
    code, message = refused(budgets.update_budget, AccountId=ACCOUNT, NewBudget={**BUDGET, **change})

    assert code == "InvalidParameterException"
    assert f"at '{member}'" in message
    assert (f"Value '{value}'" if value != "null" else "Value null") in message
    assert (
        budgets.describe_budget(AccountId=ACCOUNT, BudgetName="b1")["Budget"]["BudgetLimit"]["Amount"]
        == "100"
    )


@pytest.mark.aws
def test_every_operation_is_validated_moto_s_own_ones_included(budgets: Any):
    code, message = refused(budgets.describe_budget, AccountId="12345", BudgetName="b1")
    assert code == "InvalidParameterException"
    assert "Value '12345' at 'AccountId'" in message
    assert "length greater than or equal to 12" in message

    code, message = refused(budgets.delete_budget, AccountId=ACCOUNT, BudgetName="a:b")
    assert (code, "Value 'a:b' at 'BudgetName'" in message) == ("InvalidParameterException", True)

    code, message = refused(
        budgets.create_notification,
        AccountId=ACCOUNT,
        BudgetName="b1",
        Notification={**N80, "Threshold": -1.0},
        Subscribers=[A],
    )
    assert code == "InvalidParameterException"
    assert "at 'Notification.Threshold'" in message

    code, message = refused(budgets.describe_budgets, AccountId=ACCOUNT, MaxResults=0)
    assert code == "InvalidParameterException"
    assert "Value '0' at 'MaxResults'" in message


@pytest.mark.parametrize(
    ("definition", "words"),
    [
        (
            {"PlannedBudgetLimits": {"1767225600": {"Amount": "100", "Unit": "USD"}}},
            "both BudgetLimit and PlannedBudgetLimits",
        ),
        (
            {"FilterExpression": FILTER, "Metrics": ["UnblendedCost"], "CostTypes": {"IncludeTax": True}},
            "FilterExpression and Metrics together with CostTypes",
        ),
        (
            {"Metrics": ["UnblendedCost"], "CostFilters": {"Region": ["eu-west-1"]}},
            "Metrics together with CostFilters",
        ),
        (
            {
                "FilterExpression": {"And": [{"Or": [{"Not": FILTER}, FILTER]}, FILTER]},
                "Metrics": ["UnblendedCost"],
            },
            "FilterExpression nests 3 deep",
        ),
    ],
)
@pytest.mark.aws
def test_the_documented_rules_across_members_are_enforced_on_create_and_update(
    budgets: Any, definition: dict[str, Any], words: str
):
    code, message = refused(budgets.update_budget, AccountId=ACCOUNT, NewBudget={**BUDGET, **definition})
    assert (code, words in message) == ("InvalidParameterException", True), message
    code, message = refused(
        budgets.create_budget, AccountId=ACCOUNT, Budget={**BUDGET, "BudgetName": "b2", **definition}
    )
    assert (code, words in message) == ("InvalidParameterException", True), message


@pytest.mark.aws
def test_a_filter_two_deep_with_one_metric_is_accepted_and_no_cost_types_are_returned_for_it(budgets: Any):
    two_deep = {"And": [{"Or": [FILTER, {"Tags": {"Key": "team", "Values": ["a"]}}]}, {"Not": FILTER}]}
    budgets.update_budget(
        AccountId=ACCOUNT, NewBudget={**BUDGET, "FilterExpression": two_deep, "Metrics": ["UnblendedCost"]}
    )

    budget = budgets.describe_budget(AccountId=ACCOUNT, BudgetName="b1", ShowFilterExpression=True)["Budget"]
    assert (budget["FilterExpression"], budget["Metrics"]) == (two_deep, ["UnblendedCost"])
    assert "CostTypes" not in budget
    # a budget defined the deprecated way (or with neither) still gets moto's default CostTypes
    budgets.create_budget(AccountId=ACCOUNT, Budget={**BUDGET, "BudgetName": "plain"})
    assert "CostTypes" in budgets.describe_budget(AccountId=ACCOUNT, BudgetName="plain")["Budget"]


@pytest.mark.aws
def test_deleting_the_last_subscriber_deletes_the_notification(budgets: Any):
    budgets.delete_subscriber(AccountId=ACCOUNT, BudgetName="b1", Notification=N80, Subscriber=A)

    assert (
        budgets.describe_notifications_for_budget(AccountId=ACCOUNT, BudgetName="b1")["Notifications"] == []
    )
    code, _ = refused(
        budgets.describe_subscribers_for_notification, AccountId=ACCOUNT, BudgetName="b1", Notification=N80
    )
    assert code == "NotFoundException"


@pytest.mark.aws
def test_the_notifications_of_a_missing_budget_are_not_found(budgets: Any):
    code, message = refused(budgets.describe_notifications_for_budget, AccountId=ACCOUNT, BudgetName="gone")
    assert code == "NotFoundException"
    assert "the budget doesn't exist" in message


@pytest.mark.aws
def test_notifications_subscribers_and_budgets_come_in_pages(budgets: Any):
    for threshold in (90.0, 100.0, 110.0, 120.0):
        budgets.create_notification(
            AccountId=ACCOUNT, BudgetName="b1", Notification={**N80, "Threshold": threshold}, Subscribers=[A]
        )
    for n in range(2, 5):
        budgets.create_subscriber(
            AccountId=ACCOUNT,
            BudgetName="b1",
            Notification=N80,
            Subscriber={"SubscriptionType": "EMAIL", "Address": f"{n}@example.com"},
        )
        budgets.create_budget(AccountId=ACCOUNT, Budget={**BUDGET, "BudgetName": f"b{n}"})

    first = budgets.describe_notifications_for_budget(AccountId=ACCOUNT, BudgetName="b1", MaxResults=2)
    assert [n["Threshold"] for n in first["Notifications"]] == [80.0, 90.0]
    pages = budgets.get_paginator("describe_notifications_for_budget").paginate(
        AccountId=ACCOUNT, BudgetName="b1", PaginationConfig={"PageSize": 2}
    )
    assert [[n["Threshold"] for n in page["Notifications"]] for page in pages] == [
        [80.0, 90.0],
        [100.0, 110.0],
        [120.0],
    ]
    pages = budgets.get_paginator("describe_subscribers_for_notification").paginate(
        AccountId=ACCOUNT, BudgetName="b1", Notification=N80, PaginationConfig={"PageSize": 3}
    )
    assert [len(page["Subscribers"]) for page in pages] == [3, 1]
    pages = budgets.get_paginator("describe_budgets").paginate(
        AccountId=ACCOUNT, PaginationConfig={"PageSize": 3}
    )
    assert [[b["BudgetName"] for b in page["Budgets"]] for page in pages] == [["b1", "b2", "b3"], ["b4"]]
    code, _ = refused(
        budgets.describe_notifications_for_budget, AccountId=ACCOUNT, BudgetName="b1", NextToken="not-a-token"
    )
    assert code == "InvalidNextTokenException"


def test_a_model_pattern_with_a_java_inline_flag_is_scoped_as_java_scopes_it():
    # BudgetName's pattern has "(?i)" inside a lookahead: Java scopes it to that group
    # (the stand-ins' model validation reads the model's patterns with it)
    from budget_sync_local.java_regex import python_pattern

    assert python_pattern("^(?!a|(?i)b.*)c$") == "^(?!a|(?i:b.*))c$"


def _raw_update(endpoint: str, new_budget: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """UpdateBudget as any HTTP client sends it (JSON 1.1, X-Amz-Target), no SDK involved."""
    request = urllib.request.Request(  # noqa: S310 (the local server, http)
        endpoint,
        data=json.dumps({"AccountId": ACCOUNT, "NewBudget": new_budget}).encode(),
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "AWSBudgetServiceGateway.UpdateBudget",
            "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/budgets/aws4_request, "
            "SignedHeaders=host, Signature=0",
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 (the local server)
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.aws
def test_make_local_s_server_refuses_a_mixed_definition_from_any_client():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        with standins.installed():
            client = boto3.client("budgets", region_name=REGION, endpoint_url=endpoint)
            client.create_budget(AccountId=ACCOUNT, Budget=BUDGET)

            status, body = _raw_update(
                endpoint,
                {
                    **BUDGET,
                    "BudgetLimit": {"Amount": "200", "Unit": "USD"},
                    "FilterExpression": FILTER,
                    "Metrics": ["UnblendedCost"],
                    "CostTypes": {"IncludeTax": True},
                },
            )
            assert status == 400
            assert body["__type"].endswith("InvalidParameterException")
            assert "not both" in body["message"]
            status, body = _raw_update(
                endpoint, {**BUDGET, "PlannedBudgetLimits": {"1767225600": BUDGET["BudgetLimit"]}}
            )
            assert (status, "both BudgetLimit and PlannedBudgetLimits" in body["message"]) == (400, True)
            with pytest.raises(client.exceptions.NotFoundException):
                client.describe_notifications_for_budget(AccountId=ACCOUNT, BudgetName="gone")
            assert (
                client.describe_budget(AccountId=ACCOUNT, BudgetName="b1")["Budget"]["BudgetLimit"]["Amount"]
                == "100"
            )
    finally:
        server.stop()
