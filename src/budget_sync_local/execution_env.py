"""Each local invocation's own environment variables, as each Lambda execution environment has
its own process environment.

The local functions run as threads of one process, which has one ``os.environ``. Setting a
function's variables there for its invocation (what ``lambda_runtime`` did) let two overlapping
invocations of different functions read each other's variables and role credentials; holding
one function's environment at a time serialised every invocation, which also forbids what
Lambda does (two invocations of one function at once) and deadlocked the resolver's
interleaving tests.

Instead, ``install()`` (called once by ``lambda_runtime``) makes the process's ``os.environ``
answer through the current invocation's *view*, if there is one:

* ``invocation(values)``: within it, this thread reads the process's variables with ``values``
  over them; what it writes or deletes stays in its view (the process's environment and the
  other invocations never see it) and ends with it. A nested invocation (another function
  invoked from inside one, in the same thread) has its own view over the process's, not over
  the outer one's, and the outer view is back when it ends.
* Outside any invocation (the test's thread, the pipeline's loop between invocations, the
  endpoint's request threads, moto's in-process backends called from them) reads and writes
  are the process's, exactly as before: ``putenv`` included.
* A thread started inside an invocation (``threading.Thread.start``) runs in that invocation's
  view for its whole life, as threads of a Lambda function share its environment; a task
  given to a ``ThreadPoolExecutor`` runs in the view of the thread that submitted it (or in
  none), whichever worker runs it, so a pool that outlives an invocation does not carry its
  view into the next one's tasks.

It is the same ``os.environ`` object with its class replaced by a subclass (``_Environ``), not a
new mapping: whatever kept a reference to it (botocore's credential and config providers take
``os.environ`` when a session is built; ``from os import environ``) sees the views too.
``os.getenv`` reads ``os.environ``. What does not: C code's ``getenv`` and child processes, which
read the process's C-level environment (the process's variables, never a view's), and
``os.environb``.

The view is a ``contextvars.ContextVar``: asyncio tasks and ``contextvars.copy_context().run``
carry it as they carry any context variable.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import functools
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

_T = TypeVar("_T")


class _View:
    """One invocation's changes over the process's environment: a value, or None (removed)."""

    __slots__ = ("changes",)

    def __init__(self, values: Mapping[str, str]) -> None:
        self.changes: dict[str, str | None] = dict(values)


#: The current invocation's view; None: the process's environment.
_VIEW: contextvars.ContextVar[_View | None] = contextvars.ContextVar("invocation_environment", default=None)
_INSTALL = threading.Lock()


class _Environ(os._Environ[str]):
    """``os.environ``'s class once installed: the current view's variables over the process's."""

    def __getitem__(self, key: str) -> str:
        view = _VIEW.get()
        if view is not None and isinstance(key, str) and key in view.changes:
            value = view.changes[key]
            if value is None:
                raise KeyError(key)
            return value
        return super().__getitem__(key)

    def __setitem__(self, key: str, value: str) -> None:
        view = _VIEW.get()
        if view is None:
            super().__setitem__(key, value)
            return
        self.encodekey(key)  # the process's checks (TypeError for what is not a str), no putenv
        self.encodevalue(value)
        view.changes[key] = value

    def __delitem__(self, key: str) -> None:
        view = _VIEW.get()
        if view is None:
            super().__delitem__(key)
            return
        if key not in self:
            raise KeyError(key)
        view.changes[key] = None

    def __iter__(self) -> Iterator[str]:
        view = _VIEW.get()
        if view is None:
            yield from super().__iter__()
            return
        changes = dict(view.changes)  # a copy: a thread of the invocation may write meanwhile
        process = list(super().__iter__())
        yield from (key for key in process if changes.get(key, "") is not None)
        seen = set(process)
        yield from (key for key, value in changes.items() if value is not None and key not in seen)

    def __len__(self) -> int:
        if _VIEW.get() is None:
            return super().__len__()
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        if _VIEW.get() is None:
            return super().__repr__()
        return f"environ({dict(self.items())!r})"


def install() -> None:
    """Make ``os.environ`` answer through the current invocation's view, and threads and
    executor tasks started inside an invocation run in it (idempotent)."""
    with _INSTALL:
        if isinstance(os.environ, _Environ):
            return
        os.environ.__class__ = _Environ
        threading.Thread.start = _thread_start(threading.Thread.start)  # type: ignore[method-assign,assignment]
        pool = concurrent.futures.ThreadPoolExecutor
        pool.submit = _pool_submit(pool.submit)  # type: ignore[method-assign]


@contextmanager
def invocation(values: Mapping[str, str]) -> Iterator[None]:
    """This thread (and the threads it starts) in an invocation's own environment: the
    process's variables with ``values`` over them, until the block ends."""
    install()
    token = _VIEW.set(_View(values))
    try:
        yield
    finally:
        _VIEW.reset(token)


def _thread_start(start: Callable[[threading.Thread], None]) -> Callable[[threading.Thread], None]:
    @functools.wraps(start)
    def start_in_view(thread: threading.Thread) -> None:
        view = _VIEW.get()
        if view is not None:
            run = thread.run

            def run_in_view() -> None:
                _VIEW.set(view)  # a new thread starts with a context of its own
                run()

            thread.run = run_in_view  # type: ignore[method-assign]
        start(thread)

    return start_in_view


def _pool_submit(submit: Callable[..., concurrent.futures.Future[Any]]) -> Callable[..., Any]:
    @functools.wraps(submit)
    def submit_in_view(
        pool: concurrent.futures.ThreadPoolExecutor, fn: Callable[..., _T], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[_T]:
        view = _VIEW.get()

        def call_in_view() -> _T:
            token = _VIEW.set(view)
            try:
                return fn(*args, **kwargs)
            finally:
                _VIEW.reset(token)

        return submit(pool, call_in_view)

    return submit_in_view


__all__ = ["install", "invocation"]
