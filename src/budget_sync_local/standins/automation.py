"""SSM Automation: run a document's steps against moto (no StartAutomationExecution there).

As AWS runs them: executions of one document (for one account too) run at the same time,
each in its own thread of the caller's; each step has its ``timeoutSeconds`` (for
``aws:executeScript`` at most, and by default, 600 seconds: "Each aws:executeScript action
can run up to a maximum duration of 600 seconds", AWS Systems Manager User Guide,
automation-action-executeScript.html), and a step that exceeds it ends the execution
``TimedOut`` ("By default, if an action times out, the automation execution status will be
Timed Out", automation-handling-timeouts.html); ``stop_execution`` (StopAutomationExecution)
ends a running execution ``Cancelled``. A step that timed out or was cancelled is stopped at
its next AWS call (the call is refused): on AWS the step's runtime is ended. ``TIME_SCALE``
shrinks AWS's seconds to local ones for tests (a 120-second timeout in a second or so).
"""

from __future__ import annotations

import builtins
import contextvars
import re
import threading
import types
import uuid
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache, partial
from typing import Any

import boto3
from botocore.credentials import Credentials
from moto.ssm.exceptions import SSMException
from moto.utilities.utils import get_partition


class AutomationParameterError(ValueError):
    """StartAutomationExecution would refuse the parameters (InvalidAutomationExecutionParameters)."""


@dataclass(frozen=True)
class AutomationResult:
    """What GetAutomationExecution would report once the execution has finished."""

    status: str  # Success | Failed | TimedOut | Cancelled
    outputs: Mapping[str, Any] = field(default_factory=dict)
    failure_message: str | None = None
    steps: tuple[str, ...] = ()
    execution_id: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)


class _StepFailed(Exception):
    pass


class ExecutionStopped(RuntimeError):
    """A call of a step whose execution timed out or was cancelled (its runtime has ended)."""


#: aws:executeScript's maximum (and the timeout of a step that gives none), in seconds.
EXECUTE_SCRIPT_MAX_S = 600
#: Local seconds per AWS second of a step's timeout (tests shrink it).
TIME_SCALE = 1.0


@dataclass
class _Execution:
    execution_id: str
    account: str
    #: Set when the execution ends early: its status (TimedOut, Cancelled).
    ended: str | None = None
    stopped: threading.Event = field(default_factory=threading.Event)
    #: Set when the running step finishes or the execution is stopped.
    wake: threading.Event = field(default_factory=threading.Event)


#: Executions running now, by id (StopAutomationExecution finds them here).
_RUNNING: dict[str, _Execution] = {}
_RUNNING_LOCK = threading.Lock()
_CURRENT: ContextVar[_Execution | None] = ContextVar("automation_execution", default=None)


def running_executions(account: str | None = None) -> list[str]:
    """The ids of the executions running now (in ``account``, if given)."""
    with _RUNNING_LOCK:
        return [e.execution_id for e in _RUNNING.values() if account in (None, e.account)]


def stop_execution(execution_id: str) -> None:
    """StopAutomationExecution: the execution ends ``Cancelled``; its running step is stopped.

    Raises KeyError naming the id if no such execution is running (AWS:
    AutomationExecutionNotFoundException)."""
    with _RUNNING_LOCK:
        execution = _RUNNING.get(execution_id)
        if execution is None:
            raise KeyError(f"AutomationExecutionId {execution_id!r} is not a running execution")
        if execution.ended is None:
            execution.ended = "Cancelled"
    execution.stopped.set()
    execution.wake.set()


def _response_stop_automation_execution(self: Any) -> str:
    """SSM's StopAutomationExecution (moto has none): a running execution of the caller's
    account ends Cancelled; another id is AutomationExecutionNotFoundException."""
    execution_id = str(self._get_param("AutomationExecutionId"))
    with _RUNNING_LOCK:
        execution = _RUNNING.get(execution_id)
        found = execution is not None and execution.account == self.current_account
    if not found:
        raise SSMException(
            "AutomationExecutionNotFoundException",
            f"AutomationExecutionId {execution_id} was not found among the running executions",
        )
    stop_execution(execution_id)
    return "{}"


