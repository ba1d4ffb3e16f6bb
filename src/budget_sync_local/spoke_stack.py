"""template-spoke.yaml in one account of the local organisation (moto).

``deploy`` creates the template as a CloudFormation stack on moto, with the parameters
given (the same ones a StackSet or ``aws cloudformation deploy`` would pass). moto's
CloudFormation creates the roles, the parameter, the Automation document, the rule and
its target, the dead-letter queue and (SnsTopicMode=Create) the KMS key and the topic.
It skips ``AWS::Budgets::Budget``: the budget is created here through the Budgets API
from the template's own resolved properties (NotificationsWithSubscribers included).
The queue and topic policies (which moto's CloudFormation skips) are applied by
``standins.resource_policies`` and evaluated by ``standins.authorisation``. Skipped and not
emulated: ``AWS::Budgets::BudgetsAction`` (moto has no Budget Actions API).

``SpokeStack.handle`` is the rule and its target: an event that matches the rule's
pattern (read back from moto, as CloudFormation created it) starts the Automation
document (the template's own content) with the target's Input, as the automation role.
``SpokeStack.forward`` is the two result-forwarding rules: the event buses (in the
management account) that an event matching their patterns is sent to.

``update`` is UpdateStack: moto's CloudFormation updates what it creates, and the budget is
treated as CloudFormation treats ``AWS::Budgets::Budget``: a change of a create-only property
(``BudgetName``, ``NotificationsWithSubscribers``) needs a replacement, which fails because
the replacement would have the same name ("already exists"), and the update rolls back
with nothing changed; other budget properties are updated in place (UpdateBudget).

Speed (the local organisation provisions up to 1,000 accounts): the template is sent as
JSON (``standins`` lets moto's CloudFormation parse JSON with the json module), and all
clients are built from one shared botocore session with each account's credentials.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import boto3

from budget_sync_local.standins import AutomationResult, pattern_matches, run_automation
from budget_sync_local.templates import SPOKE_TEMPLATE, Resolver, TemplateError, load, load_text

STACK_NAME = "budget-sync-spoke"
#: What the local organisation passes when the caller does not (the template requires them).
#: An operator role, so that the read-only role operators use (budgetctl status) exists.
LOCAL_DEFAULTS = {
    "ManagementAccountId": "123456789012",
    "AlertEmail1": "budget-owner@example.com",
    "OperatorRoleNames": "BudgetSyncOperator",
}
#: Resources moto's CloudFormation skips. The budget is created from its properties here.
CREATED_HERE = ("AWS::Budgets::Budget",)
#: AWS::Budgets::Budget properties whose change requires a replacement (CloudFormation reference).
CREATE_ONLY = ("NotificationsWithSubscribers",)
NOT_EMULATED = ("AWS::Budgets::BudgetsAction",)


class SpokeStackError(Exception):
    pass


@dataclass(frozen=True)
class SpokeStack:
    """One account's spoke stack: what the pipeline and the tests need to know of it."""

    account: str
    region: str
    stack_name: str
    parameter_name: str
    budget_name: str
    spoke_role_arn: str
    automation_role_arn: str
    document_name: str
    document_content: Mapping[str, Any] = field(repr=False)
    rule_name: str
    event_pattern: Mapping[str, Any]
    target_arn: str
    target_input: Mapping[str, list[str]]
    dead_letter_queue_url: str
    alert_topic_arn: str | None = None
    not_emulated: tuple[str, ...] = ()
    #: what the stack was deployed with: its parameters and the budget's resolved properties
    parameters: Mapping[str, str] = field(default_factory=dict, repr=False)
    budget_properties: Mapping[str, Any] = field(default_factory=dict, repr=False)
    #: The result-forwarding rules: (event pattern, target event bus ARN), as moto holds them.
    forward_rules: tuple[tuple[Mapping[str, Any], str], ...] = ()
    #: The role each forwarding target puts its events with (target ARN -> its RoleArn).
    forward_roles: Mapping[str, str] = field(default_factory=dict)

    def forward(self, event: Mapping[str, Any]) -> list[str]:
        """The event buses the forwarding rules send this event to (none if no pattern matches)."""
        if event.get("account") != self.account or event.get("region") != self.region:
            return []
        return [target for pattern, target in self.forward_rules if pattern_matches(dict(pattern), event)]

    def matches(self, event: Mapping[str, Any]) -> bool:
        """Would the rule see and match this event (its account's default bus, its region)?"""
        return (
            event.get("account") == self.account
            and event.get("region") == self.region
            and pattern_matches(dict(self.event_pattern), event)
        )

    def handle(
        self, event: Mapping[str, Any], session_for_role: Callable[[str], boto3.Session]
    ) -> AutomationResult | None:
        """EventBridge's part: on a match, run the document as the target would; else None."""
        if not self.matches(event):
            return None
        session = session_for_role(self.automation_role_arn)
        return run_automation(self.document_content, self.target_input, session, account=self.account)


