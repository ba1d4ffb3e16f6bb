"""`make local`'s endpoint under load: the speed-ups of moto (budget_sync_local.server's
dispatcher, standins.speed) answer as moto does, with a fraction of its work per request."""

from __future__ import annotations

import copy
import http.client
import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core import serialize
from moto.dynamodb import comparisons
from moto.dynamodb.parsing import ast_nodes, expressions, validators  # type: ignore[attr-defined]
from werkzeug.serving import BaseWSGIServer

from budget_sync_local import server
from budget_sync_local.standins import installed
from budget_sync_local.standins.speed import _ast_copy
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
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, BaseWSGIServer]]:
    """moto's server as `make local` binds it, with a table of varied items: its endpoint and
    the server itself."""
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
            yield f"http://127.0.0.1:{port}", bound
        finally:
            bound.shutdown()
            bound.server_close()


@pytest.fixture
def endpoint(served: tuple[str, BaseWSGIServer]) -> str:
    return served[0]


def _count_connections(bound: BaseWSGIServer, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The connections the server accepts from now on."""
    accepted: list[object] = []
    original = bound.process_request

    def counted(request: Any, client_address: Any) -> None:
        accepted.append(client_address)
        original(request, client_address)

    monkeypatch.setattr(bound, "process_request", counted)
    return accepted


def test_given_the_endpoint_when_a_client_sends_requests_then_its_connection_is_kept_between_them(
    served: tuple[str, BaseWSGIServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the endpoint, its accepted connections counted, and one AWS client
    endpoint, bound = served
    accepted = _count_connections(bound, monkeypatch)
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
    # WHEN the client sends five requests, one of them refused
    for _ in range(4):
        assert len(dynamodb.scan(TableName="t")["Items"]) == len(ITEMS)
    with pytest.raises(dynamodb.exceptions.ResourceNotFoundException):
        dynamodb.scan(TableName="missing")
    # THEN they all travelled on one connection (HTTP/1.1 keep-alive, as AWS's endpoints;
    # werkzeug's server closes each connection, so the SDK opened one per request)
    assert len(accepted) == 1


def test_given_a_kept_connection_then_every_answer_carries_its_length_and_close_is_honoured(
    served: tuple[str, BaseWSGIServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the endpoint, its accepted connections counted, and one raw HTTP/1.1 connection
    endpoint, bound = served
    accepted = _count_connections(bound, monkeypatch)
    connection = http.client.HTTPConnection(endpoint.removeprefix("http://"), timeout=10)
    scan = {"X-Amz-Target": "DynamoDB_20120810.Scan", "Content-Type": "application/x-amz-json-1.0"}
    scan["Authorization"] = "AWS4-HMAC-SHA256 Credential=local/20261202/us-east-1/dynamodb/aws4_request"
    answers = []
    # WHEN it sends a good request, a refused one, one to no service, and one asking to close
    for body, headers in (
        (b'{"TableName": "t"}', scan),
        (b'{"TableName": "missing"}', scan),
        (b"", {}),
        (b'{"TableName": "t"}', {**scan, "Connection": "close"}),
    ):
        connection.request("POST" if body else "GET", "/", body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        answers.append(
            (response.status, response.getheader("Content-Length"), len(data), response.will_close)
        )
    # THEN each answer said its length (a client waits for the rest of an answer without
    # one), the connection stayed open until the client asked to close it, and then closed
    assert [(length, size) for _, length, size, _ in answers] == [
        (str(size), size) for _, _, size, _ in answers
    ]
    assert [status for status, *_ in answers][:2] == [200, 400]
    assert [will_close for *_, will_close in answers] == [False, False, False, True]
    assert len(accepted) == 1
    assert connection.sock is None  # http.client closed it, as the answer said


def test_given_a_kept_connection_when_the_server_closes_then_the_connection_ends_at_once(
    served: tuple[str, BaseWSGIServer],
) -> None:
    # GIVEN a connection kept open after its first answer
    endpoint, bound = served
    host, port = endpoint.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    connection.request("GET", "/")
    response = connection.getresponse()
    assert response.status == 200
    assert response.read()
    assert not response.will_close
    assert connection.sock is not None
    # WHEN the server is stopped as `make local` stops it
    bound.shutdown()
    bound.server_close()
    # THEN the server closes the connection at once (no thread waits on it; recv times out otherwise)
    assert connection.sock.recv(1) == b""
    connection.close()


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
        answers.append(
            dynamodb.update_item(
                TableName="t",
                Key={"AccountId": {"S": f"{100000000000 + n % 3:012d}"}},
                UpdateExpression="SET #k = :amount",
                ConditionExpression="attribute_exists(AccountId) AND (#k <> :never OR attribute_not_exists(#k))",
                ExpressionAttributeNames={"#k": "BudgetValue"},
                ExpressionAttributeValues={":amount": {"N": str(700 + n)}, ":never": {"N": "-1"}},
                ReturnValues="ALL_NEW",
            )["Attributes"]
        )
    # refused: a path twice, a key attribute (also by a text that passed above with other names),
    # a condition that does not hold, a condition that cannot be read
    for bad, names, condition in (
        ("SET #v = :amount, #v = :amount", {"#v": "BudgetValue"}, None),
        ("SET AccountId = :amount", {}, None),
        ("SET #k = :amount", {"#k": "AccountId"}, None),
        ("SET #k = :amount", {"#k": "BudgetValue"}, "#k = :amount"),
        ("SET #k = :amount", {"#k": "BudgetValue"}, "#k === :amount"),
    ):
        with pytest.raises(dynamodb.exceptions.ClientError) as refused:
            dynamodb.update_item(
                TableName="t",
                Key={"AccountId": {"S": "100000000000"}},
                UpdateExpression=bad,
                **({"ExpressionAttributeNames": names} if names else {}),
                ExpressionAttributeValues={":amount": {"N": "1"}},
                **({"ConditionExpression": condition} if condition else {}),
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
    # GIVEN moto's structural checks of an UpdateExpression, and its ConditionExpression lexer, counted
    checked: list[int] = []
    original_check = validators.ActionCountValidator.verify_action_counts

    def counted_check(self: Any, node: Any) -> Any:
        checked.append(1)
        return original_check(self, node)

    monkeypatch.setattr(validators.ActionCountValidator, "verify_action_counts", counted_check)
    lexed: list[str] = []
    original_lex = comparisons.ConditionExpressionParser._lex_condition_expression

    def counted_lex(self: Any) -> Any:
        lexed.append(self.condition_expression)
        return original_lex(self)

    monkeypatch.setattr(comparisons.ConditionExpressionParser, "_lex_condition_expression", counted_lex)
    # GIVEN moto's answers to the updates without the stand-ins (the table is then put back)
    plain = _updates_over_http(endpoint)
    plain_items = _scan_over_http(endpoint)
    plain_maps, plain_checks, plain_lexes = len(maps), len(checked), len(lexed)
    table = boto3.resource("dynamodb", region_name="us-east-1").Table("t")
    for item in ITEMS:
        table.put_item(Item=item)
    parsed.clear()
    maps.clear()
    checked.clear()
    lexed.clear()
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
    # THEN the structural checks ran for the first validation of each text with its names (and
    # for every refused one), where moto runs them at every node of every validation
    assert 0 < len(checked) < plain_checks / 4, (len(checked), plain_checks)
    # THEN each condition text that can be lexed was lexed once; the one that cannot, each time
    assert sorted(lexed) == sorted(
        ["attribute_exists(AccountId) AND (#k <> :never OR attribute_not_exists(#k))", "#k = :amount"]
        + ["#k === :amount"] * lexed.count("#k === :amount")
    )
    assert plain_lexes > len(lexed)


def _counting(traverser: type, maps: list[int]) -> Any:
    original = traverser.__dict__["_processing_map"]

    def counted(self: Any) -> Any:
        maps.append(1)
        return original(self)

    return counted


def test_given_a_parsed_update_expression_then_the_stand_ins_copy_of_it_is_deepcopy_s() -> None:
    # GIVEN an UpdateExpression's AST as moto parses it
    ast = expressions.UpdateExpressionParser.make(
        "SET #a = :a, b.c[1] = list_append(if_not_exists(d, :e), :f) REMOVE g[2], #h ADD i :j DELETE k :l"
    )

    # WHEN the stand-in copies it, and deepcopy does
    copied, deep = _ast_copy(ast), copy.deepcopy(ast)

    # THEN both copies are the same tree (classes, attributes, parents), sharing no node with the AST
    assert _shape(copied) == _shape(deep) == _shape(ast)
    assert not {id(n) for n in _nodes(copied)} & {id(n) for n in _nodes(ast)}


def _nodes(node: Any) -> list[Any]:
    found = [node]
    for child in node.children or []:
        if isinstance(child, ast_nodes.Node):
            found += _nodes(child)
    return found


def _shape(node: Any, parent: Any = None) -> Any:
    """A node as comparable data: its class, attributes, children, and whether its parent is
    the node it hangs from."""
    if not isinstance(node, ast_nodes.Node):
        return node
    attributes = {k: v for k, v in vars(node).items() if k not in ("children", "parent")}
    children = [_shape(c, node) for c in node.children or []]
    return (type(node).__name__, attributes, children, node.parent is parent)


def _stream_table(name: str, view: str) -> Any:
    table = boto3.resource("dynamodb", region_name="us-east-1").create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "AccountId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "AccountId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": view},
    )
    for item in ITEMS[:5]:
        table.put_item(
            Item={**item, "Blob": b"\x00\xffbytes", "Blobs": {b"a", b"b"}, "Text": '\u00e9"\n', "Empty": ""}
        )
        table.update_item(
            Key={"AccountId": item["AccountId"]},
            UpdateExpression="SET BudgetValue = :v",
            ExpressionAttributeValues={":v": Decimal(7)},
        )
    table.delete_item(Key={"AccountId": ITEMS[0]["AccountId"]})
    return table


def _stream_pages(monkeypatch: pytest.MonkeyPatch, tables: list[str]) -> list[tuple[int, list[str], str]]:
    """Every GetRecords answer of each table's stream from TRIM_HORIZON (a page, then the empty
    one after it), as moto sends it: status, header names, and the body without the next
    iterator (a random id)."""
    from moto.core.responses import BaseResponse

    answers: list[tuple[int, list[str], str]] = []
    original = BaseResponse.call_action

    def call_action(self: Any) -> Any:
        status, headers, body = original(self)
        if self._get_action() == "GetRecords":
            answers.append((status, sorted(headers), str(body).split(', "NextShardIterator"')[0]))
        return status, headers, body

    monkeypatch.setattr(BaseResponse, "call_action", call_action)
    streams = boto3.client("dynamodbstreams", region_name="us-east-1")
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    for name in tables:
        arn = dynamodb.describe_table(TableName=name)["Table"]["LatestStreamArn"]
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
        page = streams.get_records(ShardIterator=iterator["ShardIterator"], Limit=1000)
        assert page["Records"]
        streams.get_records(ShardIterator=page["NextShardIterator"])
    monkeypatch.setattr(BaseResponse, "call_action", original)
    return answers


def test_given_the_stand_ins_when_a_stream_is_read_then_get_records_is_moto_s_answer_without_its_serialiser(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "local")
    with mock_aws():
        # GIVEN streams of every view with inserts, updates and a delete of items of every type
        views = ["NEW_AND_OLD_IMAGES", "NEW_IMAGE", "OLD_IMAGE", "KEYS_ONLY"]
        for view in views:
            _stream_table(view.lower(), view)
        tables = [view.lower() for view in views]
        # GIVEN moto's serialiser, counted: the members it was asked for
        members: list[str] = []
        original = serialize.XFormedAttributePicker.get_possible_keys

        def counted(self: Any, context: Any) -> Any:
            members.append(context.key)
            return original(self, context)

        monkeypatch.setattr(serialize.XFormedAttributePicker, "get_possible_keys", counted)
        # GIVEN the answers as moto serialises them
        plain = _stream_pages(monkeypatch, tables)
        plain_members = set(members)
        members.clear()
        # WHEN the same records are read with the stand-ins
        with installed():
            sped = _stream_pages(monkeypatch, tables)
    # THEN every answer is byte for byte moto's own (status, headers, body)
    assert sped == plain
    assert len(plain) == 2 * len(tables)
    # THEN moto's serialiser wrote none of the records' members (it writes each of them without)
    record_members = {"eventID", "dynamodb", "Keys", "NewImage", "OldImage", "SequenceNumber", "S", "N", "B"}
    assert record_members <= plain_members
    assert not record_members & set(members), sorted(record_members & set(members))
