"""Lambda ``Invoke`` of budget-sync's own functions, run in-process (moto runs a function
through Docker, which the local organisation does not have).

A function that exists in moto's Lambda (created from template-management.yaml by moto's
CloudFormation, or by a test) and whose handler is in budget-sync's package
(``budget_sync.``) is called the way Lambda calls it, by the project's own runtime
(budget_sync_local.lambda_runtime): its handler, its environment variables as moto stored
them, a new execution environment per call (the handler module's cached clients dropped),
its execution role's credentials (the Lambda service assumes the function's ``Role``; while IAM
is enforced its trust policy must admit lambda.amazonaws.com). The response is Lambda's: the
handler's result as JSON, or ``X-Amz-Function-Error: Unhandled`` with ``errorMessage`` /
``errorType``. What the function writes to stdout (its JSON log and metric lines) goes where
the local organisation sends its functions' output (``function_output_to``:
``.local-org/function.log`` under ``make local``), as Lambda sends it to CloudWatch Logs, not
to the server's console. Any other function goes to moto unchanged. Not emulated: timeouts,
concurrency.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, TextIO

from moto.awslambda.models import LambdaFunction

from budget_sync_local.lambda_runtime import (
    FunctionSpec,
    invoke_logging_to,
    load_handler,
    new_execution_environment,
)
from budget_sync_local.standins import authorisation
from budget_sync_local.standins.sts import service_credentials

#: The template's CodeUri of every budget-sync function (tests/template checks the template).
CODE_URI = "src/function"
PACKAGE = "budget_sync."
#: Where an invoked function's stdout goes (None: the process's own stdout)
_output: list[TextIO | None] = [None]


@contextmanager
def function_output_to(stream: TextIO | None) -> Iterator[None]:
    """While inside, functions invoked through Lambda's Invoke write their output to ``stream``."""
    previous = _output[0]
    _output[0] = stream
    try:
        yield
    finally:
        _output[0] = previous


def _spec(function: LambdaFunction) -> FunctionSpec | None:
    handler = str(function.handler or "")
    if not handler.startswith(PACKAGE):
        return None
    return FunctionSpec(
        logical_id=function.function_name,
        function_name=function.function_name,
        handler=handler,
        code_uri=CODE_URI,
        memory_mb=int(function.memory_size or 128),
        timeout_s=int(function.timeout or 3),
        environment={k: str(v) for k, v in (function.environment_vars or {}).items()},
    )


def _invoke_in_process(original: Callable[..., Any]) -> Callable[..., Any]:
    def invoke_function(
        self: LambdaFunction, body: str, request_headers: Any, response_headers: Any
    ) -> str | bytes:
        spec = _spec(self)
        if spec is None:
            return original(self, body, request_headers, response_headers)  # type: ignore[no-any-return]
        event = json.loads(body) if body else {}
        if self.role and authorisation.is_enforced():
            credentials = service_credentials(
                str(self.role), "lambda.amazonaws.com", self.account_id, self.region, self.function_name
            )
            spec = replace(spec, credentials=credentials)
        load_handler(spec)
        new_execution_environment(spec)
        try:
            result = invoke_logging_to(spec, event, self.region, self.account_id, _output[0])
        except Exception as exc:  # Lambda's "Unhandled" function error
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorMessage": str(exc), "errorType": type(exc).__name__}).encode()
        return json.dumps(result, default=str).encode()

    return invoke_function
