"""The local organisation's functions share one process and its os.environ (Lambda gives each
its own): an invocation in one thread must not run in another function's environment."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest

from budget_sync.handlers import results as results_handler
from budget_sync.handlers import unconfirmed as unconfirmed_handler
from budget_sync_local.organisation import LocalOrganisation

pytestmark = [pytest.mark.e2e, pytest.mark.aws]

#: How long an invocation waits for the other one to be inside its handler too (it cannot be,
#: once invocations are serialised).
_MEET_S = 1.0


def test_the_running_pipeline_and_a_direct_invocation_each_see_only_their_own_environment(
    local_org: LocalOrganisation,
):
    # GIVEN two functions' handlers that, once inside, wait for the other to be inside too
    # (a barrier that gives up: the second waits for the first when invocations are serialised)
    # and then read the environment Lambda gave them
    entered = {"unconfirmed": threading.Event(), "result": threading.Event()}
    read = {"unconfirmed": threading.Event(), "result": threading.Event()}
    seen: dict[str, dict[str, str | None]] = {}

    def meeting(name: str, other: str) -> Callable[[dict[str, Any], Any], Any]:
        def handler(event: dict[str, Any], context: Any) -> Any:
            if name in seen:  # the schedule again: nothing more to see
                return {}
            entered[name].set()
            entered[other].wait(_MEET_S)
            seen[name] = {
                "function": os.environ.get("AWS_LAMBDA_FUNCTION_NAME"),
                "context": context.function_name,
                "key": os.environ.get("AWS_ACCESS_KEY_ID"),
                "service": os.environ.get("POWERTOOLS_SERVICE_NAME"),
            }
            read[name].set()
            read[other].wait(_MEET_S)  # the other one still inside, its environment set
            return {}

        return handler

    unconfirmed_spec, result_spec = local_org._unconfirmed_spec, local_org._result_spec
    with (
        mock.patch.object(unconfirmed_handler, "handler", meeting("unconfirmed", "result")),
        mock.patch.object(results_handler, "handler", meeting("result", "unconfirmed")),
    ):
        # WHEN the pipeline runs in the background (`make local`): the unconfirmed check on its
        # schedule, in the pipeline's thread; and the result function is invoked directly
        local_org.pipeline.start(interval_s=0.01, check_every_s=0.01)
        try:
            local_org.invoke_result_function({"source": "budget-sync.spoke", "detail": {}})
            for event in read.values():
                assert event.wait(10), "the scheduled check did not run"
        finally:
            local_org.pipeline.stop()

    # THEN each ran in its own function's environment, with its own role's credentials
    assert seen["unconfirmed"]["function"] == seen["unconfirmed"]["context"] == unconfirmed_spec.function_name
    assert seen["result"]["function"] == seen["result"]["context"] == result_spec.function_name
    assert unconfirmed_spec.credentials is not None
    assert result_spec.credentials is not None
    assert seen["unconfirmed"]["key"] == unconfirmed_spec.credentials[0]
    assert seen["result"]["key"] == result_spec.credentials[0]
    assert seen["unconfirmed"]["service"] == unconfirmed_spec.environment.get("POWERTOOLS_SERVICE_NAME")
    assert seen["result"]["service"] == result_spec.environment.get("POWERTOOLS_SERVICE_NAME")
    assert local_org.pipeline.errors == []
