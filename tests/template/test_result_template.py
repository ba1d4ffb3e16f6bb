"""The closed loop's template facts: who may put results on the management account's bus,
what the spoke forwards, and what the result function's role allows (exactly its calls)."""

from __future__ import annotations

import io
import json
import os
import re
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from botocore.client import BaseClient

from budget_sync.config import ResultSettings
from budget_sync.errors import UnrecognisedEvent
from budget_sync_local.lambda_runtime import function_spec
from budget_sync_local.templates import MANAGEMENT_TEMPLATE, SPOKE_TEMPLATE, Resolver, load
from budget_sync_spoke import alerts, update_budget
from tests.support.lazy import lazy
from tests.support.local_org import local_organisation, sent_minutes_ago

if TYPE_CHECKING:
    from budget_sync_local import standins
else:  # moto: imported by the first test that uses it, not at collection (make unit)
    standins = lazy("budget_sync_local.standins")

MANAGEMENT = load(MANAGEMENT_TEMPLATE)
SPOKE = load(SPOKE_TEMPLATE)
A = "111111111111"


def _condition(template: dict[str, Any], logical_id: str, parameters: dict[str, str]) -> bool:
    name = template["Resources"][logical_id]["Condition"]
    return Resolver(template, parameters).condition(name)


def test_with_an_organisation_the_result_bus_admits_only_its_principals():
    parameters = {"OrganizationId": "o-abcdefghij"}
    policy = Resolver(MANAGEMENT, parameters).resolve(
        MANAGEMENT["Resources"]["ResultBusOrganisationPolicy"]["Properties"]["Statement"]
    )
    assert _condition(MANAGEMENT, "ResultBusOrganisationPolicy", parameters)
    assert not _condition(MANAGEMENT, "ResultBusAccountsPolicy", {**parameters, "SpokeAccountIds": A})
    assert policy["Action"] == "events:PutEvents"
    assert policy["Condition"] == {
        "StringEquals": {"aws:PrincipalOrgID": "o-abcdefghij"},
        "ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/BlogBudgetsResultForwardRole"},
    }


def test_without_an_organisation_the_result_bus_admits_only_the_named_accounts_or_nobody():
    named = {"SpokeAccountIds": f"{A},222222222222"}
    assert _condition(MANAGEMENT, "ResultBusAccountsPolicy", named)
    assert not _condition(MANAGEMENT, "ResultBusOrganisationPolicy", named)
    statement = MANAGEMENT["Resources"]["ResultBusAccountsPolicy"]["Properties"]["Statement"]
    assert statement["Principal"] == {"AWS": {"Ref": "SpokeAccountIds"}}
    # only the accounts' forwarding role, not any principal of theirs
    assert Resolver(MANAGEMENT, named).resolve(statement["Condition"]) == {
        "ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/BlogBudgetsResultForwardRole"}
    }
    # neither an organisation nor accounts: no policy, only the management account itself
    assert not _condition(MANAGEMENT, "ResultBusAccountsPolicy", {})
    assert not _condition(MANAGEMENT, "ResultBusOrganisationPolicy", {})


