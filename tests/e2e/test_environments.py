"""The local organisation's functions are threads of one process with one os.environ; Lambda
gives each execution environment its own. Each local invocation reads its own environment
(budget_sync_local.execution_env), without waiting for the others: two invocations overlap,
and a thread one of them starts reads its variables too."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from unittest import mock

import boto3
import pytest

from budget_sync.handlers import results as results_handler
from budget_sync.handlers import unconfirmed as unconfirmed_handler
from budget_sync.handlers import update as update_handler
from budget_sync_local.lambda_runtime import FunctionSpec
from budget_sync_local.organisation import LocalOrganisation

pytestmark = [pytest.mark.e2e, pytest.mark.aws]

#: How long a party waits for the others at a meeting point: when one invocation cannot be
#: inside its handler while the other is (invocations serialised), the barrier breaks.
_MEET_S = 30.0


def _what_it_sees(names: list[str]) -> dict[str, str | None]:
    """The variables this thread reads, and the role its boto3 credentials are (STS)."""
    seen: dict[str, str | None] = {name: os.environ.get(name) for name in names}
    seen["getenv"] = os.getenv("AWS_LAMBDA_FUNCTION_NAME")
    # a session of its own, as the handlers build theirs (boto3's default session is one per
    # process here, its credentials resolved once: docs/local.md)
    seen["caller"] = boto3.Session().client("sts").get_caller_identity()["Arn"]
    return seen


def _role_name(spec: FunctionSpec, org: LocalOrganisation) -> str:
    return org.stack.role_arns[spec.logical_id].rsplit("/", 1)[-1]


def test_two_overlapping_invocations_of_different_functions_each_see_only_their_own_environment(
    local_org: LocalOrganisation,
):
    # GIVEN the stream function and the result function, whose environments conflict (function
    # name, role credentials) and differ (variables only the stream function has), each with a
    # handler that meets the other (and the test) inside, reads its environment from its own
    # thread, from a thread it starts and from a thread pool's task, and meets again before it
    # returns (both still inside)
    stream_spec, result_spec = local_org._spec, local_org._result_spec
    only_stream = sorted(set(stream_spec.environment) - set(result_spec.environment))
    assert only_stream, "the two functions' environments no longer differ: pick two that do"
    names = ["AWS_LAMBDA_FUNCTION_NAME", "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN", *only_stream]
    inside, done = threading.Barrier(3, timeout=_MEET_S), threading.Barrier(3, timeout=_MEET_S)
    seen: dict[str, dict[str, dict[str, str | None]]] = {}

    def meeting(name: str) -> Callable[[dict[str, Any], Any], Any]:
        def handler(event: dict[str, Any], context: Any) -> Any:
            inside.wait()
            views = {"own thread": _what_it_sees(names)}
            started: dict[str, dict[str, str | None]] = {}
            thread = threading.Thread(target=lambda: started.setdefault("seen", _what_it_sees(names)))
            thread.start()
            thread.join(_MEET_S)
            views["started thread"] = started["seen"]
            with ThreadPoolExecutor(max_workers=2) as pool:
                views["pool task"] = pool.submit(_what_it_sees, names).result(_MEET_S)
            seen[name] = views
            done.wait()
            return {"batchItemFailures": []} if name == "stream" else {}

        return handler

    process = {name: os.environ.get(name) for name in names}
    outside: dict[str, str | None] = {}
    failures: list[BaseException] = []

    def invoke_result() -> None:
        try:
            local_org.invoke_result_function({"source": "budget-sync.spoke", "detail": {}})
        except BaseException as exc:  # shown by the test's thread
            failures.append(exc)

    with (
        mock.patch.object(update_handler, "handler", meeting("stream")),
        mock.patch.object(results_handler, "handler", meeting("result")),
    ):
        # WHEN the stream function is invoked in one thread and the result function in another,
        # and the test's thread (no invocation) reads os.environ while both are inside
        stream = threading.Thread(target=lambda: local_org.invoke_function({"Records": []}))
        result = threading.Thread(target=invoke_result)
        stream.start()
        result.start()
        inside.wait()
        outside.update({name: os.environ.get(name) for name in names})
        done.wait()
        stream.join(_MEET_S)
        result.join(_MEET_S)
    assert failures == []

    # THEN each read its own function's name, its own role's credentials (boto3 signs as its
    # role), and only its own variables, in its thread and in the threads it started
    for name, spec in (("stream", stream_spec), ("result", result_spec)):
        assert spec.credentials is not None
        for where, view in seen[name].items():
            assert view["AWS_LAMBDA_FUNCTION_NAME"] == view["getenv"] == spec.function_name, (name, where)
            key, _secret, token = spec.credentials
            assert (view["AWS_ACCESS_KEY_ID"], view["AWS_SESSION_TOKEN"]) == (key, token), (name, where)
            assert f":assumed-role/{_role_name(spec, local_org)}/" in str(view["caller"]), (name, where)
            for variable in only_stream:
                expected = spec.environment.get(variable)
                assert view[variable] == expected, (name, where, variable)
    # and the thread outside both invocations read the process's environment
    assert outside == process
    assert process["AWS_LAMBDA_FUNCTION_NAME"] is None


def test_the_running_pipelines_scheduled_check_and_a_direct_invocation_each_see_only_their_own_environment(
    local_org: LocalOrganisation,
):
    # GIVEN the unconfirmed check and the result function, each with a handler that meets the
    # other inside, reads its environment and meets it again before it returns
    check_spec, result_spec = local_org._unconfirmed_spec, local_org._result_spec
    names = ["AWS_LAMBDA_FUNCTION_NAME", "AWS_ACCESS_KEY_ID"]
    inside, done = threading.Barrier(2, timeout=_MEET_S), threading.Barrier(2, timeout=_MEET_S)
    seen: dict[str, dict[str, str | None]] = {}

    def meeting(name: str) -> Callable[[dict[str, Any], Any], Any]:
        def handler(event: dict[str, Any], context: Any) -> Any:
            if name in seen:  # the schedule again, after the meeting
                return {}
            inside.wait()
            seen[name] = _what_it_sees(names)
            done.wait()
            return {}

        return handler

    with (
        mock.patch.object(unconfirmed_handler, "handler", meeting("check")),
        mock.patch.object(results_handler, "handler", meeting("result")),
    ):
        # WHEN the pipeline runs in the background as under `make local` (the unconfirmed
        # check on its schedule, in the pipeline's thread) and the result function is invoked
        # directly meanwhile
        local_org.pipeline.start(interval_s=0.01, check_every_s=0.01)
        try:
            local_org.invoke_result_function({"source": "budget-sync.spoke", "detail": {}})
        finally:
            local_org.pipeline.stop()

    # THEN each ran in its own function's environment, as its own role
    for name, spec in (("check", check_spec), ("result", result_spec)):
        assert spec.credentials is not None
        assert seen[name]["AWS_LAMBDA_FUNCTION_NAME"] == spec.function_name, name
        assert seen[name]["AWS_ACCESS_KEY_ID"] == spec.credentials[0], name
        assert f":assumed-role/{_role_name(spec, local_org)}/" in str(seen[name]["caller"]), name
    assert local_org.pipeline.errors == []


def test_two_overlapping_invocations_of_one_function_each_keep_what_they_write(local_org: LocalOrganisation):
    # GIVEN the result function's handler that, inside, writes a variable of its own, meets the
    # other invocation of the same function (both inside, both written) and reads it back
    inside, written = threading.Barrier(2, timeout=_MEET_S), threading.Barrier(2, timeout=_MEET_S)
    read: dict[str, str | None] = {}

    def handler(event: dict[str, Any], context: Any) -> Any:
        inside.wait()
        os.environ["WRITTEN_BY"] = event["detail"]["who"]
        written.wait()
        read[event["detail"]["who"]] = os.environ.get("WRITTEN_BY")
        return {}

    # WHEN two invocations of it overlap, as Lambda runs them (two execution environments)
    with mock.patch.object(results_handler, "handler", handler):
        other = threading.Thread(
            target=lambda: local_org.invoke_result_function({"detail": {"who": "other"}})
        )
        other.start()
        local_org.invoke_result_function({"detail": {"who": "this"}})
        other.join(_MEET_S)

    # THEN each read its own write, and the process's environment has neither
    assert read == {"this": "this", "other": "other"}
    assert "WRITTEN_BY" not in os.environ