_PLACEHOLDER = re.compile(r"\{\{\s*([\w:.-]+)\s*\}\}")


def run_automation(
    content: Mapping[str, Any],
    parameters: Mapping[str, Sequence[str]],
    session: boto3.Session,
    account: str | None = None,
) -> AutomationResult:
    """Execute an Automation document (schemaVersion 0.3) with ``session``'s credentials.

    ``account`` is the account the execution runs in ({{global:ACCOUNT_ID}}); if not given,
    it is asked of STS with the session's credentials.

    Raises AutomationParameterError where StartAutomationExecution would refuse to start
    (unknown or missing parameter, a value breaking its ``allowedPattern``). A step that
    fails ends the execution as Failed (``onFailure: Abort``, the default) or moves on
    (``Continue``).
    """
    resolved = _resolve_parameters(content, parameters)
    execution_id = str(uuid.uuid4())
    region = session.region_name or "us-east-1"
    if account is None:
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
    credentials = session.get_credentials()
    keys = credentials.get_frozen_credentials() if credentials is not None else None
    if keys is None or not keys.access_key or not keys.secret_key:
        raise RuntimeError("the automation role's session has no credentials")
    execution = _Execution(execution_id, account)
    with _RUNNING_LOCK:
        _RUNNING[execution_id] = execution
    try:
        for step in content.get("mainSteps", []):
            name = step["name"]
            steps_run.append(name)
            try:
                outputs = _timed_step(
                    step,
                    _substitute(step.get("inputs", {}), variables),
                    session,
                    execution,
                    Credentials(keys.access_key, keys.secret_key, keys.token),
                )
            except _StepFailed as exc:
                message = f"Step {name} failed: {exc}"
                if step.get("onFailure", "Abort") == "Continue":
                    failure = failure or message
                    continue
                failure = message
                break
            if execution.ended is not None:
                failure = _ended_message(execution, name, step)
                break
            for output_name, value in outputs.items():
                variables[f"{name}.{output_name}"] = value
    finally:
        with _RUNNING_LOCK:
            _RUNNING.pop(execution_id, None)
    document_outputs = {key: variables[key] for key in content.get("outputs", []) if key in variables}
    status = execution.ended or ("Failed" if failure else "Success")
    return AutomationResult(
        status=status,
        outputs=document_outputs,
        failure_message=failure,
        steps=tuple(steps_run),
        execution_id=execution_id,
        parameters=resolved,
    )


def _timeout_s(step: Mapping[str, Any]) -> float:
    """The step's ``timeoutSeconds`` (aws:executeScript: at most, and by default, 600)."""
    given = step.get("timeoutSeconds")
    if step.get("action") == "aws:executeScript":
        return float(min(int(given), EXECUTE_SCRIPT_MAX_S) if given is not None else EXECUTE_SCRIPT_MAX_S)
    return float(given) if given is not None else float("inf")


def _ended_message(execution: _Execution, name: str, step: Mapping[str, Any]) -> str:
    if execution.ended == "TimedOut":
        return f"Step {name} timed out: it ran longer than its timeoutSeconds ({_timeout_s(step):.0f} s)"
    return f"Step {name} cancelled: the execution was stopped (StopAutomationExecution)"


def _timed_step(
    step: Mapping[str, Any],
    inputs: Mapping[str, Any],
    session: boto3.Session,
    execution: _Execution,
    credentials: Credentials,
) -> dict[str, Any]:
    """The step in its own thread, as long as its timeout allows and nobody stops it.

    Returns its outputs, or {} with ``execution.ended`` set if it timed out or was stopped."""
    answer: dict[str, Any] = {}

    def run() -> None:
        _EXECUTION_CREDENTIALS.set(credentials)
        _CURRENT.set(execution)
        try:
            answer["outputs"] = _run_step(step, inputs, session)
        except BaseException as exc:  # handed to the execution's thread
            answer["error"] = exc
        finally:
            execution.wake.set()

    with _RUNNING_LOCK:
        if execution.stopped.is_set():
            return {}
        execution.wake.clear()
    worker = threading.Thread(
        target=contextvars.copy_context().run,
        args=(run,),
        name=f"automation-{execution.execution_id}",
        daemon=True,
    )
    worker.start()
    deadline = _timeout_s(step) * TIME_SCALE
    execution.wake.wait(None if deadline == float("inf") else deadline)
    if execution.stopped.is_set():
        return {}  # cancelled: the worker is refused its next AWS call
    if "outputs" not in answer and "error" not in answer:
        with _RUNNING_LOCK:
            if execution.ended is None:
                execution.ended = "TimedOut"
        execution.stopped.set()
        return {}
    if "error" in answer:
        raise answer["error"]
    return dict(answer["outputs"])


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
        client = _client(session, inputs["Service"])
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