def test_the_spoke_forwards_only_to_the_result_bus_with_a_role_that_may_do_nothing_else():
    resolver = Resolver(SPOKE, {"ManagementAccountId": "123456789012", "AlertEmail1": "a@example.com"})
    bus = "arn:aws:events:us-east-1:123456789012:event-bus/BlogBudgetsResults"
    (statement,) = resolver.resolve(
        SPOKE["Resources"]["ResultForwardRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    )
    assert (statement["Action"], statement["Resource"]) == ("events:PutEvents", bus)
    for rule in ("ResultForwardRule", "ExecutionForwardRule"):
        (target,) = SPOKE["Resources"][rule]["Properties"]["Targets"]
        assert resolver.resolve(target["Arn"]) == bus
        assert target["RoleArn"] == {"Fn::GetAtt": ["ResultForwardRole", "Arn"]}
        assert "DeadLetterConfig" in target
    in_other_region = Resolver(SPOKE, {**resolver.parameters, "ManagementRegion": "eu-west-1"})
    (target,) = SPOKE["Resources"]["ResultForwardRule"]["Properties"]["Targets"]
    assert in_other_region.resolve(target["Arn"]) == bus.replace("us-east-1", "eu-west-1")


@pytest.mark.aws  # moto: EventBridge's matcher is moto's (standins.pattern_matches), seconds of import
@pytest.mark.parametrize(
    ("status", "forwarded"),
    [("Failed", True), ("TimedOut", True), ("Cancelled", True), ("Success", False), ("InProgress", False)],
)
def test_the_spoke_forwards_the_end_of_its_own_documents_failed_executions_only(status: str, forwarded: bool):
    resolver = Resolver(
        SPOKE,
        {"ManagementAccountId": "123456789012", "AlertEmail1": "a@example.com"},
        physical_ids={"AutomationDocument": "BlogBudgetsAutomationDoc"},
    )
    pattern = resolver.resolve(SPOKE["Resources"]["ExecutionForwardRule"]["Properties"]["EventPattern"])
    event = {
        "source": "aws.ssm",
        "detail-type": "EC2 Automation Execution Status-change Notification",
        "account": A,
        "region": "us-east-1",
        "detail": {"ExecutionId": "e", "Definition": "BlogBudgetsAutomationDoc", "Status": status},
    }
    assert standins.pattern_matches(pattern, event) is forwarded
    assert not standins.pattern_matches(
        pattern, {**event, "detail": {**event["detail"], "Definition": "Other"}}
    )


def test_the_result_function_environment_is_what_its_settings_read():
    spec = function_spec(
        "ResultFunction", physical_ids={"AlarmTopic": "arn:aws:sns:us-east-1:123456789012:t"}
    )
    settings = ResultSettings.from_env(spec.environment)
    assert settings.confirm_timeout == timedelta(minutes=15)
    assert settings.alarm_topic_arn == "arn:aws:sns:us-east-1:123456789012:t"
    assert spec.handler == "budget_sync.handlers.results.handler"


@pytest.mark.aws
def test_each_result_role_allows_exactly_the_calls_its_function_makes(monkeypatch: pytest.MonkeyPatch):
    calls: set[str] = set()

    def taken() -> set[str]:
        made = set(calls)
        calls.clear()
        return made

    with local_organisation(accounts=(A,), function_output=io.StringIO()) as org:
        # GIVEN a value sent whose spoke never reacted, its bound passed
        org.pipeline.spokes = {}
        org.put(A, 4321)
        org.pipeline.run_until_idle()
        sent_minutes_ago(org, A, 20)
        original = BaseClient._make_api_call

        def record(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
            # the history function reads the same stream in the same run: its calls are its own
            if os.environ.get("AWS_LAMBDA_FUNCTION_NAME") != "BlogBudgetsHistoryRecorder":
                calls.add(f"{client.meta.service_model.signing_name}:{operation}")
            return original(client, operation, params)

        monkeypatch.setattr(BaseClient, "_make_api_call", record)
        # WHEN the unconfirmed check (its schedule) checks the bound
        org.check_unconfirmed()
        made = {"UnconfirmedCheckRole": taken()}
        version = int(org.status(A)["ParameterVersion"])  # type: ignore[index]
        taken()  # (the test's own read)
        # and the result function (the result bus's rule) records a late report
        org.invoke_result_function(
            {
                "source": "budget-sync.spoke",
                "detail-type": "Budget Update Result",
                "account": A,
                "detail": {
                    "ExecutionId": "e",
                    "ParameterVersion": version,
                    "Outcome": "APPLIED",
                    "NewLimit": "4321",
                },
            }
        )
        made["ResultRole"] = taken()
        # and the status table's stream brings the new failure to the failure-notice function
        # (read with its role)
        org.pipeline.run_until_idle()
        made["FailureNoticeRole"] = taken()
    # THEN each function's role allows exactly its calls, on the status table, its stream and
    # the alarm topic; ListStreams (Lambda's, for the mapping) and the dead-letter queue besides
    topic = "arn:aws:sns:us-east-1:123456789012:alarms"
    resolver = Resolver(MANAGEMENT, {}, physical_ids={"AlarmTopic": topic})
    statements = {
        role: resolver.resolve(MANAGEMENT["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"])[
            "Statement"
        ]
        for role in made
    }
    allowed = {role: {a for s in statements[role] for a in _actions(s)} for role in made}
    logs = {"logs:CreateLogStream", "logs:PutLogEvents"}
    stream_reads = {"dynamodb:DescribeStream", "dynamodb:GetRecords"}  # (its iterator was taken before)
    assert made["UnconfirmedCheckRole"] == {"dynamodb:Scan", "dynamodb:UpdateItem"}
    assert made["ResultRole"] == {"dynamodb:GetItem", "dynamodb:UpdateItem"}
    assert made["FailureNoticeRole"] == {"sns:Publish"} | stream_reads
    assert allowed["UnconfirmedCheckRole"] == made["UnconfirmedCheckRole"] | logs | {"sqs:SendMessage"}
    assert allowed["ResultRole"] == made["ResultRole"] | logs | {"sqs:SendMessage"}
    assert allowed["FailureNoticeRole"] == made["FailureNoticeRole"] | logs | {
        "dynamodb:GetShardIterator",
        "dynamodb:ListStreams",
        "sqs:SendMessage",
    }
    table = "arn:aws:dynamodb:us-east-1:123456789012:table/BlogBudgetsStatus"
    for role in ("UnconfirmedCheckRole", "ResultRole"):
        by_sid = {s["Sid"]: s for s in statements[role]}
        assert by_sid["ReadAndWriteStatus"]["Resource"] == table
        assert by_sid["ParkFailedInvocations"]["Resource"].endswith(":ResultDeadLetterQueue")
    by_sid = {s["Sid"]: s for s in statements["FailureNoticeRole"]}
    assert by_sid["NotifyNewFailures"]["Resource"] == topic
    assert by_sid["ReadStatusStream"]["Resource"].startswith(table + "/stream/")
    assert by_sid["ParkUnpublishedFailures"]["Resource"].endswith(":ResultDeadLetterQueue")


def test_the_spoke_forwards_to_the_bus_the_management_stack_creates_by_default():
    assert (
        SPOKE["Parameters"]["ResultBusName"]["Default"]
        == MANAGEMENT["Parameters"]["ResultBusName"]["Default"]
    )
    assert MANAGEMENT["Parameters"]["ConfirmTimeoutMinutes"]["Default"] == 15


@pytest.mark.aws  # moto: EventBridge's matcher is moto's (standins.pattern_matches), seconds of import
@pytest.mark.parametrize("step", ["UpdateBudgetLimit", "ReconcileAlerts"])
def test_each_step_reports_an_event_the_automation_role_may_put_and_both_rules_forward(step: str):
    # GIVEN the document's step and the script it holds (the same file, byte for byte)
    script = {"UpdateBudgetLimit": update_budget, "ReconcileAlerts": alerts}[step]
    steps = {
        s["name"]: s for s in SPOKE["Resources"]["AutomationDocument"]["Properties"]["Content"]["mainSteps"]
    }
    payload = steps[step]["inputs"]["InputPayload"]
    # WHEN the step reports (the event put_events receives)
    event = {
        "source": script.REPORT_SOURCE,
        "detail-type": script.REPORT_DETAIL_TYPE,
        "account": A,
        "region": "us-east-1",
        "detail": {"Step": step, "ExecutionId": "e", "ParameterVersion": 3, "Outcome": "FAILED"},
    }
    # THEN the automation role may put it on its own default bus only with the report's source
    statements = SPOKE["Resources"]["AutomationRole"]["Properties"]["Policies"][0]["PolicyDocument"][
        "Statement"
    ]
    (put,) = [s for s in statements if "events:PutEvents" in str(s["Action"])]
    assert put["Resource"]["Fn::Sub"].endswith(":event-bus/default")
    assert put["Condition"] == {"StringEquals": {"events:source": script.REPORT_SOURCE}}
    # and the spoke's rule forwards it, and the management result function's rule takes it
    forward = SPOKE["Resources"]["ResultForwardRule"]["Properties"]["EventPattern"]
    assert standins.pattern_matches(forward, event)
    rule = MANAGEMENT["Resources"]["ResultFunction"]["Properties"]["Events"]["SpokeResults"]["Properties"]
    assert standins.pattern_matches(rule["Pattern"], event)
    # and the step is told which execution and which parameter version it reports about
    assert payload["ExecutionId"] == "{{ automation:EXECUTION_ID }}"
    if step == "ReconcileAlerts":
        assert payload["ParameterVersion"] == "{{ UpdateBudgetLimit.ParameterVersion }}"
        outputs = {o["Name"]: o["Selector"] for o in steps["UpdateBudgetLimit"]["outputs"]}
        assert outputs["ParameterVersion"] == "$.Payload.ParameterVersion"


def test_a_notice_sns_refuses_is_counted_and_alarmed():
    alarm = MANAGEMENT["Resources"]["NoticeNotPublishedAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("BudgetSync", "NoticeNotPublished")
    assert alarm["AlarmActions"]


def test_only_the_spokes_forwarding_role_may_put_results_and_both_templates_name_it_alike():
    # the spoke's forwarding role has the fixed name the management account's bus admits
    assert SPOKE["Resources"]["ResultForwardRole"]["Properties"]["RoleName"] == {
        "Ref": "ResultForwardRoleName"
    }
    assert (
        SPOKE["Parameters"]["ResultForwardRoleName"]["Default"]
        == MANAGEMENT["Parameters"]["ResultForwardRoleName"]["Default"]
        == "BlogBudgetsResultForwardRole"
    )
    renamed = Resolver(MANAGEMENT, {"OrganizationId": "o-abcdefghij", "ResultForwardRoleName": "Fwd-dev"})
    statement = renamed.resolve(
        MANAGEMENT["Resources"]["ResultBusOrganisationPolicy"]["Properties"]["Statement"]
    )
    assert statement["Condition"]["ArnLike"] == {"aws:PrincipalArn": "arn:aws:iam::*:role/Fwd-dev"}


def test_the_result_function_has_reserved_concurrency_and_an_on_failure_destination_with_an_alarm():
    function = MANAGEMENT["Resources"]["ResultFunction"]["Properties"]
    assert function["ReservedConcurrentExecutions"] == {"Ref": "ResultConcurrency"}
    assert 1 <= MANAGEMENT["Parameters"]["ResultConcurrency"]["Default"] <= 10
    on_failure = function["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]
    assert on_failure == {"Type": "SQS", "Destination": {"Fn::GetAtt": ["ResultDeadLetterQueue", "Arn"]}}
    queue = MANAGEMENT["Resources"]["ResultDeadLetterQueue"]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True
    alarm = MANAGEMENT["Resources"]["ResultDeadLetterAlarm"]["Properties"]
    assert alarm["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["ResultDeadLetterQueue", "QueueName"]}
    # Lambda sends to the destination with the function's role
    statements = MANAGEMENT["Resources"]["ResultRole"]["Properties"]["Policies"][0]["PolicyDocument"][
        "Statement"
    ]
    (park,) = [s for s in statements if isinstance(s, dict) and s.get("Sid") == "ParkFailedInvocations"]
    assert park["Resource"] == {"Fn::GetAtt": ["ResultDeadLetterQueue", "Arn"]}


def test_an_encrypted_alarm_topic_of_your_own_gets_the_kms_permissions_sns_needs_and_only_through_sns():
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    topic = "arn:aws:sns:us-east-1:123456789012:alarms"

    def kms_statements(parameters: dict[str, str]) -> list[dict[str, Any]]:
        document = Resolver(MANAGEMENT, parameters, physical_ids={"AlarmTopic": topic}).resolve(
            MANAGEMENT["Resources"]["FailureNoticeRole"]["Properties"]["Policies"][0]["PolicyDocument"]
        )
        return [s for s in document["Statement"] if any(a.startswith("kms:") for a in _actions(s))]

    (statement,) = kms_statements({"AlarmTopicArn": topic, "AlarmTopicKmsKeyArn": key})
    assert sorted(_actions(statement)) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert statement["Resource"] == key
    assert statement["Condition"] == {"StringEquals": {"kms:ViaService": "sns.us-east-1.amazonaws.com"}}
    assert kms_statements({"AlarmTopicArn": topic}) == []  # no key given: no KMS permission
    assert kms_statements({"AlarmTopicKmsKeyArn": key}) == []  # the stack's own topic: not this key
    assert re.fullmatch(MANAGEMENT["Parameters"]["AlarmTopicKmsKeyArn"]["AllowedPattern"], key)


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement.get("Action", [])
    return [actions] if isinstance(actions, str) else list(actions)


SCHEDULED = {"source": "aws.events", "detail-type": "Scheduled Event", "account": A, "detail": {}}


def _metrics(output: io.StringIO) -> list[str]:
    """The metric names of every EMF line the functions wrote."""
    names = []
    for line in output.getvalue().splitlines():
        if '"_aws"' in line:
            emitted = json.loads(line)
            names += [m["Name"] for d in emitted["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]]
    return names


@pytest.mark.aws
def test_each_source_has_its_own_function_and_an_event_of_another_source_is_rejected_and_counted():
    # GIVEN the three functions the template names, one per event source
    handlers = {
        logical_id: function_spec(
            logical_id, physical_ids={"AlarmTopic": "arn:aws:sns:us-east-1:123456789012:t"}
        )
        for logical_id in ("ResultFunction", "UnconfirmedCheckFunction", "FailureNoticeFunction")
    }
    assert {k: v.handler for k, v in handlers.items()} == {
        "ResultFunction": "budget_sync.handlers.results.handler",
        "UnconfirmedCheckFunction": "budget_sync.handlers.unconfirmed.handler",
        "FailureNoticeFunction": "budget_sync.handlers.notices.handler",
    }
    events = {
        k: [e["Type"] for e in MANAGEMENT["Resources"][k]["Properties"]["Events"].values()] for k in handlers
    }
    assert events == {
        "ResultFunction": ["EventBridgeRule"],
        "UnconfirmedCheckFunction": ["Schedule"],
        "FailureNoticeFunction": ["DynamoDB"],
    }
    roles = {MANAGEMENT["Resources"][k]["Properties"]["Role"]["Fn::GetAtt"][0] for k in handlers}
    assert len(roles) == 3
    alarmed = {
        a["Properties"]["Dimensions"][0]["Value"].get("Ref")
        for a in MANAGEMENT["Resources"].values()
        if a["Type"] == "AWS::CloudWatch::Alarm" and a["Properties"]["MetricName"] == "Errors"
    }
    assert set(handlers) <= alarmed
    output = io.StringIO()
    with local_organisation(accounts=(A,), function_output=output) as org:
        org.pipeline.spokes = {}
        org.put(A, 4321)
        org.pipeline.run_until_idle()
        sent_minutes_ago(org, A, 20)
        # WHEN the schedule's event reaches the result bus's function
        answer = org.invoke_result_function(SCHEDULED)
        # THEN it is not a result: counted and logged, and no value is expired by it
        assert answer["recorded"] is False
        assert org.status(A)["Status"] == "SENT"  # type: ignore[index]
        assert _metrics(output).count("InvalidResult") == 1
        # WHEN the schedule's function is given a spoke's result, or a stream batch
        for event in (
            {
                "source": "budget-sync.spoke",
                "detail-type": "Budget Update Result",
                "account": A,
                "detail": {},
            },
            {"Records": []},
        ):
            with pytest.raises(UnrecognisedEvent):
                org.invoke_unconfirmed_check(event)
        # and the stream's function is given the schedule's event
        with pytest.raises(UnrecognisedEvent):
            org.invoke_notice_function(SCHEDULED)
        # THEN each is rejected and counted, and nothing was expired or published
        assert _metrics(output).count("UnrecognisedEvent") == 3
        assert org.status(A)["Status"] == "SENT"  # type: ignore[index]
        assert "unrecognised event rejected" in output.getvalue()
        # and its own event still does its work
        assert org.check_unconfirmed() == {"expired": [A]}


@pytest.mark.aws
def test_the_running_pipeline_invokes_the_unconfirmed_check_on_its_schedule():
    # GIVEN a value sent whose spoke never reacted, its bound passed
    with local_organisation(accounts=(A,), function_output=io.StringIO()) as org:
        org.pipeline.spokes = {}
        org.put(A, 4321)
        org.pipeline.run_until_idle()
        sent_minutes_ago(org, A, 20)
        # WHEN the pipeline runs in the background, as `make local` runs it
        org.pipeline.start(interval_s=0.05, check_every_s=0.1)
        try:
            deadline = time.monotonic() + 30
            while org.status(A)["Status"] == "SENT" and time.monotonic() < deadline:  # type: ignore[index]
                time.sleep(0.1)
        finally:
            org.pipeline.stop()
        # THEN the schedule's function failed the value, with its own role
        assert org.status(A)["Status"] == "FAILED"  # type: ignore[index]
        assert org.status(A)["Source"] == "timeout"  # type: ignore[index]
        assert org.pipeline.errors == []
