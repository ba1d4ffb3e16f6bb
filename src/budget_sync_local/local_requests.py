"""The local-only requests the ``make local`` port answers beside the AWS APIs (spend.py,
health.py): one JSON ``POST`` route on the server and its client, shared by both. A request
body is a JSON object of at most ``MAX_BODY`` bytes; a refusal is 400 with a message naming
the field and the value; anything else than ``POST`` is 405. Nothing of this exists on AWS.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

MAX_BODY = 4096
T = TypeVar("T")


def with_route(
    app: WSGIApplication,
    path: str,
    check: Callable[[object], T],
    apply: Callable[[T], dict[str, Any]],
    refused: type[ValueError],
) -> WSGIApplication:
    """``app`` with ``POST path`` answered: the body's JSON ``check``-ed (it raises ``refused``
    with its message), then ``apply``-ed; its answer is the 200 body."""

    def application(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != path:
            return app(environ, start_response)
        status, answer = _answer(environ, path, check, apply, refused)
        body = json.dumps(answer).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return application


def _answer(
    environ: WSGIEnvironment,
    path: str,
    check: Callable[[object], T],
    apply: Callable[[T], dict[str, Any]],
    refused: type[ValueError],
) -> tuple[str, dict[str, Any]]:
    if environ.get("REQUEST_METHOD") != "POST":
        return "405 Method Not Allowed", {"message": f"{path} takes POST"}
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if not 0 < length <= MAX_BODY:
        return "400 Bad Request", {"message": f"the body must be a JSON object of at most {MAX_BODY} bytes"}
    try:
        request = check(json.loads(environ["wsgi.input"].read(length)))
    except (ValueError, UnicodeDecodeError) as exc:
        return "400 Bad Request", {"message": str(exc) if isinstance(exc, refused) else f"not JSON: {exc}"}
    return "200 OK", apply(request)


def post(
    endpoint: str, path: str, body: dict[str, Any], refused: type[ValueError], *, timeout_s: float = 10
) -> dict[str, Any]:
    """POST ``body`` to a running local organisation: its answer; ``refused`` with the server's
    message if refused, ConnectionError if nothing answers at ``endpoint``."""
    request = urllib.request.Request(  # noqa: S310 - the local organisation's own http endpoint
        endpoint.rstrip("/") + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            answer: dict[str, Any] = json.loads(response.read())
            return answer
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("message", exc.reason)
        except ValueError:
            message = exc.reason
        raise refused(str(message)) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConnectionError(
            f"no local organisation answers at {endpoint} ({reason}); start it with make local"
        ) from None
