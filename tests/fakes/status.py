"""An in-memory status store: keeps the last update per account, or fails every write; ``read``
answers the item's AppliedValue as the status table keeps it (an update without one keeps it)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from budget_sync.errors import TransientError
from budget_sync.status import StatusUpdate


class FakeStatus:
    def __init__(self, fail: bool = False) -> None:
        self.rows: dict[str, StatusUpdate] = {}
        self.applied: dict[str, Decimal] = {}
        self.fail = fail

    def record(self, update: StatusUpdate) -> bool:
        if self.fail:
            raise TransientError("status write failed")
        self.rows[update.account_id] = update
        if update.applied is not None:
            self.applied[update.account_id] = update.applied
        return True

    def read(self, account_id: str) -> dict[str, Any] | None:
        row = self.rows.get(account_id)
        if row is None and account_id not in self.applied:
            return None
        item: dict[str, Any] = {"AccountId": account_id}
        if row is not None:
            item.update(Status=row.status.value, Source=row.source, Reason=row.reason)
        if account_id in self.applied:
            item["AppliedValue"] = self.applied[account_id]
        return item

    def record_many(self, updates: list[StatusUpdate]) -> list[str]:
        failed = []
        for update in updates:
            try:
                self.record(update)
            except TransientError:
                failed.append(update.account_id)
        return failed
