"""Organisation-aware budgets: defaults per OU or root, and each account's effective budget.

Pure Python: no AWS, no boto3. The defaults table (``BlogBudgetsDefaults``) holds one item
per target: ``TargetId`` (S, a root ``r-...`` or an OU ``ou-...-...`` of the organisation)
and ``BudgetValue`` (N, the same amount rules as an account's item). An account's
*effective* budget is

1. its own item in the budgets table, if it has one (an item without ``InheritedFrom``);
2. else the default of its nearest OU, going up to the root;
3. else none.

The resolver materialises rule 2 into the budgets table as an ordinary item marked
``InheritedFrom: <target id>``; the stream function delivers it like any other item. A default
may also carry a cost basis (``CostMetric``, ``CostExclusions``: budget_sync.cost_basis): each
field comes from the nearest default on the account's path that sets it (``inherited_cost``)
and is materialised on the account's item, inherited *or* explicit, as ``InheritedCostMetric``
and ``InheritedCostExclusions``; the item's own attributes win over them. This
module decides, per account, what the table should hold (``plan``); the resolver
(resolve.py) writes it with conditions that keep an explicit item untouchable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from budget_sync.cost_basis import CostBasis
from budget_sync.domain import parse_budget_text, parse_budget_value
from budget_sync.errors import InvalidItemError

TARGET_ID_FIELD = "TargetId"
INHERITED_FROM_FIELD = "InheritedFrom"
#: The value the resolver wrote with InheritedFrom: only the resolver sets it. An item whose
#: BudgetValue differs from it was changed by someone else (the console, update-item, any
#: client): the operator's value, explicit, whatever InheritedFrom still says.
INHERITED_VALUE_FIELD = "InheritedValue"


def is_inherited(item: Mapping[str, Any]) -> bool:
    """Whether a budgets-table item is the resolver's (inherited), not an operator's. Items the
    resolver wrote before InheritedValue existed carry none: InheritedFrom alone says so. Pure."""
    if not item.get(INHERITED_FROM_FIELD):
        return False
    marker = item.get(INHERITED_VALUE_FIELD)
    return marker is None or marker == item.get("BudgetValue")


#: The id patterns of the Organizations API reference (ParentId).
_ROOT_ID = re.compile(r"r-[0-9a-z]{4,32}")
_OU_ID = re.compile(r"ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}")

#: Account states that budget-sync skips (ListAccounts' Status and the newer State).
INACTIVE_STATES = frozenset({"SUSPENDED", "PENDING_CLOSURE", "CLOSED"})


def parse_target_id(value: object) -> str:
    """A root or OU id, or InvalidItemError naming the field and the value."""
    if not isinstance(value, str):
        raise InvalidItemError(TARGET_ID_FIELD, value, "must be a root id (r-...) or an OU id (ou-...)")
    text = value.strip()
    if not (_ROOT_ID.fullmatch(text) or _OU_ID.fullmatch(text)):
        raise InvalidItemError(
            TARGET_ID_FIELD, value, "is no root id (r-xxxx) or OU id (ou-xxxx-xxxxxxxx) of AWS Organizations"
        )
    return text


def parse_default_value(value: object, target_id: str | None = None) -> Decimal:
    """A default's amount: a DynamoDB number or operator text, by the item contract's rules."""
    if isinstance(value, str):
        return parse_budget_text(value, target_id)
    return parse_budget_value(value, target_id)


@dataclass(frozen=True, slots=True)
class OrgAccount:
    """One account of the organisation and where it sits: ``path`` runs root -> parent."""

    account_id: str
    name: str
    state: str  # ACTIVE | SUSPENDED | PENDING_CLOSURE | CLOSED
    path: tuple[str, ...]

    @property
    def active(self) -> bool:
        return self.state not in INACTIVE_STATES


@dataclass(frozen=True, slots=True)
class Unit:
    """A root or an OU: its name and its parent (None for the root)."""

    target_id: str
    name: str
    parent: str | None


@dataclass(frozen=True, slots=True)
class OrgTree:
    """The part of the organisation that was read: its units and the accounts under them."""

    units: Mapping[str, Unit]
    accounts: Mapping[str, OrgAccount]
    #: Service-managed StackSets never reach it: only its own item gives it a budget.
    management_account: str = ""

    def name_of(self, target_id: str) -> str:
        unit = self.units.get(target_id)
        return unit.name if unit else ""


@dataclass(frozen=True, slots=True)
class TableItem:
    """What the budgets table holds for an account, as far as resolution cares."""

    value: Decimal | None  # None: the item is there but its value is invalid
    inherited_from: str | None  # None: an explicit item (the operator's own)
    #: What the item holds as inherited cost basis (InheritedCostMetric/InheritedCostExclusions)
    inherited_cost: CostBasis = field(default_factory=CostBasis)


class Source(StrEnum):
    ITEM = "item"  # the account's own item
    DEFAULT = "default"  # a default of an OU or the root
    NONE = "none"  # nothing applies: budget-sync does not manage the account


@dataclass(frozen=True, slots=True)
class Effective:
    """An account's effective budget and where it comes from (``target_id`` for a default)."""

    value: Decimal | None
    source: Source
    target_id: str = ""


