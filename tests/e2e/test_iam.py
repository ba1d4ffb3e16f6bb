"""The local organisation refuses what AWS's IAM refuses: each function runs as its template
role, and trust, identity and resource policies decide every call (issue 17, "Done when")."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.sns.models import sns_backends

from budget_sync.errors import TransientError
from budget_sync.spoke import SsmSpokeGateway
from budget_sync_local import management_stack, standins, templates
from budget_sync_local.iam import AccessDenied
from budget_sync_local.organisation import MANAGEMENT_ACCOUNT, LocalOrganisation
from tests.support.local_org import Recorder, local_organisation
from tests.support.operators import budgetctl

# every test: moto or the local organisation (make unit does not import this module)
pytestmark = [pytest.mark.e2e, pytest.mark.aws]

A, B = "111111111111", "222222222222"
OUTSIDER = "444455556666"  # an account outside the organisation


def refusal(error: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return error.value.response["Error"]["Code"], error.value.response["Error"]["Message"]


def test_the_management_accounts_own_principal_cannot_assume_the_spoke_role(local_org: LocalOrganisation):
    # GIVEN the management account's administrator (the default credentials)
    sts = local_org.management.client("sts")
    role = local_org.spokes[A].spoke_role_arn

    # WHEN it assumes BlogBudgetsSpokeRole THEN the trust policy (only the two function roles) refuses
    with pytest.raises(ClientError) as refused:
        sts.assume_role(RoleArn=role, RoleSessionName="admin")
    code, message = refusal(refused)
    assert code == "AccessDenied"
    assert message == (
        f"User: arn:aws:iam::{MANAGEMENT_ACCOUNT}:root is not authorized to perform: sts:AssumeRole "
        f"on resource: {role} because no trust policy allows the sts:AssumeRole action"
    )
    # while the update function's role may (its template role, as Lambda runs it)
    function = local_org.function_session("UpdateFunction").client("sts")
    assert function.assume_role(RoleArn=role, RoleSessionName="fn")["AssumedRoleUser"]["Arn"].endswith("/fn")


def test_a_role_allowed_only_get_parameter_cannot_write_the_parameter(local_org: LocalOrganisation):
    # GIVEN a role in a spoke whose only permission is ssm:GetParameter on the budget parameter
    admin = local_org.session_in(A)
    parameter = local_org.spokes[A].parameter_name
    arn = f"arn:aws:ssm:{local_org.region}:{A}:parameter{parameter}"
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{MANAGEMENT_ACCOUNT}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    iam = admin.client("iam")
    iam.create_role(RoleName="ParameterReader", AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(
        RoleName="ParameterReader",
        PolicyName="read",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "ssm:GetParameter", "Resource": arn}],
            }
        ),
    )
    credentials = local_org.management.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{A}:role/ParameterReader", RoleSessionName="reader"
    )["Credentials"]
    ssm = boto3.client(
        "ssm",
        region_name=local_org.region,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    assert ssm.get_parameter(Name=parameter)["Parameter"]["Value"] == "1000"

    # WHEN it writes the parameter THEN AccessDeniedException, and the value stays
    with pytest.raises(ClientError) as refused:
        ssm.put_parameter(Name=parameter, Value="5", Type="String", Overwrite=True)
    code, message = refusal(refused)
    assert code == "AccessDeniedException"
    assert message == (
        f"User: arn:aws:sts::{A}:assumed-role/ParameterReader/reader is not authorized to perform: "
        f"ssm:PutParameter on resource: {arn} because no identity-based policy allows the ssm:PutParameter action"
    )
    assert local_org.parameter(A) == "1000"


def _in_account(client: Any, account: str) -> Any:
    """Requests of ``client`` served in ``account`` (moto's x-moto-account-id header): that
    account's administrator, with the same default credentials."""

    def header(request: Any, **_: Any) -> None:
        request.headers["x-moto-account-id"] = account

    client.meta.events.register("before-sign", header)
    return client


def test_put_events_on_the_result_bus_from_outside_the_organisation_is_refused(local_org: LocalOrganisation):
    # GIVEN the result bus admits the organisation (OrganizationId, as the local organisation deploys it)
    bus = local_org.stack.result_bus_arn
    entry = {
        "Source": "budget-sync.spoke",
        "DetailType": "Budget Update Result",
        "Detail": "{}",
        "EventBusName": bus,
    }

    # WHEN an account outside the organisation puts an event on it, THEN it is refused
    outsider = _in_account(boto3.client("events", region_name=local_org.region), OUTSIDER)
    with pytest.raises(ClientError) as refused:
        outsider.put_events(Entries=[entry])
    code, message = refusal(refused)
    assert code == "AccessDeniedException"
    assert message == (
        f"User: arn:aws:iam::{OUTSIDER}:root is not authorized to perform: events:PutEvents on resource: "
        f"{bus} because no resource-based policy allows the events:PutEvents action"
    )


def test_a_spoke_the_bus_policy_does_not_admit_never_reports_and_says_why(recorder: Recorder):
    # GIVEN a management stack whose bus admits only account A (SpokeAccountIds, no OrganizationId)
    parameters = {"SpokeAccountIds": A}
    with LocalOrganisation(accounts=(A, B), management_parameters=parameters, observer=recorder) as org:
        # WHEN both get a new value
        org.put(A, 1200)
        org.put(B, 1300)
        org.pipeline.run_until_idle()

        # THEN A's report arrives; B's forwarding rule (its ResultForwardRole) is refused by the bus
        assert org.view(A).status == "APPLIED"
        assert org.view(B).budget_limit == Decimal(1300)  # the spoke did apply it
        assert org.view(B).status == "SENT"  # but no report can reach the management account
        refusals = [s for s in recorder.steps if s.kind == "ignored-event" and s.account == B]
        assert refusals
        assert "forwarding refused" in refusals[0].detail["reason"]
        assert "events:PutEvents" in refusals[0].detail["reason"]
        assert "no resource-based policy allows" in refusals[0].detail["reason"]


def test_a_management_stack_whose_bus_admits_nobody_is_refused_with_the_parameter_to_set():
    with mock_aws(), standins.installed():
        session = boto3.Session(region_name="us-east-1")
        with pytest.raises(management_stack.StackRefused) as refused:
            management_stack.deploy(session, MANAGEMENT_ACCOUNT, "us-east-1", {})
        assert "Set OrganizationId" in str(refused.value)
        assert "SpokeAccountIds" in str(refused.value)
        # nothing was created
        assert session.client("cloudformation").describe_stacks()["Stacks"] == []


def test_budgetctl_status_works_as_the_operators_role_and_not_as_the_administrator(
    local_org: LocalOrganisation, monkeypatch: pytest.MonkeyPatch
):
    # GIVEN a value applied through the pipeline
    local_org.put(A, 1500)
    local_org.pipeline.run_until_idle()

    # WHEN an operator runs budgetctl status as the role the docs tell them to use
    for name, value in local_org.operator_credentials().items():
        monkeypatch.setenv(name, value)
    status = budgetctl("status", "--output", "json")

    # THEN it reads every spoke through the read-only role
    assert status.code == 0, status.stderr
    rows = {r["AccountId"]: r for r in status.json()}
    assert rows[A]["Drift"] == "IN_SYNC"

    # WHEN the management account's administrator (no operator role) runs it, THEN the spoke
    # read role's trust refuses it: no account can be read
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN")
    refused = budgetctl("status", "--output", "json")
    assert refused.code != 0
    assert "sts:AssumeRole" in refused.stdout + refused.stderr


# -- queue, topic and key policies on the paths the code takes (issue 17, item 1) -------------


@contextlib.contextmanager
def _management_template(edit: Callable[[dict[str, Any]], None]) -> Iterator[None]:
    """template-management.yaml as ``edit`` leaves it, for every reader of the template (the
    stack, the functions' specs) until the block exits."""
    template = templates.load(templates.MANAGEMENT_TEMPLATE)
    saved = copy.deepcopy(template)
    edit(template)
    try:
        yield
    finally:
        template.clear()
        template.update(saved)


def _without(logical_id: str, sid: str) -> Callable[[dict[str, Any]], None]:
    """Remove the statement ``sid`` from a role's first policy or a queue/topic policy."""

    def edit(template: dict[str, Any]) -> None:
        properties = template["Resources"][logical_id]["Properties"]
        document = (
            properties["Policies"][0]["PolicyDocument"]
            if "Policies" in properties
            else properties["PolicyDocument"]
        )
        kept = [s for s in document["Statement"] if not (isinstance(s, dict) and s.get("Sid") == sid)]
        # a statement under Fn::If (EncryptNoticesThroughSns) names its Sid one level down
        kept = [
            s
            for s in kept
            if not (isinstance(s, dict) and "Fn::If" in s and s["Fn::If"][1].get("Sid") == sid)
        ]
        assert len(kept) == len(document["Statement"]) - 1, f"{logical_id} has no statement {sid}"
        document["Statement"] = kept

    return edit


def _published(topic_arn: str) -> list[tuple[str, str]]:
    parts = topic_arn.split(":")
    sent = sns_backends[parts[4]][parts[3]].topics[topic_arn].sent_notifications
    return [(str(n[2]), str(n[1])) for n in sent]


def _role_name(org: LocalOrganisation, function_logical_id: str) -> str:
    return org.stack.role_arns[function_logical_id].rsplit("/", 1)[-1]


def test_without_the_notice_roles_publish_statement_a_failure_notice_is_refused_naming_action_and_role():
    # GIVEN a management template whose failure-notice role lacks sns:Publish (the topic's policy
    # admits only CloudWatch, so nothing else allows it)
    output = io.StringIO()
    with (
        _management_template(_without("FailureNoticeRole", "NotifyNewFailures")),
        LocalOrganisation(accounts=(A,), function_output=output, seed=None) as org,
    ):
        # WHEN A fails (an invalid value)
        org.put(A, Decimal(-5))
        org.pipeline.run_until_idle()

        # THEN no notice is published: SNS refused the failure-notice role, named with the action
        assert org.status(A)["Status"] == "FAILED"  # type: ignore[index]
        assert _published(org.stack.physical_ids["AlarmTopic"]) == []
        log = output.getvalue()
        assert "AccessDenied" in log
        assert "is not authorized to perform: sns:Publish" in log
        assert f":assumed-role/{_role_name(org, 'FailureNoticeFunction')}/" in log
        # and the batch, out of retries, was parked as the failure-notice role (its sqs:SendMessage)
        parked = org.management.client("sqs").receive_message(
            QueueUrl=org.stack.result_dead_letter_queue_url, MaxNumberOfMessages=10
        )
        assert parked.get("Messages"), "the unpublished batch is parked in ResultDeadLetterQueue"


def _key_policy(*services: str) -> dict[str, Any]:
    """A customer managed key's policy: the account's IAM policies decide (root principal),
    and each service named may use it for this account."""
    statements: list[dict[str, Any]] = [
        {
            "Sid": "AccountAdministration",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{MANAGEMENT_ACCOUNT}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    ]
    statements += [
        {
            "Sid": f"{service.split('.')[0]}Publishes",
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": ["kms:GenerateDataKey*", "kms:Decrypt"],
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceAccount": MANAGEMENT_ACCOUNT}},
        }
        for service in services
    ]
    return {"Version": "2012-10-17", "Statement": statements}


@contextlib.contextmanager
def _encrypted_alarm_topic(
    key_policy: dict[str, Any], edit: Callable[[dict[str, Any]], None] = lambda _: None
) -> Iterator[tuple[LocalOrganisation, str, io.StringIO]]:
    """A local organisation whose alarms and notices go to an existing topic (AlarmTopicArn)
    encrypted with a customer managed key (AlarmTopicKmsKeyArn) that has ``key_policy``; the
    topic's policy admits CloudWatch alarms of the account."""
    region = "us-east-1"
    with mock_aws():
        key = boto3.client("kms", region_name=region).create_key(Policy=json.dumps(key_policy))["KeyMetadata"]
        sns = boto3.client("sns", region_name=region)
        topic = sns.create_topic(Name="ops-alarms", Attributes={"KmsMasterKeyId": key["KeyId"]})["TopicArn"]
        sns.set_topic_attributes(
            TopicArn=topic,
            AttributeName="Policy",
            AttributeValue=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "cloudwatch.amazonaws.com"},
                            "Action": "sns:Publish",
                            "Resource": topic,
                            "Condition": {"StringEquals": {"aws:SourceAccount": MANAGEMENT_ACCOUNT}},
                        }
                    ],
                }
            ),
        )
        output = io.StringIO()
        parameters = {"AlarmTopicArn": topic, "AlarmTopicKmsKeyArn": key["Arn"]}
        with (
            _management_template(edit),
            LocalOrganisation(
                accounts=(A,),
                management_parameters=parameters,
                function_output=output,
                start_mock=False,
                seed=None,
            ) as org,
        ):
            yield org, topic, output


