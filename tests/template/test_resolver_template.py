"""Contract tests of the resolver (OU defaults, enrolment) in template-management.yaml
against the code it runs and the events it receives."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from botocore.client import BaseClient

from budget_sync.errors import ConfigError
from budget_sync.handlers.resolve import stack_instance_ready, targets_of
from budget_sync.resolve import ResolverSettings
from budget_sync_local.lambda_runtime import function_spec
from budget_sync_local.templates import MANAGEMENT_TEMPLATE, Resolver, load
from tests.support.lazy import lazy
from tests.support.template_calls import _actions, _CallRecorder
from tests.support.tree import SANDBOX_ACCOUNTS, Tree

if TYPE_CHECKING:
    from budget_sync_local import standins
else:  # moto: imported by the first test that uses it, not at collection (make unit)
    standins = lazy("budget_sync_local.standins")

TEMPLATE = load(MANAGEMENT_TEMPLATE)
RESOURCES = TEMPLATE["Resources"]
STACK_SET = {"SpokeStackSetName": "budget-sync-spoke"}
#: What Lambda itself does with the role: poll the two streams, send failed batches, write logs.
SERVICE_ACTIONS = {
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
    "sqs:SendMessage",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
}


def role_statements(parameters: dict[str, str] | None = None) -> list[dict[str, Any]]:
    policy = Resolver(TEMPLATE, parameters or {}).resolve(
        RESOURCES["ResolverRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    )
    statements = [s for s in policy["Statement"] if s != {"Ref": "AWS::NoValue"}]
    return statements


def test_the_resolver_role_allows_exactly_the_calls_the_resolver_makes(
    tree: Tree, monkeypatch: pytest.MonkeyPatch
):
    # GIVEN defaults, an inherited item whose default goes away, and a new account with no spoke stack
    tree.set_default(tree.sandbox, "100")
    tree.set_default(tree.production, "5000")
    cloudformation = tree.management.client("cloudformation")
    cloudformation.create_stack_set(StackSetName="budget-sync-spoke", TemplateBody='{"Resources": {}}')
    tree.resolve({"source": "aws.events"})  # WAITING everywhere (no stack instance yet)
    tree.resolve({"source": "aws.events"})
    recorder = _CallRecorder()
    monkeypatch.setattr(BaseClient, "_make_api_call", recorder(BaseClient._make_api_call))

    # WHEN the function runs every kind of resolution: organisation, OU, account
    tree.resolve({"source": "aws.events"}, STACK_SET)
    tree.resolve(
        {"Records": [{"eventName": "REMOVE", "dynamodb": {"Keys": {"TargetId": {"S": tree.sandbox}}}}]},
        STACK_SET,
    )
    tree.resolve(
        standins.organizations.cloudtrail_event(
            "123456789012",
            "MoveAccount",
            "AWS API Call via CloudTrail",
            {"requestParameters": {"accountId": SANDBOX_ACCOUNTS[0]}},
        ),
        STACK_SET,
    )

    # THEN its role allows exactly what it called, and nothing of Organizations but List/Describe
    allowed = _actions(role_statements(STACK_SET))
    assert recorder.management <= allowed
    # (the inherited writes, each a transaction: its item and a check of its default)
    inherited_writes = {"dynamodb:DeleteItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"}
    assert allowed - recorder.management <= SERVICE_ACTIONS | inherited_writes
    assert {a for a in allowed if a.startswith("organizations:")} == {
        a for a in recorder.management if a.startswith("organizations:")
    }
    assert all(
        a.split(":")[1].startswith(("List", "Describe")) for a in allowed if a.startswith("organizations:")
    )


def test_the_resolver_writes_inherited_items_and_deletes_them(tree: Tree, monkeypatch: pytest.MonkeyPatch):
    tree.set_default(tree.sandbox, "100")
    recorder = _CallRecorder()
    monkeypatch.setattr(BaseClient, "_make_api_call", recorder(BaseClient._make_api_call))
    tree.resolve({"source": "aws.events"})
    tree.delete_default(tree.sandbox)
    tree.resolve({"source": "aws.events"})
    assert {"dynamodb:UpdateItem", "dynamodb:DeleteItem"} <= recorder.management
    assert tree.item(SANDBOX_ACCOUNTS[0]) is None


def test_the_role_scopes_every_statement_and_the_stack_set_read_to_the_named_stack_set():
    statements = {s["Sid"]: s for s in role_statements(STACK_SET)}
    assert statements["ReadSpokeStackInstances"]["Action"] == "cloudformation:ListStackInstances"
    assert statements["ReadSpokeStackInstances"]["Resource"] == (
        "arn:aws:cloudformation:*:123456789012:stackset/budget-sync-spoke:*"
    )
    assert "ReadSpokeStackInstances" not in {s["Sid"] for s in role_statements()}
    wildcard = {sid for sid, s in statements.items() if s["Resource"] == "*"}
    assert wildcard == {"ReadOrganisationRoot"}  # ListRoots, DescribeOrganization: no resource type
    assert statements["WriteInheritedItems"]["Resource"].endswith(":table/BlogBudgetsDynamoDB")
    assert statements["ReadDefaults"]["Resource"].endswith(":table/BlogBudgetsDefaults")
    assert not any(
        a.startswith(("organizations:Create", "organizations:Move"))
        for a in _actions(list(statements.values()))
    )


def test_the_defaults_table_is_kept_encrypted_streamed_and_keyed_by_target_id():
    table = RESOURCES["DefaultsTable"]
    assert table["DeletionPolicy"] == "Retain"
    properties = Resolver(TEMPLATE).properties("DefaultsTable")
    assert properties["TableName"] == "BlogBudgetsDefaults"
    assert properties["KeySchema"] == [{"AttributeName": "TargetId", "KeyType": "HASH"}]
    assert properties["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert properties["SSESpecification"] == {"SSEEnabled": True}
    assert properties["DeletionProtectionEnabled"] is True


def test_the_rules_match_the_events_the_handler_understands():
    resolver = Resolver(TEMPLATE, STACK_SET)
    organisations = resolver.resolve(RESOURCES["OrganizationsEventsRule"]["Properties"]["EventPattern"])
    created = standins.organizations.cloudtrail_event(
        "123456789012",
        "CreateAccountResult",
        "AWS Service Event via CloudTrail",
        {"serviceEventDetails": {"createAccountStatus": {"state": "SUCCEEDED", "accountId": "555555555555"}}},
    )
    moved = standins.organizations.cloudtrail_event(
        "123456789012",
        "MoveAccount",
        "AWS API Call via CloudTrail",
        {"requestParameters": {"accountId": "555555555555"}},
    )
    other = standins.organizations.cloudtrail_event(
        "123456789012", "CreatePolicy", "AWS API Call via CloudTrail", {}
    )
    assert standins.pattern_matches(organisations, created)
    assert standins.pattern_matches(organisations, moved)
    assert not standins.pattern_matches(organisations, other)
    assert targets_of(created) == (set(), {"555555555555"}, False)
    assert targets_of(moved) == (set(), {"555555555555"}, False)

    instances = resolver.resolve(RESOURCES["StackInstanceRule"]["Properties"]["EventPattern"])
    event = {
        "source": "aws.cloudformation",
        "detail-type": "CloudFormation StackSet StackInstance Status Change",
        "detail": {
            "stack-set-arn": "arn:aws:cloudformation:us-east-1:123456789012:stackset/budget-sync-spoke:1a2b",
            "stack-id": "arn:aws:cloudformation:us-east-1:555555555555:stack/StackSet-budget-sync-spoke-1/2",
            "action": "CREATE",
            "status-details": {"status": "CURRENT", "detailed-status": "SUCCEEDED"},
        },
    }
    assert standins.pattern_matches(instances, event)
    assert stack_instance_ready(event, "budget-sync-spoke") == "555555555555"
    failed = {**event, "detail": {**event["detail"], "status-details": {"detailed-status": "FAILED"}}}
    assert not standins.pattern_matches(instances, failed)
    assert stack_instance_ready(failed, "budget-sync-spoke") is None
    assert RESOURCES["StackInstanceRule"]["Condition"] == "HasSpokeStackSet"


def test_the_resolver_reads_exactly_its_environment_and_names_a_missing_variable():
    spec = function_spec("ResolverFunction", STACK_SET)
    assert spec.handler == "budget_sync.handlers.resolve.handler"
    assert spec.code_uri == function_spec().code_uri
    settings = ResolverSettings.from_env({**spec.environment, "AWS_REGION": "eu-west-1"})
    assert (settings.budgets_table_name, settings.defaults_table_name) == (
        "BlogBudgetsDynamoDB",
        "BlogBudgetsDefaults",
    )
    assert (settings.stack_set_name, settings.spoke_region, settings.call_as) == (
        "budget-sync-spoke",
        "eu-west-1",
        "SELF",
    )
    assert settings.max_rps == 4.0
    for required in ("BUDGETS_TABLE_NAME", "DEFAULTS_TABLE_NAME", "STATUS_TABLE_NAME"):
        with pytest.raises(ConfigError, match=required):
            ResolverSettings.from_env({k: v for k, v in spec.environment.items() if k != required})
    with pytest.raises(ConfigError, match="STACKSET_CALL_AS"):
        ResolverSettings.from_env({**spec.environment, "AWS_REGION": "eu-west-1", "STACKSET_CALL_AS": "ROOT"})


def test_the_item_removed_mapping_only_passes_remove_records():
    events = RESOURCES["ResolverFunction"]["Properties"]["Events"]
    assert events["ItemRemoved"]["Properties"]["Stream"] == {"Fn::GetAtt": ["BudgetsTable", "StreamArn"]}
    assert events["ItemRemoved"]["Properties"]["FilterCriteria"]["Filters"] == [
        {"Pattern": '{"eventName": ["REMOVE"]}'}
    ]
    assert events["DefaultsStream"]["Properties"]["Stream"] == {"Fn::GetAtt": ["DefaultsTable", "StreamArn"]}
    assert events["FullResolution"]["Properties"]["Schedule"] == {"Ref": "ResolveSchedule"}
    assert Decimal(Resolver(TEMPLATE).parameter("OrganizationsMaxRps")) == 4
