"""An in-memory requests table (approvals.RequestTable), recording every create."""

from __future__ import annotations

from typing import Any

from budget_sync.approvals import ApprovalRequest, State
from budget_sync.errors import TransientError


class FakeRequestTable:
    def __init__(self, fail: bool = False) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.creates: list[str] = []
        self.fail = fail

    def create(self, request: ApprovalRequest) -> bool:
        if self.fail:
            raise TransientError("requests table write failed")
        self.creates.append(request.request_id)
        if request.request_id in self.items:
            return False
        self.items[request.request_id] = {
            "RequestId": request.request_id,
            "AccountId": request.account_id,
            "RequestedValue": request.requested_value,
            "State": State.PENDING.value,
            "RequestedBy": request.requested_by,
            "ExpiresAt": int(request.expires_at.timestamp()),
        }
        return True

    def read(self, request_id: str) -> dict[str, Any] | None:
        return self.items.get(request_id)
