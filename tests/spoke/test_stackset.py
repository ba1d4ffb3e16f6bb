"""budgetctl.stackset against moto's StackSets API; the arguments it sends are recorded
(moto ignores AutoDeployment, ManagedExecution and OperationPreferences, so the test
asserts what is sent rather than what moto keeps)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from budgetctl import stackset
from budgetctl.stackset import Rollout, StackSetError
from tests.support.lazy import lazy
from tests.support.stackset_calls import MINIMAL_TEMPLATE, REGION, recorded

if TYPE_CHECKING:
    import moto
else:  # moto: imported by the first test that uses it, not at collection (make unit)
    moto = lazy("moto")

PARAMETERS = {"ManagementAccountId": "123456789012", "AlertEmail1": "finops@example.com"}


@pytest.fixture
def organisation() -> Iterator[tuple[Any, list[str]]]:
    with moto.mock_aws():
        org = boto3.client("organizations", region_name=REGION)
        org.create_organization(FeatureSet="ALL")
        root = org.list_roots()["Roots"][0]["Id"]
        ous = [
            org.create_organizational_unit(ParentId=root, Name=n)["OrganizationalUnit"]["Id"]
            for n in ("a", "b")
        ]
        client = boto3.client("cloudformation", region_name=REGION)
        yield client, ous


@pytest.mark.aws
def test_given_no_stack_set_when_deploying_to_ous_then_a_service_managed_one_is_created_with_instances(
    organisation: tuple[Any, list[str]],
):
    client, ous = organisation
    calls = recorded(client)
    rollout = Rollout(region=REGION, parameters=PARAMETERS, ous=ous)

    result = stackset.deploy(client, rollout, stackset.TEMPLATE.read_text(), sleep=lambda _: None)

    assert result.created
    assert result.targets == tuple(ous)
    (create,) = calls.named("CreateStackSet")
    assert create["StackSetName"] == "budget-sync-spoke"
    assert create["PermissionModel"] == "SERVICE_MANAGED"
    assert create["AutoDeployment"] == {"Enabled": True, "RetainStacksOnAccountRemoval": True}
    assert create["Capabilities"] == ["CAPABILITY_NAMED_IAM"]
    assert create["ManagedExecution"] == {"Active": True}
    assert create["Parameters"] == [
        {"ParameterKey": "ManagementAccountId", "ParameterValue": "123456789012"},
        {"ParameterKey": "AlertEmail1", "ParameterValue": "finops@example.com"},
    ]
    assert create["TemplateBody"] == stackset.TEMPLATE.read_text()
    (instances,) = calls.named("CreateStackInstances")
    assert instances["Regions"] == [REGION]  # one region: roles and budgets are global
    assert instances["DeploymentTargets"] == {"OrganizationalUnitIds": ous}
    assert instances["OperationPreferences"] == {
        "FailureTolerancePercentage": 10,
        "MaxConcurrentPercentage": 25,
        "RegionConcurrencyType": "SEQUENTIAL",
    }
    described = client.describe_stack_set(StackSetName="budget-sync-spoke")["StackSet"]
    assert described["PermissionModel"] == "SERVICE_MANAGED"


@pytest.mark.aws
def test_given_an_existing_stack_set_then_it_is_updated_and_instances_cover_every_ou(
    organisation: tuple[Any, list[str]],
):
    client, ous = organisation
    first, second = ous
    template = stackset.TEMPLATE.read_text()
    stackset.deploy(
        client, Rollout(region=REGION, parameters=PARAMETERS, ous=[first]), template, sleep=lambda _: None
    )
    calls = recorded(client)

    result = stackset.deploy(
        client,
        Rollout(region=REGION, parameters={**PARAMETERS, "InitialBudgetAmount": "500"}, ous=[first, second]),
        template,
        sleep=lambda _: None,
    )

    assert not result.created
    assert calls.named("CreateStackSet") == []
    (update,) = calls.named("UpdateStackSet")
    assert "PermissionModel" not in update
    assert {"ParameterKey": "InitialBudgetAmount", "ParameterValue": "500"} in update["Parameters"]
    assert update["OperationPreferences"]["FailureTolerancePercentage"] == 10
    (instances,) = calls.named("CreateStackInstances")
    assert instances["DeploymentTargets"] == {"OrganizationalUnitIds": [first, second]}
    assert instances["Regions"] == [REGION]
    assert len(result.operation_ids) == 2  # the update, then the instances, one after the other


@pytest.mark.aws
def test_self_managed_targets_accounts_with_the_administration_and_execution_roles(
    organisation: tuple[Any, list[str]],
):
    client, _ = organisation
    calls = recorded(client)
    rollout = Rollout(region=REGION, parameters=PARAMETERS, accounts=["111111111111"], self_managed=True)

    stackset.deploy(
        client,
        rollout,
        # moto creates the instance's stack for real and names the DLQ after the long
        # StackSet stack name, past SQS's 80 characters; AWS shortens it. A small template
        # is enough to check what is sent.
        MINIMAL_TEMPLATE,
        admin_role_arn="arn:aws:iam::123456789012:role/AWSCloudFormationStackSetAdministrationRole",
        sleep=lambda _: None,
    )

    (create,) = calls.named("CreateStackSet")
    assert create["PermissionModel"] == "SELF_MANAGED"
    assert create["AdministrationRoleARN"].endswith(":role/AWSCloudFormationStackSetAdministrationRole")
    assert create["ExecutionRoleName"] == "AWSCloudFormationStackSetExecutionRole"
    assert "AutoDeployment" not in create
    (instances,) = calls.named("CreateStackInstances")
    assert instances["Accounts"] == ["111111111111"]
    assert "DeploymentTargets" not in instances


def test_a_failed_operation_is_an_error_not_a_success():
    class Client:
        def describe_stack_set_operation(self, **_: Any) -> dict[str, Any]:
            return {"StackSetOperation": {"Status": "FAILED", "StatusReason": "2 accounts failed"}}

    rollout = Rollout(region=REGION, parameters=PARAMETERS, ous=["ou-abcd-12345678"])
    with pytest.raises(StackSetError, match="FAILED: 2 accounts failed"):
        stackset.wait(Client(), rollout, "op-1", sleep=lambda _: None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--region", REGION], "needs --ous"),
        (["--region", REGION, "--self-managed", "--ous", "ou-a"], "needs --accounts"),
        (["--region", REGION, "--ous", "ou-a", "--parameter-overrides", "NoEquals"], "not Key=Value"),
    ],
)
def test_the_command_refuses_incomplete_rollouts(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
):
    assert stackset.main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.aws
def test_dry_run_prints_the_aws_cli_commands_including_the_management_accounts_plain_stack(
    organisation: tuple[Any, list[str]], capsys: pytest.CaptureFixture[str]
):
    code = stackset.main(
        [
            "--ous",
            "ou-abcd-11111111",
            "--region",
            REGION,
            "--parameter-overrides",
            "ManagementAccountId=123456789012",
            "AlertEmail1=finops@example.com",
            "--dry-run",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "aws cloudformation create-stack-set --stack-set-name budget-sync-spoke" in out
    assert "--permission-model SERVICE_MANAGED" in out
    assert "--auto-deployment Enabled=true,RetainStacksOnAccountRemoval=true" in out
    assert "--capabilities CAPABILITY_NAMED_IAM" in out
    assert "create-stack-instances" in out
    assert "--deployment-targets OrganizationalUnitIds=ou-abcd-11111111 --regions eu-west-1" in out
    assert "aws cloudformation deploy --stack-name budget-sync-spoke" in out
    assert "ManagementAccountId=123456789012" in out
