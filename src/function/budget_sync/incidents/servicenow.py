"""ServiceNow's Table API as the incidents' desk (lifecycle.IncidentDesk): the adapter.

All HTTP and all of ServiceNow's answers are handled here; the logic sees the project's errors
(errors.py). The HTTP client is urllib3, which the Lambda runtime carries (botocore depends on
it), so the package adds nothing (tests/package/test_function_package.py).

- Credentials (``Credentials.from_secret``): the secret's JSON holds either ``username`` and
  ``password`` (basic authentication) or ``client_id`` and ``client_secret`` (OAuth client
  credentials: a token from ``POST /oauth_token.do``, kept until a minute before it expires
  and asked for again once if the instance answers 401). No credential, token or
  ``Authorization`` header is ever logged or put in an error.
- Thread-safe: the hourly sweep calls one desk from several threads. The token is asked for
  under a lock, so threads that find it missing or expired together wait for one new token
  (one ``/oauth_token.do`` call, not one per thread); a 401 drops the token only if it is the
  one that request carried. urllib3's pool keeps up to ``maxsize`` connections per host.
- ``create``: ``POST /api/now/table/incident`` (201); ``find``: ``GET`` with
  ``sysparm_query=correlation_id=ID^active=true``; ``update``: ``PATCH .../incident/{sys_id}``.
  Each asks only for ``sys_id,number,state`` (``sysparm_fields``).
- 429 and 5xx, and a connection that fails or times out, are tried again, ``attempts`` times
  in all, waiting ``Retry-After`` (at most ``max_delay``) or an exponential backoff with full
  jitter; then IncidentDeskUnavailable (TransientError: the caller keeps the message).
- Any other 4xx is IncidentRejected (PermanentError) with ServiceNow's ``error.message`` and
  ``error.detail`` (or OAuth's ``error_description``); 404 on an incident is IncidentNotFound.
"""

from __future__ import annotations

import json
import random
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from budget_sync.errors import ConfigError, IncidentDeskUnavailable, IncidentNotFound, IncidentRejected
from budget_sync.incidents.lifecycle import IncidentRef
from budget_sync.observability import logger

TABLE = "/api/now/table/incident"
OAUTH_PATH = "/oauth_token.do"
FIELDS = "sys_id,number,state"
_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes


class Transport(Protocol):
    """One HTTP request. Raises IncidentDeskUnavailable when no answer came (connection, timeout)."""

    def __call__(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> HttpResponse: ...


class Urllib3Transport:
    """urllib3's pool, built once; its own retries off (the desk retries). ``maxsize``: the
    connections kept per host (the sweep's threads share them; more are opened and closed)."""

    def __init__(self, connect_timeout: float = 5.0, read_timeout: float = 20.0, maxsize: int = 1) -> None:
        import urllib3

        self._urllib3 = urllib3
        self._pool = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
            retries=False,
            maxsize=max(1, maxsize),
        )

    def __call__(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None) -> HttpResponse:
        try:
            response = self._pool.request(method, url, headers=dict(headers), body=body, redirect=False)
        except self._urllib3.exceptions.HTTPError as exc:
            raise IncidentDeskUnavailable(f"no answer from ServiceNow ({type(exc).__name__})") from exc
        return HttpResponse(response.status, dict(response.headers), response.data)


@dataclass(frozen=True, slots=True)
class Credentials:
    """Basic (``username``/``password``) or OAuth client credentials (``client_id``/``client_secret``).
    Its repr shows no secret."""

    username: str = ""
    password: str = field(default="", repr=False)
    client_id: str = ""
    client_secret: str = field(default="", repr=False)

    @property
    def oauth(self) -> bool:
        return bool(self.client_id)

    @classmethod
    def from_secret(cls, text: str, source: str = "the ServiceNow secret") -> Credentials:
        """The secret's JSON. ConfigError names the secret and the field, never a value."""
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise ConfigError(f"{source} is not a JSON object")
        if data.get("client_id") or data.get("client_secret"):
            pair = ("client_id", "client_secret")
        else:
            pair = ("username", "password")
        for name in pair:
            if not isinstance(data.get(name), str) or not data[name]:
                raise ConfigError(
                    f"{source} has no {name}: give username and password, or client_id and client_secret"
                )
        if pair[0] == "client_id":
            return cls(client_id=data["client_id"], client_secret=data["client_secret"])
        return cls(username=data["username"], password=data["password"])


