"""budget_sync_local.execution_env through the local runtime's ``lambda_environment``: inside an
invocation os.environ is that invocation's own (its variables over the process's, its writes
kept to itself), in the threads it starts too; outside, it is the process's."""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import botocore.session
import pytest
from botocore.credentials import EnvProvider

from budget_sync_local.lambda_runtime import FunctionSpec, lambda_environment

_T = TypeVar("_T")


def _spec(name: str, **environment: str) -> FunctionSpec:
    return FunctionSpec(
        logical_id=name,
        function_name=name,
        handler="module.handler",
        code_uri="src/function",
        memory_mb=128,
        timeout_s=3,
        environment=environment,
        credentials=(f"{name}-key", f"{name}-secret", f"{name}-token"),
    )


class _Outsider:
    """A thread started outside any invocation, that reads for the test when asked (a thread
    started inside one would read that invocation's environment)."""

    def __init__(self) -> None:
        self._asks: queue.Queue[Callable[[], Any] | None] = queue.Queue()
        self._answers: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while (read := self._asks.get()) is not None:
            self._answers.put(read())

    def reads(self, read: Callable[[], _T]) -> _T:
        self._asks.put(read)
        answer: _T = self._answers.get(timeout=10)
        return answer

    def stop(self) -> None:
        self._asks.put(None)
        self._thread.join(10)


@pytest.fixture
def outsider() -> Iterator[_Outsider]:
    thread = _Outsider()
    yield thread
    thread.stop()


