"""The one place where the local organisation adds what moto 5.2 leaves out.

Each stand-in is the smallest faithful copy of the AWS behaviour that budget-sync relies
on, patched into moto's backends (so it works for ``mock_aws()`` in-process and for a
``moto.server.ThreadedMotoServer`` in the same process alike) while ``installed()`` is
active:

* STS ``AssumeRole`` of a role that does not exist in the target account is refused with
  ``AccessDenied`` (moto lets any ARN be assumed). ``OrganizationAccountAccessRole`` is
  always allowed: AWS Organizations creates it in every member account. Trust policies are
  still not evaluated.
* SSM ``PutParameter`` enforces the ``AllowedPattern`` the call brings or the parameter
  has (``ParameterPatternMismatchException``), on create and overwrite, as AWS does; moto
  stores the pattern only.
* Budgets ``UpdateBudget`` (missing in moto 5.2): ``NewBudget`` replaces the whole
  definition except the name and the calculated spend; ``NotFoundException`` if the
  budget does not exist. Reachable through ``boto3.client("budgets").update_budget``.
* Every successful SSM ``PutParameter`` / ``DeleteParameter(s)`` produces the
  ``Parameter Store Change`` event that AWS puts on the account's default event bus, and
  hands it to the subscribers (``StandIns.subscribe``). moto emits no such event.
* ``run_automation`` executes an Automation document's steps against moto (moto has no
  ``StartAutomationExecution``): parameters with defaults and ``allowedPattern``,
  ``{{ }}`` substitution, ``aws:executeScript`` (the inline script's handler, its
  ``boto3`` bound to the automation's credentials) and ``aws:executeAwsApi``, step
  outputs, ``onFailure``.
* (speed only) moto's CloudFormation parses a JSON template body with the json module.
* ``pattern_matches`` is EventBridge's pattern matching, with moto's own matcher
  (moto's ``TestEventPattern`` answers without a result).

Not emulated: IAM policy evaluation, EventBridge delivery latency and retries, the
budget's real spend (``set_calculated_spend`` sets it by hand).
"""

from __future__ import annotations

import builtins
import contextlib
import copy
import inspect
import json
import logging
import re
import threading
import types
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any, cast

import boto3
from moto.budgets.exceptions import BudgetMissingLimit
from moto.budgets.exceptions import NotFoundException as BudgetNotFound
from moto.budgets.models import Budget, BudgetsBackend, budgets_backends
from moto.budgets.responses import BudgetsResponse
from moto.cloudformation.models import Stack as CloudFormationStack
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.core.utils import unix_time
from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.events.models import EventPattern
from moto.iam import models as iam_models
from moto.iam.models import iam_backends
from moto.ssm.exceptions import ValidationException
from moto.ssm.models import SimpleSystemManagerBackend
from moto.sts.exceptions import STSClientError
from moto.sts.models import STSBackend
from moto.utilities.utils import get_partition

logger = logging.getLogger(__name__)

#: Every member account that AWS Organizations creates has this role.
ADMIN_ROLE = "OrganizationAccountAccessRole"

EventCallback = Callable[[dict[str, Any]], None]


class StandIns:
    """Handle on the installed stand-ins: subscribe to the Parameter Store Change events."""

    def __init__(self) -> None:
        self._subscribers: list[EventCallback] = []
        self._lock = threading.Lock()

    def subscribe(self, callback: EventCallback) -> None:
        """Call ``callback(event)`` for every Parameter Store Change event from now on.

        Callbacks run inside moto's request thread, after the write succeeded: keep them
        cheap (put the event on a queue). An exception in a callback is logged, never
        turned into an error of the SSM call.
        """
        with self._lock:
            self._subscribers.append(callback)

    def unsubscribe(self, callback: EventCallback) -> None:
        with self._lock:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

    def publish(self, event: dict[str, Any]) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(event)
            except Exception:
                logger.exception("a Parameter Store Change subscriber failed")


