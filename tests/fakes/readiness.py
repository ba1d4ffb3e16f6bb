"""In-memory spoke-stack readiness (the resolver's ``Readiness``, which
budget_sync.organizations.StackSetReadiness is on AWS): the accounts whose spoke stack exists."""

from __future__ import annotations


class FakeReadiness:
    def __init__(self, *ready: str) -> None:
        self.ready = set(ready)
        self.asked: list[str | None] = []

    def ready_accounts(self, account_id: str | None = None) -> set[str]:
        self.asked.append(account_id)
        if account_id is None:
            return set(self.ready)
        return {account_id} & self.ready
