"""Contract tests of the resolver (OU defaults, enrolment) in template-management.yaml
against the code it runs and the events it receives."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from botocore.client import BaseClient

from budget_sync.config import ResolverSettings
from budget_sync.errors import ConfigError
from budget_sync.handlers.resolve import organizations_targets, stack_instance_ready
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
#: The resolver's functions, one per event source, and their roles.
FUNCTIONS = {
    "ResolverFunction": "ResolverRole",
    "DefaultsResolverFunction": "DefaultsResolverRole",
    "ItemRemovedResolverFunction": "ItemRemovedResolverRole",
    "OrgEventsResolverFunction": "OrgEventsResolverRole",
    "StackInstanceResolverFunction": "StackInstanceResolverRole",
}
SCHEDULED = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
#: What Lambda itself does with a role: poll its stream, send failed batches, write logs.
SERVICE_ACTIONS = {
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
    "sqs:SendMessage",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
}


def role_statements(
    parameters: dict[str, str] | None = None, role: str = "ResolverRole"
) -> list[dict[str, Any]]:
    policy = Resolver(TEMPLATE, parameters or {}).resolve(
        RESOURCES[role]["Properties"]["Policies"][0]["PolicyDocument"]
    )
    statements = [s for s in policy["Statement"] if s != {"Ref": "AWS::NoValue"}]
    return statements


def _events(tree: Tree) -> dict[str, list[dict[str, Any]]]:
    """Every kind of event each function's source sends it: the organisation, an OU and the
    root (a default's change), an account (a removed item, a move, a stack instance)."""
    removed = {"eventSource": "aws:dynamodb", "eventName": "REMOVE", "eventID": "1"}
    return {
        "ResolverFunction": [SCHEDULED],
        "DefaultsResolverFunction": [
            {"Records": [{**removed, "dynamodb": {"Keys": {"TargetId": {"S": tree.sandbox}}}}]},
            {"Records": [{**removed, "dynamodb": {"Keys": {"TargetId": {"S": tree.root}}}}]},
        ],
        "ItemRemovedResolverFunction": [
            {"Records": [{**removed, "dynamodb": {"Keys": {"AccountId": {"S": SANDBOX_ACCOUNTS[1]}}}}]}
        ],
        "OrgEventsResolverFunction": [
            standins.organizations.cloudtrail_event(
                "123456789012",
                "MoveAccount",
                "AWS API Call via CloudTrail",
                {"requestParameters": {"accountId": SANDBOX_ACCOUNTS[0]}},
            ),
            standins.organizations.cloudtrail_event(
                "123456789012", "AcceptHandshake", "AWS API Call via CloudTrail", {}
            ),
        ],
        "StackInstanceResolverFunction": [_stack_instance_event(SANDBOX_ACCOUNTS[0])],
    }


def _stack_instance_event(account: str) -> dict[str, Any]:
    return {
        "source": "aws.cloudformation",
        "detail-type": "CloudFormation StackSet StackInstance Status Change",
        "detail": {
            "stack-set-arn": "arn:aws:cloudformation:us-east-1:123456789012:stackset/budget-sync-spoke:1a2b",
            "stack-id": f"arn:aws:cloudformation:us-east-1:{account}:stack/StackSet-budget-sync-spoke-1/2",
            "action": "CREATE",
            "status-details": {"status": "CURRENT", "detailed-status": "SUCCEEDED"},
        },
    }


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_resolver_role_allows_exactly_the_calls_its_function_makes(
    tree: Tree, monkeypatch: pytest.MonkeyPatch, function: str
):
    # GIVEN defaults, inherited items, and a spoke StackSet with no stack instance yet
    tree.set_default(tree.sandbox, "100")
    tree.set_default(tree.production, "5000")
    cloudformation = tree.management.client("cloudformation")
    cloudformation.create_stack_set(StackSetName="budget-sync-spoke", TemplateBody='{"Resources": {}}')
    tree.resolve(SCHEDULED)  # every account inherits (no StackSet: every spoke counts as there)
    tree.delete_default(tree.sandbox)
    recorder = _CallRecorder()
    monkeypatch.setattr(BaseClient, "_make_api_call", recorder(BaseClient._make_api_call))

    # WHEN the function runs every kind of event its source sends
    for event in _events(tree)[function]:
        tree.resolve(event, STACK_SET, function=function)

    # THEN its role allows exactly what it called, and nothing of Organizations but List/Describe
    allowed = _actions(role_statements(STACK_SET, FUNCTIONS[function]))
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
    # and only a stream's function may read a stream and park a failed batch
    streams = {a for a in allowed if a.startswith(("dynamodb:GetRecords", "sqs:"))}
    assert bool(streams) == (function in ("DefaultsResolverFunction", "ItemRemovedResolverFunction"))


def test_the_resolver_writes_inherited_items_and_deletes_them(tree: Tree, monkeypatch: pytest.MonkeyPatch):
    tree.set_default(tree.sandbox, "100")
    recorder = _CallRecorder()
    monkeypatch.setattr(BaseClient, "_make_api_call", recorder(BaseClient._make_api_call))
    tree.resolve(SCHEDULED)
    tree.delete_default(tree.sandbox)
    tree.resolve(SCHEDULED)
    assert {"dynamodb:UpdateItem", "dynamodb:DeleteItem"} <= recorder.management
    assert tree.item(SANDBOX_ACCOUNTS[0]) is None


@pytest.mark.parametrize("role", sorted(set(FUNCTIONS.values()) - {"StackInstanceResolverRole"}))
def test_the_role_scopes_every_statement_and_the_stack_set_read_to_the_named_stack_set(role: str):
    statements = {s["Sid"]: s for s in role_statements(STACK_SET, role)}
    assert statements["ReadSpokeStackInstances"]["Action"] == "cloudformation:ListStackInstances"
    assert statements["ReadSpokeStackInstances"]["Resource"] == (
        "arn:aws:cloudformation:*:123456789012:stackset/budget-sync-spoke:*"
    )
    assert "ReadSpokeStackInstances" not in {s["Sid"] for s in role_statements(role=role)}
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


@pytest.mark.aws  # moto: EventBridge's matcher is moto's (standins.pattern_matches), seconds of import
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
    assert organizations_targets(EventBridgeEvent(created)) == ({"555555555555"}, False)
    assert organizations_targets(EventBridgeEvent(moved)) == ({"555555555555"}, False)
    assert RESOURCES["OrganizationsEventsRule"]["Properties"]["Targets"][0]["Arn"] == {
        "Fn::GetAtt": ["OrgEventsResolverFunction", "Arn"]
    }
    assert RESOURCES["StackInstanceRule"]["Properties"]["Targets"][0]["Arn"] == {
        "Fn::GetAtt": ["StackInstanceResolverFunction", "Arn"]
    }

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
    handlers = {
        "ResolverFunction": "schedule_handler",
        "DefaultsResolverFunction": "defaults_handler",
        "ItemRemovedResolverFunction": "item_removed_handler",
        "OrgEventsResolverFunction": "organizations_handler",
        "StackInstanceResolverFunction": "stack_instance_handler",
    }
    for function, handler in handlers.items():
        assert function_spec(function, STACK_SET).handler == f"budget_sync.handlers.resolve.{handler}"
        assert (
            function_spec(function, STACK_SET).environment
            == function_spec("ResolverFunction", STACK_SET).environment
        )
    spec = function_spec("ResolverFunction", STACK_SET)
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
    events = {
        name: event
        for function in FUNCTIONS
        for name, event in RESOURCES[function]["Properties"].get("Events", {}).items()
    }
    assert set(RESOURCES["ItemRemovedResolverFunction"]["Properties"]["Events"]) == {"ItemRemoved"}
    assert set(RESOURCES["DefaultsResolverFunction"]["Properties"]["Events"]) == {"DefaultsStream"}
    assert set(RESOURCES["ResolverFunction"]["Properties"]["Events"]) == {"FullResolution"}
    assert events["ItemRemoved"]["Properties"]["Stream"] == {"Fn::GetAtt": ["BudgetsTable", "StreamArn"]}
    assert events["ItemRemoved"]["Properties"]["FilterCriteria"]["Filters"] == [
        {"Pattern": '{"eventName": ["REMOVE"]}'}
    ]
    assert events["DefaultsStream"]["Properties"]["Stream"] == {"Fn::GetAtt": ["DefaultsTable", "StreamArn"]}
    assert events["FullResolution"]["Properties"]["Schedule"] == {"Ref": "ResolveSchedule"}
    assert Decimal(Resolver(TEMPLATE).parameter("OrganizationsMaxRps")) == 4


def test_each_resolver_function_has_its_own_role_log_group_errors_alarm_and_handler():
    alarmed = {
        a["Properties"]["Dimensions"][0]["Value"].get("Ref")
        for a in RESOURCES.values()
        if a["Type"] == "AWS::CloudWatch::Alarm" and a["Properties"]["MetricName"] == "Errors"
    }
    properties = {f: RESOURCES[f]["Properties"] for f in FUNCTIONS}
    assert set(FUNCTIONS) <= alarmed
    assert [p["Role"] for p in properties.values()] == [
        {"Fn::GetAtt": [r, "Arn"]} for r in FUNCTIONS.values()
    ]
    assert len({p["LoggingConfig"]["LogGroup"]["Ref"] for p in properties.values()}) == len(FUNCTIONS)
    assert len({p["Handler"] for p in properties.values()}) == len(FUNCTIONS)
    # the StackSet's function exists with its StackSet only, and so do its role, log group and alarm
    assert {k for k, v in RESOURCES.items() if v.get("Condition") == "HasSpokeStackSet"} >= {
        "StackInstanceResolverFunction",
        "StackInstanceResolverRole",
        "StackInstanceResolverLogGroup",
        "StackInstanceResolverErrorsAlarm",
    }