def test_failure_notices_and_alarms_reach_a_topic_encrypted_with_a_key_that_admits_them():
    # GIVEN the shipped template and a key whose policy delegates to IAM and admits CloudWatch
    with _encrypted_alarm_topic(_key_policy("cloudwatch.amazonaws.com")) as (org, topic, _):
        # WHEN A fails THEN its notice is published (the result role's kms statement, via SNS)
        org.put(A, Decimal(-5))
        org.pipeline.run_until_idle()
        (notice,) = _published(topic)
        assert A in notice[0]

        # WHEN an alarm fires THEN CloudWatch publishes to the topic (topic and key policy admit it)
        assert org.fire_alarm("ResultDeadLetterAlarm") == [topic]
        assert len(_published(topic)) == 2


def test_without_the_notice_roles_kms_statement_the_notice_is_refused_by_the_key():
    # GIVEN the key delegates to IAM, and the template's failure-notice role lacks
    # EncryptNoticesThroughSns
    edit = _without("FailureNoticeRole", "EncryptNoticesThroughSns")
    with _encrypted_alarm_topic(_key_policy("cloudwatch.amazonaws.com"), edit) as (org, topic, output):
        # WHEN A fails
        org.put(A, Decimal(-5))
        org.pipeline.run_until_idle()

        # THEN SNS could not use the key for the failure-notice role: no notice, AccessDenied
        # naming both
        assert _published(topic) == []
        log = output.getvalue()
        assert "is not authorized to perform: kms:GenerateDataKey" in log
        assert f":assumed-role/{_role_name(org, 'FailureNoticeFunction')}/" in log


