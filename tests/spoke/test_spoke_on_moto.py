"""template-spoke.yaml deployed on moto (spoke_stack), the rule's pattern against real-shaped
Parameter Store Change events, and the Automation document's own steps run against moto.

moto lacks UpdateBudget, the Parameter Store Change event and StartAutomationExecution:
budget_sync_local.standins adds them (see its docstring); nothing else is faked here."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError

from budget_sync_local import standins
from budget_sync_local.spoke_stack import SpokeStack
from tests.support.spoke_account import (
    MANAGEMENT,
    REGION,
    SPOKE,
    Deploy,
    Spoke,
    _actions,
    _role,
    _statements,
    assume,
    session_in,
)

# every test: moto or the local organisation (make unit does not import this module)
pytestmark = pytest.mark.aws

EXPECTED_NOTIFICATIONS = [
    ("ACTUAL", 80.0),
    ("ACTUAL", 100.0),
    ("FORECASTED", 100.0),
]


# -- the spoke role ------------------------------------------------------------------------


def test_given_defaults_then_the_spoke_role_trusts_exactly_the_function_and_reconciler_roles(spoke: Spoke):
    trust, _ = _role(spoke, "BlogBudgetsSpokeRole")
    (statement,) = _statements(trust)
    assert statement["Principal"] == {"AWS": f"arn:aws:iam::{MANAGEMENT}:root"}
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Condition"] == {
        "ArnLike": {
            "aws:PrincipalArn": [
                f"arn:aws:iam::{MANAGEMENT}:role/BlogBudgetsLambdaRole",
                f"arn:aws:iam::{MANAGEMENT}:role/BlogBudgetsReconcilerRole",
            ]
        }
    }


def test_given_an_organisation_and_operator_roles_then_only_the_read_role_trusts_the_operators(
    deploy_spoke: Deploy,
):
    spoke = deploy_spoke(OrganizationId="o-abcdefghij", OperatorRoleNames="FinanceOps,PlatformAdmin")
    trust, _ = _role(spoke, "BlogBudgetsSpokeRole")
    (statement,) = _statements(trust)
    assert statement["Condition"]["StringEquals"] == {"aws:PrincipalOrgID": "o-abcdefghij"}
    assert statement["Condition"]["ArnLike"]["aws:PrincipalArn"] == [  # the writers: functions only
        f"arn:aws:iam::{MANAGEMENT}:role/BlogBudgetsLambdaRole",
        f"arn:aws:iam::{MANAGEMENT}:role/BlogBudgetsReconcilerRole",
    ]
    read_trust, _ = _role(spoke, "BlogBudgetsSpokeReadRole")
    (read,) = _statements(read_trust)
    assert read["Principal"] == {"AWS": f"arn:aws:iam::{MANAGEMENT}:root"}
    assert read["Condition"]["StringEquals"] == {"aws:PrincipalOrgID": "o-abcdefghij"}
    assert read["Condition"]["ArnLike"]["aws:PrincipalArn"] == [
        "arn:*:iam::*:role/FinanceOps",  # the Principal pins the management account
        "arn:*:iam::*:role/PlatformAdmin",
        "arn:*:iam::*:role/*/FinanceOps",  # the same names under any IAM path
        "arn:*:iam::*:role/*/PlatformAdmin",
    ]


def test_the_spoke_role_may_only_write_and_read_its_parameter_and_view_its_budget(spoke: Spoke):
    _, statements = _role(spoke, "BlogBudgetsSpokeRole")
    allowed = {(action, s["Resource"]) for s in statements for action in _actions(s)}
    assert all(s["Effect"] == "Allow" for s in statements)
    assert allowed == {
        ("ssm:PutParameter", f"arn:aws:ssm:{REGION}:{SPOKE}:parameter/BlogBudgets/CostThreshold"),
        ("ssm:GetParameter", f"arn:aws:ssm:{REGION}:{SPOKE}:parameter/BlogBudgets/CostThreshold"),
        ("ssm:PutParameter", f"arn:aws:ssm:{REGION}:{SPOKE}:parameter/BlogBudgets/AlertSettings"),
        ("ssm:GetParameter", f"arn:aws:ssm:{REGION}:{SPOKE}:parameter/BlogBudgets/AlertSettings"),
        # the reconciler compares the budget's alerts with the stack's defaults: read only
        ("ssm:GetParameter", f"arn:aws:ssm:{REGION}:{SPOKE}:parameter/BlogBudgets/AlertDefaults"),
        ("budgets:ViewBudget", f"arn:aws:budgets::{SPOKE}:budget/SpokeAccountBudget"),
    }
    assert spoke.stack.spoke_role_arn == f"arn:aws:iam::{SPOKE}:role/BlogBudgetsSpokeRole"


def test_the_automation_role_is_scoped_to_the_document_the_parameter_the_budget_and_itself(spoke: Spoke):
    trust, statements = _role(spoke, "BlogBudgetsAutomationRole")
    (assume_statement,) = _statements(trust)
    assert set(assume_statement["Principal"]["Service"]) == {"ssm.amazonaws.com", "events.amazonaws.com"}
    assert assume_statement["Condition"] == {"StringEquals": {"aws:SourceAccount": SPOKE}}
    by_sid = {s["Sid"]: s for s in statements}
    assert {a for s in statements for a in _actions(s)} == {
        "ssm:StartAutomationExecution",
        "iam:PassRole",
        "ssm:GetParameter",
        "ssm:GetParameters",
        "budgets:ViewBudget",
        "budgets:ModifyBudget",
        "events:PutEvents",
    }
    assert all("*" not in s["Resource"].split(":")[4] for s in statements), "no wildcard account"
    report = by_sid["ReportTheOutcome"]
    assert report["Resource"] == f"arn:aws:events:{spoke.stack.region}:{SPOKE}:event-bus/default"
    assert report["Condition"] == {"StringEquals": {"events:source": "budget-sync.spoke"}}
    pass_role = by_sid["PassItselfToAutomation"]
    assert pass_role["Resource"] == spoke.stack.automation_role_arn
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "ssm.amazonaws.com"}}
    assert (
        by_sid["ReadAndWriteTheBudget"]["Resource"] == f"arn:aws:budgets::{SPOKE}:budget/SpokeAccountBudget"
    )
    alert_reads = [by_sid[sid] for sid in ("ReadTheAlertSettings", "ReadTheAlertDefaults")]
    assert all(_actions(s) == {"ssm:GetParameters"} for s in alert_reads)  # one call reads both
    assert {s["Resource"] for s in alert_reads} == {
        f"arn:aws:ssm:{REGION}:{SPOKE}:parameter/BlogBudgets/AlertSettings",
        f"arn:aws:ssm:{REGION}:{SPOKE}:parameter/BlogBudgets/AlertDefaults",
    }


# -- the rule ------------------------------------------------------------------------------


@pytest.mark.parametrize("operation", ["Create", "Update"])
def test_the_rules_pattern_matches_create_and_update_of_the_budget_parameter(spoke: Spoke, operation: str):
    event = standins.parameter_store_change_event(SPOKE, REGION, "/BlogBudgets/CostThreshold", operation)
    assert standins.pattern_matches(spoke.stack.event_pattern, event)
    assert spoke.stack.matches(event)


@pytest.mark.parametrize(
    ("name", "operation"),
    [
        ("/BlogBudgets/CostThreshold", "Delete"),
        ("/BlogBudgets/Other", "Update"),
        ("/BlogBudgets/CostThreshold/x", "Update"),
        ("BlogBudgets/CostThreshold", "Create"),
    ],
)
def test_the_rules_pattern_does_not_match_a_delete_or_another_parameter(
    spoke: Spoke, name: str, operation: str
):
    event = standins.parameter_store_change_event(SPOKE, REGION, name, operation)
    assert not standins.pattern_matches(spoke.stack.event_pattern, event)
    assert spoke.stack.handle(event, assume) is None


def test_an_event_of_another_account_or_region_does_not_reach_the_rule(spoke: Spoke):
    other_account = standins.parameter_store_change_event(
        "222222222222", REGION, "/BlogBudgets/CostThreshold", "Update"
    )
    other_region = standins.parameter_store_change_event(
        SPOKE, "eu-west-1", "/BlogBudgets/CostThreshold", "Update"
    )
    assert standins.pattern_matches(spoke.stack.event_pattern, other_account)  # the pattern alone would
    assert not spoke.stack.matches(other_account)
    assert not spoke.stack.matches(other_region)


def test_the_rule_targets_the_documents_default_version_with_its_role_retries_and_an_encrypted_dlq(
    spoke: Spoke,
):
    stack = spoke.stack
    assert stack.rule_name == "BlogBudgetsSSMTrigger"
    assert (
        stack.target_arn
        == f"arn:aws:ssm:{REGION}:{SPOKE}:automation-definition/BlogBudgetsAutomationDoc:$DEFAULT"
    )
    events = spoke.session.client("events")
    (target,) = events.list_targets_by_rule(Rule=stack.rule_name)["Targets"]
    assert target["RoleArn"] == stack.automation_role_arn
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    queue_url = stack.dead_letter_queue_url
    attributes = spoke.session.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])
    assert target["DeadLetterConfig"]["Arn"] == attributes["Attributes"]["QueueArn"]
    assert attributes["Attributes"]["SqsManagedSseEnabled"] == "true"
    assert json.loads(target["Input"]) == {
        "AutomationAssumeRole": [stack.automation_role_arn],
        "ParameterName": ["/BlogBudgets/CostThreshold"],
        "AlertParameterName": ["/BlogBudgets/AlertSettings"],
        "AlertDefaultsParameterName": ["/BlogBudgets/AlertDefaults"],
        "BudgetName": ["SpokeAccountBudget"],
        "AlertEmails": ["finance@example.com,owner@example.com,"],
        "ActualThresholds": ["80,100"],
        "ForecastedThreshold": ["100"],
        "SnsTopicArn": [""],
    }
    assert set(stack.target_input) == set(stack.document_content["parameters"])


def test_a_real_parameter_write_produces_an_event_that_the_rule_matches(spoke: Spoke):
    spoke.put("1250.50")
    (event,) = spoke.events
    assert event["source"] == "aws.ssm"
    assert event["detail-type"] == "Parameter Store Change"
    assert event["resources"] == [f"arn:aws:ssm:{REGION}:{SPOKE}:parameter/BlogBudgets/CostThreshold"]
    assert event["detail"]["operation"] == "Update"
    assert spoke.stack.matches(event)


# -- the Automation document, run against moto ---------------------------------------------


def _customise(spoke: Spoke) -> dict[str, Any]:
    """A budget someone edited by hand: cost types, filters and time period not the defaults."""
    budget = spoke.budget()
    custom = {k: v for k, v in budget.items() if k not in ("CalculatedSpend", "LastUpdatedTime")}
    custom["CostTypes"] = {
        **budget["CostTypes"],
        "IncludeTax": False,
        "IncludeCredit": False,
        "UseAmortized": True,
    }
    custom["CostFilters"] = {"Region": ["us-east-1", "eu-west-1"]}
    custom["TimePeriod"] = {
        "Start": datetime(2026, 1, 1, tzinfo=UTC),
        "End": datetime(2030, 12, 31, tzinfo=UTC),
    }
    spoke.session.client("budgets").update_budget(AccountId=SPOKE, NewBudget=custom)
    return spoke.budget()


def _without(budget: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in budget.items() if k not in keys}


def test_given_1250_50_when_the_document_runs_then_only_the_limit_changes(spoke: Spoke):
    before = _customise(spoke)
    notifications_before = spoke.notifications()

    spoke.put("1250.50")
    (result,) = spoke.deliver()

    assert result is not None
    assert result.status == "Success", result.failure_message
    assert result.outputs == {
        "UpdateBudgetLimit.OldLimit": "1000",
        "UpdateBudgetLimit.NewLimit": "1250.5",
        "UpdateBudgetLimit.Action": "Updated",
        "ReconcileAlerts.Action": "Unchanged",  # the budget already has the stack's alerts
        "ReconcileAlerts.Calls": "0",
        "ReconcileAlerts.Applied": '{"actual":["80","100"],"emails":["finance@example.com",'
        '"owner@example.com"],"forecasted":"100"}',
    }
    after = spoke.budget()
    assert Decimal(after["BudgetLimit"]["Amount"]) == Decimal("1250.5")
    assert after["BudgetLimit"]["Unit"] == "USD"
    assert _without(after, "BudgetLimit", "LastUpdatedTime") == _without(
        before, "BudgetLimit", "LastUpdatedTime"
    )
    assert after["CostFilters"] == {"Region": ["us-east-1", "eu-west-1"]}
    assert after["CostTypes"]["IncludeTax"] is False
    assert spoke.notifications() == notifications_before


def test_given_the_same_value_again_then_the_budget_is_not_written(spoke: Spoke):
    spoke.put("1000")
    (result,) = spoke.deliver()
    assert result is not None
    assert result.outputs["UpdateBudgetLimit.Action"] == "Unchanged"


def test_given_the_budget_was_deleted_by_hand_then_it_is_recreated_with_the_templates_notifications(
    spoke: Spoke,
):
    created_by_the_stack = spoke.notifications()
    assert [
        (n["NotificationType"], n["Threshold"]) for n, _ in created_by_the_stack
    ] == EXPECTED_NOTIFICATIONS
    spoke.session.client("budgets").delete_budget(AccountId=SPOKE, BudgetName="SpokeAccountBudget")

    spoke.put("750")
    (result,) = spoke.deliver()

    assert result is not None
    assert result.status == "Success", result.failure_message
    assert result.outputs["UpdateBudgetLimit.Action"] == "Created"
    budget = spoke.budget()
    assert (budget["BudgetType"], budget["TimeUnit"], budget["BudgetLimit"]) == (
        "COST",
        "MONTHLY",
        {"Amount": "750", "Unit": "USD"},
    )
    assert spoke.notifications() == created_by_the_stack


def test_given_an_sns_topic_then_a_recreated_budget_publishes_to_it_as_well(deploy_spoke: Deploy):
    spoke = deploy_spoke(SnsTopicMode="Create", ActualThreshold2="")
    topic = spoke.stack.alert_topic_arn
    assert topic is not None
    assert topic.startswith(f"arn:aws:sns:{REGION}:{SPOKE}:")
    original = spoke.notifications()
    assert all({"SubscriptionType": "SNS", "Address": topic} in subscribers for _, subscribers in original)
    spoke.session.client("budgets").delete_budget(AccountId=SPOKE, BudgetName="SpokeAccountBudget")

    spoke.put("900")
    spoke.deliver()

    assert spoke.notifications() == original


def test_given_an_invalid_value_then_the_step_fails_naming_it_and_the_budget_is_untouched(spoke: Spoke):
    before = spoke.budget()
    spoke.put("0")  # the parameter's pattern lets 0 through; the document does not

    (result,) = spoke.deliver()

    assert result is not None
    assert result.status == "Failed"
    assert result.steps == ("UpdateBudgetLimit",)
    assert result.failure_message is not None
    assert "ValueError" in result.failure_message
    assert "'0'" in result.failure_message
    assert "greater than 0" in result.failure_message
    assert spoke.budget() == before


def test_a_value_the_parameter_refuses_never_reaches_the_document(spoke: Spoke):
    with pytest.raises(ClientError) as error:
        spoke.put("12.345")
    assert error.value.response["Error"]["Code"] == "ParameterPatternMismatchException"
    assert spoke.events == []


def test_automation_refuses_to_start_with_a_parameter_outside_its_allowed_pattern(spoke: Spoke):
    parameters = {**spoke.stack.target_input, "BudgetName": ["bad:name"]}
    with pytest.raises(standins.AutomationParameterError, match="BudgetName"):
        standins.run_automation(
            spoke.stack.document_content, parameters, assume(spoke.stack.automation_role_arn)
        )


def test_the_document_runs_only_as_its_role_in_its_own_account(deploy_spoke: Deploy):
    first = deploy_spoke(SPOKE)
    second = deploy_spoke("222222222222")
    first.put("300")
    second.put("400")

    # every event so far: the second stack's three Creates (limit, alert settings, alert
    # defaults), then both writes
    results = first.deliver()

    assert [r.status for r in results if r is not None] == ["Success"]
    assert len(results) == 5
    assert Decimal(first.budget()["BudgetLimit"]["Amount"]) == 300
    assert Decimal(second.budget()["BudgetLimit"]["Amount"]) == 1000


def test_without_the_spoke_stack_the_management_account_cannot_assume_the_spoke_role(moto_with_standins: Any):
    import boto3

    sts = boto3.client("sts", region_name=REGION)
    with pytest.raises(ClientError) as error:
        sts.assume_role(
            RoleArn=f"arn:aws:iam::{SPOKE}:role/BlogBudgetsSpokeRole", RoleSessionName="budget-sync"
        )
    assert error.value.response["Error"]["Code"] == "AccessDenied"
    session_in(SPOKE)  # OrganizationAccountAccessRole always exists in a member account


def test_the_stack_records_what_moto_does_not_emulate(spoke: Spoke):
    import json

    from moto.sqs.models import sqs_backends

    assert isinstance(spoke.stack, SpokeStack)
    # The queue policy moto's CloudFormation skips is applied by the stand-ins (and evaluated)
    assert "TriggerDeadLetterQueuePolicy" not in spoke.stack.not_emulated
    account, name = spoke.stack.dead_letter_queue_url.rstrip("/").split("/")[-2:]
    policy = json.loads(sqs_backends[account][REGION].get_queue(name).policy)
    assert [s["Sid"] for s in policy["Statement"]] == [
        "TheTriggerRuleOnly",
        "TheResultForwardingRules",
        "DenyInsecureTransport",
    ]
    assert "BudgetAction" not in spoke.stack.not_emulated  # off by default: not in the stack at all