@dataclass
class _StackResolver(Resolver):
    """The template's Resolver, knowing the stack's physical ids and list parameters."""

    def ref(self, name: str) -> Any:
        spec = self.template.get("Parameters", {}).get(name)
        if spec is not None and spec.get("Type") == "CommaDelimitedList":
            return self.parameter(name).split(",")
        if name in self.physical_ids and name not in self.template.get("Parameters", {}):
            return self.physical_ids[name]
        return super().ref(name)


_CLIENT_LOCK = threading.Lock()


@cache
def _base_session() -> boto3.Session:
    return boto3.Session()


def _client(session: boto3.Session, service: str, region: str) -> Any:
    """A client with ``session``'s credentials, built from one shared botocore session
    (a new boto3.Session loads every service model again: ~0.1 s per account)."""
    credentials = session.get_credentials()
    if credentials is None:
        raise SpokeStackError("the session has no credentials")
    frozen = credentials.get_frozen_credentials()
    with _CLIENT_LOCK:
        return _base_session().client(
            service,  # type: ignore[call-overload]
            region_name=region,
            aws_access_key_id=frozen.access_key,
            aws_secret_access_key=frozen.secret_key,
            aws_session_token=frozen.token,
        )


@cache
def _template_json() -> str:
    return json.dumps(load(SPOKE_TEMPLATE))


def deploy(
    session: boto3.Session,
    region: str,
    parameters: Mapping[str, str] | None = None,
    *,
    stack_name: str = STACK_NAME,
    template_text: str | None = None,
) -> SpokeStack:
    """Create template-spoke.yaml as a stack in ``session``'s account, on moto.

    ``parameters`` are the template's parameters (``ManagementAccountId``,
    ``AlertEmail1``, ...); ``LOCAL_DEFAULTS`` fills the two required ones if absent.
    ``template_text``: another version of the template (an upgrade test's old one).
    Needs ``standins.installed()`` (JSON template parsing; UpdateBudget later on).
    """
    given = {**LOCAL_DEFAULTS, **(parameters or {})}
    template = load(SPOKE_TEMPLATE) if template_text is None else load_text(template_text)
    _check_parameters(template, given)
    cloudformation = _client(session, "cloudformation", region)
    cloudformation.create_stack(
        StackName=stack_name,
        TemplateBody=_template_json() if template_text is None else json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": str(v)} for k, v in given.items()],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    resolver, stack = _described(cloudformation, stack_name, template, given, region, "CREATE_COMPLETE")
    budget = resolver.properties("Budget")
    _client(session, "budgets", region).create_budget(
        AccountId=resolver.account_id,
        Budget=budget["Budget"],
        NotificationsWithSubscribers=_notifications(budget),
    )
    return _spoke_stack(session, region, stack_name, template, given, resolver, stack)


def update(
    session: boto3.Session,
    current: SpokeStack,
    parameters: Mapping[str, str] | None = None,
    *,
    template_text: str | None = None,
) -> SpokeStack:
    """UpdateStack: ``current`` with the repository's template (or ``template_text``) and
    ``parameters`` over the ones it was deployed with. Raises SpokeStackError, with the
    stack unchanged, where CloudFormation would roll back (a budget replacement)."""
    given = {**current.parameters, **(parameters or {})}
    template = load(SPOKE_TEMPLATE) if template_text is None else load_text(template_text)
    _check_parameters(template, given)
    cloudformation = _client(session, "cloudformation", current.region)
    physical = _physical(cloudformation, current.stack_name)
    resolver = _StackResolver(
        template, given, account_id=current.account, region=current.region, physical_ids=physical
    )
    budget = resolver.properties("Budget")
    changed = [name for name in CREATE_ONLY if budget.get(name) != current.budget_properties.get(name)]
    if budget["Budget"]["BudgetName"] != current.budget_properties["Budget"]["BudgetName"]:
        changed.append("BudgetName")
    if changed:
        raise SpokeStackError(
            f"{current.stack_name}: UPDATE_ROLLBACK_COMPLETE: Budget requires replacement "
            f"({', '.join(changed)} changed) and a budget named "
            f"{budget['Budget']['BudgetName']} already exists; nothing was changed"
        )
    cloudformation.update_stack(
        StackName=current.stack_name,
        TemplateBody=_template_json() if template_text is None else json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": str(v)} for k, v in given.items()],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    resolver, stack = _described(
        cloudformation, current.stack_name, template, given, current.region, "UPDATE_COMPLETE"
    )
    _update_role_policies(_client(session, "iam", current.region), template, resolver)
    if budget["Budget"] != current.budget_properties["Budget"]:  # e.g. InitialBudgetAmount
        budgets = _client(session, "budgets", current.region)
        definition = budgets.describe_budget(AccountId=current.account, BudgetName=current.budget_name)
        budgets.update_budget(
            AccountId=current.account, NewBudget={**definition["Budget"], **budget["Budget"]}
        )
    return _spoke_stack(session, current.region, current.stack_name, template, given, resolver, stack)


def _update_role_policies(iam: Any, template: Mapping[str, Any], resolver: Resolver) -> None:
    """What CloudFormation's update does to each role and moto's does not: its trust policy
    and inline policies become the template's (a policy the template no longer has is
    removed). With IAM evaluated, a spoke updated to a newer template needs its new
    permissions (e.g. the alert settings parameter)."""
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::IAM::Role" or not _exists(resolver, resource):
            continue
        name = resolver.physical_ids.get(logical_id)
        if not name:
            continue
        properties = resolver.properties(logical_id)
        iam.update_assume_role_policy(
            RoleName=name, PolicyDocument=json.dumps(properties["AssumeRolePolicyDocument"])
        )
        wanted = {p["PolicyName"]: p["PolicyDocument"] for p in properties.get("Policies", [])}
        for policy_name in iam.list_role_policies(RoleName=name)["PolicyNames"]:
            if policy_name not in wanted:
                iam.delete_role_policy(RoleName=name, PolicyName=policy_name)
        for policy_name, document in wanted.items():
            iam.put_role_policy(RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(document))


def _check_parameters(template: Mapping[str, Any], given: Mapping[str, str]) -> None:
    unknown = set(given) - set(template["Parameters"])
    if unknown:
        raise SpokeStackError(f"template-spoke.yaml has no parameters {sorted(unknown)}")


def _physical(cloudformation: Any, stack_name: str) -> dict[str, str]:
    return {
        r["LogicalResourceId"]: r.get("PhysicalResourceId", "")
        for r in cloudformation.list_stack_resources(StackName=stack_name)["StackResourceSummaries"]
    }


def _described(
    cloudformation: Any,
    stack_name: str,
    template: dict[str, Any],
    given: Mapping[str, str],
    region: str,
    expected: str,
) -> tuple[_StackResolver, dict[str, Any]]:
    stack: dict[str, Any] = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    if stack["StackStatus"] != expected:
        raise SpokeStackError(f"{stack_name}: {stack['StackStatus']} {stack.get('StackStatusReason', '')}")
    account = stack["StackId"].split(":")[4]
    physical = _physical(cloudformation, stack_name)
    resolver = _StackResolver(template, given, account_id=account, region=region, physical_ids=physical)
    return resolver, stack


def _notifications(budget: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "Notification": {**n["Notification"], "Threshold": float(n["Notification"]["Threshold"])},
            "Subscribers": n["Subscribers"],
        }
        for n in budget.get("NotificationsWithSubscribers", [])
    ]


