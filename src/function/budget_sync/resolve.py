"""The resolver: each account's effective budget, materialised into the budgets table.

For a scope (the whole organisation, one OU's subtree, one account) it reads the tree
(organizations.py), the defaults table, the budgets table and which spoke stacks exist,
decides per account (org.plan) and then:

* WRITE   an item ``{AccountId, BudgetValue, InheritedFrom, InheritedValue, UpdatedBy,
          UpdatedAt}`` (InheritedValue: the value it wrote, which only the resolver sets), on the
          condition that the item is still the one this run read (no item, or an inherited
          item with the same InheritedFrom and BudgetValue) and, in the same transaction,
          that the default it comes from still has the value this run read: an explicit item
          written meanwhile always wins, and so does a newer run that read newer defaults,
          whether it wrote first or last (a run whose default changed after its read is
          stale: it writes nothing). A skipped write is logged, counted as a conflict (and as
          stale when its default changed), not retried;
* DELETE  an inherited item whose default is gone, on the same conditions (the inherited
          item as read, and its default still absent): the stream function then marks the
          account UNMANAGED and it keeps its last budget, exactly as when an operator removes
          an item;
* WAIT    status WAITING (the spoke stack is not there yet): nothing is written until the
          StackSet reports the stack instance, then the item follows;
* SKIP    status SKIPPED for a suspended or closed account; nothing is written;
* COST    an explicit item whose inherited cost basis (budget_sync.cost_basis: the defaults'
          ``CostMetric``/``CostExclusions`` on its path, field by field from the nearest) is not
          what its item holds: only ``InheritedCostMetric``/``InheritedCostExclusions`` are set or
          removed, never its own attributes, on the condition that it is still explicit with
          those two as read. WRITE sets them too (an inherited item carries its cost basis).

Every write of an inherited cost basis also checks, in the same transaction, that each default
on the account's path is as this run read it (its cost attributes, or still absent): whatever
order, duplicates or concurrency the defaults stream delivers, a run that read older defaults
writes nothing (stale) and the newest run's result stays.

An item is inherited only while it is the resolver's own: InheritedFrom set and BudgetValue
equal to InheritedValue (org.is_inherited). Whatever another client writes (budgetctl, the
console, update-item) is the operator's, explicit: budgetctl removes InheritedFrom itself;
an item whose value someone else changed, InheritedFrom left in place, is treated as explicit
and its InheritedFrom and InheritedValue are removed the next time the resolver reads it.

A default that breaks the item contract (a ``BudgetValue`` of 12.345 written by hand, by a
client other than budgetctl) is a failure, not a log line: the status table gets an item
keyed by the default's ``TargetId`` (``ou-...`` or ``r-...``) with status FAILED, source
``resolver`` and the reason naming the field and the value, so that the failure notifier
publishes it once (the status table's stream) and ``budgetctl status`` shows it. While it is
invalid, the default applies to nobody: its accounts take the next default up, as the
reason says. When the default is fixed or removed (the defaults table's stream names it),
that resolution deletes the status item, on the condition that the resolver wrote it.

The stream function delivers what was written, so inherited budgets take the same path,
validation, retries and status as items typed by an operator.

The resolver touches AWS only through three small Protocols in the project's types:
``ResolverTables`` (resolve_tables.py: the budgets, defaults and status tables; its DynamoDB
adapter translates every botocore error), ``OrganisationTree`` and ``Readiness``
(organizations.py's OrganizationsReader and StackSetReadiness). Its decisions are tested on
in-memory fakes (tests/fakes, tests/unit/test_resolve.py), the adapters and the whole on moto
(tests/resolve).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from budget_sync.cost_basis import COST_FIELDS, CostBasis, inherited_cost_basis, parse_cost_basis
from budget_sync.domain import BUDGET_VALUE_FIELD
from budget_sync.effective_budget import (
    INHERITED_FROM_FIELD,
    TARGET_ID_FIELD,
    Action,
    Decision,
    OrgTree,
    TableItem,
    is_inherited,
    parse_default_value,
    parse_target_id,
    plan,
)
from budget_sync.errors import InvalidItemError
from budget_sync.observability import logger
from budget_sync.organizations import NotInOrganization
from budget_sync.resolve_tables import SOURCE, DynamoDBResolverTables, ResolverTables, WriteOutcome
from budget_sync.status import Status

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = ["SOURCE", "OrganisationTree", "Readiness", "ResolveSummary", "Resolver"]


class Readiness(Protocol):
    """Which accounts have their spoke stack (organizations.StackSetReadiness)."""

    def ready_accounts(self, account_id: str | None = None) -> set[str]: ...


class OrganisationTree(Protocol):
    """The organisation's tree (organizations.OrganizationsReader): the whole of it, one OU's
    or root's subtree (NotInOrganization if it is gone), or one account with its path (an
    empty tree if it is not in the organisation); ``calls`` counts the API calls made."""

    calls: Counter[str]

    def full(self) -> OrgTree: ...

    def subtree(self, target_id: str) -> OrgTree: ...

    def account(self, account_id: str) -> OrgTree: ...


@dataclass(slots=True)
class ResolveSummary:
    scope: str
    decisions: list[Decision] = field(default_factory=list)
    conflicts: int = 0  # the item or its default changed between read and write: nothing written
    stale: int = 0  # of those, the default this run read had changed: a newer run decides

    @property
    def counts(self) -> Counter[str]:
        return Counter(d.action.value for d in self.decisions)


def read_defaults(client: DynamoDBClient, table_name: str) -> dict[str, Decimal]:
    """The defaults table: target id -> amount. An invalid default is logged and left out."""
    return read_all_defaults(DynamoDBResolverTables(client, "", table_name, ""))[0]


@dataclass(frozen=True, slots=True)
class DefaultsRead:
    """The valid defaults' cost bases and each valid default as read (the conditions)."""

    costs: dict[str, CostBasis] = field(default_factory=dict)
    #: target id -> the default's BudgetValue and cost attributes as stored
    items: dict[str, dict[str, Any]] = field(default_factory=dict)

    def path_as_read(
        self, path: Iterable[str], invalid: Mapping[str, str]
    ) -> dict[str, dict[str, Any] | None]:
        """Each default on ``path`` as read (None: absent); an invalid one is not checked."""
        return {target: self.items.get(target) for target in path if target not in invalid}


