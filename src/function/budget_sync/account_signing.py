"""Clients whose calls are signed as a role in another account: one client per service for
every account, each call signed with the credentials its thread is working as.

Building a botocore client costs about as much CPU as three calls, and building clients on one
session from several threads is not safe; so each service's client is built once, under a lock,
and a ``before-call`` hook puts the credentials of the account the calling thread works as into
the request context (botocore's per-request credentials, ``signing.request_credentials``). A
call made outside ``signed_as`` is a bug, never a call signed with the function's own role.
Used by the spoke gateway (``spoke.SsmSpokeGateway``: SSM and Budgets in each spoke) and the
incidents' budget reader (``incidents.budget_alarms.SpokeBudgetAlarms``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.credentials import Credentials


class AccountSignedClients:
    """``client(service)``: the session's one client of ``service`` (``client_options`` as
    ``session.client`` takes them); ``signed_as(credentials)``: this thread's calls through
    those clients are signed with ``credentials`` until the block ends. Thread-safe. ``owner``
    names the caller in the error of a call made outside ``signed_as``."""

    def __init__(self, session: Any, owner: str, **client_options: Any) -> None:
        self._session = session
        self._owner = owner
        self._options = client_options
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._signing = threading.local()  # .credentials: the account this thread's call is for

    def client(self, service: str) -> Any:
        with self._lock:
            client = self._clients.get(service)
            if client is None:
                client = self._session.client(service, **self._options)
                client.meta.events.register("before-call", self._sign)
                self._clients[service] = client
            return client

    @contextmanager
    def signed_as(self, credentials: Credentials) -> Iterator[None]:
        before = getattr(self._signing, "credentials", None)
        self._signing.credentials = credentials
        try:
            yield
        finally:
            self._signing.credentials = before

    def _sign(self, context: dict[str, Any], **_: Any) -> None:
        """before-call: sign with the credentials ``signed_as`` set, never the caller's own."""
        credentials = getattr(self._signing, "credentials", None)
        if credentials is None:
            raise RuntimeError(f"a call outside {self._owner}'s signed_as")
        context.setdefault("signing", {})["request_credentials"] = credentials
