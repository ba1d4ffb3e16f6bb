"""The local organisation's enrolment: what AWS does around the resolver's functions (one per
event source, ``resolver_functions``).

* The resolver's two stream mappings from template-management.yaml (budget_sync_local.mappings):
  the defaults table's stream (DefaultsResolverFunction), and the budgets table's stream
  filtered by the template's FilterCriteria, REMOVE records (ItemRemovedResolverFunction),
  each read by its own ``StreamPoller`` (Lambda's pollers are independent consumers of a
  stream, as two mappings are on AWS).
* Its EventBridge rules: each management-account event (Organizations' CloudTrail events,
  StackSet instance events; from ``standins.organizations`` / ``standins.stacksets``) is
  matched against the rules' patterns as the template declares them, and a match invokes
  the rule's target function with the event. They are delivered as ``pipeline.Delivery`` delivers: at
  least once and, seeded, shuffled, duplicated and delayed.
* The service-managed StackSet's automatic deployment: an account that is created in, or
  moved into, one of the StackSet's target OUs gets the spoke stack ``delay_s`` later
  (minutes on AWS), and the StackSet then reports the instance (its event).
* Where each event arrives: Organizations' CloudTrail events reach EventBridge in us-east-1
  only ("AWS Organizations ... events are delivered only to us-east-1"; see
  docs/organisation.md), so a management stack in another region sees them only if a rule
  on us-east-1's default bus forwards them to its region's default bus: the stack of
  template-org-events.yaml (``deploy_org_events_forwarding``), whose rules are read back
  from moto's EventBridge in us-east-1. A forwarded event is put on the target bus as the
  rule's role (``ForwardRole``): EventBridge assumes it (its trust policy, for the rule's
  account and ARN) and its ``events:PutEvents`` on the target bus is authorised against its
  policy and the bus's; a refusal is ``ignored-event`` with AWS's AccessDenied. An event
  from another region that no rule forwards is ignored (step ``ignored-event``); the
  StackSet's automatic deployment does not depend on it (Organizations tells StackSets
  directly).
"""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from budget_sync_local.iam import AccessDenied
from budget_sync_local.pipeline import Delivery, Observer, Step, StreamPoller, drained
from budget_sync_local.standins import authorisation, pattern_matches
from budget_sync_local.standins import stacksets as stacksets_standin
from budget_sync_local.templates import MANAGEMENT_TEMPLATE, ORG_EVENTS_TEMPLATE, Resolver, load

if TYPE_CHECKING:
    import boto3

#: The region whose EventBridge receives Organizations' CloudTrail events.
ORGANIZATIONS_REGION = "us-east-1"
#: The stack name the docs give template-org-events.yaml.
ORG_EVENTS_STACK = "budget-sync-org-events"


#: The module of the resolver's handlers: a function whose Handler is in it is one of the resolver's.
RESOLVER_HANDLERS = "budget_sync.handlers.resolve."


@dataclass(frozen=True)
class RuleSpec:
    logical_id: str
    pattern: Mapping[str, Any]
    function: str = "ResolverFunction"  # the logical id of the function it targets


def resolver_functions(parameters: Mapping[str, str], region: str, account: str) -> list[str]:
    """The logical ids of the resolver's functions (those whose condition holds)."""
    template = load(MANAGEMENT_TEMPLATE)
    resolver = Resolver(template, parameters, account_id=account, region=region)
    return [
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
        and str(resource["Properties"].get("Handler", "")).startswith(RESOLVER_HANDLERS)
        and (not resource.get("Condition") or resolver.condition(resource["Condition"]))
    ]


def resolver_rules(parameters: Mapping[str, str], region: str, account: str) -> list[RuleSpec]:
    """The EventBridge rules that target one of the resolver's functions (those whose
    condition holds), each with its target."""
    template = load(MANAGEMENT_TEMPLATE)
    resolver = Resolver(template, parameters, account_id=account, region=region)
    functions = set(resolver_functions(parameters, region, account))
    rules = []
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Events::Rule":
            continue
        condition = resource.get("Condition")
        if condition and not resolver.condition(condition):
            continue
        for target in resource["Properties"].get("Targets", []):
            function = (target.get("Arn") or {}).get("Fn::GetAtt", [""])[0]
            if function in functions:
                pattern = resolver.resolve(resource["Properties"]["EventPattern"])
                rules.append(RuleSpec(logical_id, pattern, function))
    return rules


