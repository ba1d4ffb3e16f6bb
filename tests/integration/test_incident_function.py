"""IncidentFunction with the adapters its handler builds (``build``: the secret from Secrets Manager,
the incidents, budgets and defaults tables, Organizations, the spoke budget through an assumed
role, ServiceNow over HTTP with urllib3) on moto, and the local ServiceNow stand-in served on
127.0.0.1 by werkzeug. What the unit tests give fakes for, here is real (moto evaluates no trust
policy: the roles are tested against the templates in tests/template/test_incident_template.py)."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from moto import mock_aws
from werkzeug.serving import make_server

from budget_sync.handlers import incidents as handler_module
from budget_sync.handlers.incidents import handler
from budget_sync_local.servicenow import StandIn

pytestmark = pytest.mark.aws

REGION = "us-east-1"
BUDGET = "SpokeAccountBudget"
READ_ROLE = "BudgetSyncIncidentReadRole"
GROUP = "0123456789abcdef0123456789abcdef"
CONTEXT = SimpleNamespace(
    function_name="BudgetSyncIncidents",
    memory_limit_in_mb=256,
    invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:BudgetSyncIncidents",
    aws_request_id="request-1",
)
ACTUAL_80 = {"NotificationType": "ACTUAL", "ComparisonOperator": "GREATER_THAN", "Threshold": 80.0}


@dataclass
class Setup:
    account: str
    instance: StandIn
    budgets: Any  # the spoke account's Budgets client

    def set_alarm(self, state: str) -> None:
        for old in ("ALARM", "OK"):
            with contextlib.suppress(self.budgets.exceptions.NotFoundException):
                self.budgets.delete_notification(
                    AccountId=self.account,
                    BudgetName=BUDGET,
                    Notification={**ACTUAL_80, "NotificationState": old},
                )
        self.budgets.create_notification(
            AccountId=self.account,
            BudgetName=BUDGET,
            Notification={**ACTUAL_80, "NotificationState": state},
            Subscribers=[{"SubscriptionType": "EMAIL", "Address": "finance@example.com"}],
        )


@pytest.fixture
def setup(monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    instance = StandIn()
    server = make_server("127.0.0.1", 0, instance.wsgi(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with mock_aws():
            yield _provision(instance, f"http://127.0.0.1:{server.server_port}", monkeypatch)
    finally:
        server.shutdown()
        handler_module.build.cache_clear()


def _provision(instance: StandIn, url: str, monkeypatch: pytest.MonkeyPatch) -> Setup:
    organizations = boto3.client("organizations", region_name=REGION)
    organizations.create_organization(FeatureSet="ALL")
    root = organizations.list_roots()["Roots"][0]["Id"]
    ou = organizations.create_organizational_unit(ParentId=root, Name="Sandbox")["OrganizationalUnit"]["Id"]
    account = organizations.create_account(AccountName="Sandbox One", Email="one@example.com")[
        "CreateAccountStatus"
    ]["AccountId"]
    organizations.move_account(AccountId=account, SourceParentId=root, DestinationParentId=ou)

    dynamodb = boto3.client("dynamodb", region_name=REGION)
    for table, key in (
        ("BlogBudgetsDynamoDB", "AccountId"),
        ("BlogBudgetsDefaults", "TargetId"),
        ("BudgetSyncIncidents", "CorrelationId"),
    ):
        dynamodb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    dynamodb.put_item(
        TableName="BlogBudgetsDynamoDB",
        Item={"AccountId": {"S": account}, "BudgetValue": {"N": "100"}, "IncidentUrgency": {"N": "2"}},
    )
    dynamodb.put_item(
        TableName="BlogBudgetsDefaults", Item={"TargetId": {"S": ou}, "IncidentAssignmentGroup": {"S": GROUP}}
    )
    secret = boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name="servicenow", SecretString=json.dumps({"username": instance.user, "password": instance.password})
    )["ARN"]

    credentials = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/{READ_ROLE}", RoleSessionName="test"
    )["Credentials"]
    budgets = boto3.client(
        "budgets",
        region_name=REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    budgets.create_budget(
        AccountId=account,
        Budget={
            "BudgetName": BUDGET,
            "BudgetLimit": {"Amount": "100", "Unit": "USD"},
            "TimeUnit": "MONTHLY",
            "BudgetType": "COST",
            "CalculatedSpend": {"ActualSpend": {"Amount": "95", "Unit": "USD"}},
        },
    )
    for name, value in {
        "INCIDENTS_TABLE_NAME": "BudgetSyncIncidents",
        "BUDGETS_TABLE_NAME": "BlogBudgetsDynamoDB",
        "DEFAULTS_TABLE_NAME": "BlogBudgetsDefaults",
        "SERVICENOW_INSTANCE_URL": url,
        "SERVICENOW_SECRET_ARN": secret,
        "SPOKE_ROLE_NAME": READ_ROLE,
        "BUDGET_NAME": BUDGET,
    }.items():
        monkeypatch.setenv(name, value)
    handler_module.build.cache_clear()
    return Setup(account, instance, budgets)


def alert(account: str, message_id: str) -> dict[str, Any]:
    body = {
        "Type": "Notification",
        "TopicArn": f"arn:aws:sns:{REGION}:{account}:alerts",
        "Message": "AWS Budget Notification",
    }
    return {"Records": [{"messageId": message_id, "eventSource": "aws:sqs", "body": json.dumps(body)}]}


def test_given_an_alarm_when_its_alert_arrives_twice_then_one_incident_with_the_accounts_and_ous_settings(
    setup: Setup,
) -> None:
    setup.set_alarm("ALARM")

    first = handler(alert(setup.account, "m1"), CONTEXT)
    second = handler(alert(setup.account, "m2"), CONTEXT)

    assert first == second == {"batchItemFailures": []}
    [incident] = setup.instance.incidents.values()
    assert incident["correlation_id"].startswith(f"{setup.account}/{BUDGET}/")
    assert "Sandbox One" in incident["short_description"]
    assert (incident["urgency"], incident["assignment_group"]) == ("2", GROUP)  # the item's, the OU's
    assert "Actual spend: 95.00 USD" in incident["description"]


def test_given_an_open_incident_when_the_alarm_ends_then_the_schedule_resolves_it(setup: Setup) -> None:
    setup.set_alarm("ALARM")
    handler(alert(setup.account, "m1"), CONTEXT)
    setup.set_alarm("OK")

    summary = handler({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}, CONTEXT)

    assert summary["actions"] == {"resolved": 1}
    [incident] = setup.instance.incidents.values()
    assert incident["state"] == "6"


def test_given_servicenow_down_when_the_alert_arrives_then_it_goes_back_to_the_queue(setup: Setup) -> None:
    setup.set_alarm("ALARM")
    setup.instance.fail_next(100, 503)

    answer = handler(alert(setup.account, "m1"), CONTEXT)

    assert answer == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert setup.instance.incidents == {}
