"""The local organisation's enrolment: what AWS does around the resolver function.

* The resolver's two stream mappings from template-management.yaml (budget_sync_local.mappings):
  the defaults table's stream, and the budgets table's stream filtered by the template's
  FilterCriteria (REMOVE records), each read by its own ``StreamPoller`` (Lambda's pollers
  are independent consumers of a stream, as two mappings are on AWS).
* Its EventBridge rules: each management-account event (Organizations' CloudTrail events,
  StackSet instance events; from ``standins.organizations`` / ``standins.stacksets``) is
  matched against the rules' patterns as the template declares them, and a match invokes
  the resolver with the event. They are delivered as ``pipeline.Delivery`` delivers: at
  least once and, seeded, shuffled, duplicated and delayed.
* The service-managed StackSet's automatic deployment: an account that is created in, or
  moved into, one of the StackSet's target OUs gets the spoke stack ``delay_s`` later
  (minutes on AWS), and the StackSet then reports the instance (its event).
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from budget_sync_local.pipeline import Delivery, Observer, Step, StreamPoller, drained
from budget_sync_local.standins import pattern_matches
from budget_sync_local.standins import stacksets as stacksets_standin
from budget_sync_local.templates import MANAGEMENT_TEMPLATE, Resolver, load


@dataclass(frozen=True)
class RuleSpec:
    logical_id: str
    pattern: Mapping[str, Any]


def resolver_rules(parameters: Mapping[str, str], region: str, account: str) -> list[RuleSpec]:
    """The EventBridge rules that target the resolver (those whose condition holds)."""
    template = load(MANAGEMENT_TEMPLATE)
    resolver = Resolver(template, parameters, account_id=account, region=region)
    rules = []
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Events::Rule":
            continue
        condition = resource.get("Condition")
        if condition and not resolver.condition(condition):
            continue
        targets = resource["Properties"].get("Targets", [])
        if any(t.get("Arn") == {"Fn::GetAtt": ["ResolverFunction", "Arn"]} for t in targets):
            rules.append(RuleSpec(logical_id, resolver.resolve(resource["Properties"]["EventPattern"])))
    return rules


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
        invoke_resolver: Callable[[dict[str, Any]], Any],
        stack_set: StackSetEmulation | None,
        observer: Observer,
        delivery: Delivery | None = None,
    ) -> None:
        self._pollers = list(pollers)
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
        work = sum(poller.poll() for poller in self._pollers)
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
            and all(p.idle() for p in self._pollers)
        )

    def _route(self, event: dict[str, Any]) -> None:
        detail = event.get("detail") or {}
        name = detail.get("eventName") or event.get("detail-type")
        account = _account_of(event)
        self._observe(Step("org-event", account, {"event": name, "source": event.get("source")}))
        if self._stack_set is not None and account and event.get("source") == "aws.organizations":
            self._stack_set.consider(account)
        matched = [r.logical_id for r in self._rules if pattern_matches(r.pattern, event)]
        if not matched:
            self._observe(
                Step("ignored-event", account, {"reason": "no rule of the management stack matches"})
            )
            return
        result = self._invoke(event)
        self._observe(Step("resolver", account, {"rule": matched[0], "result": result}))


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