@dataclass(frozen=True)
class Forwarder:
    """A rule on the management account's default bus in us-east-1: pattern, target bus ARN,
    the role the target puts events with and the rule's ARN (the role's trust names it)."""

    pattern: Mapping[str, Any]
    target: str
    role_arn: str = ""
    rule_arn: str = ""


class ForwardingStackError(RuntimeError):
    """CloudFormation would refuse the forwarding stack (one of its template rules fails)."""


def deploy_org_events_forwarding(
    session: boto3.Session, account: str, stack_region: str, region: str = ORGANIZATIONS_REGION
) -> tuple[Forwarder, ...]:
    """Create template-org-events.yaml's stack in ``region`` with moto's CloudFormation, for
    a management stack in ``stack_region``; return its forwarding rules as moto holds them.

    The template's Rules are checked first, as CloudFormation does (moto does not): the
    stack belongs in us-east-1, for a management stack elsewhere.
    """
    template = load(ORG_EVENTS_TEMPLATE)
    parameters = {"ManagementStackRegion": stack_region}
    resolver = Resolver(template, parameters, account_id=account, region=region)
    for name, rule in template.get("Rules", {}).items():
        for assertion in rule.get("Assertions", []):
            if not resolver.resolve(assertion["Assert"]):
                raise ForwardingStackError(
                    f"{ORG_EVENTS_STACK}: rule {name}: {assertion['AssertDescription']}"
                )
    cloudformation = session.client("cloudformation", region_name=region)
    cloudformation.create_stack(
        StackName=ORG_EVENTS_STACK,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    resources = cloudformation.describe_stack_resources(StackName=ORG_EVENTS_STACK)["StackResources"]
    events = session.client("events", region_name=region)
    forwarders = []
    for resource in resources:
        if resource["ResourceType"] != "AWS::Events::Rule":
            continue
        name = resource["PhysicalResourceId"].split("/")[-1]
        rule = events.describe_rule(Name=name)
        pattern = json.loads(rule["EventPattern"])
        for target in events.list_targets_by_rule(Rule=name)["Targets"]:
            forwarders.append(Forwarder(pattern, target["Arn"], target.get("RoleArn", ""), rule["Arn"]))
    return tuple(forwarders)


@dataclass
class StackSetEmulation:
    """The StackSet's automatic deployment to accounts in its target OUs."""

    name: str
    region: str
    target_ous: frozenset[str]
    parent_of: Callable[[str], str | None]
    deploy: Callable[[str], None]
    deployed: set[str] = field(default_factory=set)
    delay_s: float = 0.0
    pending: dict[str, float] = field(default_factory=dict)

    def consider(self, account: str) -> None:
        if account in self.deployed or account in self.pending:
            return
        if self.parent_of(account) in self.target_ous:
            self.pending[account] = time.monotonic() + self.delay_s

    def due(self) -> list[str]:
        now = time.monotonic()
        ready = sorted(a for a, at in self.pending.items() if at <= now)
        for account in ready:
            del self.pending[account]
        return ready


class Enrolment:
    """A source of work for ``Pipeline``: resolver streams, rules, StackSet deployments."""

    def __init__(
        self,
        pollers: Sequence[StreamPoller],
        rules: Sequence[RuleSpec],
        invoke_resolver: Callable[..., Any],
        stack_set: StackSetEmulation | None,
        observer: Observer,
        delivery: Delivery | None = None,
        *,
        region: str = ORGANIZATIONS_REGION,
        forwarders: Sequence[Forwarder] = (),
    ) -> None:
        #: The region of the management stack: its default bus is where its rules listen.
        self.region = region
        self._forwarders = list(forwarders)
        self.pollers = list(pollers)
        self._delivery = delivery or Delivery(None)
        self._rules = list(rules)
        self._invoke = invoke_resolver
        self._stack_set = stack_set
        self._observe = observer
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()

    def publish(self, event: dict[str, Any]) -> None:
        """The management account's default bus (the stand-ins call this)."""
        self.events.put(event)

    def step(self) -> int:
        work = sum(poller.poll() for poller in self.pollers)
        tick = True
        while deliveries := self._delivery.round(list(drained(self.events)), tick=tick):
            tick = False
            for event, duplicate in deliveries:
                work += 1
                if duplicate:
                    self._observe(
                        Step(
                            "delivery",
                            _account_of(event),
                            {"kind": event.get("detail-type"), "delivery": "a second time"},
                        )
                    )
                self._route(event)
        if self._stack_set is not None:
            for account in self._stack_set.due():
                work += 1
                self._stack_set.deploy(account)
                self._stack_set.deployed.add(account)
                self._observe(Step("stackset-deploy", account, {"stack_set": self._stack_set.name}))
                stacksets_standin.record_instance(self._stack_set.name, account, self._stack_set.region)
        return work

    def idle(self) -> bool:
        pending = bool(self._stack_set and self._stack_set.pending)
        return (
            self.events.empty()
            and self._delivery.idle()
            and not pending
            and all(p.idle() for p in self.pollers)
        )

    def _route(self, event: dict[str, Any]) -> None:
        detail = event.get("detail") or {}
        name = detail.get("eventName") or event.get("detail-type")
        account = _account_of(event)
        self._observe(Step("org-event", account, {"event": name, "source": event.get("source")}))
        if self._stack_set is not None and account and event.get("source") == "aws.organizations":
            self._stack_set.consider(account)
        try:
            reaches = self._reaches_this_bus(event)
        except AccessDenied as denied:
            # On AWS the target's invocation fails (the rule's FailedInvocations metric).
            self._observe(Step("ignored-event", account, {"reason": f"forwarding refused: {denied}"}))
            return
        if not reaches:
            self._observe(
                Step(
                    "ignored-event",
                    account,
                    {
                        "reason": f"delivered in {event.get('region')} only: no rule forwards it to "
                        f"the management stack's region {self.region} (template-org-events.yaml)"
                    },
                )
            )
            return
        matched = [r for r in self._rules if pattern_matches(r.pattern, event)]
        if not matched:
            self._observe(
                Step("ignored-event", account, {"reason": "no rule of the management stack matches"})
            )
            return
        for rule in matched:  # each rule invokes its own target with the event
            result = self._invoke(event, function=rule.function)
            self._observe(
                Step(
                    "resolver",
                    account,
                    {"rule": rule.logical_id, "function": rule.function, "result": result},
                )
            )

    def _reaches_this_bus(self, event: Mapping[str, Any]) -> bool:
        """Is the event on the default bus of the stack's region, directly or forwarded? A
        forwarding rule puts it there as its role (``authorisation.forwarded``: the role's
        trust policy for EventBridge and this rule, its PutEvents on the target bus); raises
        AccessDenied if AWS would refuse that."""
        region = event.get("region")
        if region is None or region == self.region:
            return True
        bus = f":events:{self.region}:{event.get('account')}:event-bus/default"
        for forwarder in self._forwarders:
            if forwarder.target.endswith(bus) and pattern_matches(dict(forwarder.pattern), event):
                if forwarder.role_arn:
                    authorisation.forwarded(forwarder.role_arn, forwarder.target, event, forwarder.rule_arn)
                return True
        return False


def _account_of(event: Mapping[str, Any]) -> str | None:
    detail = event.get("detail") or {}
    created = (detail.get("serviceEventDetails") or {}).get("createAccountStatus") or {}
    if created.get("accountId"):
        return str(created["accountId"])
    requested = detail.get("requestParameters") or {}
    if requested.get("accountId"):
        return str(requested["accountId"])
    stack_id = str(detail.get("stack-id", ""))
    parts = stack_id.split(":")
    return parts[4] if len(parts) > 5 else None