def test_an_alarm_cannot_publish_to_a_topic_whose_key_policy_does_not_admit_cloudwatch():
    # GIVEN a key whose policy delegates to IAM only: CloudWatch is a service, not an IAM principal
    with _encrypted_alarm_topic(_key_policy()) as (org, topic, _):
        # WHEN an alarm fires THEN CloudWatch may not use the key: AWS's documented pitfall
        with pytest.raises(AccessDenied) as refused:
            org.fire_alarm("ResultErrorsAlarm")
        assert str(refused.value).startswith(
            "User: cloudwatch.amazonaws.com is not authorized to perform: kms:GenerateDataKey on resource: "
        )
        assert _published(topic) == []


def test_the_alarm_topic_admits_cloudwatch_alarms_only_through_its_policy():
    # GIVEN the shipped template: WHEN an alarm fires THEN CloudWatch publishes to the alarm topic
    with local_organisation(accounts=(A,), function_output=io.StringIO(), seed=None) as org:
        topic = org.stack.physical_ids["AlarmTopic"]
        assert org.fire_alarm("OnFailureQueueAlarm") == [topic]
        (message,) = _published(topic)
        assert "OnFailureQueueAlarm" in message[0] or "OnFailureQueueAlarm" in message[1]

    # GIVEN the topic policy without its CloudWatch statement
    with (
        _management_template(_without("AlarmTopicPolicy", "CloudWatchAlarmsOfThisAccount")),
        LocalOrganisation(accounts=(A,), function_output=io.StringIO(), seed=None) as org,
    ):
        # WHEN an alarm fires THEN SNS refuses CloudWatch, naming the action and the service
        topic = org.stack.physical_ids["AlarmTopic"]
        with pytest.raises(AccessDenied) as refused:
            org.fire_alarm("OnFailureQueueAlarm")
        assert str(refused.value) == (
            f"User: cloudwatch.amazonaws.com is not authorized to perform: sns:Publish on resource: {topic} "
            "because no resource-based policy allows the sns:Publish action"
        )


