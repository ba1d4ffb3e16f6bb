"""The approval tables' adapters (approvals.RequestTable, approvals.ApprovalTable): every boto3
call and ClientError translation for them. A condition that fails is an answer (False); anything else that stops a
read or write is TransientError. The item contract is approvals.py's docstring."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from budget_sync.approvals import ApprovalRequest, State
from budget_sync.errors import TransientError
from budget_sync.status import _deserialize

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_CONDITION_FAILED = "ConditionalCheckFailedException"


class DynamoRequestTable:
    """The requests table on DynamoDB (one client, built by the handler)."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table_name = table_name

    def create(self, request: ApprovalRequest) -> bool:
        item: dict[str, Any] = {
            "RequestId": {"S": request.request_id},
            "AccountId": {"S": request.account_id},
            "RequestedValue": {"N": str(request.requested_value)},
            "State": {"S": State.PENDING.value},
            "RequestedBy": {"S": request.requested_by},
            "RequestedAt": {"S": request.requested_at.isoformat(timespec="seconds")},
            "ExpiresAt": {"N": str(int(request.expires_at.timestamp()))},
            "SequenceNumber": {"S": request.sequence_number},
            "Rule": {"S": request.rule},
        }
        if request.current_value is not None:
            item["CurrentValue"] = {"N": str(request.current_value)}
        try:
            self._client.put_item(
                TableName=self._table_name,
                Item=item,
                ConditionExpression="attribute_not_exists(RequestId)",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == _CONDITION_FAILED:
                return False
            raise TransientError(f"request {request.request_id}: not recorded ({exc})") from exc
        except BotoCoreError as exc:
            raise TransientError(f"request {request.request_id}: not recorded ({exc})") from exc
        return True

    def read(self, request_id: str) -> dict[str, Any] | None:
        try:
            raw = self._client.get_item(
                TableName=self._table_name, Key={"RequestId": {"S": request_id}}, ConsistentRead=True
            ).get("Item")
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(f"request {request_id}: not read ({exc})") from exc
        return None if raw is None else {k: _deserialize(v) for k, v in raw.items()}

    def mark_applied(self, request_id: str, sequence_number: str) -> bool:
        try:
            self._client.update_item(
                TableName=self._table_name,
                Key={"RequestId": {"S": request_id}},
                UpdateExpression="SET #state = :applied, AppliedSequence = :seq",
                ConditionExpression="#state = :approved OR AppliedSequence = :seq",
                ExpressionAttributeNames={"#state": "State"},
                ExpressionAttributeValues={
                    ":applied": {"S": State.APPLIED.value},
                    ":approved": {"S": State.APPROVED.value},
                    ":seq": {"S": sequence_number},
                },
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == _CONDITION_FAILED:
                return False
            raise TransientError(f"request {request_id}: not marked applied ({exc})") from exc
        except BotoCoreError as exc:
            raise TransientError(f"request {request_id}: not marked applied ({exc})") from exc
        return True


class DynamoApprovalTable:
    """The approvals table on DynamoDB, read only (the stream function's)."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table_name = table_name

    def read(self, approver_id: str, request_id: str) -> dict[str, Any] | None:
        try:
            raw = self._client.get_item(
                TableName=self._table_name,
                Key={"ApproverId": {"S": approver_id}, "RequestId": {"S": request_id}},
                ConsistentRead=True,
            ).get("Item")
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(f"approval {request_id} by {approver_id}: not read ({exc})") from exc
        return None if raw is None else {k: _deserialize(v) for k, v in raw.items()}