#: One client per service, region and settings, shared by every execution (``_client``).
_CLIENTS: dict[str, Any] = {}
_CLIENTS_LOCK = threading.Lock()
#: The credentials of the execution whose step is running (its automation role's).
_EXECUTION_CREDENTIALS: ContextVar[Credentials | None] = ContextVar("execution_credentials", default=None)


@lru_cache(maxsize=1)
def _base_session() -> boto3.Session:
    return boto3.Session()


def _client(session: boto3.Session, service_name: str, region_name: str | None = None, **kwargs: Any) -> Any:
    """What ``session.client(...)`` gives a step: a client whose every call is signed with the
    execution's credentials (``session``'s), built once for all executions.

    On AWS each execution's script builds its clients in its own runtime, in its own account,
    in parallel with the other accounts'. Here a thousand accounts' executions run one after
    another on one machine, and building a client (service model, endpoint rules, hooks:
    milliseconds of CPU) would be a third of an execution's time. The shared client sends
    the same request as the script's own would: same service, region and settings, signed
    with the same credentials (botocore's per-request signing credentials), so moto serves
    it in the execution's account.
    """
    region = region_name or session.region_name
    config = kwargs.get("config")
    options = vars(config).get("_user_provided_options", {}) if config is not None else {}
    others = {k: v for k, v in kwargs.items() if k != "config"}
    key = repr((service_name, region, sorted(options.items()), sorted(others.items())))
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            client = _base_session().client(  # type: ignore[call-overload]
                service_name,
                region_name=region,
                aws_access_key_id="unused",  # every call is signed with the execution's credentials
                aws_secret_access_key="unused",  # noqa: S106 - a placeholder, never sent
                **kwargs,
            )
            client.meta.events.register("before-call", _sign_as_execution)
            _CLIENTS[key] = client
    return client


def _sign_as_execution(context: dict[str, Any], **_: Any) -> None:
    execution = _CURRENT.get()
    if execution is not None and execution.stopped.is_set():
        raise ExecutionStopped(
            f"execution {execution.execution_id} ended {execution.ended}: its step was stopped"
        )
    credentials = _EXECUTION_CREDENTIALS.get()
    if credentials is None:
        raise RuntimeError("an automation client called outside an execution's step")
    context.setdefault("signing", {})["request_credentials"] = credentials


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
    shim.client = partial(_client, session)  # type: ignore[attr-defined]
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


def automation_status_event(
    account: str,
    region: str,
    document_name: str,
    result: AutomationResult,
    started: datetime,
    ended: datetime,
) -> dict[str, Any]:
    """``EC2 Automation Execution Status-change Notification``: what AWS puts on the account's
    default bus when an execution ends (best effort in AWS; always, locally)."""
    partition = get_partition(region)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "EC2 Automation Execution Status-change Notification",
        "source": "aws.ssm",
        "account": account,
        "time": ended.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [
            f"arn:{partition}:ssm:{region}:{account}:automation-execution/{result.execution_id}",
            f"arn:{partition}:ssm:{region}:{account}:automation-definition/{document_name}:1",
        ],
        "detail": {
            "ExecutionId": result.execution_id,
            "Definition": document_name,
            "DefinitionVersion": 1.0,
            "Status": result.status,
            "StartTime": started.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "EndTime": ended.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "Time": (ended - started).total_seconds() * 1000,
            "ExecutedBy": f"arn:{partition}:sts::{account}:assumed-role/automation",
        },
    }