def test_without_the_stream_roles_send_statement_a_parked_batch_is_refused_by_sqs(
    monkeypatch: pytest.MonkeyPatch,
):
    # GIVEN the update function's role without sqs:SendMessage on its on-failure queue, no retries
    with (
        _management_template(_without("FunctionRole", "SendFailedBatches")),
        LocalOrganisation(
            accounts=(A,),
            management_parameters={"StreamMaximumRetryAttempts": "0"},
            function_output=io.StringIO(),
            seed=None,
        ) as org,
    ):
        # WHEN A's write fails transiently and its batch goes to the on-failure destination
        def throttled(self: SsmSpokeGateway, account_id: str, amount_text: str) -> int:
            raise TransientError(f"account {account_id}: throttled")

        monkeypatch.setattr(SsmSpokeGateway, "put_budget_value", throttled)
        org.put(A, Decimal("4321"))

        # THEN the mapping's send (as the function's role) is refused, naming action and role
        with pytest.raises(ClientError) as refused:
            org.pipeline.run_until_idle()
        code, message = refusal(refused)
        assert code.startswith("AccessDenied")  # SQS's JSON protocol: AccessDeniedException
        assert "is not authorized to perform: sqs:SendMessage" in message
        assert f":assumed-role/{_role_name(org, 'UpdateFunction')}/" in message