def _spoke_stack(
    session: boto3.Session,
    region: str,
    stack_name: str,
    template: dict[str, Any],
    given: Mapping[str, str],
    resolver: _StackResolver,
    stack: Mapping[str, Any],
) -> SpokeStack:
    account = resolver.account_id
    physical = resolver.physical_ids
    budget = resolver.properties("Budget")
    events = _client(session, "events", region)
    rule_name = physical["TriggerRule"]
    rule = events.describe_rule(Name=rule_name)
    (target,) = events.list_targets_by_rule(Rule=rule_name)["Targets"]
    forward_rules = []
    forward_roles: dict[str, str] = {}
    for logical_id in ("ResultForwardRule", "ExecutionForwardRule"):
        if logical_id not in physical:  # a stack of a template from before the results came back
            continue
        forward_name = physical[logical_id].split("/")[-1]
        forward_pattern = json.loads(events.describe_rule(Name=forward_name)["EventPattern"])
        for forward_target in events.list_targets_by_rule(Rule=forward_name)["Targets"]:
            forward_rules.append((forward_pattern, forward_target["Arn"]))
            if forward_target.get("RoleArn"):
                forward_roles[forward_target["Arn"]] = forward_target["RoleArn"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    not_emulated = tuple(
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] in NOT_EMULATED and _exists(resolver, resource)
    )
    return SpokeStack(
        account=account,
        region=region,
        stack_name=stack_name,
        parameter_name=physical["BudgetParameter"],
        budget_name=budget["Budget"]["BudgetName"],
        spoke_role_arn=resolver.get_att("SpokeRole", "Arn"),
        automation_role_arn=resolver.get_att("AutomationRole", "Arn"),
        document_name=physical["AutomationDocument"],
        document_content=resolver.properties("AutomationDocument")["Content"],
        rule_name=rule_name,
        event_pattern=json.loads(rule["EventPattern"]),
        target_arn=target["Arn"],
        target_input=json.loads(target["Input"]),
        dead_letter_queue_url=physical["TriggerDeadLetterQueue"],
        alert_topic_arn=outputs.get("AlertTopicArn"),
        not_emulated=not_emulated,
        parameters=dict(given),
        budget_properties=budget,
        forward_rules=tuple(forward_rules),
        forward_roles=forward_roles,
    )


def _exists(resolver: Resolver, resource: Mapping[str, Any]) -> bool:
    condition = resource.get("Condition")
    try:
        return condition is None or resolver.condition(condition)
    except TemplateError:
        return True


__all__ = ["LOCAL_DEFAULTS", "STACK_NAME", "SpokeStack", "SpokeStackError", "deploy", "update"]
