"""A local ServiceNow instance: the subset of the Table API that budget-sync's incidents use.

Nothing of ServiceNow runs here; this is a stand-in (werkzeug's ``Request``/``Response`` and
URL ``Map``, the same library moto's server is built on) that answers as ServiceNow's REST API
documentation says the instance answers. Its shapes are pinned by
tests/unit/test_servicenow_standin.py (the contract test). What it models:

- ``POST /oauth_token.do`` (form: ``grant_type=client_credentials``, ``client_id``,
  ``client_secret``): ``{"access_token", "token_type": "Bearer", "expires_in", "scope"}``; a
  wrong client is 401 ``{"error_description": "access_denied", "error": "server_error"}`` (the
  OAuth 2.0 error shape of RFC 6749 section 5.2, not the Table API's; the values as users of
  real instances report them on ServiceNow's community forum, not from ServiceNow's reference).
  On a real instance the grant is off until an administrator creates the system property
  ``glide.oauth.inbound.client.credential.grant_type.enabled`` (ServiceNow docs, "Client
  Credentials").
- Every ``/api/now/...`` request needs ``Authorization: Basic`` of the integration user or
  ``Authorization: Bearer`` of a token it issued; otherwise 401 "User Not Authenticated".
  A user without the role to write incidents (``deny_writes``) gets 403 on POST and PATCH.
- ``POST /api/now/table/incident``: 201, ``Location`` of the new record, ``{"result": record}``
  with a 32-hex ``sys_id``, a ``number`` ``INC0010001``..., ``state`` "1" (New), ``active``
  "true". Every value is a string, as the Table API returns them (``sysparm_display_value``
  false, the default). Fields the table does not have are ignored, as ServiceNow ignores them.
- ``GET /api/now/table/incident?sysparm_query=...``: ``{"result": [records]}``, the query an
  encoded query of ``field=value`` and ``field!=value`` terms joined by ``^`` (AND); any other
  operator is refused with 400 (the real instance knows many more; the stand-in refuses what
  it does not model rather than guess). ``sysparm_limit`` and ``sysparm_fields`` are honoured.
- ``GET`` and ``PATCH /api/now/table/incident/{sys_id}``: one record, or 404 "No Record found".
  ``work_notes`` and ``comments`` are journal fields: a PATCH appends an entry, and a record
  reads them as "" (the Table API does not return journal entries in the field itself; they
  are in ``sys_journal_field``, here ``StandIn.journal``).
- State 6 (Resolved) needs ``close_code`` and ``close_notes``, or the update is refused with
  403 "Data Policy Exception" naming the fields, as the incident table's data policy does. A
  resolved incident stays ``active`` "true" (only Closed, 7, and Canceled, 8, set it "false"),
  so a lookup of open incidents must leave state 6 out itself.
- Errors are ServiceNow's: ``{"error": {"message", "detail"}, "status": "failure"}``; 429
  carries ``Retry-After`` (seconds), as the instance's rate limit rules answer.

Tests and ``make local`` change its behaviour on purpose: ``fail_next(count, status)`` answers
the next requests with an outage (429, 500, 503), ``credentials`` can be changed (a bad
credential), ``deny_writes`` takes the integration user's write role away. Nothing of this
exists on a real instance.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

#: Where ``make local`` serves the stand-in, beside the AWS endpoint on the same port.
PREFIX = "/_local/servicenow"
#: The incident states the stand-in knows (ServiceNow's incident ``state`` choices).
NEW, IN_PROGRESS, ON_HOLD, RESOLVED, CLOSED, CANCELED = "1", "2", "3", "6", "7", "8"
_INACTIVE_STATES = frozenset({CLOSED, CANCELED})
JOURNAL_FIELDS = frozenset({"work_notes", "comments"})
#: The incident fields the stand-in stores (a subset of the incident table's columns).
INCIDENT_FIELDS = frozenset(
    {
        "short_description",
        "description",
        "correlation_id",
        "correlation_display",
        "urgency",
        "impact",
        "priority",
        "state",
        "assignment_group",
        "caller_id",
        "category",
        "close_code",
        "close_notes",
        "contact_type",
        *JOURNAL_FIELDS,
    }
)
#: ServiceNow derives priority from impact and urgency (its default priority lookup rules).
_PRIORITY = {
    ("1", "1"): "1",
    ("1", "2"): "2",
    ("2", "1"): "2",
    ("1", "3"): "3",
    ("2", "2"): "3",
    ("3", "1"): "3",
    ("2", "3"): "4",
    ("3", "2"): "4",
    ("3", "3"): "5",
}
TOKEN_LIFETIME = 1799


@dataclass
class JournalEntry:
    """One entry of an incident's journal (``sys_journal_field``)."""

    element: str
    value: str
    created_on: str


