"""AWS Organizations: the events AWS emits for account changes (moto emits none).

On AWS, Organizations records its calls in CloudTrail, and EventBridge receives them in
us-east-1 as ``AWS API Call via CloudTrail`` (``MoveAccount``, with the call's
``requestParameters``) and, once an asynchronous account creation ends, ``AWS Service
Event via CloudTrail`` (``CreateAccountResult``, with ``serviceEventDetails.
createAccountStatus``). While installed, every successful ``CreateAccount`` and
``MoveAccount`` that reaches moto (in-process or through ``make local``'s server, from any
client) produces that event for the management account's subscribers
(``subscribe_management``). moto creates accounts synchronously: CreateAccountResult
follows at once (on AWS, seconds to minutes later). Each event says ``region: us-east-1``;
``budget_sync_local.enrolment`` delivers it to a management stack in another region only
through a forwarding rule (template-org-events.yaml).

Not emulated: ``AcceptHandshake`` (moto's handshakes do not add the account) and the
CloudTrail delivery delay.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from moto.organizations.models import OrganizationsBackend

logger = logging.getLogger(__name__)
ManagementCallback = Callable[[dict[str, Any]], None]

_subscribers: list[ManagementCallback] = []
_lock = threading.Lock()


def subscribe_management(callback: ManagementCallback) -> None:
    """Hand every management-account event (Organizations, StackSets) to ``callback``."""
    with _lock:
        _subscribers.append(callback)


def unsubscribe_management(callback: ManagementCallback) -> None:
    with _lock:
        if callback in _subscribers:
            _subscribers.remove(callback)


def publish_management(event: dict[str, Any]) -> None:
    with _lock:
        subscribers = list(_subscribers)
    for callback in subscribers:
        try:
            callback(event)
        except Exception:
            logger.exception("a management event subscriber failed")


def cloudtrail_event(
    management_account: str, name: str, detail_type: str, detail: dict[str, Any]
) -> dict[str, Any]:
    """An Organizations event as EventBridge delivers it in us-east-1."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": "aws.organizations",
        "account": management_account,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "eventVersion": "1.08",
            "eventSource": "organizations.amazonaws.com",
            "eventName": name,
            "awsRegion": "us-east-1",
            **detail,
        },
    }


def _create_account(original: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    def create_account(self: OrganizationsBackend, **kwargs: Any) -> dict[str, Any]:
        status = original(self, **kwargs)
        created = status["CreateAccountStatus"]
        detail = {
            "eventType": "AwsServiceEvent",
            "serviceEventDetails": {
                "createAccountStatus": {
                    "id": created["Id"],
                    "state": created["State"],
                    "accountName": "***",  # AWS redacts the name in this event
                    "accountId": created["AccountId"],
                    "requestedTimestamp": str(created["RequestedTimestamp"]),
                    "completedTimestamp": str(created["CompletedTimestamp"]),
                }
            },
        }
        publish_management(
            cloudtrail_event(
                self.account_id, "CreateAccountResult", "AWS Service Event via CloudTrail", detail
            )
        )
        return status

    return create_account


def _move_account(original: Callable[..., None]) -> Callable[..., None]:
    def move_account(self: OrganizationsBackend, **kwargs: Any) -> None:
        original(self, **kwargs)
        detail = {
            "eventType": "AwsApiCall",
            "requestParameters": {
                "accountId": kwargs["AccountId"],
                "sourceParentId": kwargs["SourceParentId"],
                "destinationParentId": kwargs["DestinationParentId"],
            },
            "responseElements": None,
        }
        publish_management(
            cloudtrail_event(self.account_id, "MoveAccount", "AWS API Call via CloudTrail", detail)
        )

    return move_account
