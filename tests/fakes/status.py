"""An in-memory status store: keeps the last update per account, or fails every write."""

from __future__ import annotations

from budget_sync.errors import TransientError
from budget_sync.status import StatusUpdate


class FakeStatus:
    def __init__(self, fail: bool = False) -> None:
        self.rows: dict[str, StatusUpdate] = {}
        self.fail = fail

    def record(self, update: StatusUpdate) -> bool:
        if self.fail:
            raise TransientError("status write failed")
        self.rows[update.account_id] = update
        return True

    def record_many(self, updates: list[StatusUpdate]) -> list[str]:
        failed = []
        for update in updates:
            try:
                self.record(update)
            except TransientError:
                failed.append(update.account_id)
        return failed
