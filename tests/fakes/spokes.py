"""An in-memory spoke gateway: records every parameter write, can fail or be slow per account,
and notices when one account is written twice at once."""

from __future__ import annotations

import threading
import time
from collections import Counter


class FakeSpokes:
    def __init__(self, failures: dict[str, Exception] | None = None, delay: float = 0.0) -> None:
        self.failures = failures or {}
        self.delay = delay
        self.writes: list[tuple[str, str]] = []
        self.in_flight: Counter[str] = Counter()
        self.overlap = False
        self.peak = 0
        self._lock = threading.Lock()

    def put_budget_value(self, account_id: str, amount_text: str) -> int:
        with self._lock:
            self.in_flight[account_id] += 1
            self.overlap |= self.in_flight[account_id] > 1
            self.peak = max(self.peak, sum(self.in_flight.values()))
        try:
            time.sleep(self.delay)
            if account_id in self.failures:
                raise self.failures[account_id]
            with self._lock:
                self.writes.append((account_id, amount_text))
            return len(self.writes)
        finally:
            with self._lock:
                self.in_flight[account_id] -= 1