_INSTALL_LOCK = threading.RLock()
_active: StandIns | None = None


@contextlib.contextmanager
def installed() -> Iterator[StandIns]:
    """Patch moto with the stand-ins until the block exits.

    Re-entrant: inside an active installation this yields the same ``StandIns`` and
    patches nothing twice (one write, one event).
    """
    global _active
    with _INSTALL_LOCK:
        if _active is not None:
            outer: StandIns | None = _active
        else:
            outer = None
            stand_ins = StandIns()
            patches = contextlib.ExitStack()
            _patch(patches, stand_ins)
            _active = stand_ins
    if outer is not None:
        yield outer
        return
    try:
        yield stand_ins
    finally:
        with _INSTALL_LOCK:
            patches.close()
            _active = None


def _patch(stack: contextlib.ExitStack, stand_ins: StandIns) -> None:
    def replace(owner: type, name: str, value: Any) -> None:
        original = owner.__dict__.get(name)
        setattr(owner, name, value)
        if original is None:
            stack.callback(delattr, owner, name)
        else:
            stack.callback(setattr, owner, name, original)

    replace(STSBackend, "assume_role", _assume_existing_role_only(STSBackend.assume_role))
    replace(
        SimpleSystemManagerBackend,
        "put_parameter",
        _put_parameter(SimpleSystemManagerBackend.put_parameter, stand_ins),
    )
    replace(
        SimpleSystemManagerBackend,
        "delete_parameter",
        _delete_parameter(SimpleSystemManagerBackend.delete_parameter, stand_ins),
    )
    replace(
        SimpleSystemManagerBackend,
        "delete_parameters",
        _delete_parameters(SimpleSystemManagerBackend.delete_parameters, stand_ins),
    )
    replace(BudgetsBackend, "update_budget", _backend_update_budget)
    replace(BudgetsResponse, "update_budget", _response_update_budget)
    replace(
        CloudFormationStack, "parse_template", staticmethod(_json_first(CloudFormationStack.parse_template))
    )
    replace(
        DynamoDBBackend,
        "transact_write_items",
        _snapshot_each_table_once(DynamoDBBackend.transact_write_items),
    )
    original_lookup = iam_models.get_account_id_from
    setattr(iam_models, "get_account_id_from", _remembered_account_lookup(original_lookup))  # noqa: B010
    stack.callback(setattr, iam_models, "get_account_id_from", original_lookup)
    stack.callback(_KEY_ACCOUNTS.clear)


# -- CloudFormation: a speed-up, not a behaviour ---------------------------------------------


def _json_first(original: Callable[[str], dict[str, Any]]) -> Callable[[str], dict[str, Any]]:
    """moto parses every template with PyYAML's pure-Python loader (~0.1 s for the spoke
    template); a JSON body is parsed with the json module first (same result: JSON is YAML)."""

    def parse_template(template: str) -> dict[str, Any]:
        if template.lstrip().startswith("{"):
            try:
                parsed: dict[str, Any] = json.loads(template)
                return parsed
            except ValueError:
                pass
        return original(template)

    return parse_template


def _snapshot_each_table_once(original: Callable[..., None]) -> Callable[..., None]:
    """moto's TransactWriteItems deep-copies a table (items and stream records) for every
    item of the transaction, as a rollback snapshot: a 100-item transaction on a table of
    a thousand accounts copies it a hundred times. The same snapshot, taken once per table
    per transaction, gives the same rollback."""
    lock = threading.Lock()

    def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        snapshots: dict[int, Table] = {}

        def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
            if not isinstance(value, Table):
                return copy.deepcopy(value, memo)
            if id(value) not in snapshots:
                snapshots[id(value)] = copy.deepcopy(value, memo)
            return snapshots[id(value)]

        with lock:
            saved = dynamodb_models.__dict__["copy"]
            setattr(dynamodb_models, "copy", types.SimpleNamespace(deepcopy=deepcopy))  # noqa: B010
            try:
                original(self, transact_items)
            finally:
                setattr(dynamodb_models, "copy", saved)  # noqa: B010

    return transact_write_items