def test_without_the_result_roles_send_statement_lambdas_on_failure_destination_is_refused(
    monkeypatch: pytest.MonkeyPatch,
):
    # (The shipped template's path: test_failure_notices, "...the event is parked, not lost".)
    from budget_sync.results import ResultStore

    def unavailable(self: ResultStore, result: object) -> None:
        raise TransientError("status table unavailable")

    # GIVEN the result role without sqs:SendMessage on ResultDeadLetterQueue
    with (
        _management_template(_without("ResultRole", "ParkFailedInvocations")),
        LocalOrganisation(accounts=(A,), function_output=io.StringIO(), seed=None) as org,
    ):
        # WHEN a spoke's report cannot be recorded, after Lambda's retries
        monkeypatch.setattr(ResultStore, "record", unavailable)
        org.put(A, 700)
        org.pipeline.run_until_idle()

        # THEN Lambda's send to the on-failure destination, as the function's role, is refused
        refused = [e for e in org.pipeline.errors if "sqs:SendMessage" in e]
        assert refused, org.pipeline.errors
        assert "AccessDenied" in refused[0]
        assert f":assumed-role/{_role_name(org, 'ResultFunction')}/" in refused[0]
        assert (
            org.management.client("sqs")
            .receive_message(QueueUrl=org.stack.result_dead_letter_queue_url, MaxNumberOfMessages=10)
            .get("Messages", [])
            == []
        )