@dataclass
class StandIn:
    """The instance's state: its incidents, credentials and the faults a test asked for."""

    user: str = "budget-sync"
    password: str = "local-password"  # noqa: S105 - the stand-in's own, local only
    client_id: str = "budget-sync-client"
    client_secret: str = "local-client-secret"  # noqa: S105 - local only
    deny_writes: bool = False
    incidents: dict[str, dict[str, str]] = field(default_factory=dict)
    journal: dict[str, list[JournalEntry]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    _tokens: set[str] = field(default_factory=set)
    _faults: list[tuple[int, int | None]] = field(default_factory=list)
    _next_number: int = 10001
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def fail_next(self, count: int, status: int = 503, retry_after: int | None = None) -> None:
        """Answer the next ``count`` Table API requests with ``status`` (429 carries
        ``Retry-After``: ``retry_after`` seconds, 1 if not given)."""
        if status == 429 and retry_after is None:
            retry_after = 1
        with self._lock:
            self._faults.extend([(status, retry_after)] * count)

    def recover(self) -> None:
        """End an outage: the faults not yet answered are dropped."""
        with self._lock:
            self._faults.clear()

    def by_correlation(self, correlation_id: str) -> list[dict[str, str]]:
        """Every incident with this correlation id, oldest first (for tests and the demo)."""
        with self._lock:
            found = [dict(i) for i in self.incidents.values() if i["correlation_id"] == correlation_id]
        return sorted(found, key=lambda i: i["number"])

    def wsgi(self, prefix: str = "") -> WSGIApplication:
        """The stand-in as a WSGI application, its paths under ``prefix``."""
        return _App(self, prefix)

    def with_route(self, app: WSGIApplication, prefix: str = PREFIX) -> WSGIApplication:
        """``app`` with the stand-in answering every path under ``prefix`` (``make local``)."""
        mine = self.wsgi(prefix)

        def dispatch(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "")
            if path == prefix or path.startswith(prefix + "/"):
                return mine(environ, start_response)
            return app(environ, start_response)

        return dispatch


class ServiceNowError(HTTPException):
    """An error as the Table API returns it: ``{"error": {"message", "detail"}, "status": "failure"}``."""

    def __init__(self, status: int, message: str, detail: str, headers: Mapping[str, str] | None = None):
        super().__init__(description=message)
        self.code = self.status = status
        self.message = message
        self.detail = detail
        self.extra_headers = dict(headers or {})

    def get_response(self, environ: Any = None, scope: Any = None) -> Response:
        body = {"error": {"message": self.message, "detail": self.detail}, "status": "failure"}
        return _json(body, self.status, self.extra_headers)


def _json(body: object, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=dict(headers or {}), mimetype="application/json")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


_NOT_AUTHENTICATED = ("User Not Authenticated", "Required to provide Auth information")


class _App:
    def __init__(self, state: StandIn, prefix: str) -> None:
        self.state = state
        self.prefix = prefix
        self.urls = Map(
            [
                Rule(f"{prefix}/oauth_token.do", endpoint="token", methods=["POST"]),
                Rule(f"{prefix}/api/now/table/incident", endpoint="incidents", methods=["GET", "POST"]),
                Rule(
                    f"{prefix}/api/now/table/incident/<sys_id>", endpoint="incident", methods=["GET", "PATCH"]
                ),
            ]
        )

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = self.dispatch(request)
        except ServiceNowError as exc:
            response = exc.get_response()
        except NotFound:
            response = ServiceNowError(400, "Invalid table", "Invalid path").get_response()
        except HTTPException as exc:  # 405: werkzeug's method check
            response = ServiceNowError(exc.code or 400, exc.name, exc.description or "").get_response()
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        endpoint, args = self.urls.bind_to_environ(request.environ).match()
        with self.state._lock:
            self.state.requests.append((request.method, request.path))
            if endpoint == "token":
                return self.token(request)
            self.authenticate(request)
            if self.state._faults:
                status, retry_after = self.state._faults.pop(0)
                raise _fault(status, retry_after)
            if request.method in {"POST", "PATCH"} and self.state.deny_writes:
                raise ServiceNowError(
                    403, "Operation Failed", "ACL Exception Insert Failed due to security constraints"
                )
            if endpoint == "incidents":
                return self.create(request) if request.method == "POST" else self.query(request)
            if request.method == "PATCH":
                return self.update(request, args["sys_id"])
            return _json({"result": self.found(args["sys_id"])})

    def token(self, request: Request) -> Response:
        form = request.form
        if form.get("grant_type") != "client_credentials":
            return _json(
                {"error": "unsupported_grant_type", "error_description": "unsupported_grant_type"}, 400
            )
        if (form.get("client_id"), form.get("client_secret")) != (
            self.state.client_id,
            self.state.client_secret,
        ):
            return _json({"error_description": "access_denied", "error": "server_error"}, 401)
        token = secrets.token_urlsafe(32)
        self.state._tokens.add(token)
        return _json(
            {"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME, "scope": ""}
        )

    def authenticate(self, request: Request) -> None:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value in self.state._tokens:
            return
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user = password = ""
            if (user, password) == (self.state.user, self.state.password):
                return
        raise ServiceNowError(
            401, *_NOT_AUTHENTICATED, headers={"WWW-Authenticate": 'Basic realm="Service-now"'}
        )

    def body(self, request: Request) -> dict[str, Any]:
        try:
            body = json.loads(request.get_data(as_text=True) or "null")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ServiceNowError(400, "Exception while reading request", "The payload is not valid JSON.")
        return body

    def create(self, request: Request) -> Response:
        body = self.body(request)
        state = self.state
        sys_id = secrets.token_hex(16)
        now = _now()
        record = {name: "" for name in INCIDENT_FIELDS}
        record.update(
            sys_id=sys_id,
            number=f"INC{state._next_number:07d}",
            state=NEW,
            active="true",
            urgency="3",
            impact="3",
            opened_at=now,
            sys_created_on=now,
            sys_updated_on=now,
            resolved_at="",
        )
        state._next_number += 1
        state.incidents[sys_id] = record
        self.apply(record, body)
        location = f"{request.host_url.rstrip('/')}{self.prefix}/api/now/table/incident/{sys_id}"
        return _json({"result": self.shown(record, request)}, 201, {"Location": location})

    def query(self, request: Request) -> Response:
        terms = _parse_query(request.args.get("sysparm_query", ""))
        found = [
            r
            for r in sorted(self.state.incidents.values(), key=lambda r: r["number"])
            if all((r.get(name, "") == value) == equal for name, equal, value in terms)
        ]
        limit = request.args.get("sysparm_limit")
        if limit is not None:
            if not limit.isdigit():
                raise ServiceNowError(
                    400, "Invalid sysparm_limit", f"sysparm_limit {limit!r} is not a number"
                )
            found = found[: int(limit)]
        return _json({"result": [self.shown(r, request) for r in found]})

    def update(self, request: Request, sys_id: str) -> Response:
        record = self.found(sys_id)
        body = self.body(request)
        target = str(body.get("state", record["state"]))
        if target == RESOLVED and record["state"] != RESOLVED:
            missing = [
                label
                for name, label in (("close_code", "Resolution code"), ("close_notes", "Resolution notes"))
                if not str(body.get(name, record[name]) or "")
            ]
            if missing:
                raise ServiceNowError(
                    403,
                    "Operation Failed",
                    "Data Policy Exception: \n The following fields are mandatory: " + ", ".join(missing),
                )
        self.apply(self.state.incidents[sys_id], body)
        return _json({"result": self.shown(self.state.incidents[sys_id], request)})

    def found(self, sys_id: str) -> dict[str, str]:
        record = self.state.incidents.get(sys_id)
        if record is None:
            raise ServiceNowError(
                404, "No Record found", "Record doesn't exist or ACL restricts the record retrieval"
            )
        return record

    def apply(self, record: dict[str, str], body: Mapping[str, Any]) -> None:
        now = _now()
        for name, value in body.items():
            if name not in INCIDENT_FIELDS or name == "priority":
                continue  # unknown fields are ignored; priority is derived (below)
            text = "" if value is None else str(value)
            if name in JOURNAL_FIELDS:
                if text:
                    self.state.journal.setdefault(record["sys_id"], []).append(JournalEntry(name, text, now))
                continue
            record[name] = text
        record["priority"] = _PRIORITY.get((record["impact"], record["urgency"]), "5")
        record["active"] = "false" if record["state"] in _INACTIVE_STATES else "true"
        if record["state"] == RESOLVED and not record["resolved_at"]:
            record["resolved_at"] = now
        record["sys_updated_on"] = now

    def shown(self, record: Mapping[str, str], request: Request) -> dict[str, str]:
        wanted = request.args.get("sysparm_fields")
        shown = {name: ("" if name in JOURNAL_FIELDS else value) for name, value in record.items()}
        if wanted:
            names = [n.strip() for n in wanted.split(",") if n.strip()]
            shown = {name: shown[name] for name in names if name in shown}
        return shown


def _fault(status: int, retry_after: int | None) -> ServiceNowError:
    if status == 429:
        return ServiceNowError(
            429,
            "Rate limit exceeded",
            "Too many requests for this user, try again later",
            {"Retry-After": str(retry_after or 1)},
        )
    return ServiceNowError(status, "Service Unavailable", "The instance is unavailable (local outage)")


def _parse_query(query: str) -> list[tuple[str, bool, str]]:
    """``a=1^b!=2`` -> [("a", True, "1"), ("b", False, "2")]. Other operators: 400."""
    terms: list[tuple[str, bool, str]] = []
    for term in filter(None, query.split("^")):
        name, equal, value = term, True, None
        if "!=" in term:
            name, _, value = term.partition("!=")
            equal = False
        elif "=" in term:
            name, _, value = term.partition("=")
        if value is None or not name.isidentifier():
            raise ServiceNowError(
                400,
                "Unsupported query",
                f"the local stand-in models field=value and field!=value, not {term!r}",
            )
        terms.append((name, equal, value))
    return terms
