"""An in-memory history table (history.HistoryTable): appends a record unless its key is there
(as the adapter's conditional put), or fails the appends of the subjects in ``failures``."""

from __future__ import annotations

from budget_sync.errors import TransientError
from budget_sync.history import HistoryRecord


class FakeHistoryTable:
    def __init__(self, failures: set[str] | None = None) -> None:
        self.records: dict[tuple[str, str], HistoryRecord] = {}
        self.failures = failures or set()
        self.attempts = 0

    def append(self, record: HistoryRecord) -> bool:
        self.attempts += 1
        if record.subject in self.failures:
            raise TransientError(f"{record.subject}: history record not written (fake)")
        key = (record.subject, record.key)
        if key in self.records:
            return False
        self.records[key] = record
        return True

    def of_subject(self, subject: str) -> list[HistoryRecord]:
        return sorted(
            (r for (s, _), r in self.records.items() if s == subject), key=lambda r: r.key, reverse=True
        )
