"""The local organisation refuses what AWS's IAM refuses: each function runs as its template
role, and trust, identity and resource policies decide every call (issue 17, "Done when")."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from budget_sync_local import management_stack, standins
from budget_sync_local.organisation import MANAGEMENT_ACCOUNT, LocalOrganisation
from tests.e2e.conftest import Recorder
from tests.ops.conftest import budgetctl

pytestmark = pytest.mark.e2e

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


@pytest.mark.aws
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


@pytest.mark.aws
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