#: Access key -> account, filled as keys are issued (AssumeRole) or first looked up.
_KEY_ACCOUNTS: dict[str, str] = {}


def _remembered_account_lookup(original: Callable[[str], str]) -> Callable[[str], str]:
    """moto finds the account of a request's access key by scanning every account's keys,
    on every request: with a thousand accounts that scan is most of a request's time. An
    access key never moves to another account, so its account is recorded when AssumeRole
    issues it, or when a scan first finds it (keys not found, which moto serves from its
    default account, are looked up again)."""

    def get_account_id_from(access_key: str) -> str:
        account = _KEY_ACCOUNTS.get(access_key)
        if account is None:
            account = original(access_key)
            if account != DEFAULT_ACCOUNT_ID:
                _KEY_ACCOUNTS[access_key] = account
        return account

    return get_account_id_from


# -- STS: AssumeRole needs the role to exist ------------------------------------------------


def _assume_existing_role_only(original: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(original)

    def assume_role(self: STSBackend, *args: Any, **kwargs: Any) -> Any:
        role_arn: str = signature.bind(self, *args, **kwargs).arguments["role_arn"]
        parts = role_arn.split(":")
        account, partition, name = parts[4], parts[1], role_arn.rsplit("/", 1)[-1]
        if name != ADMIN_ROLE:
            roles = iam_backends[account][partition].roles.values()
            if not any(role.name == name for role in roles):
                raise STSClientError(
                    "AccessDenied",
                    f"User is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
                )
        assumed = original(self, *args, **kwargs)
        _KEY_ACCOUNTS[assumed.access_key_id] = account  # see _remembered_account_lookup
        return assumed

    return assume_role


# -- SSM: AllowedPattern, and the Parameter Store Change event -------------------------------


def parameter_arn(partition: str, region: str, account: str, name: str) -> str:
    """A parameter's ARN: ``.../parameter/a/b`` for ``/a/b`` and for ``a/b`` alike."""
    return f"arn:{partition}:ssm:{region}:{account}:parameter/{name.lstrip('/')}"


def parameter_store_change_event(
    account: str,
    region: str,
    name: str,
    operation: str,
    parameter_type: str = "String",
    description: str = "",
) -> dict[str, Any]:
    """The event AWS puts on the default bus when a parameter changes (Create|Update|Delete)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Parameter Store Change",
        "source": "aws.ssm",
        "account": account,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [parameter_arn(get_partition(region), region, account, name)],
        "detail": {
            "name": name,
            "type": parameter_type,
            "operation": operation,
            "description": description or "",
        },
    }


def _pattern_mismatch(pattern: str) -> ValidationException:
    error = ValidationException(f"Parameter value, cannot be validated against allowedPattern: {pattern}")
    error.code = "ParameterPatternMismatchException"
    return error


def _put_parameter(original: Callable[..., Any], stand_ins: StandIns) -> Callable[..., Any]:
    signature = inspect.signature(original)

    def put_parameter(self: SimpleSystemManagerBackend, *args: Any, **kwargs: Any) -> Any:
        arguments = signature.bind(self, *args, **kwargs).arguments
        name, value = arguments["name"], arguments["value"]
        previous = self.get_parameter(name)
        # Checked against the pattern the call brings, else the stored one (as AWS does,
        # for a create as for an overwrite).
        pattern = arguments.get("allowed_pattern") or (previous.allowed_pattern if previous else None)
        if pattern and value is not None and not re.search(pattern, value):
            raise _pattern_mismatch(pattern)
        parameter = original(self, *args, **kwargs)
        operation = "Create" if parameter.version == 1 else "Update"
        stand_ins.publish(
            parameter_store_change_event(
                self.account_id,
                self.region_name,
                parameter.name,
                operation,
                parameter.parameter_type,
                parameter.description or "",
            )
        )
        return parameter

    return put_parameter


def _delete_parameter(original: Callable[..., Any], stand_ins: StandIns) -> Callable[..., Any]:
    def delete_parameter(self: SimpleSystemManagerBackend, name: str) -> None:
        previous = self.get_parameter(name)
        original(self, name)
        stand_ins.publish(_delete_event(self, name, previous))

    return delete_parameter


def _delete_parameters(original: Callable[..., Any], stand_ins: StandIns) -> Callable[..., Any]:
    def delete_parameters(self: SimpleSystemManagerBackend, names: list[str]) -> list[str]:
        previous = {name: self.get_parameter(name) for name in names}
        deleted: list[str] = original(self, names)
        for name in deleted:
            stand_ins.publish(_delete_event(self, name, previous.get(name)))
        return deleted

    return delete_parameters


def _delete_event(backend: SimpleSystemManagerBackend, name: str, previous: Any) -> dict[str, Any]:
    return parameter_store_change_event(
        backend.account_id,
        backend.region_name,
        previous.name if previous is not None else name,
        "Delete",
        previous.parameter_type if previous is not None else "String",
        (previous.description or "") if previous is not None else "",
    )


# -- Budgets: UpdateBudget, and the local organisation's view of a budget --------------------


def _backend_update_budget(self: BudgetsBackend, account_id: str, new_budget: dict[str, Any]) -> None:
    """UpdateBudget: "can change every part of a budget except budgetName and calculatedSpend"."""
    name = new_budget.get("BudgetName")
    current = self.budgets[account_id].get(str(name))
    if current is None:
        raise BudgetNotFound(f"Unable to update budget: {name} - the budget doesn't exist.")
    if "BudgetLimit" not in new_budget and "PlannedBudgetLimits" not in new_budget:
        current_type = new_budget.get("BudgetType", current.budget.get("BudgetType"))
        if current_type in ("COST", "USAGE"):
            raise BudgetMissingLimit()
    replacement = {k: v for k, v in new_budget.items() if k not in ("CalculatedSpend", "LastUpdatedTime")}
    if "CalculatedSpend" in current.budget:
        replacement["CalculatedSpend"] = current.budget["CalculatedSpend"]
    replacement.setdefault("TimePeriod", current.budget.get("TimePeriod"))
    replacement["LastUpdatedTime"] = unix_time()
    current.budget = replacement


def _response_update_budget(self: BudgetsResponse) -> str:
    self.backend.update_budget(  # type: ignore[attr-defined]
        account_id=self._get_param("AccountId"), new_budget=self._get_param("NewBudget")
    )
    return json.dumps({})


def _budget(account: str, budget_name: str, partition: str = "aws") -> Budget:
    budget = budgets_backends[account][partition].budgets[account].get(budget_name)
    if budget is None:
        raise KeyError(f"no budget {budget_name} in account {account}")
    return budget


def set_calculated_spend(
    account: str, budget_name: str, actual: Decimal, forecasted: Decimal, partition: str = "aws"
) -> None:
    """Give a budget this month's spend (AWS computes it from billing data; moto reads 0)."""
    _budget(account, budget_name, partition).budget["CalculatedSpend"] = {
        "ActualSpend": {"Amount": str(actual), "Unit": "USD"},
        "ForecastedSpend": {"Amount": str(forecasted), "Unit": "USD"},
    }


def notifications_with_subscribers(
    account: str, budget_name: str, partition: str = "aws"
) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """The budget's notifications, each with its subscribers, as moto holds them."""
    return [
        (dict(n.details), [dict(s) for s in cast(list[dict[str, Any]], n.subscribers)])
        for n in _budget(account, budget_name, partition).notifications
    ]


# -- EventBridge: pattern matching ---------------------------------------------------------


def pattern_matches(pattern: Mapping[str, Any] | str, event: Mapping[str, Any]) -> bool:
    """Does an EventBridge event pattern match the event? (moto's EventPattern matcher)."""
    raw = pattern if isinstance(pattern, str) else json.dumps(pattern)
    matched: bool = EventPattern.load(raw).matches_event(cast(Any, dict(event)))
    return matched


# -- SSM Automation: run a document's steps against moto -----------------------------------


class AutomationParameterError(ValueError):
    """StartAutomationExecution would refuse the parameters (InvalidAutomationExecutionParameters)."""


@dataclass(frozen=True)
class AutomationResult:
    """What GetAutomationExecution would report once the execution has finished."""

    status: str  # Success | Failed
    outputs: Mapping[str, Any] = field(default_factory=dict)
    failure_message: str | None = None
    steps: tuple[str, ...] = ()
    execution_id: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)


