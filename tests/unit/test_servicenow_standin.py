"""The contract test of the local ServiceNow stand-in (budget_sync_local.servicenow): every shape
the incident client relies on, as ServiceNow's REST API documentation gives it (Table API:
POST 201 with Location and ``{"result": ...}``, GET with ``sysparm_query``, PATCH with journal
fields; errors as ``{"error": {"message", "detail"}, "status": "failure"}``; OAuth client
credentials at ``/oauth_token.do``). Runs in-process through werkzeug's test client: no socket."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
from werkzeug.test import Client, TestResponse

from budget_sync_local.servicenow import PREFIX, StandIn

TABLE = "/api/now/table/incident"


@pytest.fixture
def instance() -> StandIn:
    return StandIn()


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
def client(instance: StandIn) -> Client:
    return Client(instance.wsgi())


@pytest.fixture
def auth(instance: StandIn) -> dict[str, str]:
    return _basic(instance.user, instance.password)


def _create(client: Client, auth: dict[str, str], **fields: Any) -> TestResponse:
    body = {"short_description": "Budget exceeded", "correlation_id": "111111111111/B/2026-12", **fields}
    return client.post(TABLE, json=body, headers=auth)


def _assert_error(response: TestResponse, status: int) -> dict[str, Any]:
    assert response.status_code == status
    body = response.get_json()
    assert body["status"] == "failure"
    assert set(body["error"]) == {"message", "detail"}
    assert all(isinstance(v, str) and v for v in body["error"].values())
    return body["error"]


def test_given_basic_auth_when_post_incident_then_201_with_location_and_result(
    client: Client, auth: dict[str, str]
) -> None:
    response = _create(client, auth, urgency=2, impact="2", priority="1", no_such_field="x")

    assert response.status_code == 201
    record = response.get_json()["result"]
    assert re.fullmatch(r"[0-9a-f]{32}", record["sys_id"])
    assert re.fullmatch(r"INC\d{7}", record["number"])
    assert response.headers["Location"].endswith(f"{TABLE}/{record['sys_id']}")
    assert (record["state"], record["active"]) == ("1", "true")
    assert all(isinstance(v, str) for v in record.values())  # the Table API's values are strings
    assert (record["urgency"], record["impact"]) == ("2", "2")
    assert record["priority"] == "3"  # derived from impact 2 and urgency 2, never the one sent
    assert "no_such_field" not in record  # ignored, as ServiceNow ignores unknown fields


def test_given_two_incidents_when_get_with_sysparm_query_then_only_the_matching_one(
    client: Client, auth: dict[str, str]
) -> None:
    first = _create(client, auth).get_json()["result"]
    _create(client, auth, correlation_id="222222222222/B/2026-12")

    response = client.get(
        TABLE,
        query_string={
            "sysparm_query": "correlation_id=111111111111/B/2026-12^active=true",
            "sysparm_limit": "2",
        },
        headers=auth,
    )

    assert response.status_code == 200
    assert [r["sys_id"] for r in response.get_json()["result"]] == [first["sys_id"]]
    fields = client.get(TABLE, query_string={"sysparm_fields": "sys_id,number"}, headers=auth).get_json()
    assert all(set(r) == {"sys_id", "number"} for r in fields["result"])


def test_given_an_unmodelled_query_operator_when_get_then_400_rather_than_a_guess(
    client: Client, auth: dict[str, str]
) -> None:
    response = client.get(TABLE, query_string={"sysparm_query": "numberSTARTSWITHINC"}, headers=auth)

    assert "numberSTARTSWITHINC" in _assert_error(response, 400)["detail"]


def test_given_an_incident_when_patch_work_notes_then_journal_appends_and_field_reads_empty(
    client: Client, auth: dict[str, str], instance: StandIn
) -> None:
    sys_id = _create(client, auth).get_json()["result"]["sys_id"]

    for note in ("first alert", "second alert"):
        response = client.patch(f"{TABLE}/{sys_id}", json={"work_notes": note, "urgency": "1"}, headers=auth)
        assert response.status_code == 200

    record = response.get_json()["result"]
    assert record["work_notes"] == ""
    assert record["urgency"] == "1"
    assert [(e.element, e.value) for e in instance.journal[sys_id]] == [
        ("work_notes", "first alert"),
        ("work_notes", "second alert"),
    ]


def test_given_resolution_without_close_fields_when_patch_then_403_data_policy_and_nothing_changes(
    client: Client, auth: dict[str, str], instance: StandIn
) -> None:
    sys_id = _create(client, auth).get_json()["result"]["sys_id"]

    refused = client.patch(f"{TABLE}/{sys_id}", json={"state": "6"}, headers=auth)

    error = _assert_error(refused, 403)
    assert "Resolution code" in error["detail"]
    assert "Resolution notes" in error["detail"]
    assert instance.incidents[sys_id]["state"] == "1"


def test_given_resolution_with_close_fields_when_patch_then_resolved_and_still_active(
    client: Client, auth: dict[str, str]
) -> None:
    sys_id = _create(client, auth).get_json()["result"]["sys_id"]

    response = client.patch(
        f"{TABLE}/{sys_id}",
        json={"state": "6", "close_code": "Resolved by caller", "close_notes": "spend back under"},
        headers=auth,
    )

    record = response.get_json()["result"]
    assert (record["state"], record["active"], record["close_code"]) == ("6", "true", "Resolved by caller")
    assert record["resolved_at"]


def test_given_no_such_record_when_get_or_patch_then_404(client: Client, auth: dict[str, str]) -> None:
    for response in (
        client.get(f"{TABLE}/{'0' * 32}", headers=auth),
        client.patch(f"{TABLE}/{'0' * 32}", json={"work_notes": "x"}, headers=auth),
    ):
        assert _assert_error(response, 404)["message"] == "No Record found"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        _basic("budget-sync", "wrong"),
        {"Authorization": "Bearer not-issued"},
        {"Authorization": "Basic %%%"},
    ],
)
def test_given_a_bad_credential_when_any_table_request_then_401(
    client: Client, headers: dict[str, str]
) -> None:
    _assert_error(client.get(TABLE, headers=headers), 401)


def test_given_client_credentials_when_token_then_bearer_works(client: Client, instance: StandIn) -> None:
    response = client.post(
        "/oauth_token.do",
        data={
            "grant_type": "client_credentials",
            "client_id": instance.client_id,
            "client_secret": instance.client_secret,
        },
    )

    assert response.status_code == 200
    token = response.get_json()
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] > 0
    assert client.get(TABLE, headers={"Authorization": f"Bearer {token['access_token']}"}).status_code == 200


def test_given_a_wrong_client_secret_when_token_then_401_oauth_error(
    client: Client, instance: StandIn
) -> None:
    response = client.post(
        "/oauth_token.do",
        data={"grant_type": "client_credentials", "client_id": instance.client_id, "client_secret": "no"},
    )

    assert response.status_code == 401
    assert response.get_json() == {"error_description": "access_denied", "error": "server_error"}


def test_given_an_outage_when_requests_then_429_with_retry_after_then_5xx_then_recovered(
    client: Client, auth: dict[str, str], instance: StandIn
) -> None:
    instance.fail_next(1, 429, retry_after=7)
    instance.fail_next(1, 503)

    limited = _create(client, auth)
    assert limited.headers["Retry-After"] == "7"
    _assert_error(limited, 429)
    _assert_error(_create(client, auth), 503)
    assert _create(client, auth).status_code == 201
    assert len(instance.incidents) == 1


def test_given_a_user_without_write_role_when_post_then_403(
    client: Client, auth: dict[str, str], instance: StandIn
) -> None:
    instance.deny_writes = True

    _assert_error(_create(client, auth), 403)
    assert instance.incidents == {}


def test_given_a_body_that_is_not_an_object_when_post_then_400(client: Client, auth: dict[str, str]) -> None:
    _assert_error(client.post(TABLE, data="[1]", headers=auth, content_type="application/json"), 400)


def test_given_make_locals_route_when_prefixed_path_then_standin_else_the_aws_app(
    instance: StandIn, auth: dict[str, str]
) -> None:
    def aws(environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"aws"]

    client = Client(instance.with_route(aws))

    assert client.post(PREFIX + TABLE, json={"short_description": "x"}, headers=auth).status_code == 201
    assert client.get("/", headers=auth).get_data() == b"aws"
    created = next(iter(instance.incidents.values()))
    assert created["short_description"] == "x"
