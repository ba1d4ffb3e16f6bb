"""`make local`'s endpoint under load: the speed-ups of moto (budget_sync_local.server's
dispatcher, standins.speed) answer as moto does, with a fraction of its work per request."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core import serialize
from moto.dynamodb.parsing import ast_nodes, expressions  # type: ignore[attr-defined]

from budget_sync_local import server
from budget_sync_local.standins import installed
from tests.e2e.test_local_server import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.aws]

ITEMS = [
    {
        "AccountId": f"{100000000000 + i:012d}",
        "BudgetValue": Decimal(1000 + i) + Decimal("0.5"),
        "Alerts": {"Emails": ["a@example.com", "b@example.com"], "Thresholds": [Decimal(50), Decimal(90)]},
        "Tags": {"x", "y"},
        "Active": i % 2 == 0,
        "Note": None,
    }
    for i in range(20)
]


def _scan_over_http(endpoint: str) -> list[dict[str, Any]]:
    """The table's items as an AWS client reads them through the endpoint (raw JSON)."""
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
    items: list[dict[str, Any]] = dynamodb.scan(TableName="t")["Items"]
    return sorted(items, key=lambda i: json.dumps(i, sort_keys=True))


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto's server as `make local` binds it, with a table of varied items."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "local")
    with mock_aws():
        table = boto3.resource("dynamodb", region_name="us-east-1").create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "AccountId", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "AccountId", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        for item in ITEMS:
            table.put_item(Item=item)
        port = free_port()
        bound = server._bind("127.0.0.1", port)
        thread = threading.Thread(target=bound.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            bound.shutdown()
            bound.server_close()


def test_given_the_endpoint_when_requests_arrive_then_moto_lists_its_services_once_not_per_request(
    endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN moto's listing of its own services, counted
    from moto import backends

    listed = []
    original = backends.list_of_moto_modules

    def counted() -> Any:
        listed.append(1)
        return original()

    monkeypatch.setattr(backends, "list_of_moto_modules", counted)
    # WHEN ten requests of one service arrive
    for _ in range(10):
        assert len(_scan_over_http(endpoint)) == len(ITEMS)
    # THEN the dispatcher looked its host up once (moto itself does it on every request)
    assert len(listed) <= 1


def test_given_the_stand_ins_when_a_scan_is_served_then_the_response_is_moto_s_own_with_keys_looked_up_once(
    endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the items as moto serialises them without the stand-ins
    plain = _scan_over_http(endpoint)
    # GIVEN the alias providers' answers, counted
    asked = []
    original = serialize.XFormedAttributePicker.get_possible_keys

    def counted(self: Any, context: Any) -> Any:
        asked.append(context.key)
        return original(self, context)

    monkeypatch.setattr(serialize.XFormedAttributePicker, "get_possible_keys", counted)
    with installed():
        # WHEN the same items are served with the stand-ins, twice
        first = _scan_over_http(endpoint)
        before_second = len(asked)
        second = _scan_over_http(endpoint)
    # THEN the responses are byte for byte moto's own
    assert first == plain
    assert second == plain
    # THEN the second Scan asked moto's providers nothing new (every shape and key seen), where
    # moto asks them for every member of every item
    assert len(asked) - before_second < len(ITEMS)


def _updates_over_http(endpoint: str) -> list[dict[str, Any]]:
    """Ten UpdateItems as `budgetctl set` sends them (one expression text, new values), the
    item each returns (ALL_NEW) and one that moto refuses, as an AWS client reads them."""
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
    answers: list[dict[str, Any]] = []
    for n in range(10):
        answers.append(
            dynamodb.update_item(
                TableName="t",
                Key={"AccountId": {"S": f"{100000000000 + n % 3:012d}"}},
                UpdateExpression="SET #v = :amount, #by = :by, Alerts.Emails[0] = :e REMOVE #gone",
                ExpressionAttributeNames={"#v": "BudgetValue", "#by": "UpdatedBy", "#gone": "Note"},
                ExpressionAttributeValues={
                    ":amount": {"N": str(500 + n)},
                    ":by": {"S": f"op{n}"},
                    ":e": {"S": f"{n}@example.com"},
                },
                ReturnValues="ALL_NEW",
            )["Attributes"]
        )
    for bad in ("SET #v = :amount, #v = :amount", "SET AccountId = :amount"):
        with pytest.raises(dynamodb.exceptions.ClientError) as refused:
            dynamodb.update_item(
                TableName="t",
                Key={"AccountId": {"S": "100000000000"}},
                UpdateExpression=bad,
                ExpressionAttributeNames={"#v": "BudgetValue"},
                ExpressionAttributeValues={":amount": {"N": "1"}},
            )
        answers.append(refused.value.response["Error"])
    return answers


def test_given_the_stand_ins_when_update_items_are_served_then_moto_s_answers_with_each_expression_parsed_once(
    endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN moto's UpdateExpression parser and its traversers' processing maps, counted
    parsed: list[str] = []
    original_make = expressions.UpdateExpressionParser.make.__func__  # type: ignore[attr-defined]

    def counted_make(cls: Any, text: str) -> Any:
        parsed.append(text)
        return original_make(cls, text)

    monkeypatch.setattr(expressions.UpdateExpressionParser, "make", classmethod(counted_make))
    maps: list[int] = []
    for traverser in (ast_nodes.DepthFirstTraverser, *ast_nodes.DepthFirstTraverser.__subclasses__()):
        if "_processing_map" in traverser.__dict__:
            monkeypatch.setattr(traverser, "_processing_map", _counting(traverser, maps))
    # GIVEN moto's answers to the updates without the stand-ins (the table is then put back)
    plain = _updates_over_http(endpoint)
    plain_items = _scan_over_http(endpoint)
    plain_maps = len(maps)
    table = boto3.resource("dynamodb", region_name="us-east-1").Table("t")
    for item in ITEMS:
        table.put_item(Item=item)
    parsed.clear()
    maps.clear()
    with installed():
        # WHEN the same updates are served with the stand-ins
        sped = _updates_over_http(endpoint)
        sped_items = _scan_over_http(endpoint)
    # THEN the answers, refusals and items are moto's own
    assert sped == plain
    assert sped_items == plain_items
    # THEN each expression text was parsed once (moto parses it twice per UpdateItem)
    assert sorted(parsed) == sorted(set(parsed))
    # THEN the processing maps were built once per traversal, not once per node
    assert 0 < len(maps) < plain_maps / 2, (len(maps), plain_maps)


def _counting(traverser: type, maps: list[int]) -> Any:
    original = traverser.__dict__["_processing_map"]

    def counted(self: Any) -> Any:
        maps.append(1)
        return original(self)

    return counted