def instance_url(value: str, name: str = "SERVICENOW_INSTANCE_URL") -> str:
    """An https URL of the instance (http only for 127.0.0.1 and localhost, the local stand-in),
    without a trailing slash. ConfigError names the variable and the value."""
    parsed = urllib.parse.urlsplit(value.strip())
    local = parsed.scheme == "http" and parsed.hostname in _LOCAL_HOSTS
    if not (parsed.scheme == "https" or local) or not parsed.hostname or parsed.query or parsed.fragment:
        raise ConfigError(f"{name} {value!r} is not an https:// URL of a ServiceNow instance")
    return value.strip().rstrip("/")


class ServiceNowDesk:
    """The incident table of one instance."""

    def __init__(
        self,
        base_url: str,
        credentials: Credentials,
        transport: Transport | None = None,
        *,
        attempts: int = 4,
        base_delay: float = 1.0,
        max_delay: float = 20.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._credentials = credentials
        self._transport = transport or Urllib3Transport()
        self._attempts = attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._sleep = sleep
        self._clock = clock
        self._token: tuple[str, float] | None = None
        self._token_lock = threading.Lock()

    # -- IncidentDesk ----------------------------------------------------------------------

    def create(self, fields: Mapping[str, str]) -> IncidentRef:
        return _ref(self._request("POST", TABLE, {"sysparm_fields": FIELDS}, fields)["result"])

    def find(self, correlation_id: str) -> list[IncidentRef]:
        query = {
            "sysparm_query": f"correlation_id={correlation_id}^active=true",
            "sysparm_fields": FIELDS,
            "sysparm_limit": "100",
        }
        result = self._request("GET", TABLE, query, None)["result"]
        if not isinstance(result, list):
            raise IncidentRejected(200, "unexpected answer", "result is not a list")
        return [_ref(r) for r in result]

    def update(self, sys_id: str, fields: Mapping[str, str]) -> IncidentRef:
        path = f"{TABLE}/{urllib.parse.quote(sys_id, safe='')}"
        try:
            return _ref(self._request("PATCH", path, {"sysparm_fields": FIELDS}, fields)["result"])
        except IncidentRejected as exc:
            if exc.status == 404:
                raise IncidentNotFound(exc.status, exc.message, exc.detail) from exc
            raise

    # -- HTTP ------------------------------------------------------------------------------

    def _request(
        self, method: str, path: str, query: Mapping[str, str], body: Mapping[str, Any] | None
    ) -> Any:
        url = f"{self._base}{path}?{urllib.parse.urlencode(query)}"
        payload = None if body is None else json.dumps(body).encode()
        refreshed = False
        last = "no attempt"
        attempt = 0
        while attempt < self._attempts:
            authorization = self._authorization()
            headers = {"Accept": "application/json", "Authorization": authorization}
            if payload is not None:
                headers["Content-Type"] = "application/json"
            try:
                response = self._transport(method, url, headers, payload)
            except IncidentDeskUnavailable as exc:
                last = str(exc)
                attempt += 1
                self._wait(attempt, None, method, path, last)
                continue
            if response.status in (200, 201):
                return _json(response)
            if response.status == 401 and self._credentials.oauth and not refreshed:
                refreshed = True  # a token revoked or expired early: one new token
                self._drop_token(authorization)
                continue
            if response.status == 429 or response.status >= 500:
                last = f"HTTP {response.status}"
                attempt += 1
                self._wait(attempt, response.headers, method, path, last)
                continue
            raise _rejected(response)
        raise IncidentDeskUnavailable(
            f"ServiceNow did not accept {method} {path} after {self._attempts} attempts ({last})"
        )

    def _wait(
        self, attempt: int, headers: Mapping[str, str] | None, method: str, path: str, why: str
    ) -> None:
        if attempt >= self._attempts:
            return
        delay = min(self._max_delay, self._base_delay * 2 ** (attempt - 1)) * random.random()  # noqa: S311 - jitter
        retry_after = _header(headers or {}, "Retry-After")
        if retry_after is not None and retry_after.strip().isdigit():
            delay = min(self._max_delay, float(retry_after.strip()))
        logger.info(
            "servicenow retry",
            extra={
                "method": method,
                "path": path,
                "attempt": attempt,
                "reason": why,
                "delay_s": round(delay, 2),
            },
        )
        self._sleep(delay)

    def _authorization(self) -> str:
        credentials = self._credentials
        if not credentials.oauth:
            import base64

            pair = f"{credentials.username}:{credentials.password}".encode()
            return "Basic " + base64.b64encode(pair).decode()
        with self._token_lock:  # one refresh for all the threads that need it
            if self._token is None or self._clock() >= self._token[1]:
                self._token = self._new_token()
            return f"Bearer {self._token[0]}"

    def _drop_token(self, authorization: str) -> None:
        """Forget the token a refused request carried, unless another thread already replaced it."""
        with self._token_lock:
            if self._token is not None and authorization == f"Bearer {self._token[0]}":
                self._token = None

    def _new_token(self) -> tuple[str, float]:
        form = urllib.parse.urlencode(
            {
                "grant_type": "client_credentials",
                "client_id": self._credentials.client_id,
                "client_secret": self._credentials.client_secret,
            }
        ).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        for attempt in range(1, self._attempts + 1):
            response = self._transport("POST", f"{self._base}{OAUTH_PATH}", headers, form)
            if response.status == 200:
                data = _json(response)
                token, lifetime = data.get("access_token"), data.get("expires_in", 0)
                if not isinstance(token, str) or not token:
                    raise IncidentRejected(200, "no access_token in the OAuth answer")
                lifetime = float(lifetime) if isinstance(lifetime, int | float) else 0.0
                return token, self._clock() + max(0.0, lifetime - 60)
            if response.status != 429 and response.status < 500:
                raise _rejected(response)
            self._wait(attempt, response.headers, "POST", OAUTH_PATH, f"HTTP {response.status}")
        raise IncidentDeskUnavailable(f"ServiceNow did not issue a token after {self._attempts} attempts")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


def _json(response: HttpResponse) -> Any:
    try:
        return json.loads(response.body)
    except ValueError:
        raise IncidentRejected(
            response.status, "the answer is not JSON", response.body[:200].decode(errors="replace")
        ) from None


def _rejected(response: HttpResponse) -> IncidentRejected:
    """ServiceNow's ``{"error": {"message", "detail"}}``, or OAuth's ``{"error", "error_description"}``."""
    try:
        data = json.loads(response.body)
    except ValueError:
        data = None
    message, detail = f"HTTP {response.status}", ""
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            message = str(error.get("message") or message)
            detail = str(error.get("detail") or "")
        elif isinstance(error, str):
            message, detail = error, str(data.get("error_description") or "")
    return IncidentRejected(response.status, message[:500], detail[:500])


def _ref(record: Any) -> IncidentRef:
    if not isinstance(record, dict) or not record.get("sys_id") or not record.get("number"):
        raise IncidentRejected(200, "unexpected answer", "no sys_id and number in the result")
    return IncidentRef(str(record["sys_id"]), str(record["number"]), str(record.get("state", "")))


__all__ = ["Credentials", "HttpResponse", "ServiceNowDesk", "Transport", "Urllib3Transport", "instance_url"]