def read_all_defaults(
    tables: ResolverTables,
) -> tuple[dict[str, Decimal], dict[str, str], dict[str, Any], DefaultsRead]:
    """The valid defaults (target id -> amount), the invalid ones (target id -> reason), each
    valid default's ``BudgetValue`` as read (for the condition that it is unchanged), and their
    cost bases with what was read of them. A default's cost basis is validated as an account's
    (budget_sync.cost_basis); a bad one makes the whole default invalid."""
    defaults: dict[str, Decimal] = {}
    invalid: dict[str, str] = {}
    as_read: dict[str, Any] = {}
    read = DefaultsRead()
    for item in tables.defaults():
        try:
            target = parse_target_id(item.get(TARGET_ID_FIELD))
        except InvalidItemError as exc:
            logger.error("default ignored", extra={"reason": str(exc), "field": exc.field})
            continue
        try:
            amount = parse_default_value(item.get(BUDGET_VALUE_FIELD), target)
            cost = parse_cost_basis({f: item[f] for f in COST_FIELDS if f in item}, target)
        except InvalidItemError as exc:
            logger.error(
                "default invalid", extra={"target_id": target, "reason": str(exc), "field": exc.field}
            )
            invalid[target] = invalid_default_reason(target, exc)
            continue
        defaults[target] = amount
        as_read[target] = item[BUDGET_VALUE_FIELD]
        read.costs[target] = cost
        read.items[target] = {f: item[f] for f in (BUDGET_VALUE_FIELD, *COST_FIELDS) if f in item}
    return defaults, invalid, as_read, read


def invalid_default_reason(target: str, exc: InvalidItemError) -> str:
    """The status reason of an invalid default: the field, the value, and what it means."""
    return (
        f"default of {target}: {exc}; it applies to nobody until it is fixed "
        "(its accounts take the next default up)"
    )


