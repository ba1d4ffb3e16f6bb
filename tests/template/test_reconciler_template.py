"""Contract tests of the reconciler in template-management.yaml against the code it runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from botocore.client import BaseClient

from budget_sync.config import ReconcilerSettings
from budget_sync.errors import ConfigError
from budget_sync_local.lambda_runtime import function_spec, invoke
from budget_sync_local.templates import MANAGEMENT_TEMPLATE, ROOT, SPOKE_TEMPLATE, Resolver, load
from tests.support.moto_org import PARAMETER, REGION, SPOKES, Org
from tests.support.operators import edit_budget_limit
from tests.support.template_calls import TableCalls, _actions, _CallRecorder, not_allowed

TEMPLATE = load(MANAGEMENT_TEMPLATE)
RESOURCES = TEMPLATE["Resources"]

#: What the Lambda runtime does with the role (writing the function's logs), not the code.
RUNTIME_ACTIONS = {"logs:CreateLogStream", "logs:PutLogEvents"}
#: IAM actions of the calls the reconciler makes whose name differs from the operation.
#: AWS Budgets authorises its Describe* calls with budgets:ViewBudget (the service authorization
#: reference for AWS Budgets; docs/operate.md): the reconciler reads the budget's notifications
#: and subscribers to compare its alerts.
IAM_ACTION = {
    "budgets:DescribeBudget": "budgets:ViewBudget",
    "budgets:DescribeNotificationsForBudget": "budgets:ViewBudget",
    "budgets:DescribeSubscribersForNotification": "budgets:ViewBudget",
}


def role_statements(parameters: dict[str, str] | None = None) -> list[dict[str, Any]]:
    policy = Resolver(TEMPLATE, parameters or {}).resolve(
        RESOURCES["ReconcilerRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    )
    statements: list[dict[str, Any]] = policy["Statement"]
    return statements


def spoke_role_actions() -> set[str]:
    spoke = load(SPOKE_TEMPLATE)
    role = next(
        r
        for r in spoke["Resources"].values()
        if r["Type"] == "AWS::IAM::Role" and r["Properties"].get("RoleName") == {"Ref": "SpokeRoleName"}
    )
    return _actions([s for p in role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]])


def test_the_reconciler_role_allows_exactly_the_calls_the_reconciler_makes(
    ops: Org, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    # GIVEN one account whose budget drifted, so that every kind of call happens (read, repair, status)
    edit_budget_limit(ops, SPOKES[0], "1500")
    recorder = _CallRecorder()
    monkeypatch.setattr(BaseClient, "_make_api_call", recorder(BaseClient._make_api_call))

    # WHEN the template's function runs
    result = invoke(function_spec("ReconcilerFunction"), {}, REGION)

    # THEN its role allows exactly what it called, and the spoke role what it did there
    assert result["repaired"] == 1
    assert recorder.management == {
        "sts:AssumeRole",
        "dynamodb:Scan",
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
    }
    assert _actions(role_statements()) == recorder.management | RUNTIME_ACTIONS
    spoke_calls = {IAM_ACTION.get(action, action) for action in recorder.spoke}
    assert spoke_calls == {"ssm:GetParameter", "ssm:PutParameter", "budgets:ViewBudget"}
    assert spoke_calls <= spoke_role_actions()
    # and the alarm watches the metric the function publishes, under its namespace and service
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    directive = emitted[-1]["_aws"]["CloudWatchMetrics"][0]
    alarm = RESOURCES["ReconcilerFailedAlarm"]["Properties"]
    environment = function_spec("ReconcilerFunction").environment
    assert alarm["MetricName"] in {m["Name"] for m in directive["Metrics"]}
    assert alarm["Namespace"] == directive["Namespace"] == environment["POWERTOOLS_METRICS_NAMESPACE"]
    assert alarm["Dimensions"] == [{"Name": "service", "Value": environment["POWERTOOLS_SERVICE_NAME"]}]
    assert emitted[-1]["service"] == environment["POWERTOOLS_SERVICE_NAME"]


def test_the_reconciler_role_is_named_by_a_parameter_and_assumes_only_the_spoke_role_in_the_organisation():
    assert Resolver(TEMPLATE).parameter("ReconcilerRoleName") == "BlogBudgetsReconcilerRole"
    assert RESOURCES["ReconcilerRole"]["Properties"]["RoleName"] == {"Ref": "ReconcilerRoleName"}
    statements = {s["Sid"]: s for s in role_statements({"OrganizationId": "o-abcdefghij"})}
    assume = statements["AssumeSpokeRole"]
    assert assume["Resource"] == "arn:aws:iam::*:role/BlogBudgetsSpokeRole"
    assert assume["Condition"] == {"StringEquals": {"aws:ResourceOrgID": "o-abcdefghij"}}
    # without OrganizationId: the management account's own organisation, never any account
    assert {s["Sid"]: s for s in role_statements()}["AssumeSpokeRole"]["Condition"] == {
        "StringEquals": {"aws:ResourceOrgID": "${aws:PrincipalOrgID}"}
    }
    assert statements["ReadBudgets"]["Resource"].endswith(":table/BlogBudgetsDynamoDB")
    assert statements["ReadAndWriteStatus"]["Resource"].endswith(":table/BlogBudgetsStatus")
    assert all(s["Resource"] != "*" for s in statements.values())
    # the spoke template trusts the same role name by default
    assert Resolver(load(SPOKE_TEMPLATE)).parameter("ReconcilerRoleName") == "BlogBudgetsReconcilerRole"


def test_the_reconciler_runs_on_a_schedule_that_is_a_parameter_defaulting_to_hourly():
    events = RESOURCES["ReconcilerFunction"]["Properties"]["Events"]
    (schedule,) = events.values()
    assert schedule["Type"] == "Schedule"
    assert schedule["Properties"]["Schedule"] == {"Ref": "ReconcileSchedule"}
    assert Resolver(TEMPLATE).parameter("ReconcileSchedule") == "rate(1 hour)"


@pytest.mark.process
def test_the_reconciler_handler_imports_from_its_code_uri_alone_and_reads_exactly_its_environment():
    spec = function_spec("ReconcilerFunction")
    assert spec.code_uri == function_spec().code_uri  # the same package as the stream function
    result = subprocess.run(
        [sys.executable, "-c", f"import {spec.handler.rpartition('.')[0]} as m; assert callable(m.handler)"],
        cwd=ROOT / spec.code_uri,
        env={**os.environ, "PYTHONPATH": str(ROOT / spec.code_uri), "PYTHONNOUSERSITE": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    environment = {**spec.environment, "AWS_REGION": "eu-west-1"}
    settings = ReconcilerSettings.from_env(environment)
    assert settings.budgets_table_name == "BlogBudgetsDynamoDB"
    assert settings.budget_name == "SpokeAccountBudget"
    assert settings.common.status_table_name == "BlogBudgetsStatus"
    assert settings.common.spoke_region == "eu-west-1"
    for required in ("BUDGETS_TABLE_NAME", "STATUS_TABLE_NAME", "SPOKE_ROLE_NAME", "BUDGET_PARAMETER_NAME"):
        with pytest.raises(ConfigError, match=required):
            ReconcilerSettings.from_env({k: v for k, v in environment.items() if k != required})
    assert spec.timeout_s == 900


def test_the_stack_outputs_the_reconciler_role_for_the_spoke_stacks():
    outputs = TEMPLATE["Outputs"]
    assert outputs["ReconcilerRoleArn"]["Value"] == {"Fn::GetAtt": ["ReconcilerRole", "Arn"]}
    assert outputs["ReconcilerFunctionName"]["Value"] == {"Ref": "ReconcilerFunction"}


def test_the_reconciler_role_allows_reading_the_status_of_a_repair_reported_before_sent(
    ops: Org, monkeypatch: pytest.MonkeyPatch
):
    # GIVEN a drifted budget whose repair the spoke reports before the reconciler records SENT
    # (the status item holds the spoke's confirmation only)
    account = SPOKES[0]
    edit_budget_limit(ops, account, "1500")
    # the version the repair's parameter write creates: the report is about exactly that one
    current = ops.spokes[account].client("ssm").get_parameter(Name=PARAMETER)["Parameter"]["Version"]
    ops.management.client("dynamodb").update_item(
        TableName=ops.status_table,
        Key={"AccountId": {"S": account}},
        UpdateExpression="SET ConfirmedVersion = :v, SpokeOutcome = :o",
        ExpressionAttributeValues={":v": {"N": str(current + 1)}, ":o": {"S": "APPLIED"}},
    )
    tables = TableCalls()
    monkeypatch.setattr(BaseClient, "_make_api_call", tables(BaseClient._make_api_call))

    # WHEN the template's function repairs it (its SENT write's condition fails: it reads the status)
    invoke(function_spec("ReconcilerFunction"), {}, REGION)

    # THEN its role allows every call it made, on the table it made it on
    assert ("dynamodb:GetItem", ops.status_table) in tables.calls
    assert not_allowed("BlogBudgetsReconcilerRole", role_statements(), tables.calls) == set()
