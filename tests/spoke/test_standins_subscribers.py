"""The Budgets notification and subscriber stand-ins behave as the AWS APIs: identity of a
notification, limits (10 notifications per budget, one SNS and 10 email subscribers per
notification), and errors, in process and behind a moto server (make local)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.server import ThreadedMotoServer

from budget_sync_local import standins
from tests.support.spoke_account import REGION

pytestmark = pytest.mark.aws

ACCOUNT = "123456789012"
BUDGET = {
    "BudgetName": "b1",
    "BudgetType": "COST",
    "TimeUnit": "MONTHLY",
    "BudgetLimit": {"Amount": "100", "Unit": "USD"},
}
N80 = {"NotificationType": "ACTUAL", "ComparisonOperator": "GREATER_THAN", "Threshold": 80.0}
A = {"SubscriptionType": "EMAIL", "Address": "a@example.com"}
B = {"SubscriptionType": "EMAIL", "Address": "b@example.com"}


@pytest.fixture
def budgets() -> Iterator[Any]:
    with mock_aws(), standins.installed():
        client = boto3.client("budgets", region_name=REGION)
        client.create_budget(
            AccountId=ACCOUNT,
            Budget=BUDGET,
            NotificationsWithSubscribers=[{"Notification": N80, "Subscribers": [A]}],
        )
        yield client


def code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def subscribers(client: Any, notification: dict[str, Any] = N80) -> list[dict[str, Any]]:
    return list(
        client.describe_subscribers_for_notification(
            AccountId=ACCOUNT, BudgetName="b1", Notification=notification
        )["Subscribers"]
    )


def test_given_a_notification_then_subscribers_are_created_updated_and_deleted(budgets: Any):
    budgets.create_subscriber(AccountId=ACCOUNT, BudgetName="b1", Notification=N80, Subscriber=B)
    assert subscribers(budgets) == [A, B]
    c = {"SubscriptionType": "EMAIL", "Address": "c@example.com"}
    budgets.update_subscriber(
        AccountId=ACCOUNT, BudgetName="b1", Notification=N80, OldSubscriber=B, NewSubscriber=c
    )
    assert subscribers(budgets) == [A, c]
    budgets.delete_subscriber(AccountId=ACCOUNT, BudgetName="b1", Notification=N80, Subscriber=A)
    assert subscribers(budgets) == [c]


def test_a_notification_is_found_by_its_definition_threshold_type_defaulting_to_percentage(budgets: Any):
    same = {**N80, "ThresholdType": "PERCENTAGE", "NotificationState": "ALARM"}
    assert subscribers(budgets, same) == [A]
    with pytest.raises(ClientError) as error:
        subscribers(budgets, {**N80, "Threshold": 81.0})
    assert code(error) == "NotFoundException"


def test_duplicates_are_refused(budgets: Any):
    with pytest.raises(ClientError) as error:
        budgets.create_subscriber(AccountId=ACCOUNT, BudgetName="b1", Notification=N80, Subscriber=A)
    assert code(error) == "DuplicateRecordException"
    with pytest.raises(ClientError) as error:
        budgets.create_notification(AccountId=ACCOUNT, BudgetName="b1", Notification=N80, Subscribers=[B])
    assert code(error) == "DuplicateRecordException"


def test_at_most_ten_email_subscribers_and_one_sns_subscriber(budgets: Any):
    for i in range(9):
        budgets.create_subscriber(
            AccountId=ACCOUNT,
            BudgetName="b1",
            Notification=N80,
            Subscriber={"SubscriptionType": "EMAIL", "Address": f"u{i}@example.com"},
        )
    with pytest.raises(ClientError) as error:
        budgets.create_subscriber(AccountId=ACCOUNT, BudgetName="b1", Notification=N80, Subscriber=B)
    assert code(error) == "CreationLimitExceededException"
    topic = {"SubscriptionType": "SNS", "Address": f"arn:aws:sns:{REGION}:{ACCOUNT}:t1"}
    budgets.create_subscriber(AccountId=ACCOUNT, BudgetName="b1", Notification=N80, Subscriber=topic)
    with pytest.raises(ClientError) as error:
        budgets.create_subscriber(
            AccountId=ACCOUNT,
            BudgetName="b1",
            Notification=N80,
            Subscriber={**topic, "Address": f"arn:aws:sns:{REGION}:{ACCOUNT}:t2"},
        )
    assert code(error) == "CreationLimitExceededException"
    assert len(subscribers(budgets)) == 11


def test_at_most_ten_notifications_per_budget(budgets: Any):
    for threshold in range(1, 10):
        budgets.create_notification(
            AccountId=ACCOUNT,
            BudgetName="b1",
            Notification={**N80, "Threshold": float(threshold)},
            Subscribers=[A],
        )
    with pytest.raises(ClientError) as error:
        budgets.create_notification(
            AccountId=ACCOUNT, BudgetName="b1", Notification={**N80, "Threshold": 99.0}, Subscribers=[A]
        )
    assert code(error) == "CreationLimitExceededException"


def test_a_malformed_address_is_an_invalid_parameter(budgets: Any):
    with pytest.raises(ClientError) as error:
        budgets.create_subscriber(
            AccountId=ACCOUNT,
            BudgetName="b1",
            Notification=N80,
            Subscriber={"SubscriptionType": "EMAIL", "Address": "not an address"},
        )
    assert code(error) == "InvalidParameterException"


def test_update_notification_keeps_the_subscribers_and_missing_ones_are_not_found(budgets: Any):
    n90 = {**N80, "Threshold": 90.0}
    budgets.update_notification(AccountId=ACCOUNT, BudgetName="b1", OldNotification=N80, NewNotification=n90)
    assert subscribers(budgets, n90) == [A]
    for call in (
        lambda: budgets.update_notification(
            AccountId=ACCOUNT, BudgetName="b1", OldNotification=N80, NewNotification=n90
        ),
        lambda: budgets.delete_notification(AccountId=ACCOUNT, BudgetName="b1", Notification=N80),
        lambda: budgets.delete_subscriber(AccountId=ACCOUNT, BudgetName="b1", Notification=n90, Subscriber=B),
        lambda: budgets.create_subscriber(
            AccountId=ACCOUNT, BudgetName="nope", Notification=n90, Subscriber=B
        ),
    ):
        with pytest.raises(ClientError) as error:
            call()
        assert code(error) == "NotFoundException"


def test_the_subscriber_stand_ins_also_serve_a_moto_server_as_make_local_runs_it():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        with standins.installed():
            client = boto3.client("budgets", region_name=REGION, endpoint_url=f"http://{host}:{port}")
            client.create_budget(
                AccountId=ACCOUNT,
                Budget=BUDGET,
                NotificationsWithSubscribers=[{"Notification": N80, "Subscribers": [A]}],
            )
            client.create_subscriber(AccountId=ACCOUNT, BudgetName="b1", Notification=N80, Subscriber=B)
            assert subscribers(client) == [A, B]
    finally:
        server.stop()