def table_item(item: Mapping[str, Any]) -> TableItem:
    """An item as resolution sees it: inherited only if the resolver's own (org.is_inherited)."""
    value = item.get(BUDGET_VALUE_FIELD)
    amount = value if isinstance(value, Decimal) and value > 0 else None
    try:
        cost = inherited_cost_basis(item)
    except InvalidItemError:  # written by hand: never equal to what is wanted, so written again
        cost = CostBasis(metric="")
    return TableItem(amount, str(item[INHERITED_FROM_FIELD]) if is_inherited(item) else None, cost)


class Resolver:
    def __init__(
        self,
        tables: ResolverTables,
        organizations: OrganisationTree,
        readiness: Readiness | None,
        actor: str,
    ) -> None:
        self._tables = tables
        self.organizations = organizations
        self._readiness = readiness
        self._actor = actor

    # -- scopes ------------------------------------------------------------------------

    def resolve_all(self) -> ResolveSummary:
        """Level-triggered: the whole organisation against the effective budgets."""
        tree = self.organizations.full()
        ready = self._readiness.ready_accounts() if self._readiness else None
        return self._resolve("organisation", tree, self._items(), ready)

    def resolve_target(self, target_id: str) -> ResolveSummary:
        """A default changed: the accounts under that root or OU."""
        ready = self._readiness.ready_accounts() if self._readiness else None
        if target_id.startswith("r-"):
            return self._resolve("organisation", self.organizations.full(), self._items(), ready, [target_id])
        try:
            tree = self.organizations.subtree(target_id)
        except NotInOrganization:  # the OU is gone: its accounts moved, look at them all
            return self._resolve("organisation", self.organizations.full(), self._items(), ready, [target_id])
        return self._resolve(target_id, tree, self._items(), ready, [target_id])

    def resolve_account(self, account_id: str, spoke_ready: bool | None = None) -> ResolveSummary:
        """A new, moved or re-joined account, or a removed item: that account only."""
        tree = self.organizations.account(account_id)
        if spoke_ready is None:
            spoke_ready = self._readiness is None or bool(self._readiness.ready_accounts(account_id))
        items = self._items(account_id)
        return self._resolve(account_id, tree, items, [account_id] if spoke_ready else [])

    # -- the work ----------------------------------------------------------------------

    def _items(self, account_id: str | None = None) -> dict[str, TableItem]:
        """The budgets table's items as resolution sees them; an item that another client
        changed (InheritedFrom kept, BudgetValue no longer the resolver's InheritedValue) is
        made explicit in the table too (``_make_explicit``)."""
        if account_id is None:
            raw = self._tables.items()
        else:
            found = self._tables.item(account_id)
            raw = {account_id: found} if found else {}
        for account, item in raw.items():
            if item.get(INHERITED_FROM_FIELD) and not is_inherited(item):
                self._make_explicit(account, item)
        return {account: table_item(item) for account, item in raw.items()}

    def _make_explicit(self, account_id: str, item: Mapping[str, Any]) -> None:
        """Remove InheritedFrom and InheritedValue from an item whose value someone else wrote,
        on the condition that it is still as read: the operator's value wins over any default."""
        source = str(item[INHERITED_FROM_FIELD])
        if not self._tables.make_explicit(account_id, source, item.get(BUDGET_VALUE_FIELD)):
            return  # changed again meanwhile: the next resolution looks at it again
        logger.info(
            "item changed by another client: now explicit", extra={"account_id": account_id, "source": source}
        )

    def _resolve(
        self,
        scope: str,
        tree: OrgTree,
        items: Mapping[str, TableItem],
        ready: Iterable[str] | None,
        changed: Iterable[str] = (),
    ) -> ResolveSummary:
        defaults, invalid, as_read, read = read_all_defaults(self._tables)
        self._default_statuses(defaults, invalid, changed)
        summary = ResolveSummary(scope, plan(tree, items, defaults, ready, read.costs))
        for decision in summary.decisions:
            path = read.path_as_read(tree.accounts[decision.account_id].path, invalid)
            self._act(decision, summary, as_read, invalid, path)
        logger.info(
            "resolution finished",
            extra={
                "scope": scope,
                **dict(summary.counts),
                "conflicts": summary.conflicts,
                "stale": summary.stale,
            },
        )
        return summary

    def _act(
        self,
        decision: Decision,
        summary: ResolveSummary,
        as_read: Mapping[str, Any],
        invalid: Mapping[str, str],
        path: Mapping[str, Mapping[str, Any] | None],
    ) -> None:
        log = {"account_id": decision.account_id, "action": decision.action.value, "reason": decision.reason}
        if decision.action is Action.WRITE:
            outcome = self._write(decision, as_read[decision.effective.target_id], path)
            if self._counted(decision, outcome, summary):
                logger.info("inherited budget written", extra={**log, "source": decision.effective.target_id})
        elif decision.action is Action.COST:
            assert decision.previous is not None
            outcome = self._tables.write_inherited_cost(
                decision.account_id, decision.cost, decision.previous, path
            )
            if self._counted(decision, outcome, summary):
                logger.info(
                    "inherited cost basis written",
                    extra={**log, **{k: v for k, v in decision.cost.inherited_columns().items() if v}},
                )
        elif decision.action is Action.DELETE:
            if self._counted(decision, self._delete(decision, invalid), summary):
                logger.info("inherited budget removed", extra=log)
        elif decision.action is Action.WAIT:
            self._status(decision, Status.WAITING)
            logger.info("waiting for the spoke stack", extra=log)
        elif decision.action is Action.SKIP:
            self._status(decision, Status.SKIPPED)
            logger.info("account skipped", extra=log)

    @staticmethod
    def _counted(decision: Decision, outcome: WriteOutcome, summary: ResolveSummary) -> bool:
        """True if the write or removal was done; a refused one is logged and counted (a
        conflict; also stale when the default this run read changed), never retried."""
        if outcome is WriteOutcome.DONE:
            return True
        summary.conflicts += 1
        log = {"account_id": decision.account_id, "source": decision.effective.target_id}
        if outcome is WriteOutcome.STALE:
            summary.stale += 1
            read = decision.previous.inherited_from if decision.previous else None
            logger.warning(
                "stale resolution: the default changed after this run read it; a newer run decides",
                extra={
                    **log,
                    "default": decision.effective.target_id or read,
                    "action": decision.action.value,
                },
            )
        else:
            logger.info("the item changed after this run read it: it won", extra=log)
        return False

    def _write(
        self, decision: Decision, default_as_read: Any, path: Mapping[str, Mapping[str, Any] | None]
    ) -> WriteOutcome:
        """The inherited item with its inherited cost basis, in one transaction with a check
        that its default still has the value this run read (``default_as_read``) and each
        default on its path the cost attributes read (``path``)."""
        value = decision.effective.value
        assert value is not None
        return self._tables.write_inherited(
            decision.account_id,
            value,
            decision.effective.target_id,
            self._actor,
            _now(),
            decision.previous,
            default_as_read,
            decision.cost,
            path,
        )

    def _delete(self, decision: Decision, invalid: Mapping[str, str]) -> WriteOutcome:
        """The inherited item, in one transaction with a check that its default is still
        absent (or, when this run read it as invalid, still there: it applies to nobody, and
        a fix is a stream record and a newer run: no check)."""
        assert decision.previous is not None
        source = decision.previous.inherited_from
        assert source is not None
        check = None if source in invalid else source
        return self._tables.delete_inherited(decision.account_id, decision.previous, check)

    def _default_statuses(
        self, valid: Mapping[str, Decimal], invalid: Mapping[str, str], changed: Iterable[str]
    ) -> None:
        """FAILED for each invalid default (written once: a status that already says the same
        is left alone, so it is published once); the FAILED status of a default that is valid
        again, or of the ``changed`` default if it is gone, is deleted."""
        for target, reason in invalid.items():
            self._tables.record_default_failure(target, reason, _now())
        for target in (set(valid) | set(changed)) - set(invalid):
            if self._tables.clear_default_failure(target):
                logger.info("default valid again: its failure cleared", extra={"target_id": target})

    def _status(self, decision: Decision, status: Status) -> None:
        """WAITING or SKIPPED. Leaves SequenceNumber alone: the next stream record's status
        (newer by definition) replaces it. WAITING never hides an APPLIED budget."""
        self._tables.record_status(
            decision.account_id, status, decision.reason, decision.effective.value, _now()
        )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