def test_the_org_events_forwarding_rule_puts_events_as_its_role_and_is_refused_without_its_policy():
    # (The shipped template's path: test_enrolment, "...reach it only through the forwarding".)
    # GIVEN template-org-events.yaml's ForwardRole without its events:PutEvents statement
    template = templates.load(templates.ORG_EVENTS_TEMPLATE)
    saved = copy.deepcopy(template)
    template["Resources"]["ForwardRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"] = []
    recorder = Recorder()
    try:
        with LocalOrganisation(
            (A,),
            region="eu-west-1",
            observer=recorder,
            function_output=io.StringIO(),
            forward_org_events=True,
            seed=None,
        ) as org:
            # WHEN an account is created in us-east-1's Organizations events
            org.create_account("444444444444", "Sandbox")
            org.enrolment.step()

            # THEN EventBridge's PutEvents as the forwarding role is refused: the resolver never sees it
            reasons = [s.detail["reason"] for s in recorder.steps if s.kind == "ignored-event"]
            refused = [r for r in reasons if r.startswith("forwarding refused")]
            assert len(refused) == 2, reasons
            assert "is not authorized to perform: events:PutEvents on resource: " in refused[0]
            assert f"arn:aws:events:eu-west-1:{MANAGEMENT_ACCOUNT}:event-bus/default" in refused[0]
            assert re.search(r":assumed-role/[^/]*ForwardRole[^/]*/", refused[0]), refused[0]
            assert not [s for s in recorder.steps if s.kind == "resolver"]
    finally:
        template.clear()
        template.update(saved)


def _spoke_template_without(logical_id: str, sid: str) -> str:
    """template-spoke.yaml (as JSON text) without the statement ``sid`` of a key or topic policy."""
    template = copy.deepcopy(templates.load(templates.SPOKE_TEMPLATE))
    properties = template["Resources"][logical_id]["Properties"]
    document = properties.get("KeyPolicy") or properties["PolicyDocument"]
    kept = [s for s in document["Statement"] if s.get("Sid") != sid]
    assert len(kept) == len(document["Statement"]) - 1, f"{logical_id} has no statement {sid}"
    document["Statement"] = kept
    return json.dumps(template)


@pytest.mark.parametrize(
    ("removed", "action"),
    [
        (None, None),
        (("AlertTopicKey", "BudgetsOfThisAccountPublish"), "kms:GenerateDataKey"),
        (("AlertTopicPolicy", "BudgetsOfThisAccountPublish"), "sns:Publish"),
    ],
)
def test_budget_alerts_reach_the_spokes_encrypted_topic_only_through_its_topic_and_key_policies(
    removed: tuple[str, str] | None, action: str | None
):
    # GIVEN spokes with SnsTopicMode Create (a topic encrypted with the stack's own key), shipped
    # or with one statement removed, and A's spend past its first threshold
    text = _spoke_template_without(*removed) if removed else None
    with LocalOrganisation(
        accounts=(A,),
        spoke_parameters={"SnsTopicMode": "Create"},
        spoke_template_text=text,
        function_output=io.StringIO(),
        seed=None,
    ) as org:
        topic = org.spokes[A].alert_topic_arn
        assert topic is not None
        org.set_spend(A, Decimal(1500), Decimal(1600))

        # WHEN AWS Budgets sends the alerts that fire
        if removed is None:
            # THEN the shipped template admits it: every firing alert reaches the topic
            assert topic in org.send_budget_alerts(A)
            assert _published(topic)
        else:
            # THEN it is refused, naming the action and the service
            with pytest.raises(AccessDenied) as refused:
                org.send_budget_alerts(A)
            assert str(refused.value).startswith(
                f"User: budgets.amazonaws.com is not authorized to perform: {action} on resource: "
            )
            assert _published(topic) == []
