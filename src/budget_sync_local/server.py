"""``make local``: the local organisation behind an AWS endpoint on 127.0.0.1.

moto's server runs in the same process as the organisation, so it serves the very
accounts, tables and stacks that were provisioned, and the pipeline thread sees every
write that arrives through it. The port opens only once the organisation is provisioned
and the pipeline runs, so a client that can connect can also expect its write to travel.

A port that cannot be had ends the process at once: it is checked before provisioning
(seconds saved) and bound in the main thread after it (so that a port taken meanwhile is
an error there too, not a server thread that dies while the main thread waits on it). If
the server thread stops serving, ``serve`` ends with ``ServerError`` as well.

As AWS's endpoints do, the server keeps a client's connection open between its requests
(HTTP/1.1 keep-alive, every answer with its ``Content-Length``; werkzeug's own server closes
each one), and closing the server closes the connections it keeps (_KeepAliveHandler, _Server).

Beside the AWS APIs, the port answers two local-only requests, ``POST /_local/spend``: an
account's actual and forecasted spend (budget_sync_local.spend), and ``POST /_local/health``:
a budget's HealthStatus (budget_sync_local.health), which AWS computes and no AWS API sets.
With a ``servicenow`` stand-in, it also serves a local ServiceNow instance under
``/_local/servicenow`` (budget_sync_local.servicenow: the Table API subset the incidents
use), so the instance URL is ``http://HOST:PORT/_local/servicenow``. With ``incidents`` too,
the organisation is deployed with the optional incidents (docs/itsm.md) wired to that URL:
the secret in the management account's Secrets Manager names the stand-in's integration
user, the stack's ``ServiceNowInstanceUrl`` is the URL, the spokes' alert topics deliver to
the incident queue, which the pipeline's loop delivers to the incident function as Lambda's
SQS event source would (budget_sync_local.incidents.QueuePoller), and the function's hourly
schedule runs on the same local time-scale as the reconciler's.
"""

from __future__ import annotations

import contextlib
import io
import logging
import signal
import socket
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.exceptions import InternalServerError
from werkzeug.serving import BaseWSGIServer, ThreadedWSGIServer

from budget_sync_local.health import with_health_route
from budget_sync_local.incidents import FUNCTION as INCIDENT_FUNCTION
from budget_sync_local.incidents import QueuePoller
from budget_sync_local.organisation import DEFAULT_REGION, LocalOrganisation
from budget_sync_local.pipeline import Observer
from budget_sync_local.port import ServerError, check_port
from budget_sync_local.servicenow import PREFIX, StandIn
from budget_sync_local.spend import with_spend_route

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import WSGIApplication, WSGIEnvironment

__all__ = ["ServerError", "check_port", "serve"]


class _Dispatcher(DomainDispatcherApplication):
    """moto's dispatcher, with each host's backend remembered.

    moto finds a request's service by listing its own package's folders (a directory read
    and ~150 ``isdir`` calls) and then matching the host against its URL patterns, on every
    request and under one lock: under load (8 clients writing) the request threads queued
    on that lock. The answer for a host never changes while the process runs, so it is
    computed once per host."""

    def __init__(self, create_app: Callable[..., Any]) -> None:
        super().__init__(create_app)
        self._backend_for_host: dict[str | None, Any] = {}

    def get_backend_for_host(self, host: str | None) -> Any:
        try:
            return self._backend_for_host[host]
        except KeyError:
            backend = self._backend_for_host[host] = super().get_backend_for_host(host)
            return backend


#: A request whose body is larger is answered by werkzeug's own handler (connection closed).
_KEEP_ALIVE_BODY_LIMIT = 16 * 1024 * 1024