def effective(account: OrgAccount, item: TableItem | None, defaults: Mapping[str, Decimal]) -> Effective:
    """The effective-budget rule: own item, else nearest default up to the root, else none."""
    if item is not None and item.inherited_from is None:
        return Effective(item.value, Source.ITEM)
    for target in reversed(account.path):
        if target in defaults:
            return Effective(defaults[target], Source.DEFAULT, target)
    return Effective(None, Source.NONE)


class Action(StrEnum):
    """What the resolver does for one account (also its metric name)."""

    WRITE = "InheritedWritten"  # write (or change) the inherited item
    DELETE = "InheritedRemoved"  # the default is gone: remove the inherited item (-> UNMANAGED)
    WAIT = "WaitingForSpoke"  # a default applies, the spoke stack is not there yet
    SKIP = "AccountSkipped"  # suspended or closed: left as it is
    KEEP = "Unchanged"  # explicit item, or the table already holds the effective value
    COST = "InheritedCostBasisWritten"  # explicit item: only its inherited cost basis changes


@dataclass(frozen=True, slots=True)
class Decision:
    account_id: str
    action: Action
    effective: Effective
    previous: TableItem | None
    reason: str = ""
    #: The cost basis the account inherits from the defaults on its path (WRITE, COST)
    cost: CostBasis = field(default_factory=CostBasis)


def inherited_cost(account: OrgAccount, costs: Mapping[str, CostBasis]) -> CostBasis:
    """Field by field, the cost basis of the nearest default on the account's path that sets it
    (an OU's over its parent's, over the root's); nothing set: the stack's default applies. Pure."""
    found = CostBasis()
    for target in reversed(account.path):
        if target in costs:
            found = found.over(costs[target])
    return found


def decide(
    account: OrgAccount,
    item: TableItem | None,
    defaults: Mapping[str, Decimal],
    spoke_ready: bool,
    management_account: str = "",
    costs: Mapping[str, CostBasis] | None = None,
) -> Decision:
    """One account: what the budgets table must hold so that it carries the effective budget
    and the cost basis it inherits (``costs``: each valid default's, by target)."""
    if account.account_id == management_account and (item is None or item.inherited_from is None):
        wanted = Effective(item.value, Source.ITEM) if item else Effective(None, Source.NONE)
        reason = "the management account: defaults do not apply, only its own item"
        return Decision(account.account_id, Action.KEEP, wanted, item, reason)
    wanted = effective(account, item, defaults)
    if not account.active:
        reason = f"account is {account.state}: skipped, it keeps whatever budget it has"
        return Decision(account.account_id, Action.SKIP, wanted, item, reason)
    cost = inherited_cost(account, costs or {})
    if wanted.source is Source.ITEM:
        assert item is not None
        if item.inherited_cost != cost:
            reason = "own item; its inherited cost basis changed"
            return Decision(account.account_id, Action.COST, wanted, item, reason, cost)
        return Decision(account.account_id, Action.KEEP, wanted, item, "own item", cost)
    if wanted.source is Source.DEFAULT:
        reason = f"default of {wanted.target_id}"
        if (
            item is not None
            and item.inherited_from == wanted.target_id
            and item.value == wanted.value
            and item.inherited_cost == cost
        ):
            return Decision(account.account_id, Action.KEEP, wanted, item, reason, cost)
        if item is None and not spoke_ready:
            reason = f"waiting for its spoke stack; then the default of {wanted.target_id} applies"
            return Decision(account.account_id, Action.WAIT, wanted, item, reason, cost)
        return Decision(account.account_id, Action.WRITE, wanted, item, reason, cost)
    if item is not None:  # an inherited item whose default is gone
        reason = f"the default of {item.inherited_from} was removed: the account keeps its last budget"
        return Decision(account.account_id, Action.DELETE, wanted, item, reason)
    return Decision(account.account_id, Action.KEEP, wanted, item, "no item and no default")


def plan(
    tree: OrgTree,
    items: Mapping[str, TableItem],
    defaults: Mapping[str, Decimal],
    ready: Iterable[str] | None,
    costs: Mapping[str, CostBasis] | None = None,
) -> list[Decision]:
    """Every account of ``tree``. ``ready``: the accounts whose spoke stack exists (None: all)."""
    ready_set = None if ready is None else set(ready)
    return [
        decide(
            account,
            items.get(account_id),
            defaults,
            ready_set is None or account_id in ready_set,
            tree.management_account,
            costs,
        )
        for account_id, account in sorted(tree.accounts.items())
    ]
