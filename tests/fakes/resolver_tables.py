"""An in-memory ``ResolverTables`` (budget_sync.resolve_tables): the budgets, defaults and
status tables as dicts, with the adapter's conditions (an item as read, a default unchanged or
still absent, WAITING never over APPLIED, a failure written once, cleared only if the resolver
wrote it). ``before_write`` runs before each inherited write or removal (a change made between
a run's read and its write); ``fail`` makes a method raise (an error the adapter translated)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from budget_sync.cost_basis import COST_FIELDS, CostBasis
from budget_sync.effective_budget import INHERITED_FROM_FIELD, INHERITED_VALUE_FIELD, TableItem
from budget_sync.resolve_tables import SOURCE, WriteOutcome
from budget_sync.status import Status


class FakeResolverTables:
    def __init__(
        self,
        defaults: dict[str, Any] | None = None,
        items: dict[str, dict[str, Any]] | None = None,
        status: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        #: TargetId -> BudgetValue as stored (an item may hold anything: a str, a float...)
        self.default_values: dict[str, Any] = dict(defaults or {})
        #: TargetId -> the default's CostMetric/CostExclusions as stored
        self.default_costs: dict[str, dict[str, Any]] = {}
        #: AccountId -> the item's other attributes
        self.budget_items: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (items or {}).items()}
        #: AccountId or TargetId -> the status item's attributes
        self.status: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (status or {}).items()}
        self.before_write: Callable[[], None] | None = None
        self.fail: dict[str, Exception] = {}
        self.calls: list[str] = []

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if name in self.fail:
            raise self.fail[name]

    # -- reads -------------------------------------------------------------------------

    def defaults(self) -> list[dict[str, Any]]:
        self._call("defaults")
        return [
            {"TargetId": target, "BudgetValue": value, **self.default_costs.get(target, {})}
            for target, value in self.default_values.items()
        ]

    def items(self) -> dict[str, dict[str, Any]]:
        self._call("items")
        return {account: {"AccountId": account, **item} for account, item in self.budget_items.items()}

    def item(self, account_id: str) -> dict[str, Any] | None:
        self._call("item")
        found = self.budget_items.get(account_id)
        return {"AccountId": account_id, **found} if found is not None else None

    # -- writes ------------------------------------------------------------------------

    def make_explicit(self, account_id: str, source: str, value: Any) -> bool:
        self._call("make_explicit")
        item = self.budget_items.get(account_id)
        if item is None or item.get(INHERITED_FROM_FIELD) != source or item.get("BudgetValue") != value:
            return False
        item.pop(INHERITED_FROM_FIELD, None)
        item.pop(INHERITED_VALUE_FIELD, None)
        return True

    def write_inherited(
        self,
        account_id: str,
        value: Decimal,
        source: str,
        actor: str,
        at: str,
        previous: TableItem | None,
        default_as_read: Any,
        cost: CostBasis | None = None,
        path_as_read: Mapping[str, Mapping[str, Any] | None] | None = None,
    ) -> WriteOutcome:
        self._call("write_inherited")
        if self.before_write is not None:
            self.before_write()
        if source not in self.default_values or self.default_values[source] != default_as_read:
            return WriteOutcome.STALE
        if cost is not None and not self._path_as_read(path_as_read or {}):
            return WriteOutcome.STALE
        if not self._as_read(account_id, previous) or (
            cost is not None and not self._cost_as_read(account_id, previous)
        ):
            return WriteOutcome.CONFLICT
        item = self.budget_items.setdefault(account_id, {})
        if cost is not None:
            self._set_cost(item, cost)
        item.update(
            {
                "BudgetValue": value,
                INHERITED_FROM_FIELD: source,
                INHERITED_VALUE_FIELD: value,
                "UpdatedBy": actor,
            }
        )
        item["UpdatedAt"] = at
        return WriteOutcome.DONE

    def write_inherited_cost(
        self,
        account_id: str,
        cost: CostBasis,
        previous: TableItem,
        path_as_read: Mapping[str, Mapping[str, Any] | None],
    ) -> WriteOutcome:
        self._call("write_inherited_cost")
        if self.before_write is not None:
            self.before_write()
        if not self._path_as_read(path_as_read):
            return WriteOutcome.STALE
        item = self.budget_items.get(account_id)
        if item is None or INHERITED_FROM_FIELD in item or not self._cost_as_read(account_id, previous):
            return WriteOutcome.CONFLICT
        self._set_cost(item, cost)
        return WriteOutcome.DONE

    def _path_as_read(self, path_as_read: Mapping[str, Mapping[str, Any] | None]) -> bool:
        for target, read in path_as_read.items():
            if read is None:
                if target in self.default_values:
                    return False
            elif target not in self.default_values or {
                f: v for f, v in self.default_costs.get(target, {}).items() if f in COST_FIELDS
            } != {f: v for f, v in read.items() if f in COST_FIELDS}:
                return False
        return True

    def _cost_as_read(self, account_id: str, previous: TableItem | None) -> bool:
        item = self.budget_items.get(account_id, {})
        before = (previous.inherited_cost if previous else CostBasis()).inherited_columns()
        return all(item.get(f) == v for f, v in before.items())

    @staticmethod
    def _set_cost(item: dict[str, Any], cost: CostBasis) -> None:
        for f, text in cost.inherited_columns().items():
            if text is None:
                item.pop(f, None)
            else:
                item[f] = text

    def delete_inherited(
        self, account_id: str, previous: TableItem, default_absent: str | None
    ) -> WriteOutcome:
        self._call("delete_inherited")
        if self.before_write is not None:
            self.before_write()
        if default_absent is not None and default_absent in self.default_values:
            return WriteOutcome.STALE
        if not self._as_read(account_id, previous):
            return WriteOutcome.CONFLICT
        del self.budget_items[account_id]
        return WriteOutcome.DONE

    def _as_read(self, account_id: str, previous: TableItem | None) -> bool:
        """resolve_tables.as_read_condition, on the dict."""
        item = self.budget_items.get(account_id)
        if previous is None:
            return item is None
        if item is None or INHERITED_FROM_FIELD not in item:
            return False
        if previous.inherited_from is None:
            return True
        if item[INHERITED_FROM_FIELD] != previous.inherited_from:
            return False
        return previous.value is None or item.get("BudgetValue") == previous.value

    def record_default_failure(self, target_id: str, reason: str, at: str) -> bool:
        self._call("record_default_failure")
        current = self.status.get(target_id, {})
        if current.get("Status") == Status.FAILED.value and current.get("Reason") == reason:
            return False
        current.update({"Status": Status.FAILED.value, "Reason": reason, "UpdatedAt": at, "Source": SOURCE})
        self.status[target_id] = current
        return True

    def clear_default_failure(self, target_id: str) -> bool:
        self._call("clear_default_failure")
        current = self.status.get(target_id)
        if current is None or "Status" not in current or current.get("Source") != SOURCE:
            return False
        del self.status[target_id]
        return True

    def record_status(
        self, account_id: str, status: Status, reason: str, desired: Decimal | None, at: str
    ) -> bool:
        self._call("record_status")
        current = self.status.get(account_id, {})
        if status is Status.WAITING and current.get("Status") == Status.APPLIED.value:
            return False
        current.update({"Status": status.value, "Reason": reason, "UpdatedAt": at, "Source": SOURCE})
        if desired is not None:
            current["DesiredValue"] = desired
        self.status[account_id] = current
        return True
