"""CloudFormation StackSets: a service-managed StackSet's instances, and their events.

moto's service-managed StackSets create a hidden copy of the template per account, which
would collide with the spoke stack the local organisation deploys itself (same role
names). Instead, the local organisation deploys each spoke stack as a plain stack
(``spoke_stack``) and records it here as an instance of the StackSet, as AWS would once
its automatic deployment succeeded:

* ``ListStackInstances`` of a StackSet known here answers with those instances
  (``Status`` CURRENT, ``StackInstanceStatus.DetailedStatus`` SUCCEEDED), and honours the
  ``StackInstanceAccount`` and ``StackInstanceRegion`` filters (moto ignores them);
* each recorded instance produces the ``CloudFormation StackSet StackInstance Status
  Change`` event that AWS puts on the management account's bus in the StackSet's region
  (``stack-set-arn``, ``stack-id``, ``action``, ``status-details``).

Not emulated: failed, outdated or deleted instances, and the deployment's minutes.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from moto.cloudformation.models import CloudFormationBackend
from moto.cloudformation.responses import CloudFormationResponse

from budget_sync_local.standins.organizations import publish_management

_lock = threading.Lock()
#: stack set name -> {(account, region): stack id}
_instances: dict[str, dict[tuple[str, str], str]] = {}
_arns: dict[str, str] = {}


def register_stack_set(name: str, arn: str) -> None:
    with _lock:
        _instances.setdefault(name, {})
        _arns[name] = arn


def clear() -> None:
    with _lock:
        _instances.clear()
        _arns.clear()


def record_instance(name: str, account: str, region: str, *, emit: bool = True) -> None:
    """The StackSet's instance in ``account`` succeeded: remember it, emit its event."""
    stack_id = (
        f"arn:aws:cloudformation:{region}:{account}:stack/StackSet-{name}-{uuid.uuid4()}/{uuid.uuid4()}"
    )
    with _lock:
        _instances.setdefault(name, {})[(account, region)] = stack_id
        arn = _arns.get(name, "")
    if not emit:
        return
    management = arn.split(":")[4] if arn.count(":") >= 5 else ""
    publish_management(
        {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "CloudFormation StackSet StackInstance Status Change",
            "source": "aws.cloudformation",
            "account": management,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": region,
            "resources": [arn],
            "detail": {
                "stack-set-arn": arn,
                "stack-id": stack_id,
                "action": "CREATE",
                "status-details": {"status": "CURRENT", "detailed-status": "SUCCEEDED"},
            },
        }
    )


def summaries(name: str, account: str | None, region: str | None) -> list[dict[str, Any]] | None:
    with _lock:
        known = _instances.get(name)
        if known is None:
            return None
        items = sorted(known.items())
    return [
        {
            "StackSetId": name,
            "Region": instance_region,
            "Account": instance_account,
            "StackId": stack_id,
            "Status": "CURRENT",
            "StackInstanceStatus": {"DetailedStatus": "SUCCEEDED"},
        }
        for (instance_account, instance_region), stack_id in items
        if (account is None or instance_account == account) and (region is None or instance_region == region)
    ]


def _list_stack_instances(original: Callable[..., Any]) -> Callable[..., Any]:
    def list_stack_instances(self: CloudFormationResponse) -> Any:
        from moto.core.responses import ActionResult

        name = self._get_param("StackSetName")
        found = summaries(
            name, self._get_param("StackInstanceAccount"), self._get_param("StackInstanceRegion")
        )
        if found is None:
            return original(self)
        return ActionResult({"Summaries": found})

    return list_stack_instances


__all__ = ["CloudFormationBackend", "clear", "record_instance", "register_stack_set", "summaries"]
