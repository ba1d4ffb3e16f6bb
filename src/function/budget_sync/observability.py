"""Logger and Metrics, created once. Tracing costs no import unless the X-Ray SDK is packaged.

``Tracing=Active`` (template parameter) turns on Lambda's own active tracing: Lambda records
each invocation's segment (initialisation, invocation, overhead) without any code in the
package. Powertools' Tracer (a subsegment per AWS call) needs the X-Ray SDK, which brings a
second botocore and doubles the cold-start import time, so the package does not carry it
(src/function/requirements.txt, README "Cold start and tracing"). Add ``aws-xray-sdk`` to
requirements.txt and, with tracing on, the Tracer wraps the handler again.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from typing import Any, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "budget-sync"))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "BudgetSync"))

F = TypeVar("F", bound=Callable[..., Any])

XRAY_SDK = "aws_xray_sdk"


def tracing_enabled() -> bool:
    return os.environ.get("POWERTOOLS_TRACE_DISABLED", "true").strip().lower() not in ("true", "1")


def xray_sdk_packaged() -> bool:
    try:
        return importlib.util.find_spec(XRAY_SDK) is not None
    except (ImportError, ValueError):  # a module set to None, or without a spec
        return False


def traced_handler(handler: F) -> F:
    """With tracing on and the X-Ray SDK packaged, the handler wrapped by Powertools' Tracer;
    otherwise the handler as is (Lambda's active tracing still records the invocation)."""
    if not tracing_enabled():
        return handler
    if not xray_sdk_packaged():
        logger.info(
            "tracing: Lambda active tracing only (no X-Ray SDK in the package, no subsegment per AWS call)",
            extra={"xray_sdk": XRAY_SDK},
        )
        return handler
    from aws_lambda_powertools import Tracer

    tracer = Tracer()  # patches boto3 so each AWS call is a subsegment
    return cast(F, tracer.capture_lambda_handler(handler))
