"""Operator reading has its own least-privilege role, and role names work under IAM paths
(IAM Identity Center's roles live under /aws-reserved/sso.amazonaws.com/). The template is
deployed on moto; the ARN patterns are matched as IAM's ArnLike does (``*`` spans ``/``)."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase

import pytest

from budget_sync_local.templates import SPOKE_TEMPLATE, load
from tests.support.spoke_account import MANAGEMENT, REGION, SPOKE, Deploy, _actions, _role, _statements

TEMPLATE = load(SPOKE_TEMPLATE)
SSO_NAME = "AWSReservedSSO_BudgetReaders_0123456789abcdef"
SSO_ROLE = f"arn:aws:iam::{MANAGEMENT}:role/aws-reserved/sso.amazonaws.com/eu-west-1/{SSO_NAME}"


def arn_like(arn: str, patterns: list[str]) -> bool:
    """IAM's ArnLike: ``*`` matches any run of characters (slashes included), ``?`` one."""
    return any(fnmatchcase(arn, pattern) for pattern in patterns)


def allowed_by_pattern(parameter: str, value: str) -> bool:
    pattern = TEMPLATE["Parameters"][parameter]["AllowedPattern"]
    return all(re.fullmatch(pattern, item) for item in value.split(","))


@pytest.mark.parametrize(
    "value",
    [SSO_NAME, f"aws-reserved/sso.amazonaws.com/{SSO_NAME}", f"FinanceOps,{SSO_NAME}", ""],
)
def test_operator_role_names_admit_identity_center_names_and_paths(value: str):
    assert allowed_by_pattern("OperatorRoleNames", value)


@pytest.mark.parametrize("value", ["/aws-reserved/x", "a b", "role*", "x/"])
def test_operator_role_names_still_refuse_what_is_no_role_name(value: str):
    assert not allowed_by_pattern("OperatorRoleNames", value)


def test_given_an_identity_center_operator_when_it_reads_then_only_the_read_role_trusts_it(
    deploy_spoke: Deploy,
):
    # GIVEN a spoke whose operator is an Identity Center permission set's role (a path)
    spoke = deploy_spoke(OperatorRoleNames=f"FinanceOps,{SSO_NAME}")

    # WHEN the trust policies are read back
    read_trust, read_policy = _role(spoke, "BlogBudgetsSpokeReadRole")
    write_trust, _ = _role(spoke, "BlogBudgetsSpokeRole")
    (read,) = _statements(read_trust)
    (write,) = _statements(write_trust)
    read_patterns = read["Condition"]["ArnLike"]["aws:PrincipalArn"]
    write_patterns = write["Condition"]["ArnLike"]["aws:PrincipalArn"]

    # THEN the pathed SSO role and the plain one match the read role, not the write role
    assert arn_like(SSO_ROLE, read_patterns)
    assert arn_like(f"arn:aws:iam::{MANAGEMENT}:role/FinanceOps", read_patterns)
    assert not arn_like(SSO_ROLE, write_patterns)
    assert not arn_like(f"arn:aws:iam::{MANAGEMENT}:role/FinanceOps", write_patterns)
    # AND a name that merely ends like it does not match
    assert not arn_like(f"arn:aws:iam::{MANAGEMENT}:role/NotFinanceOps", read_patterns)
    assert not arn_like(f"arn:aws:iam::{MANAGEMENT}:role/x/{SSO_NAME}-other", read_patterns)
    # AND the read role can read the parameter and the alert defaults (budgetctl status compares
    # the budget's alerts with them) and view the budget, nothing else
    allowed = {(action, s["Resource"]) for s in read_policy for action in _actions(s)}
    assert all(s["Effect"] == "Allow" for s in read_policy)
    assert allowed == {
        ("ssm:GetParameter", f"arn:aws:ssm:{REGION}:{SPOKE}:parameter/BlogBudgets/CostThreshold"),
        ("ssm:GetParameter", f"arn:aws:ssm:{REGION}:{SPOKE}:parameter/BlogBudgets/AlertDefaults"),
        ("budgets:ViewBudget", f"arn:aws:budgets::{SPOKE}:budget/SpokeAccountBudget"),
    }


def test_without_operator_roles_there_is_no_read_role(deploy_spoke: Deploy):
    spoke = deploy_spoke(OperatorRoleNames="")  # the local organisation's default names one
    roles = {r["RoleName"] for r in spoke.session.client("iam").list_roles()["Roles"]}
    assert "BlogBudgetsSpokeRole" in roles
    assert "BlogBudgetsSpokeReadRole" not in roles


def test_the_budget_action_may_attach_its_policy_to_the_named_roles_under_any_path(deploy_spoke: Deploy):
    # GIVEN a Budget Action on a plain role and an Identity Center role, deployed
    spoke = deploy_spoke(BudgetActionEnabled="true", BudgetActionRoleNames=f"Developers,{SSO_NAME}")
    iam = spoke.session.client("iam")
    (name,) = [r["RoleName"] for r in iam.list_roles()["Roles"] if "BudgetActionRole" in r["RoleName"]]
    _, (statement,) = _role(spoke, name)

    # THEN AttachRolePolicy covers both roles wherever they live, and no other role
    assert _actions(statement) == {"iam:AttachRolePolicy", "iam:DetachRolePolicy"}
    resources = statement["Resource"]
    assert arn_like(f"arn:aws:iam::{SPOKE}:role/Developers", resources)
    assert arn_like(f"arn:aws:iam::{SPOKE}:role/aws-reserved/sso.amazonaws.com/{SSO_NAME}", resources)
    assert not arn_like(f"arn:aws:iam::{SPOKE}:role/Admin", resources)
    assert not arn_like(f"arn:aws:iam::{SPOKE}:role/team/Admin", resources)