class _KeepAliveHandler(MotoRequestHandler):
    """moto's request handler, keeping the connection open between requests (HTTP/1.1
    keep-alive) as AWS's endpoints do, so that a client's SDK reuses it.

    werkzeug's development server closes every connection: it always sends ``Connection:
    close`` and, after each response, reads whatever else the client sent (for up to 10 ms
    at a time) to discard an unread body, which would swallow the next request on a kept
    connection. Under load (8 clients writing) each of their 2,000 requests therefore opened a
    connection and a server thread of its own. Here a request with a known body (a
    ``Content-Length`` up to 16 MiB, or none) is read whole first, the application's answer
    is collected whole and always sent with its ``Content-Length``, and the connection stays
    open unless the client asked to close it. Anything else (a chunked body, ``Expect:
    100-continue``, a larger body, HTTP/1.0, ``Connection: close``) is werkzeug's, unchanged."""

    protocol_version = "HTTP/1.1"

    def run_wsgi(self) -> None:
        length = self.headers.get("Content-Length", "0").strip()
        if (
            self.close_connection  # HTTP/1.0 or Connection: close (http.server's parse_request)
            or "Transfer-Encoding" in self.headers
            or "Expect" in self.headers
            or not length.isdigit()
            or int(length) > _KEEP_ALIVE_BODY_LIMIT
        ):
            self.close_connection = True
            super().run_wsgi()
            return
        body = self.rfile.read(int(length))
        if len(body) < int(length):  # the client went away mid-body
            self.close_connection = True
            return
        rfile, self.rfile = self.rfile, io.BytesIO(body)
        try:
            self.environ = environ = self.make_environ()  # wsgi.input: the body read above
        finally:
            self.rfile = rfile
        try:
            status, headers, answer = self._call(self.server.app, environ)
        except Exception as exc:
            if self.server.passthrough_errors:
                raise
            from werkzeug.debug.tbtools import DebugTraceback

            self.server.log("error", f"Error on request:\n{DebugTraceback(exc).render_traceback_text()}")
            status, headers, answer = self._call(InternalServerError(), environ)
        code, _, reason = status.partition(" ")
        self.send_response(int(code), reason)
        names = set()
        for name, value in headers:
            self.send_header(name, value)
            names.add(name.lower())
        if "content-length" not in names and not (int(code) < 200 or int(code) in (204, 304)):
            self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        if environ["REQUEST_METHOD"] != "HEAD":
            self.wfile.write(answer)
        self.wfile.flush()

    @staticmethod
    def _call(app: WSGIApplication, environ: WSGIEnvironment) -> tuple[str, list[tuple[str, str]], bytes]:
        """The application's status, headers and whole body."""
        started: list[Any] = []
        written: list[bytes] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None
        ) -> Callable[[bytes], object]:
            started[:] = [status, headers]
            return written.append

        chunks = app(environ, start_response)
        try:
            written.extend(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        return started[0], started[1], b"".join(written)


class _Server(ThreadedWSGIServer):
    """werkzeug's threaded server, which also closes the connections it keeps open (between
    a client's requests, _KeepAliveHandler) when it is closed: a thread waiting for a
    connection's next request ends then, and no request is answered afterwards."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._connections: set[socket.socket] = set()  # before werkzeug's, which closes a socket
        self._lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def server_close(self) -> None:
        super().server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by its client
                connection.shutdown(socket.SHUT_RDWR)


def _bind(
    host: str, port: int, org: LocalOrganisation | None = None, servicenow: StandIn | None = None
) -> BaseWSGIServer:
    """moto's server on a socket bound here: werkzeug would print and sys.exit on its own
    bind failure; this one raises ServerError instead. With ``org``, the server also answers
    the local-only ``POST /_local/spend`` and ``POST /_local/health`` (budget_sync_local.spend,
    budget_sync_local.health); with ``servicenow``, the stand-in's paths under
    ``/_local/servicenow``."""
    try:
        listening = socket.create_server((host, port))
    except OSError as exc:
        raise ServerError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    with listening:  # werkzeug works on a duplicate of the descriptor
        app: WSGIApplication = _Dispatcher(create_backend_app)
        if org is not None:
            app = with_health_route(with_spend_route(app, org), org)
        if servicenow is not None:
            app = servicenow.with_route(app)
        return _Server(host, port, app, _KeepAliveHandler, fd=listening.fileno())


def serve(
    accounts: Sequence[str],
    port: int,
    host: str = "127.0.0.1",
    *,
    ready: Callable[[LocalOrganisation, str], None] | None = None,
    stop: threading.Event | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    function_output: TextIO | None = None,
    observer: Observer | None = None,
    servicenow: StandIn | None = None,
    reconcile_every_s: float | None = None,
    incidents: bool = False,
) -> None:
    """Provision, start the pipeline, open the port; run until ``stop`` is set, Ctrl-C or
    SIGTERM. The function's JSON logs go to ``function_output`` (a file, say); ``servicenow``
    is served under ``/_local/servicenow`` on the same port. ``incidents`` (with
    ``servicenow``): the organisation deployed with the optional incidents, wired to that
    URL. ``reconcile_every_s``: the reconciler function's schedule (hourly in the template)
    on a local time-scale, every that many seconds, and the incident function's (also hourly)
    with it (None or 0: only when asked, ``budgetctl reconcile --apply``, ``aws lambda invoke``).
    ServerError if the port cannot be listened on or the server stops serving."""
    if incidents and servicenow is None:
        raise ValueError("incidents: they need the servicenow stand-in that the port serves")
    check_port(host, port)
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, lambda *_: stop.set())
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    failures: list[str] = []

    with LocalOrganisation(
        accounts,
        DEFAULT_REGION,
        progress=progress,
        function_output=function_output,
        observer=observer,
        servicenow=servicenow if incidents else None,
        servicenow_url=f"http://{host}:{port}{PREFIX}" if incidents else None,
    ) as org:
        _schedule(org, reconcile_every_s)
        org.pipeline.start()
        server = _bind(host, port, org, servicenow)

        def run() -> None:
            try:
                server.serve_forever()
            except BaseException as exc:
                failures.append(f"the server stopped: {type(exc).__name__}: {exc}")
            finally:
                stop.set()

        thread = threading.Thread(target=run, name="budget-sync-endpoint", daemon=True)
        thread.start()
        try:
            if ready is not None:
                ready(org, f"http://{host}:{port}")
            while not stop.wait(0.5):
                pass
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)
            org.pipeline.stop()
    if failures:
        raise ServerError(failures[0])


def _schedule(org: LocalOrganisation, reconcile_every_s: float | None) -> None:
    """What runs in the pipeline's background loop besides the pipeline: the reconciler's
    schedule and, with the incidents, the incident function's (both hourly on AWS) every
    ``reconcile_every_s``, and the incident queue's event source."""
    if reconcile_every_s:
        org.pipeline.every("ReconcilerFunction", reconcile_every_s, org.invoke_reconciler)
    if org.incidents is not None:
        org.pipeline.add_source(QueuePoller(org.incidents))
        if reconcile_every_s:
            org.pipeline.every(INCIDENT_FUNCTION, reconcile_every_s, org.incidents.schedule)
