"""Contract tests of the optional incidents in template-management.yaml (condition IncidentsEnabled)
against the code the incident function runs: off by default, the environment the settings read,
least privilege (the one secret, KMS only through Secrets Manager, the one queue and table),
encryption, and the organisation scope of the queue."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from budget_sync.incidents.config import IncidentFunctionSettings
from budget_sync_local.management_stack import StackRefused, check_rules
from budget_sync_local.templates import MANAGEMENT_TEMPLATE, SPOKE_TEMPLATE, Resolver, load

TEMPLATE = load(MANAGEMENT_TEMPLATE)
RESOURCES = TEMPLATE["Resources"]
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:servicenow-AbCdEf"
KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ON = {
    "ServiceNowSecretArn": SECRET,
    "ServiceNowInstanceUrl": "https://example.service-now.com",
    "OrganizationId": "o-abcdefghij",
}
TOPIC = {"AlarmTopic": "arn:aws:sns:us-east-1:123456789012:budget-sync-alarms"}  # CloudFormation names it
INCIDENT_RESOURCES = {
    logical_id for logical_id, r in RESOURCES.items() if r.get("Condition") == "IncidentsEnabled"
}


def statements(parameters: dict[str, str]) -> dict[str, dict[str, Any]]:
    policy = Resolver(TEMPLATE, parameters, physical_ids=TOPIC).resolve(
        RESOURCES["IncidentRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    )
    return {s["Sid"]: s for s in policy["Statement"] if isinstance(s, dict)}


def test_given_the_defaults_then_no_incident_resource_is_created():
    assert Resolver(TEMPLATE, {}).condition("IncidentsEnabled") is False
    assert {
        "IncidentsTable",
        "IncidentQueue",
        "IncidentDeadLetterQueue",
        "IncidentQueuePolicy",
        "IncidentRole",
        "IncidentLogGroup",
        "IncidentFunction",
        "IncidentErrorsAlarm",
        "IncidentNotDeliveredAlarm",
        "IncidentFailedAlarm",
        "IncidentSweepSkippedAlarm",
    } == INCIDENT_RESOURCES
    assert all(
        TEMPLATE["Outputs"][o].get("Condition") == "IncidentsEnabled"
        for o in ("IncidentQueueArn", "IncidentFunctionName")
    )


def test_given_a_secret_without_an_instance_url_then_cloudformation_refuses_the_stack():
    with pytest.raises(StackRefused, match="ServiceNowInstanceUrl"):
        check_rules(Resolver(TEMPLATE, {**ON, "ServiceNowInstanceUrl": ""}))
    check_rules(Resolver(TEMPLATE, ON))


def test_the_function_environment_is_what_its_settings_read_and_its_handler_exists():
    resolver = Resolver(
        TEMPLATE, {**ON, "IncidentUrgency": "2", "IncidentCaller": "b" * 32}, physical_ids=TOPIC
    )
    properties = resolver.properties("IncidentFunction")
    env = {k: str(v) for k, v in resolver.resolve(properties["Environment"]["Variables"]).items()}

    settings = IncidentFunctionSettings.from_env(env)

    assert settings.secret_arn == SECRET
    assert (settings.stack.urgency, settings.stack.caller) == (2, "b" * 32)
    assert settings.budget_name == "SpokeAccountBudget"
    assert settings.sweep_concurrency == 16
    module, _, name = properties["Handler"].rpartition(".")
    assert callable(getattr(importlib.import_module(module), name))


def test_the_function_has_its_own_role_log_group_and_alarms_and_reports_batch_failures():
    properties = RESOURCES["IncidentFunction"]["Properties"]
    assert properties["Role"] == {"Fn::GetAtt": ["IncidentRole", "Arn"]}
    assert properties["LoggingConfig"]["LogGroup"] == {"Ref": "IncidentLogGroup"}
    alarmed = {
        str(r["Properties"]["Dimensions"][0]["Value"])
        for r in RESOURCES.values()
        if r["Type"] == "AWS::CloudWatch::Alarm" and r.get("Condition") == "IncidentsEnabled"
    }
    assert "{'Ref': 'IncidentFunction'}" in alarmed
    assert "{'Fn::GetAtt': ['IncidentDeadLetterQueue', 'QueueName']}" in alarmed
    alerts = properties["Events"]["Alerts"]["Properties"]
    assert alerts["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert properties["Events"]["Hourly"]["Type"] == "Schedule"


def test_the_role_reads_only_the_one_secret_and_decrypts_only_through_secrets_manager():
    default_key = statements(ON)
    with_key = statements({**ON, "ServiceNowSecretKmsKeyArn": KEY})

    assert default_key["ReadTheServiceNowSecret"]["Resource"] == SECRET
    assert default_key["ReadTheServiceNowSecret"]["Action"] == "secretsmanager:GetSecretValue"
    assert "DecryptTheSecretThroughSecretsManager" not in default_key  # the AWS managed key needs no grant
    decrypt = with_key["DecryptTheSecretThroughSecretsManager"]
    assert (decrypt["Action"], decrypt["Resource"]) == ("kms:Decrypt", KEY)
    assert decrypt["Condition"] == {
        "StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}
    }
    assert with_key["AssumeIncidentReadRole"]["Condition"] == {
        "StringEquals": {"aws:ResourceOrgID": "o-abcdefghij"}
    }
    assert not any(
        s.get("Resource") == "*" and "Action" in s and s["Sid"] not in {"ReadOrganisation", "Tracing"}
        for s in with_key.values()
    )


def test_the_queue_and_table_are_encrypted_and_the_queue_admits_only_the_organisations_sns():
    resolver = Resolver(TEMPLATE, ON)
    assert resolver.properties("IncidentQueue")["SqsManagedSseEnabled"] is True
    assert resolver.properties("IncidentQueue")["RedrivePolicy"]["maxReceiveCount"] == 24
    table = resolver.properties("IncidentsTable")
    assert table["SSESpecification"] == {"SSEEnabled": True}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["KeySchema"] == [{"AttributeName": "CorrelationId", "KeyType": "HASH"}]

    [allow, deny] = resolver.resolve(RESOURCES["IncidentQueuePolicy"]["Properties"]["PolicyDocument"])[
        "Statement"
    ]
    assert allow["Principal"] == {"Service": "sns.amazonaws.com"}
    assert allow["Condition"] == {"StringEquals": {"aws:SourceOrgID": "o-abcdefghij"}}
    assert deny["Effect"] == "Deny"
    named = Resolver(TEMPLATE, {**ON, "OrganizationId": "", "SpokeAccountIds": "111111111111,222222222222"})
    [allow, _] = named.resolve(RESOURCES["IncidentQueuePolicy"]["Properties"]["PolicyDocument"])["Statement"]
    assert list(allow["Condition"]["StringEquals"]) == ["aws:SourceAccount"]  # the SpokeAccountIds list
    assert "222222222222" in str(allow["Condition"]["StringEquals"]["aws:SourceAccount"])


def test_the_spokes_incident_read_role_trusts_the_incident_role_and_may_only_view_the_budget():
    spoke = load(SPOKE_TEMPLATE)
    parameters = {"ManagementAccountId": "210987654321", "OrganizationId": "o-abcdefghij"}
    resolver = Resolver(spoke, {**parameters, "IncidentQueueArn": "arn:aws:sqs:us-east-1:210987654321:q"})
    role = resolver.properties("IncidentReadRole")
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    [policy] = role["Policies"]

    assert (
        trust["Condition"]["ArnLike"]["aws:PrincipalArn"]
        == "arn:aws:iam::210987654321:role/BudgetSyncIncidentRole"
    )
    assert trust["Condition"]["StringEquals"] == {"aws:PrincipalOrgID": "o-abcdefghij"}
    assert [s["Action"] for s in policy["PolicyDocument"]["Statement"]] == ["budgets:ViewBudget"]
    assert resolver.condition("SubscribeIncidentQueue") is False  # SnsTopicMode None: no topic to subscribe
    subscribed = Resolver(
        spoke,
        {**parameters, "IncidentQueueArn": "arn:aws:sqs:us-east-1:210987654321:q", "SnsTopicMode": "Create"},
    )
    assert subscribed.condition("SubscribeIncidentQueue") is True
    subscription = spoke["Resources"]["IncidentSubscription"]["Properties"]
    assert (subscription["Protocol"], subscription["Endpoint"]) == ("sqs", {"Ref": "IncidentQueueArn"})
    assert Resolver(spoke, parameters).condition("IncidentsOn") is False  # off by default
    # the names agree across the two templates
    for name in ("IncidentRoleName", "IncidentReadRoleName"):
        assert spoke["Parameters"][name]["Default"] == TEMPLATE["Parameters"][name]["Default"]
    assert (
        statements(ON)["AssumeIncidentReadRole"]["Resource"]
        == "arn:aws:iam::*:role/BudgetSyncIncidentReadRole"
    )


def test_a_claim_outlives_the_function_and_a_returned_message_outlives_the_claim():
    from budget_sync.incidents.lifecycle import CLAIM_TIMEOUT_S

    timeout = RESOURCES["IncidentFunction"]["Properties"]["Timeout"]
    visibility = RESOURCES["IncidentQueue"]["Properties"]["VisibilityTimeout"]

    # a delivery still opening the incident is never taken over; a message returned to the
    # queue comes back when the claim of a delivery that died can be taken over
    assert timeout < CLAIM_TIMEOUT_S < visibility
    assert visibility >= 6 * timeout  # Lambda's guidance for an SQS event source
