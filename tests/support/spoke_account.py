"""A spoke account on moto: template-spoke.yaml deployed by the local organisation's
spoke_stack, with the stand-ins for what moto lacks (budget_sync_local.standins)."""

from __future__ import annotations

import ast
import json
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import boto3
import pytest

from tests.support.moto_org import assume as assume_role
from tests.support.moto_org import session_in

if TYPE_CHECKING:  # moto, the stand-ins and the spoke stack: not at collection (make unit)
    from budget_sync_local import standins
    from budget_sync_local.spoke_stack import SpokeStack

REGION = "us-east-1"
MANAGEMENT = "123456789012"
SPOKE = "111111111111"


def assume(role_arn: str) -> boto3.Session:
    """What EventBridge does with the target's RoleArn (the role must exist: stand-in)."""
    return assume_role(role_arn, "budget-sync-automation")


@dataclass
class Spoke:
    stack: SpokeStack
    session: boto3.Session
    stand_ins: standins.StandIns
    events: list[dict[str, Any]] = field(default_factory=list)

    def put(self, value: str) -> None:
        """What the update function does with the spoke role: write the parameter."""
        self.session.client("ssm").put_parameter(Name=self.stack.parameter_name, Value=value, Overwrite=True)

    def budget(self) -> dict[str, Any]:
        budget: dict[str, Any] = self.session.client("budgets").describe_budget(
            AccountId=self.stack.account, BudgetName=self.stack.budget_name
        )["Budget"]
        return budget

    def notifications(self) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
        from budget_sync_local import standins

        return standins.notifications_with_subscribers(self.stack.account, self.stack.budget_name)

    def deliver(self) -> list[standins.AutomationResult | None]:
        """EventBridge: every event so far to the rule and its target, in order."""
        delivered, self.events[:] = list(self.events), []
        return [self.stack.handle(event, assume) for event in delivered]


#: What ``deploy_spoke`` is: deploy template-spoke.yaml into an account with these parameters.
Deploy = Callable[..., Spoke]


def _statements(document: dict[str, Any] | str) -> list[dict[str, Any]]:
    if isinstance(document, str):
        # moto's CloudFormation stores an inline policy as the repr of the dict it resolved
        text = unquote(document)
        document = json.loads(text) if text.startswith('{"') else ast.literal_eval(text)
    statements = document["Statement"]
    return statements if isinstance(statements, list) else [statements]


def _actions(statement: dict[str, Any]) -> set[str]:
    actions = statement["Action"]
    return {actions} if isinstance(actions, str) else set(actions)


def _role(spoke: Spoke, name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    iam = spoke.session.client("iam")
    trust = iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"]
    inline = [
        s
        for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]
        for s in _statements(iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"])
    ]
    return trust, inline


@pytest.fixture
def moto_with_standins() -> Iterator[standins.StandIns]:
    from moto import mock_aws

    from budget_sync_local import standins

    with warnings.catch_warnings():
        # moto's CloudFormation warns about each resource type it skips (the budget, policies)
        warnings.simplefilter("ignore", UserWarning)
        with mock_aws(), standins.installed() as stand_ins:
            yield stand_ins


@pytest.fixture
def deploy_spoke(moto_with_standins: standins.StandIns) -> Callable[..., Spoke]:
    from budget_sync_local import spoke_stack

    def deploy(account: str = SPOKE, **parameters: str) -> Spoke:
        session = session_in(account)
        stack = spoke_stack.deploy(session, REGION, {"ManagementAccountId": MANAGEMENT, **parameters})
        spoke = Spoke(stack, session, moto_with_standins)
        moto_with_standins.subscribe(spoke.events.append)  # after the stack's own Create event
        return spoke

    return deploy


@pytest.fixture
def spoke(deploy_spoke: Callable[..., Spoke]) -> Spoke:
    return deploy_spoke(AlertEmail1="finance@example.com", AlertEmail2="owner@example.com")