class _StepFailed(Exception):
    pass


_RUN_LOCK = threading.Lock()
_PLACEHOLDER = re.compile(r"\{\{\s*([\w:.-]+)\s*\}\}")


def run_automation(
    content: Mapping[str, Any], parameters: Mapping[str, Sequence[str]], session: boto3.Session
) -> AutomationResult:
    """Execute an Automation document (schemaVersion 0.3) with ``session``'s credentials.

    Raises AutomationParameterError where StartAutomationExecution would refuse to start
    (unknown or missing parameter, a value breaking its ``allowedPattern``). A step that
    fails ends the execution as Failed (``onFailure: Abort``, the default) or moves on
    (``Continue``).
    """
    resolved = _resolve_parameters(content, parameters)
    execution_id = str(uuid.uuid4())
    region = session.region_name or "us-east-1"
    account = session.client("sts").get_caller_identity()["Account"]
    variables: dict[str, Any] = {
        **resolved,
        "global:ACCOUNT_ID": account,
        "global:REGION": region,
        "global:AWS_PARTITION": get_partition(region),
        "global:DATE_TIME": datetime.now(UTC).strftime("%Y-%m-%d_%H.%M.%S"),
        "automation:EXECUTION_ID": execution_id,
    }
    steps_run: list[str] = []
    failure: str | None = None
    with _RUN_LOCK:
        for step in content.get("mainSteps", []):
            name = step["name"]
            steps_run.append(name)
            try:
                outputs = _run_step(step, _substitute(step.get("inputs", {}), variables), session)
            except _StepFailed as exc:
                message = f"Step {name} failed: {exc}"
                if step.get("onFailure", "Abort") == "Continue":
                    failure = failure or message
                    continue
                failure = message
                break
            for output_name, value in outputs.items():
                variables[f"{name}.{output_name}"] = value
    document_outputs = {key: variables[key] for key in content.get("outputs", []) if key in variables}
    return AutomationResult(
        status="Failed" if failure else "Success",
        outputs=document_outputs,
        failure_message=failure,
        steps=tuple(steps_run),
        execution_id=execution_id,
        parameters=resolved,
    )


