"""Contract tests on template-spoke.yaml itself (read with budget_sync_local.templates.load), and across
the two templates: names, trust, the amount rule, the inline script."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from budget_sync.domain import AMOUNT_PATTERN, MAX_BUDGET_VALUE
from budget_sync_local.templates import MANAGEMENT_TEMPLATE, SPOKE_TEMPLATE, Resolver, load
from budget_sync_spoke import update_budget
from tests.spoke.sync_inline_script import SCRIPT, synced_template

TEMPLATE = load(SPOKE_TEMPLATE)
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
PARAMETERS: dict[str, Any] = TEMPLATE["Parameters"]
MANAGEMENT = load(MANAGEMENT_TEMPLATE)
VENV_BIN = Path(sys.executable).parent


def default(template: dict[str, Any], name: str) -> str:
    return str(template["Parameters"][name]["Default"])


@pytest.mark.process
def test_given_the_spoke_template_when_cfn_lint_runs_with_serverless_rules_then_it_is_clean():
    result = subprocess.run(
        [
            str(VENV_BIN / "cfn-lint"),
            "--append-rules",
            "cfn_lint_serverless.rules",
            "--",
            str(SPOKE_TEMPLATE),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_template_has_no_transform_no_foreach_and_no_yaml_aliases_so_stacksets_take_it():
    text = SPOKE_TEMPLATE.read_text()
    assert "Transform" not in TEMPLATE
    assert not any(key.startswith("Fn::ForEach") for key in _keys(TEMPLATE))
    assert not re.search(r"(?m)^[^#]*[:\-] [&*][A-Za-z]", text), "CloudFormation rejects YAML anchors/aliases"


def _keys(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [*value, *(k for v in value.values() for k in _keys(v))]
    if isinstance(value, list):
        return [k for v in value for k in _keys(v)]
    return []


def test_no_partition_region_or_account_is_hard_coded():
    text = SPOKE_TEMPLATE.read_text()
    assert "arn:aws:" not in text
    assert "us-east-1" not in text
    assert not re.search(r"\b[0-9]{12}\b", text)


def test_the_parameter_the_initial_amount_and_the_script_use_the_item_contracts_amount_rule():
    assert RESOURCES["BudgetParameter"]["Properties"]["AllowedPattern"] == AMOUNT_PATTERN
    assert PARAMETERS["InitialBudgetAmount"]["AllowedPattern"] == AMOUNT_PATTERN
    assert update_budget.AMOUNT_PATTERN == AMOUNT_PATTERN
    assert update_budget.MAX_AMOUNT == MAX_BUDGET_VALUE


def test_names_agree_with_the_management_template():
    assert default(TEMPLATE, "UpdateFunctionRoleName") == default(MANAGEMENT, "FunctionRoleName")
    assert default(TEMPLATE, "ReconcilerRoleName") == default(MANAGEMENT, "ReconcilerRoleName")
    assert default(TEMPLATE, "SpokeRoleName") == default(MANAGEMENT, "SpokeRoleName")
    assert default(TEMPLATE, "ParameterName") == default(MANAGEMENT, "ParameterName")
    assert default(TEMPLATE, "BudgetName") == default(MANAGEMENT, "BudgetName")
    assert default(TEMPLATE, "OrganizationId") == default(MANAGEMENT, "OrganizationId") == ""
    # and the walkthrough's names, which the defaults keep
    assert default(TEMPLATE, "SpokeRoleName") == "BlogBudgetsSpokeRole"
    assert default(TEMPLATE, "ParameterName") == "/BlogBudgets/CostThreshold"
    assert default(TEMPLATE, "DocumentName") == "BlogBudgetsAutomationDoc"
    assert default(TEMPLATE, "RuleName") == "BlogBudgetsSSMTrigger"
    assert default(TEMPLATE, "BudgetName") == "SpokeAccountBudget"


def test_the_management_roles_the_spoke_trusts_are_the_ones_the_management_template_creates():
    roles = {
        r["Properties"]["RoleName"]["Ref"]
        for r in MANAGEMENT["Resources"].values()
        if r["Type"] == "AWS::IAM::Role" and "RoleName" in r["Properties"]
    }
    assert {"FunctionRoleName", "ReconcilerRoleName"} <= roles


def test_the_templates_inline_script_is_the_file_byte_for_byte():
    step = RESOURCES["AutomationDocument"]["Properties"]["Content"]["mainSteps"][0]
    assert step["action"] == "aws:executeScript"
    assert step["inputs"]["Script"] == SCRIPT.read_text(), (
        "run: .venv/bin/python -m tests.spoke.sync_inline_script"
    )
    assert synced_template(SPOKE_TEMPLATE.read_text(), SCRIPT.read_text()) == SPOKE_TEMPLATE.read_text()


def test_the_script_runs_on_a_runtime_automation_supports_and_names_its_handler():
    inputs = RESOURCES["AutomationDocument"]["Properties"]["Content"]["mainSteps"][0]["inputs"]
    assert inputs["Runtime"] == "python3.11"
    assert inputs["Handler"] == "handler"
    assert callable(update_budget.handler)


def test_the_document_is_schema_0_3_and_every_parameter_has_an_allowed_pattern():
    document = RESOURCES["AutomationDocument"]["Properties"]
    assert document["Name"] == {"Ref": "DocumentName"}
    assert document["DocumentType"] == "Automation"
    content = document["Content"]
    assert content["schemaVersion"] == "0.3"
    assert content["assumeRole"] == "{{ AutomationAssumeRole }}"
    for name, spec in content["parameters"].items():
        assert spec.get("allowedPattern"), f"document parameter {name} has no allowedPattern"
    assert content["outputs"] == [
        "UpdateBudgetLimit.OldLimit",
        "UpdateBudgetLimit.NewLimit",
        "UpdateBudgetLimit.Action",
        "ReconcileAlerts.Action",
        "ReconcileAlerts.Calls",
        "ReconcileAlerts.Applied",
    ]


def test_the_budget_is_a_monthly_cost_budget_with_a_fixed_limit_never_planned_limits():
    budget = RESOURCES["Budget"]["Properties"]["Budget"]
    assert budget["BudgetType"] == "COST"
    assert budget["TimeUnit"] == "MONTHLY"
    assert budget["BudgetLimit"] == {"Amount": {"Ref": "InitialBudgetAmount"}, "Unit": "USD"}
    assert "PlannedBudgetLimits" not in budget


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        ({}, [("ACTUAL", "80"), ("ACTUAL", "100"), ("FORECASTED", "100")]),
        ({"ActualThreshold2": "", "ForecastedThreshold": ""}, [("ACTUAL", "80")]),
        (
            {"ActualThreshold1": "50", "ForecastedThreshold": "90"},
            [("ACTUAL", "50"), ("ACTUAL", "100"), ("FORECASTED", "90")],
        ),
    ],
)
def test_given_threshold_parameters_then_the_budget_has_exactly_those_notifications(
    parameters: dict[str, str], expected: list[tuple[str, str]]
):
    resolver = Resolver(
        TEMPLATE, {"ManagementAccountId": "123456789012", "AlertEmail1": "a@example.com", **parameters}
    )
    notifications = resolver.properties("Budget")["NotificationsWithSubscribers"]
    assert [
        (n["Notification"]["NotificationType"], n["Notification"]["Threshold"]) for n in notifications
    ] == expected
    for n in notifications:
        assert n["Notification"]["ComparisonOperator"] == "GREATER_THAN"
        assert n["Notification"]["ThresholdType"] == "PERCENTAGE"
        assert n["Subscribers"] == [{"SubscriptionType": "EMAIL", "Address": "a@example.com"}]


def test_given_three_emails_and_an_existing_topic_then_every_notification_has_the_four_subscribers():
    resolver = Resolver(
        TEMPLATE,
        {
            "AlertEmail1": "a@example.com",
            "AlertEmail2": "b@example.com",
            "AlertEmail3": "c@example.com",
            "SnsTopicMode": "Existing",
            "ExistingSnsTopicArn": "arn:aws:sns:us-east-1:111111111111:alerts",
        },
    )
    for n in resolver.properties("Budget")["NotificationsWithSubscribers"]:
        assert n["Subscribers"] == [
            {"SubscriptionType": "EMAIL", "Address": "a@example.com"},
            {"SubscriptionType": "EMAIL", "Address": "b@example.com"},
            {"SubscriptionType": "EMAIL", "Address": "c@example.com"},
            {"SubscriptionType": "SNS", "Address": "arn:aws:sns:us-east-1:111111111111:alerts"},
        ]


def test_the_topic_key_lets_only_budgets_of_this_account_use_it_and_rotates():
    key = RESOURCES["AlertTopicKey"]
    assert key["Condition"] == "CreateTopic"
    assert key["Properties"]["EnableKeyRotation"] is True
    statements = {s["Sid"]: s for s in key["Properties"]["KeyPolicy"]["Statement"]}
    budgets = statements["BudgetsOfThisAccountPublish"]
    assert budgets["Principal"] == {"Service": "budgets.amazonaws.com"}
    assert set(budgets["Action"]) == {"kms:GenerateDataKey*", "kms:Decrypt"}
    assert set(budgets["Condition"]) == {"StringEquals", "ArnLike"}
    assert budgets["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    topic = RESOURCES["AlertTopic"]["Properties"]
    assert topic["KmsMasterKeyId"] == {"Ref": "AlertTopicKey"}
    publish = RESOURCES["AlertTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert publish["Principal"] == {"Service": "budgets.amazonaws.com"}
    assert publish["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}


def test_the_budget_action_is_off_by_default_manual_by_default_and_denies_with_a_policy():
    assert default(TEMPLATE, "BudgetActionEnabled") == "false"
    assert default(TEMPLATE, "BudgetActionApprovalModel") == "MANUAL"
    assert not Resolver(TEMPLATE, {"AlertEmail1": "a@example.com"}).condition("CreateBudgetAction")
    action = RESOURCES["BudgetAction"]
    assert action["Condition"] == "CreateBudgetAction"
    properties = action["Properties"]
    assert properties["ActionType"] == "APPLY_IAM_POLICY"
    assert properties["ApprovalModel"] == {"Ref": "BudgetActionApprovalModel"}
    assert properties["BudgetName"] == {"Ref": "Budget"}
    deny = RESOURCES["BudgetActionDenyPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert deny["Effect"] == "Deny"
    assert default(TEMPLATE, "BudgetActionDeniedActions") == "ec2:RunInstances"
    attach = RESOURCES["BudgetActionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][0]
    assert set(attach["Action"]) == {"iam:AttachRolePolicy", "iam:DetachRolePolicy"}
    assert attach["Condition"] == {"ArnEquals": {"iam:PolicyARN": {"Ref": "BudgetActionDenyPolicy"}}}
    rules = TEMPLATE["Rules"]["BudgetActionNeedsRoles"]
    assert rules["RuleCondition"] == {"Fn::Equals": [{"Ref": "BudgetActionEnabled"}, "true"]}


@pytest.mark.parametrize("parameter", ["DefaultActualThresholds", "DefaultForecastedThreshold"])
def test_the_default_threshold_patterns_take_what_the_scripts_take_and_nothing_above_1000000(parameter: str):
    from budget_sync_spoke import alerts

    pattern = re.compile(TEMPLATE["Parameters"][parameter]["AllowedPattern"])
    for good in ("", "0", "80", "82.5", "100.25", "999999.99", "1000000", "1000000.00"):
        assert pattern.fullmatch(good), good
        if good:
            alerts.threshold_text(parameter, good)  # the script takes it too
    for bad in ("1000000.01", "1000001", "9999999.99", "2000000", "80.125", "-1", "eighty"):
        assert not pattern.fullmatch(bad), bad
        with pytest.raises(ValueError, match=parameter):
            alerts.threshold_text(parameter, bad)
    if parameter == "DefaultActualThresholds":
        assert pattern.fullmatch("80,100,1000000")
        assert not pattern.fullmatch("80,1000000.5")
