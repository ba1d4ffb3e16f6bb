"""Contract tests on template-management.yaml itself, read with budget_sync_local.templates.load."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from botocore.client import BaseClient

from budget_sync.config import Settings
from budget_sync.errors import ConfigError
from budget_sync_local.lambda_runtime import function_spec
from budget_sync_local.management_stack import translate
from budget_sync_local.templates import MANAGEMENT_TEMPLATE, ROOT, SPOKE_TEMPLATE, Resolver, load
from tests.support.moto_org import PARAMETER, SPOKES, Org
from tests.support.template_calls import TableCalls, _actions, _CallRecorder, not_allowed

TEMPLATE = load(MANAGEMENT_TEMPLATE)
RESOURCES = TEMPLATE["Resources"]
VENV_BIN = Path(sys.executable).parent


def resource(logical_id: str) -> dict[str, Any]:
    return RESOURCES[logical_id]


@pytest.mark.process
def test_cfn_lint_with_serverless_rules_is_clean():
    result = subprocess.run(
        [
            str(VENV_BIN / "cfn-lint"),
            "--append-rules",
            "cfn_lint_serverless.rules",
            "--",
            str(MANAGEMENT_TEMPLATE),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.process
def test_sam_validate_lint_is_clean():
    sam = ROOT / ".venv-sam" / "bin" / "sam"
    if not sam.exists():
        if os.environ.get("CI"):
            pytest.fail("the SAM CLI venv is missing: `make test` creates it before the tests")
        pytest.skip("run `make sam-validate` once to create .venv-sam")
    result = subprocess.run(
        [str(sam), "validate", "--lint", "-t", str(MANAGEMENT_TEMPLATE)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_budgets_table_is_keyed_on_account_id_only_and_streams_both_images():
    properties = resource("BudgetsTable")["Properties"]
    assert properties["KeySchema"] == [{"AttributeName": "AccountId", "KeyType": "HASH"}]
    assert properties["AttributeDefinitions"] == [{"AttributeName": "AccountId", "AttributeType": "S"}]
    assert properties["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert properties["BillingMode"] == "PAY_PER_REQUEST"


def test_the_budgets_table_survives_the_stack_and_is_protected_and_encrypted():
    table = resource("BudgetsTable")
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"
    assert table["Properties"]["DeletionProtectionEnabled"] is True
    assert table["Properties"]["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["Properties"]["SSESpecification"] == {"SSEEnabled": True}


def test_the_status_table_is_keyed_on_account_id_and_encrypted():
    properties = resource("StatusTable")["Properties"]
    assert properties["KeySchema"] == [{"AttributeName": "AccountId", "KeyType": "HASH"}]
    assert properties["SSESpecification"] == {"SSEEnabled": True}


def test_the_on_failure_queue_is_encrypted_and_only_reachable_over_tls():
    assert resource("OnFailureQueue")["Properties"]["SqsManagedSseEnabled"] is True
    statement = resource("OnFailureQueuePolicy")["Properties"]["PolicyDocument"]["Statement"][0]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_stream_event_source_reports_partial_failures_and_cannot_block_a_shard_forever():
    stream = resource("UpdateFunction")["Properties"]["Events"]["BudgetsStream"]
    assert stream["Type"] == "DynamoDB"
    settings = stream["Properties"]
    assert settings["Stream"] == {"Fn::GetAtt": ["BudgetsTable", "StreamArn"]}
    assert settings["StartingPosition"] == "TRIM_HORIZON"
    assert settings["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert settings["BisectBatchOnFunctionError"] is True
    assert settings["DestinationConfig"] == {
        "OnFailure": {"Destination": {"Fn::GetAtt": ["OnFailureQueue", "Arn"]}}
    }
    resolved = Resolver(TEMPLATE)
    assert 0 <= int(resolved.resolve(settings["MaximumRetryAttempts"])) <= 10
    assert int(resolved.resolve(settings["MaximumRecordAgeInSeconds"])) <= 6 * 3600


@pytest.mark.process
def test_the_handler_named_by_the_template_is_importable_from_its_code_uri_alone():
    spec = function_spec()
    code = ROOT / spec.code_uri
    assert sorted(p.name for p in code.iterdir() if not p.name.startswith((".", "__"))) == [
        "Makefile",  # how sam build builds it; the artifact gets budget_sync only (tests/package)
        "budget_sync",
        "requirements.txt",
    ], "the function's zip must hold its own package only (no CLI, no emulator)"
    result = subprocess.run(
        [sys.executable, "-c", f"import {spec.handler.rpartition('.')[0]} as m; assert callable(m.handler)"],
        cwd=code,
        env={**os.environ, "PYTHONPATH": str(code), "PYTHONNOUSERSITE": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_the_template_environment_is_exactly_what_the_configuration_reads():
    environment = {**function_spec().environment, "AWS_REGION": "eu-west-1"}
    settings = Settings.from_env(environment)
    assert settings.spoke_region == "eu-west-1"  # empty SpokeRegion: the function's own region
    assert settings.parameter_name == "/BlogBudgets/CostThreshold"
    assert settings.spoke_role_name == "BlogBudgetsSpokeRole"
    assert settings.status_table_name == "BlogBudgetsStatus"
    for required in ("BUDGET_PARAMETER_NAME", "SPOKE_ROLE_NAME", "STATUS_TABLE_NAME"):
        broken = {k: v for k, v in environment.items() if k != required}
        with pytest.raises(ConfigError, match=required):
            Settings.from_env(broken)


def test_tracing_is_a_parameter_that_switches_lambda_tracing_and_the_powertools_tracer_together():
    off = function_spec().environment
    on = function_spec(parameters={"Tracing": "Active"}).environment
    assert off["POWERTOOLS_TRACE_DISABLED"] == "true"
    assert on["POWERTOOLS_TRACE_DISABLED"] == "false"
    for parameters, mode in (({"Tracing": "Active"}, "Active"), ({}, "PassThrough")):
        translated = translate(parameters, "us-east-1")
        functions = _functions(translated)
        assert set(functions) == {
            k for k, v in TEMPLATE["Resources"].items() if v["Type"] == "AWS::Serverless::Function"
        }
        for logical_id, function in functions.items():
            tracing = function["Properties"]["TracingConfig"]["Mode"]
            assert Resolver(translated, parameters).resolve(tracing) == mode, logical_id


def _functions(translated: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in translated["Resources"].items() if v["Type"] == "AWS::Lambda::Function"}


#: What every function shares, said once in the template's Globals.
SHARED = ("Runtime", "Architectures", "Tracing", "CodeUri")
SHARED_VARIABLES = (
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "POWERTOOLS_LOG_LEVEL",
    "POWERTOOLS_TRACE_DISABLED",
)


def test_what_the_functions_share_is_said_once_in_globals_and_each_deployed_function_has_it():
    shared = TEMPLATE["Globals"]["Function"]
    assert set(SHARED) <= set(shared)
    assert set(SHARED_VARIABLES) == set(shared["Environment"]["Variables"])
    for logical_id, function in TEMPLATE["Resources"].items():
        if function["Type"] != "AWS::Serverless::Function":
            continue
        properties = function["Properties"]
        assert not set(SHARED) & set(properties), logical_id
        assert not set(SHARED_VARIABLES) & set(properties["Environment"]["Variables"]), logical_id
        assert set(properties["LoggingConfig"]) == {"LogGroup"}, logical_id
    parameters = {"LogLevel": "DEBUG"}
    translated = translate(parameters, "us-east-1")
    topic = {"AlarmTopic": "arn:aws:sns:us-east-1:123456789012:t"}
    resolver = Resolver(translated, parameters, physical_ids=topic)
    for logical_id, function in _functions(translated).items():
        properties = {
            key: resolver.resolve(function["Properties"][key])
            for key in ("Runtime", "Architectures", "LoggingConfig", "Environment")
        }
        assert properties["Runtime"] == "python3.13", logical_id
        assert properties["Architectures"] == ["arm64"], logical_id
        assert properties["LoggingConfig"] == {
            "LogGroup": resolver.ref(
                TEMPLATE["Resources"][logical_id]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
            ),
            "LogFormat": "JSON",
            "ApplicationLogLevel": "DEBUG",
            "SystemLogLevel": "WARN",
        }, logical_id
        variables = properties["Environment"]["Variables"]
        assert {k: variables[k] for k in SHARED_VARIABLES} == {
            "POWERTOOLS_SERVICE_NAME": "budget-sync",
            "POWERTOOLS_METRICS_NAMESPACE": "BudgetSync",
            "POWERTOOLS_LOG_LEVEL": "DEBUG",
            "POWERTOOLS_TRACE_DISABLED": "true",
        }, logical_id
        # The local organisation runs each function with what the translation deployed.
        spec = function_spec(logical_id, parameters, physical_ids=topic)
        assert {k: spec.environment[k] for k in SHARED_VARIABLES} == {
            k: variables[k] for k in SHARED_VARIABLES
        }
        assert spec.code_uri == "src/function"


def _role_statements(parameters: dict[str, str] | None = None) -> list[dict[str, Any]]:
    policy = Resolver(TEMPLATE, parameters or {}).resolve(
        resource("FunctionRole")["Properties"]["Policies"][0]["PolicyDocument"]
    )
    statements: list[dict[str, Any]] = policy["Statement"]
    return statements


def test_the_function_role_may_assume_only_the_named_spoke_role_inside_the_organisation():
    statements = {s["Sid"]: s for s in _role_statements({"OrganizationId": "o-abcdefghij"})}
    assume = statements["AssumeSpokeRole"]
    assert assume["Resource"] == "arn:aws:iam::*:role/BlogBudgetsSpokeRole"
    assert assume["Condition"] == {"StringEquals": {"aws:ResourceOrgID": "o-abcdefghij"}}
    # without OrganizationId: the management account's own organisation, never any account
    assert {s["Sid"]: s for s in _role_statements()}["AssumeSpokeRole"]["Condition"] == {
        "StringEquals": {"aws:ResourceOrgID": "${aws:PrincipalOrgID}"}
    }
    assert all(s["Resource"] != "*" for s in statements.values())


#: What the Lambda service itself does with the function's role, not the function's code.
LAMBDA_SERVICE_ACTIONS = {
    "dynamodb:DescribeStream",  # the event source mapping polls the stream
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
    "sqs:SendMessage",  # the mapping's on-failure destination
    "logs:CreateLogStream",  # the runtime writes the function's logs
    "logs:PutLogEvents",
}


def test_the_function_role_allows_exactly_the_calls_the_code_makes(org: Org, monkeypatch: pytest.MonkeyPatch):
    recorder = _CallRecorder()
    monkeypatch.setattr(BaseClient, "_make_api_call", recorder(BaseClient._make_api_call))
    a, b, _ = SPOKES
    org.put(a, 10)
    org.put_raw({"AccountId": {"S": b}, "BudgetValue": {"N": "-1"}})
    records = org.new_records()
    recorder.management.clear()
    recorder.spoke.clear()

    org.invoke(records)

    assert recorder.management == {"sts:AssumeRole", "dynamodb:UpdateItem"}
    # GetItem: the path where a spoke's report arrived before SENT (the test after this one);
    # PutItem, UpdateItem: a value held above the approval rule, an approved one sent
    # (tests/e2e/test_approvals.py, on the role)
    assert _actions(_role_statements()) == recorder.management | LAMBDA_SERVICE_ACTIONS | {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
    }
    assert _actions(_role_statements({"Tracing": "Active"})) - _actions(_role_statements()) == {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }
    # and the spoke role (template-spoke.yaml) allows what the function does with it
    spoke_template = load(SPOKE_TEMPLATE)
    spoke_role = next(
        r
        for r in spoke_template["Resources"].values()
        if r["Type"] == "AWS::IAM::Role" and r["Properties"].get("RoleName", {}) == {"Ref": "SpokeRoleName"}
    )
    spoke_actions = _actions(
        [s for p in spoke_role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]
    )
    assert recorder.spoke == {"ssm:PutParameter"}
    assert recorder.spoke <= spoke_actions


def test_the_function_role_allows_reading_the_status_of_a_report_that_arrived_before_sent(
    org: Org, monkeypatch: pytest.MonkeyPatch
):
    # GIVEN the spoke's report of the new value arrived before the function recorded SENT
    # (the Automation finished first: the status item holds the confirmation only)
    account = SPOKES[0]
    org.put(account, 10)
    records = org.new_records()
    # the version the function's write creates: the report is about exactly that one
    current = org.spokes[account].client("ssm").get_parameter(Name=PARAMETER)["Parameter"]["Version"]
    org.management.client("dynamodb").put_item(
        TableName=org.status_table,
        Item={
            "AccountId": {"S": account},
            "ConfirmedVersion": {"N": str(current + 1)},
            "SpokeOutcome": {"S": "APPLIED"},
            "ConfirmedLimit": {"N": "10"},
        },
    )
    tables = TableCalls()
    monkeypatch.setattr(BaseClient, "_make_api_call", tables(BaseClient._make_api_call))

    # WHEN the function records SENT (the condition fails, so it reads the status: StatusStore.read)
    org.invoke(records)

    # THEN its role allows every call it made, on the table it made it on
    assert ("dynamodb:GetItem", org.status_table) in tables.calls
    assert not_allowed("BlogBudgetsLambdaRole", _role_statements(), tables.calls) == set()


def test_alarms_notify_on_parked_records_function_errors_iterator_age_and_failed_budgets():
    alarms = {k: v["Properties"] for k, v in RESOURCES.items() if v["Type"] == "AWS::CloudWatch::Alarm"}
    watched = {(a["Namespace"], a["MetricName"]) for a in alarms.values()}
    assert {
        ("AWS/SQS", "NumberOfMessagesSent"),  # each arrival, not messages present
        ("BudgetSync", "SpokeFailed"),
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "IteratorAge"),
        ("BudgetSync", "BudgetFailed"),
        ("BudgetSync", "InvalidItem"),
    } <= watched
    for alarm in alarms.values():
        assert alarm["AlarmActions"], "every alarm must notify someone"


def test_no_partition_region_or_account_is_hard_coded():
    text = MANAGEMENT_TEMPLATE.read_text()
    assert "arn:aws:" not in text
    assert "us-east-1" not in text
    for account in ("123456789012", *SPOKES):
        assert account not in text


def test_the_history_function_reads_the_four_streams_alike_and_its_role_reads_exactly_those():
    function = resource("HistoryFunction")["Properties"]
    events = function["Events"]
    tables = {
        "StatusChanges": "StatusTable",
        "DefaultsChanges": "DefaultsTable",
        "ApprovalRequestChanges": "ApprovalRequestsTable",
        "ApprovalDecisions": "ApprovalsTable",
    }
    assert set(events) == set(tables)
    for name, table in tables.items():
        settings = dict(events[name]["Properties"])
        assert settings.pop("Stream") == {"Fn::GetAtt": [table, "StreamArn"]}
        assert settings == {k: v for k, v in events["StatusChanges"]["Properties"].items() if k != "Stream"}
        assert settings["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert settings["DestinationConfig"] == {
            "OnFailure": {"Destination": {"Fn::GetAtt": ["HistoryFailureQueue", "Arn"]}}
        }
        assert settings["MaximumRetryAttempts"] == 10
    variables = function["Environment"]["Variables"]
    assert variables["APPROVAL_REQUESTS_TABLE_NAME"] == {"Ref": "ApprovalRequestsTable"}
    assert variables["APPROVALS_TABLE_NAME"] == {"Ref": "ApprovalsTable"}
    statements = resource("HistoryRole")["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    (streams,) = [
        s for s in statements if isinstance(s, dict) and "dynamodb:GetRecords" in s.get("Action", [])
    ]
    assert streams["Resource"] == [{"Fn::GetAtt": [t, "StreamArn"]} for t in tables.values()]