def _resolve_parameters(content: Mapping[str, Any], given: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    declared: Mapping[str, Any] = content.get("parameters", {})
    unknown = set(given) - set(declared)
    if unknown:
        raise AutomationParameterError(f"Parameters {sorted(unknown)} are not defined in the document")
    resolved: dict[str, Any] = {}
    for name, spec in declared.items():
        kind = spec.get("type", "String")
        if name in given:
            values = [str(v) for v in given[name]]
        elif "default" in spec:
            default = spec["default"]
            values = [str(v) for v in default] if isinstance(default, list) else [str(default)]
        else:
            raise AutomationParameterError(f"Parameter {name} is required and has no default")
        pattern = spec.get("allowedPattern")
        for value in values:
            if pattern and not re.search(pattern, value):
                raise AutomationParameterError(
                    f"Parameter {name} value {value!r} does not match allowedPattern {pattern}"
                )
        if kind == "StringList":
            resolved[name] = values
        else:
            if len(values) != 1:
                raise AutomationParameterError(f"Parameter {name} of type {kind} takes one value")
            resolved[name] = values[0]
    return resolved


def _substitute(value: Any, variables: Mapping[str, Any]) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, variables) for v in value]
    if not isinstance(value, str):
        return value
    whole = _PLACEHOLDER.fullmatch(value.strip())
    if whole and whole.group(1) in variables:
        return variables[whole.group(1)]

    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        return str(variables[key]) if key in variables else match.group(0)

    return _PLACEHOLDER.sub(replace, value)


