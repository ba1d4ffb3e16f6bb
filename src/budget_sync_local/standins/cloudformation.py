"""CloudFormation StackSets: per-instance results of an operation.

moto 5.2 reports every instance of a StackSet operation with the operation's own status
(and lists no instance at all for an operation that targeted OUs), so an operation that
SUCCEEDED while some accounts FAILED (within the failure tolerance), which AWS reports,
cannot happen on moto. ``fail_stack_instance(account, region, reason)`` declares that an
account's instance fails (as ``set_calculated_spend`` declares spend); from then on,
``ListStackSetOperationResults`` lists, for every operation that created or updated
instances, one summary per instance of the StackSet in the operation's regions: ``FAILED``
with the declared ``StatusReason``, the others with the operation's status. The operation
itself still ends SUCCEEDED, as AWS's does within the failure tolerance.

Stack updates: a resource whose ``Condition`` is false is left alone when its definition
changes (moto 5.2 fails on it; see ``_update_or_skip_absent``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from moto.cloudformation import parsing as cfn_parsing
from moto.cloudformation.responses import CloudFormationResponse
from moto.core.responses import ActionResult

_FAILED: dict[tuple[str, str], str] = {}
_LOCK = threading.Lock()


def fail_stack_instance(account: str, region: str, reason: str) -> None:
    """The StackSet instance of ``account`` in ``region`` fails with ``reason`` from now on."""
    with _LOCK:
        _FAILED[(account, region)] = reason


def clear_failed_instances() -> None:
    with _LOCK:
        _FAILED.clear()


def _list_operation_results(self: CloudFormationResponse) -> ActionResult:
    name = self._get_param("StackSetName")
    operation_id = self._get_param("OperationId")
    stack_set = self.cloudformation_backend.describe_stack_set(name)
    operation = stack_set.get_operation(operation_id)
    regions = {region for instance in operation["Instances"] for region in instance.values()}
    targets = [(i.account_id, i.region_name) for i in stack_set.instances.stack_instances]
    if not regions:  # moto lists no instance for OU targets: every instance of the StackSet
        regions = {region for _, region in targets}
    with _LOCK:
        failed = dict(_FAILED)
    summaries: list[dict[str, Any]] = []
    for account, region in targets:
        if region not in regions:
            continue
        summary: dict[str, Any] = {"Account": account, "Region": region, "Status": operation["Status"]}
        if (account, region) in failed:
            summary.update(Status="FAILED", StatusReason=failed[(account, region)])
        summaries.append(summary)
    return ActionResult({"Summaries": summaries})


def _update_or_skip_absent(original: Callable[..., Any]) -> Callable[..., Any]:
    """Stack update of a resource that was never created because its ``Condition`` is false.

    moto 5.2 lists such a resource as modified when its definition changes between two
    templates, then calls the resource type's update with no original resource and fails
    (``'NoneType' object has no attribute 'name'``). CloudFormation leaves a resource whose
    condition is false before and after an update alone; so does this stand-in. A resource
    whose condition is now true but that does not exist yet is created, as AWS does.
    """

    def parse_and_update_resource(
        logical_id: str, resource_json: dict[str, Any], resources_map: Any, account_id: str, region_name: str
    ) -> Any:
        if resources_map[logical_id] is None:
            condition = resource_json.get("Condition")
            if condition and not resources_map.lazy_condition_map[condition]:
                return None
            return cfn_parsing.parse_and_create_resource(
                logical_id, resource_json, resources_map, account_id, region_name
            )
        return original(logical_id, resource_json, resources_map, account_id, region_name)

    return parse_and_update_resource
