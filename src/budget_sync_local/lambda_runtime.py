"""Call a function from template-management.yaml the way Lambda does.

The module and function come from the template's ``Handler``, the code from its
``CodeUri`` (put first on sys.path, as the deployment package's root is), and the
environment from its ``Environment.Variables``, resolved from the parameters. The settings
are read from the template as the SAM transform makes it (``management_stack.translate``,
what the local organisation deploys), so its ``Globals`` apply as on AWS.
This is the project's own stand-in for ``sam local invoke`` on machines without Docker.
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any, TextIO

from budget_sync_local import execution_env
from budget_sync_local.management_stack import translate
from budget_sync_local.templates import MANAGEMENT_TEMPLATE, ROOT, Resolver, load


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    function_name: str
    handler: str
    code_uri: str
    memory_mb: int
    timeout_s: int
    environment: dict[str, str]
    #: The execution role's credentials (access key, secret, session token), which Lambda
    #: puts in the function's environment; None: the process's own.
    credentials: tuple[str, str, str] | None = None


def function_spec(
    logical_id: str = "UpdateFunction",
    parameters: Mapping[str, str] | None = None,
    region: str = "us-east-1",
    account_id: str = "123456789012",
    physical_ids: Mapping[str, str] | None = None,
) -> FunctionSpec:
    """The function's settings as the template resolves them (``physical_ids``: a deployed
    stack's, for the Refs whose names CloudFormation generates, e.g. the alarm topic)."""
    parameters = dict(parameters or {})
    resolver = Resolver(
        _translated(tuple(sorted(parameters.items())), region),
        parameters,
        account_id=account_id,
        region=region,
        physical_ids=physical_ids or {},
    )
    raw = resolver.resource(logical_id).get("Properties", {})
    wanted = ("FunctionName", "Handler", "MemorySize", "Timeout", "Environment")
    properties = {key: resolver.resolve(raw[key]) for key in wanted if key in raw}
    variables = properties.get("Environment", {}).get("Variables", {})
    return FunctionSpec(
        logical_id=logical_id,
        function_name=str(properties["FunctionName"]),
        handler=str(properties["Handler"]),
        code_uri=code_uri(logical_id),
        memory_mb=int(properties.get("MemorySize", 128)),
        timeout_s=int(properties.get("Timeout", 3)),
        environment={k: str(v) for k, v in variables.items()},
    )


@cache
def _translated(parameters: tuple[tuple[str, str], ...], region: str) -> dict[str, Any]:
    """The translated template per parameters and region (not changed by its readers)."""
    return translate(dict(parameters), region)


def code_uri(logical_id: str) -> str:
    """The function's ``CodeUri``: its own, else the template's ``Globals`` (the translation
    replaces it with the uploaded package's S3 location)."""
    template = load(MANAGEMENT_TEMPLATE)
    own = template["Resources"][logical_id].get("Properties", {}).get("CodeUri")
    shared = template.get("Globals", {}).get("Function", {}).get("CodeUri")
    return str(own or shared)


@dataclass
class FakeContext:
    """The attributes of Lambda's context object that Powertools reads."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    timeout_s: int
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        """The function's timeout minus the time since the invocation started, as Lambda's."""
        return max(0, int(self.timeout_s * 1000 - (time.monotonic() - self.started) * 1000))


@contextmanager
def lambda_environment(spec: FunctionSpec, region: str) -> Iterator[None]:
    """The function's environment variables plus those Lambda sets (its execution role's
    credentials among them, when the spec has them), over the process's, for this thread and
    the threads it starts until the block ends: an invocation's own view of ``os.environ``
    (``execution_env``), so that invocations overlapping in other threads, of this function or
    another, each see only their own."""
    values = {
        **spec.environment,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_LAMBDA_FUNCTION_NAME": spec.function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
    }
    if spec.credentials is not None:
        key, secret, token = spec.credentials
        values.update({"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret, "AWS_SESSION_TOKEN": token})
    with execution_env.invocation(values):
        yield


def load_handler(spec: FunctionSpec) -> Callable[[dict[str, Any], Any], Any]:
    code_root = str(ROOT / spec.code_uri)
    if code_root not in sys.path:
        sys.path.insert(0, code_root)
    module_name, _, function_name = spec.handler.rpartition(".")
    module = importlib.import_module(module_name)
    handler: Callable[[dict[str, Any], Any], Any] = getattr(module, function_name)
    return handler


def new_execution_environment(spec: FunctionSpec) -> None:
    """What a fresh Lambda execution environment starts without: the clients and settings
    the handler module cached at init (its ``functools.cache`` functions). A local
    organisation calls this when it starts, so that no client of an earlier moto (whose
    credentials moto no longer knows, and would serve from its default account) is reused."""
    module = sys.modules[spec.handler.rpartition(".")[0]]
    for value in vars(module).values():
        cache_clear = getattr(value, "cache_clear", None)
        if callable(cache_clear):
            cache_clear()


def invoke(
    spec: FunctionSpec,
    event: dict[str, Any],
    region: str = "us-east-1",
    account_id: str = "123456789012",
) -> Any:
    """One invocation: environment set, handler imported, fake context, result returned."""
    with lambda_environment(spec, region):
        handler = load_handler(spec)
        context = FakeContext(
            function_name=spec.function_name,
            memory_limit_in_mb=spec.memory_mb,
            invoked_function_arn=f"arn:aws:lambda:{region}:{account_id}:function:{spec.function_name}",
            aws_request_id=str(uuid.uuid4()),
            timeout_s=spec.timeout_s,
        )
        return handler(event, context)


#: Invocations that overlap (a spoke's run and its report delivered while the stream function
#: is still in its batch, in another thread) share one swap of the process's stdout and of the
#: log handlers' streams: the first one in swaps, the last one out restores. A lock held for a
#: whole invocation would block the nested one until the step's timeout.
_SWAP = threading.Lock()
_swapped: list[Any] = []  # [depth, saved stdout, saved handler streams]


def invoke_logging_to(
    spec: FunctionSpec,
    event: dict[str, Any],
    region: str,
    account_id: str,
    output: TextIO | None,
) -> Any:
    """``invoke``, with what the function writes to stdout (its JSON log lines and its metric
    lines, as Lambda sends them to CloudWatch Logs) written to ``output`` instead, if given.

    Powertools' log handler keeps the stdout it saw when the module was imported: it is lent
    ``output`` for the call and given its own back after the last overlapping call ends."""
    if output is None:
        return invoke(spec, event, region, account_id)
    service = spec.environment.get("POWERTOOLS_SERVICE_NAME", "service_undefined")
    with _SWAP:
        if not _swapped:
            handlers = [
                h for h in logging.getLogger(service).handlers if isinstance(h, logging.StreamHandler)
            ]
            _swapped.extend([0, sys.stdout, [(h, h.stream) for h in handlers]])
            sys.stdout = output
            for handler in handlers:
                handler.setStream(output)
        _swapped[0] += 1
    try:
        return invoke(spec, event, region, account_id)
    finally:
        with _SWAP:
            _swapped[0] -= 1
            if _swapped[0] == 0:
                sys.stdout = _swapped[1]
                for handler, stream in _swapped[2]:
                    handler.setStream(stream)
                _swapped.clear()
                output.flush()