@pytest.fixture
def process(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process's variables these tests read: one a function overrides, one it does not,
    one it deletes."""
    monkeypatch.setenv("SHARED", "process")
    monkeypatch.setenv("PROCESS_ONLY", "process")
    monkeypatch.setenv("TO_DELETE", "process")
    monkeypatch.delenv("OWN", raising=False)
    monkeypatch.delenv("WRITTEN", raising=False)


def test_an_invocation_reads_its_variables_over_the_processes(process: None, outsider: _Outsider):
    with lambda_environment(_spec("A", SHARED="a", OWN="a"), "eu-west-1"):
        # WHEN the function reads its environment
        # THEN its own variables and Lambda's win, the process's others are there
        assert (os.environ["SHARED"], os.getenv("OWN"), os.environ["PROCESS_ONLY"]) == ("a", "a", "process")
        assert os.environ["AWS_LAMBDA_FUNCTION_NAME"] == "A"
        assert (os.environ["AWS_REGION"], os.environ["AWS_ACCESS_KEY_ID"]) == ("eu-west-1", "A-key")
        # and a thread outside the invocation reads the process's
        assert outsider.reads(lambda: (os.environ["SHARED"], os.getenv("OWN"))) == ("process", None)
    assert (os.environ["SHARED"], os.getenv("OWN")) == ("process", None)


def test_what_an_invocation_writes_or_deletes_stays_in_it(process: None, outsider: _Outsider):
    # GIVEN an invocation that sets, overwrites and deletes variables
    with lambda_environment(_spec("A", SHARED="a"), "us-east-1"):
        os.environ["WRITTEN"] = "a"
        os.environ.update({"SHARED": "a2"})
        del os.environ["TO_DELETE"]
        os.environ.pop("PROCESS_ONLY")
        with pytest.raises(KeyError, match="TO_DELETE"):
            del os.environ["TO_DELETE"]

        # THEN it reads them so, whichever way it asks
        assert os.environ.get("WRITTEN") == "a"
        assert os.environ.get("SHARED") == "a2"
        assert "TO_DELETE" not in os.environ
        assert os.getenv("PROCESS_ONLY") is None
        keys = list(os.environ)
        assert "WRITTEN" in keys
        assert "TO_DELETE" not in keys
        assert len(keys) == len(set(keys)) == len(os.environ)
        assert os.environ.copy() == dict(os.environ.items()) == {k: os.environ[k] for k in keys}
        assert "'WRITTEN': 'a'" in repr(os.environ)
        assert "TO_DELETE" not in repr(os.environ)
        # while a thread outside it still reads the process's
        assert outsider.reads(lambda: (os.getenv("WRITTEN"), os.getenv("TO_DELETE"))) == (None, "process")

    # THEN after it, the process's environment is as it was
    assert (os.getenv("WRITTEN"), os.getenv("SHARED"), os.getenv("TO_DELETE")) == (None, "process", "process")
    assert os.getenv("PROCESS_ONLY") == "process"


def test_a_nested_invocation_has_its_own_environment_and_the_outer_one_is_back_after_it(process: None):
    with lambda_environment(_spec("Outer", SHARED="outer", OWN="outer"), "us-east-1"):
        os.environ["WRITTEN"] = "outer"
        # WHEN the outer function's thread invokes another function
        with lambda_environment(_spec("Inner", SHARED="inner"), "us-east-1"):
            # THEN the inner one reads the process's variables and its own, none of the outer's
            assert (os.environ["SHARED"], os.getenv("OWN"), os.getenv("WRITTEN")) == ("inner", None, None)
            assert os.environ["AWS_ACCESS_KEY_ID"] == "Inner-key"
            os.environ["WRITTEN"] = "inner"
        # and the outer one reads its own again, untouched by the inner one's write
        assert (os.environ["SHARED"], os.environ["OWN"], os.environ["WRITTEN"]) == ("outer", "outer", "outer")
        assert os.environ["AWS_ACCESS_KEY_ID"] == "Outer-key"


def test_keys_and_values_that_are_not_strings_are_refused_as_by_os_environ(process: None):
    with lambda_environment(_spec("A"), "us-east-1"):
        with pytest.raises(TypeError, match="str expected, not int"):
            os.environ["NUMBER"] = 1  # type: ignore[assignment]
        with pytest.raises(TypeError, match="str expected, not int"):
            os.environ[2] = "two"  # type: ignore[index]
        with pytest.raises(TypeError):
            os.environ.get(3)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="str expected, not int"):
        os.environ["NUMBER"] = 1  # type: ignore[assignment]


def test_outside_any_invocation_a_write_is_the_processes(
    monkeypatch: pytest.MonkeyPatch, outsider: _Outsider
):
    # GIVEN the runtime's os.environ (installed by any invocation)
    with lambda_environment(_spec("A"), "us-east-1"):
        pass
    # WHEN a variable is set outside any invocation
    monkeypatch.setenv("WRITTEN", "process")
    # THEN every thread reads it, and an invocation too
    assert outsider.reads(lambda: os.getenv("WRITTEN")) == "process"
    with lambda_environment(_spec("A"), "us-east-1"):
        assert os.getenv("WRITTEN") == "process"


def test_a_thread_started_inside_an_invocation_reads_its_environment_for_its_whole_life(process: None):
    # GIVEN a thread started inside an invocation, which reads once while the invocation runs
    # and once after it ended
    ended, reads = threading.Event(), []

    def read_twice() -> None:
        reads.append((os.getenv("SHARED"), os.getenv("AWS_LAMBDA_FUNCTION_NAME")))
        ended.wait(10)
        reads.append((os.getenv("SHARED"), os.getenv("AWS_LAMBDA_FUNCTION_NAME")))

    with lambda_environment(_spec("A", SHARED="a"), "us-east-1"):
        thread = threading.Thread(target=read_twice)
        thread.start()
    ended.set()
    thread.join(10)

    # THEN it read the invocation's both times (the threads of a function share its environment)
    assert reads == [("a", "A"), ("a", "A")]


def test_a_pool_task_runs_in_the_environment_of_the_thread_that_submitted_it(process: None):
    # GIVEN a pool whose worker was started outside any invocation
    read = lambda: (os.getenv("SHARED"), os.getenv("AWS_LAMBDA_FUNCTION_NAME"))  # noqa: E731
    with ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(read).result(10) == ("process", None)
        # WHEN an invocation submits to it, THEN the task reads the invocation's environment
        with lambda_environment(_spec("A", SHARED="a"), "us-east-1"):
            assert pool.submit(read).result(10) == ("a", "A")
            assert list(pool.map(lambda _: read(), range(2))) == [("a", "A")] * 2
        # and after it, a task submitted outside reads the process's again
        assert pool.submit(read).result(10) == ("process", None)

    # GIVEN a pool whose worker was started inside an invocation, still running after it
    with ThreadPoolExecutor(max_workers=1) as pool:
        with lambda_environment(_spec("A", SHARED="a"), "us-east-1"):
            assert pool.submit(read).result(10) == ("a", "A")
        # WHEN a task is submitted outside it, THEN it reads the process's environment
        assert pool.submit(read).result(10) == ("process", None)
        # and another invocation's task reads that invocation's
        with lambda_environment(_spec("B", SHARED="b"), "us-east-1"):
            assert pool.submit(read).result(10) == ("b", "B")


def test_botocore_reads_the_invocations_credentials_and_region_whenever_its_session_was_built(
    process: None, monkeypatch: pytest.MonkeyPatch
):
    # GIVEN botocore's environment provider and a session built outside any invocation (both
    # keep the os.environ they were given)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "process-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "process-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    provider: Any = EnvProvider()
    session = botocore.session.Session()

    # WHEN an invocation reads its credentials and region through them
    with lambda_environment(_spec("A"), "eu-west-1"):
        credentials = provider.load()
        region = session.get_config_variable("region")

    # THEN they are the invocation's own
    assert (credentials.access_key, credentials.token) == ("A-key", "A-token")
    assert region == "eu-west-1"
    assert provider.load().access_key == "process-key"
