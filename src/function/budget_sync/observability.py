"""Logger and Metrics, created once. The X-Ray Tracer is imported only when tracing is on.

Powertools' Tracer pulls in the X-Ray SDK, which roughly doubles the cold-start import
time of this function. Tracing is therefore a template parameter (``Tracing``): when it is
off, the template sets POWERTOOLS_TRACE_DISABLED=true and nothing of X-Ray is imported.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "budget-sync"))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "BudgetSync"))

F = TypeVar("F", bound=Callable[..., Any])


def tracing_enabled() -> bool:
    return os.environ.get("POWERTOOLS_TRACE_DISABLED", "true").strip().lower() not in ("true", "1")


def traced_handler(handler: F) -> F:
    """Wrap a Lambda handler with Powertools' Tracer when tracing is on, else return it as is."""
    if not tracing_enabled():
        return handler
    from aws_lambda_powertools import Tracer

    tracer = Tracer()  # patches boto3 so each AWS call is a subsegment
    return cast(F, tracer.capture_lambda_handler(handler))
