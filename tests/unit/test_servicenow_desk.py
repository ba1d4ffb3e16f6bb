"""The ServiceNow adapter (budget_sync.incidents.servicenow.ServiceNowDesk) against the local stand-in,
in-process: the requests it sends, its retries, and how it reads ServiceNow's errors."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

import pytest

from budget_sync.errors import ConfigError, IncidentDeskUnavailable, IncidentNotFound, IncidentRejected
from budget_sync.incidents.servicenow import Credentials, HttpResponse, ServiceNowDesk, instance_url
from budget_sync_local.servicenow import StandIn
from tests.fakes.incidents import StandInTransport

CID = "111111111111/SpokeAccountBudget/2026-12-01"


@pytest.fixture
def instance() -> StandIn:
    return StandIn()


@pytest.fixture
def transport(instance: StandIn) -> StandInTransport:
    return StandInTransport(instance)


@pytest.fixture
def slept() -> list[float]:
    return []


def _desk(
    instance: StandIn, transport: StandInTransport, slept: list[float], *, oauth: bool = False, **kw: object
) -> ServiceNowDesk:
    credentials = (
        Credentials(client_id=instance.client_id, client_secret=instance.client_secret)
        if oauth
        else Credentials(username=instance.user, password=instance.password)
    )
    return ServiceNowDesk(StandInTransport.BASE, credentials, transport, sleep=slept.append, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("oauth", [False, True], ids=["basic", "oauth"])
def test_given_credentials_when_create_find_update_then_the_table_api_holds_the_incident(
    instance: StandIn, transport: StandInTransport, slept: list[float], oauth: bool
) -> None:
    desk = _desk(instance, transport, slept, oauth=oauth)

    created = desk.create({"short_description": "over budget", "correlation_id": CID, "urgency": "2"})
    found = desk.find(CID)
    updated = desk.update(created.sys_id, {"work_notes": "100% crossed", "urgency": "1"})

    assert created.number.startswith("INC")
    assert found == [created]
    assert updated.sys_id == created.sys_id
    assert instance.incidents[created.sys_id]["urgency"] == "1"
    assert [e.value for e in instance.journal[created.sys_id]] == ["100% crossed"]
    assert (
        "GET",
        f"/api/now/table/incident?sysparm_query=correlation_id%3D{CID.replace('/', '%2F')}%5Eactive%3Dtrue&sysparm_fields=sys_id%2Cnumber%2Cstate&sysparm_limit=100",
    ) in transport.calls
    assert slept == []
    if oauth:  # one token for the three requests
        assert [c for c in transport.calls if c[1] == "/oauth_token.do"] == [("POST", "/oauth_token.do")]


def test_given_429_with_retry_after_then_5xx_when_create_then_waits_and_creates_once(
    instance: StandIn, transport: StandInTransport, slept: list[float]
) -> None:
    instance.fail_next(1, 429, retry_after=7)
    instance.fail_next(1, 502)

    created = _desk(instance, transport, slept).create({"correlation_id": CID})

    assert list(instance.incidents) == [created.sys_id]
    assert slept[0] == 7  # ServiceNow's Retry-After
    assert 0 <= slept[1] <= 2  # backoff with jitter for the 502
    assert len(transport.calls) == 3


def test_given_an_outage_longer_than_the_attempts_when_create_then_unavailable_and_nothing_created(
    instance: StandIn, transport: StandInTransport, slept: list[float]
) -> None:
    instance.fail_next(10, 503)

    with pytest.raises(IncidentDeskUnavailable, match="after 4 attempts"):
        _desk(instance, transport, slept).create({"correlation_id": CID})

    assert instance.incidents == {}
    assert len(transport.calls) == 4
    assert len(slept) == 3


def test_given_a_connection_that_fails_when_create_then_it_is_retried(
    instance: StandIn, transport: StandInTransport, slept: list[float]
) -> None:
    failures = [IncidentDeskUnavailable("no answer from ServiceNow (ConnectTimeoutError)")]

    def flaky(*args: object) -> object:
        if failures:
            raise failures.pop()
        return transport(*args)  # type: ignore[arg-type]

    desk = ServiceNowDesk(
        StandInTransport.BASE, Credentials("budget-sync", "local-password"), flaky, sleep=slept.append
    )  # type: ignore[arg-type]

    assert desk.create({"correlation_id": CID}).number


@pytest.mark.parametrize("oauth", [False, True], ids=["basic", "oauth"])
def test_given_a_bad_credential_when_create_then_rejected_with_servicenows_message_and_not_retried(
    instance: StandIn, transport: StandInTransport, slept: list[float], oauth: bool
) -> None:
    desk = _desk(instance, transport, slept, oauth=oauth)
    instance.password = instance.client_secret = "rotated"

    with pytest.raises(IncidentRejected) as rejected:
        desk.create({"correlation_id": CID})

    assert rejected.value.status == 401
    assert rejected.value.message == ("server_error" if oauth else "User Not Authenticated")
    assert rejected.value.detail == ("access_denied" if oauth else "Required to provide Auth information")
    assert "local-password" not in str(rejected.value)
    assert "local-client-secret" not in str(rejected.value)
    assert len(transport.calls) == 1
    assert slept == []


def test_given_an_oauth_token_revoked_when_a_request_gets_401_then_one_new_token(
    instance: StandIn, transport: StandInTransport, slept: list[float]
) -> None:
    desk = _desk(instance, transport, slept, oauth=True)
    desk.create({"correlation_id": CID})
    instance._tokens.clear()  # revoked on the instance

    assert desk.find(CID)
    assert [c for c in transport.calls if c[1] == "/oauth_token.do"] == [("POST", "/oauth_token.do")] * 2


class _SlowTokens:
    """The transport, with ``/oauth_token.do`` answered after ``delay`` seconds, so that every
    thread that needs a token asks for it before the first answer comes back."""

    def __init__(self, transport: StandInTransport, delay: float) -> None:
        self._transport = transport
        self._delay = delay

    def __call__(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None) -> HttpResponse:
        if url.endswith("/oauth_token.do"):
            time.sleep(self._delay)
        return self._transport(method, url, headers, body)


def _at_once(threads: int, work: Callable[[], object]) -> list[object]:
    gate = threading.Barrier(threads)

    def one() -> object:
        gate.wait()
        return work()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(lambda _: one(), range(threads)))


def test_given_many_threads_without_a_token_when_they_call_at_once_then_one_token_is_asked_for(
    instance: StandIn, transport: StandInTransport, slept: list[float]
) -> None:
    # GIVEN an OAuth desk shared by 16 threads (the hourly sweep), no token yet, a slow token endpoint
    desk = ServiceNowDesk(
        StandInTransport.BASE,
        Credentials(client_id=instance.client_id, client_secret=instance.client_secret),
        _SlowTokens(transport, 0.2),
        sleep=slept.append,
    )

    # WHEN they all call at once
    found = _at_once(16, lambda: desk.find(CID))

    # THEN one /oauth_token.do for all of them, and every call answered
    assert found == [[]] * 16
    assert [c for c in transport.calls if c[1] == "/oauth_token.do"] == [("POST", "/oauth_token.do")]


def test_given_a_token_revoked_when_many_threads_get_401_at_once_then_one_new_token(
    instance: StandIn, transport: StandInTransport, slept: list[float]
) -> None:
    desk = ServiceNowDesk(
        StandInTransport.BASE,
        Credentials(client_id=instance.client_id, client_secret=instance.client_secret),
        _SlowTokens(transport, 0.05),
        sleep=slept.append,
    )
    desk.find(CID)
    instance._tokens.clear()  # revoked on the instance: every thread's next request gets 401

    found = _at_once(8, lambda: desk.find(CID))

    assert found == [[]] * 8
    assert [c for c in transport.calls if c[1] == "/oauth_token.do"] == [("POST", "/oauth_token.do")] * 2


def test_given_no_write_role_when_create_then_403_rejected(
    instance: StandIn, transport: StandInTransport, slept: list[float]
) -> None:
    instance.deny_writes = True

    with pytest.raises(IncidentRejected, match="403: Operation Failed"):
        _desk(instance, transport, slept).create({"correlation_id": CID})


def test_given_a_deleted_incident_when_update_then_not_found(
    instance: StandIn, transport: StandInTransport, slept: list[float]
) -> None:
    with pytest.raises(IncidentNotFound, match="No Record found"):
        _desk(instance, transport, slept).update("0" * 32, {"work_notes": "x"})


def test_given_resolution_without_close_notes_then_servicenows_data_policy_message(
    instance: StandIn, transport: StandInTransport, slept: list[float]
) -> None:
    desk = _desk(instance, transport, slept)
    created = desk.create({"correlation_id": CID})

    with pytest.raises(IncidentRejected, match="Resolution notes"):
        desk.update(created.sys_id, {"state": "6", "close_code": "Solution provided"})


def test_given_secrets_when_read_then_basic_or_oauth_and_repr_hides_them() -> None:
    basic = Credentials.from_secret(json.dumps({"username": "u", "password": "p4ss"}))
    oauth = Credentials.from_secret(json.dumps({"client_id": "c", "client_secret": "s3cret"}))

    assert (basic.oauth, oauth.oauth) == (False, True)
    assert "p4ss" not in repr(basic)
    assert "s3cret" not in repr(oauth)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("not json p4ss", "is not a JSON object"),
        (json.dumps({"username": "u"}), "has no password"),
        (json.dumps({"client_id": "c", "client_secret": ""}), "has no client_secret"),
        (json.dumps({"password": "p4ss"}), "has no username"),
    ],
)
def test_given_a_malformed_secret_then_config_error_names_the_field_never_the_value(
    text: str, named: str
) -> None:
    with pytest.raises(ConfigError, match=named) as error:
        Credentials.from_secret(text)

    assert "p4ss" not in str(error.value)


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://example.service-now.com/", True),
        ("http://127.0.0.1:5000/_local/servicenow", True),
        ("http://example.service-now.com", False),
        ("example.service-now.com", False),
        ("https://example.service-now.com/?x=1", False),
    ],
)
def test_given_an_instance_url_then_https_only_except_the_local_standin(url: str, ok: bool) -> None:
    if ok:
        assert not instance_url(url).endswith("/")
    else:
        with pytest.raises(ConfigError, match="SERVICENOW_INSTANCE_URL"):
            instance_url(url)
