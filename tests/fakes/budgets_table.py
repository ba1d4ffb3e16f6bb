"""An in-memory budgets table (the reconciler's ``DesiredTable``; budgets_table.BudgetsTable on
DynamoDB): holds one DesiredItem per account, records every read, can fail per account, and can
be told what an operator writes between two reads (``script``)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from budget_sync.reconcile import DesiredItem


class FakeBudgetsTable:
    def __init__(
        self, items: Iterable[DesiredItem] = (), failures: dict[str, Exception] | None = None
    ) -> None:
        self.rows: dict[str, DesiredItem] = {item.account_id: item for item in items}
        self.failures = failures or {}
        self.reads: list[str] = []
        self._script: dict[str, deque[DesiredItem | None]] = {}

    def put(self, item: DesiredItem) -> None:
        """An operator's write: the item as the table holds it from now on."""
        self.rows[item.account_id] = item

    def delete(self, account_id: str) -> None:
        self.rows.pop(account_id, None)

    def script(self, account_id: str, *answers: DesiredItem | None) -> None:
        """What the next reads of ``account_id`` see, one answer per read, in order (None: the
        item is gone); each answer also becomes the table's item. After them, the table's item."""
        self._script.setdefault(account_id, deque()).extend(answers)

    def items(self) -> list[DesiredItem]:
        return sorted(self.rows.values(), key=lambda i: i.account_id)

    def read_item(self, account_id: str) -> DesiredItem | None:
        self.reads.append(account_id)
        if account_id in self.failures:
            raise self.failures[account_id]
        queued = self._script.get(account_id)
        if queued:
            answer = queued.popleft()
            if answer is None:
                self.delete(account_id)
            else:
                self.put(answer)
        return self.rows.get(account_id)
