"""``python -m budgetctl.stackset`` (``make stackset``) as typed, against moto's StackSets:
an update keeps every parameter not given (UsePreviousValue), the changes are printed first
(also with --dry-run), and an operation that SUCCEEDED with failed instances lists each
failed account with its reason and exits 1. moto reports no per-instance failure: the
CloudFormation stand-in (budget_sync_local.standins.cloudformation) declares one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from budget_sync_local import standins
from budgetctl import stackset
from tests.support.stackset_calls import MINIMAL_TEMPLATE, REGION, Recorder, recorded

pytestmark = pytest.mark.aws

FIRST = [
    "ManagementAccountId=123456789012",
    "AlertEmail1=finops@example.com",
    "OrganizationId=o-abcdefghij",
    "OperatorRoleNames=FinanceOps",
    "SnsTopicMode=Create",
    "InitialBudgetAmount=2500",
]
README = ["ManagementAccountId=123456789012", "AlertEmail1=finops@example.com"]


@pytest.fixture
def ou() -> Iterator[str]:
    with mock_aws(), standins.installed():
        org = boto3.client("organizations", region_name=REGION)
        org.create_organization(FeatureSet="ALL")
        root = org.list_roots()["Roots"][0]["Id"]
        yield org.create_organizational_unit(ParentId=root, Name="spokes")["OrganizationalUnit"]["Id"]


def rollout(ou: str, *overrides: str, dry_run: bool = False) -> int:
    argv = ["--ous", ou, "--region", REGION, "--parameter-overrides", *overrides]
    return stackset.main([*argv, "--dry-run"] if dry_run else argv)


def stack_set_parameters() -> dict[str, str]:
    client = boto3.client("cloudformation", region_name=REGION)
    stack_set = client.describe_stack_set(StackSetName=stackset.STACK_SET_NAME)["StackSet"]
    return {p["ParameterKey"]: p["ParameterValue"] for p in stack_set["Parameters"]}


def test_given_a_first_rollout_when_the_readme_command_runs_again_then_no_parameter_is_reset(
    ou: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    # GIVEN a first rollout that set the organisation, operators, topic mode and amount
    assert rollout(ou, *FIRST) == 0
    capsys.readouterr()
    recorders: list[Recorder] = []
    original = boto3.Session.client

    def client(self: boto3.Session, *args: Any, **kwargs: Any) -> Any:
        made = original(self, *args, **kwargs)
        recorders.append(recorded(made))
        return made

    monkeypatch.setattr(boto3.Session, "client", client)

    # WHEN the README's command runs again with only the two required parameters
    code = rollout(ou, *README, "AlertEmail2=ops@example.com")

    # THEN every parameter not given keeps its value, sent as UsePreviousValue
    assert code == 0
    kept = stack_set_parameters()
    assert kept["OrganizationId"] == "o-abcdefghij"
    assert kept["OperatorRoleNames"] == "FinanceOps"
    assert kept["SnsTopicMode"] == "Create"
    assert kept["InitialBudgetAmount"] == "2500"
    assert kept["AlertEmail2"] == "ops@example.com"
    (update,) = [p for r in recorders for p in r.named("UpdateStackSet")]
    assert {"ParameterKey": "OrganizationId", "UsePreviousValue": True} in update["Parameters"]
    assert {"ParameterKey": "AlertEmail2", "ParameterValue": "ops@example.com"} in update["Parameters"]
    # AND the changes were printed before the update
    out = capsys.readouterr().out
    assert "OrganizationId: 'o-abcdefghij' (kept)" in out
    assert "InitialBudgetAmount: '2500' (kept)" in out
    assert "AlertEmail2: '' -> 'ops@example.com'" in out or "AlertEmail2: 'ops@example.com' (new)" in out
    assert out.index("parameters (update of StackSet budget-sync-spoke)") < out.index(
        "StackSet budget-sync-spoke updated"
    )


def test_dry_run_on_an_existing_stack_set_prints_the_changes_and_changes_nothing(
    ou: str, capsys: pytest.CaptureFixture[str]
):
    assert rollout(ou, *FIRST) == 0
    capsys.readouterr()

    code = rollout(ou, *README, "InitialBudgetAmount=3000", dry_run=True)

    assert code == 0
    out = capsys.readouterr().out
    assert "InitialBudgetAmount: '2500' -> '3000'" in out
    assert "OrganizationId: 'o-abcdefghij' (kept)" in out
    assert "UsePreviousValue=true: " in out
    assert "OrganizationId" in out.split("UsePreviousValue=true: ")[1]
    assert stack_set_parameters()["InitialBudgetAmount"] == "2500"  # nothing applied


def test_a_parameter_the_template_does_not_have_is_refused_before_any_change(
    ou: str, capsys: pytest.CaptureFixture[str]
):
    assert rollout(ou, *README, "OrganisationId=o-abcdefghij") == 2
    assert "no parameter(s) OrganisationId" in capsys.readouterr().err


def test_given_an_operation_that_succeeded_with_failed_instances_then_each_is_listed_and_exit_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    template = tmp_path / "template.json"
    template.write_text(MINIMAL_TEMPLATE)
    monkeypatch.setattr(stackset, "TEMPLATE", template)  # moto creates instances for real
    with mock_aws(), standins.installed():
        # GIVEN three accounts, two of whose instances fail within the failure tolerance
        standins.fail_stack_instance("222222222222", REGION, "Resource handler returned message: denied")
        standins.fail_stack_instance("333333333333", REGION, "Account gate check failed")

        # WHEN the rollout runs
        code = stackset.main(
            [
                "--self-managed",
                "--accounts",
                "111111111111",
                "222222222222",
                "333333333333",
                "--region",
                REGION,
                "--parameter-overrides",
                *README,
            ]
        )

    # THEN it exits 1 and names every failed account with its reason, and not the good one
    assert code == 1
    err = capsys.readouterr().err
    assert "SUCCEEDED but 2 stack instance(s) failed" in err
    assert f"222222222222 {REGION}: Resource handler returned message: denied" in err
    assert f"333333333333 {REGION}: Account gate check failed" in err
    assert "111111111111" not in err


def test_an_aws_error_is_one_line_and_exit_4(ou: str, capsys: pytest.CaptureFixture[str]):
    # GIVEN a StackSet name CloudFormation refuses
    code = stackset.main(
        ["--ous", ou, "--region", REGION, "--stack-set-name", "not valid!", "--parameter-overrides", *README]
    )

    assert code == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("stackset: ")
