"""An in-memory status table as the reconciler writes it (reconcile.StatusWriter; status.StatusStore
on DynamoDB): keeps the last update per account under the store's condition (an update whose
sequence number is older than the stored one is refused, silently, as a conditional-write loss),
records every batch, and can fail per account (the account is returned as unwritten)."""

from __future__ import annotations

from budget_sync.status import StatusUpdate, padded


class FakeStatusWriter:
    def __init__(self, failures: set[str] | None = None) -> None:
        self.rows: dict[str, StatusUpdate] = {}
        self.failures = failures or set()
        self.batches: list[list[StatusUpdate]] = []
        self.refused: list[StatusUpdate] = []  # lost to a newer status (the condition failed)

    def newer(self, update: StatusUpdate) -> None:
        """A status another writer (the stream function, a spoke's report) stored meanwhile."""
        self.rows[update.account_id] = update

    def record_many(self, updates: list[StatusUpdate]) -> list[str]:
        self.batches.append(list(updates))
        unwritten: list[str] = []
        for update in updates:
            if update.account_id in self.failures:
                unwritten.append(update.account_id)
                continue
            stored = self.rows.get(update.account_id)
            if stored is not None and padded(stored.sequence_number) > padded(update.sequence_number):
                self.refused.append(update)
                continue
            self.rows[update.account_id] = update
        return unwritten