def _run_step(step: Mapping[str, Any], inputs: Mapping[str, Any], session: boto3.Session) -> dict[str, Any]:
    action = step.get("action")
    if action == "aws:executeScript":
        runtime = str(inputs.get("Runtime", ""))
        if not runtime.startswith("python3"):
            raise _StepFailed(f"runtime {runtime!r} is not emulated (python3.x only)")
        try:
            payload = _run_script(
                str(inputs["Script"]), str(inputs["Handler"]), inputs.get("InputPayload", {}), session
            )
        except Exception as exc:  # any error of the script fails the step, as in SSM
            raise _StepFailed(f"{type(exc).__name__}: {exc}") from exc
        response: Any = {"Payload": payload}
    elif action == "aws:executeAwsApi":
        params = {k: v for k, v in inputs.items() if k not in ("Service", "Api")}
        client = session.client(inputs["Service"])
        api = re.sub(r"(?<!^)(?=[A-Z])", "_", str(inputs["Api"])).lower()
        try:
            response = getattr(client, api)(**params)
        except Exception as exc:  # the API error fails the step, as in SSM
            raise _StepFailed(f"{type(exc).__name__}: {exc}") from exc
    else:
        raise _StepFailed(f"action {action!r} is not emulated by the local organisation")
    outputs: dict[str, Any] = {}
    for output in step.get("outputs", []):
        value = _select(response, str(output["Selector"]))
        outputs[output["Name"]] = str(value) if output.get("Type", "String") == "String" else value
    return outputs


def _select(document: Any, selector: str) -> Any:
    """The JSONPath subset that output selectors use: ``$.A.B`` (dots only)."""
    value = document
    for part in selector.removeprefix("$").strip(".").split("."):
        if not part:
            continue
        if not isinstance(value, Mapping) or part not in value:
            raise _StepFailed(f"output selector {selector} finds nothing")
        value = value[part]
    return value


@lru_cache(maxsize=16)
def _compiled(script: str) -> types.CodeType:
    return compile(script, "<aws:executeScript>", "exec", dont_inherit=True)


def _run_script(script: str, handler: str, payload: Any, session: boto3.Session) -> Any:
    """Run an inline script as executeScript does, its ``boto3`` bound to ``session``.

    The script gets its own module namespace whose ``import boto3`` returns a module with
    ``client``/``resource``/``Session`` of the automation's session, so nothing global
    (boto3's default session, the environment) is touched and runs cannot leak into
    each other or into other threads.
    """
    shim = types.ModuleType("boto3")
    shim.client = session.client  # type: ignore[attr-defined]
    shim.resource = session.resource  # type: ignore[attr-defined]
    shim.Session = lambda *args, **kwargs: session  # type: ignore[attr-defined]

    def import_(
        name: str, globals_: Any = None, locals_: Any = None, fromlist: Any = (), level: int = 0
    ) -> Any:
        if name == "boto3" and level == 0:
            return shim
        return builtins.__import__(name, globals_, locals_, fromlist, level)

    namespace: dict[str, Any] = {
        "__name__": "automation_script",
        "__builtins__": {**vars(builtins), "__import__": import_},
    }
    exec(_compiled(script), namespace)  # noqa: S102 - the document's own script, as SSM runs it
    return namespace[handler](payload, None)


__all__ = [
    "ADMIN_ROLE",
    "AutomationParameterError",
    "AutomationResult",
    "StandIns",
    "installed",
    "notifications_with_subscribers",
    "parameter_arn",
    "parameter_store_change_event",
    "pattern_matches",
    "run_automation",
    "set_calculated_spend",
]
