"""In-memory approval tables (approvals.RequestTable, approvals.ApprovalTable), recording every
create."""

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

    def mark_applied(self, request_id: str, sequence_number: str) -> bool:
        item = self.items.get(request_id)
        if item is None:
            return False
        if item["State"] == State.APPROVED or item.get("AppliedSequence") == sequence_number:
            item.update(State=State.APPLIED.value, AppliedSequence=sequence_number)
            return True
        return False

    def decide(self, request_id: str, state: State) -> None:
        """What budgetctl approve / reject does to the request."""
        self.items[request_id]["State"] = state.value


class FakeApprovalTable:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}

    def add(
        self, approver_id: str, request_id: str, approver_arn: str, decision: State = State.APPROVED
    ) -> None:
        self.items[(approver_id, request_id)] = {
            "ApproverId": approver_id,
            "RequestId": request_id,
            "Decision": decision.value,
            "ApproverArn": approver_arn,
        }

    def read(self, approver_id: str, request_id: str) -> dict[str, Any] | None:
        return self.items.get((approver_id, request_id))
