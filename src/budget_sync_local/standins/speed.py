"""Speed-ups of moto for organisations of thousands of accounts: same behaviour, less CPU."""

from __future__ import annotations

import copy
import json
import threading
import types
from collections.abc import Callable
from typing import Any

from moto.core.base_backend import BackendDict
from moto.core.serialize import DEFAULT_ALIAS_PROVIDERS
from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser, Node  # type: ignore[attr-defined]


def _json_first(original: Callable[[str], dict[str, Any]]) -> Callable[[str], dict[str, Any]]:
    """moto parses every template with PyYAML's pure-Python loader (~0.1 s for the spoke
    template); a JSON body is parsed with the json module first (same result: JSON is YAML)."""

    def parse_template(template: str) -> dict[str, Any]:
        if template.lstrip().startswith("{"):
            try:
                parsed: dict[str, Any] = json.loads(template)
                return parsed
            except ValueError:
                pass
        return original(template)

    return parse_template


def _snapshot_each_table_once(original: Callable[..., None]) -> Callable[..., None]:
    """A cancelled TransactWriteItems is rolled back in place, each table snapshotted once.

    moto's TransactWriteItems deep-copies a table (items and stream shard) for every item
    of the transaction, and a rollback puts that copy in the table's place: a new table
    object with a new stream shard, so every shard iterator opened before it (the local
    pipeline's stream pollers) reads nothing afterwards, and a 100-item transaction on a
    table of a thousand accounts copies it a hundred times. Here moto's copy is the table
    itself, and the stand-in keeps, once per table per transaction, its items (copied) and
    the length of its stream shard; a rollback restores the items in the same table and
    drops the stream records the cancelled transaction wrote (AWS writes none for it), so
    the table, its shard and the iterators on it stay the same objects and keep working."""
    lock = threading.Lock()

    def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        saved_state: dict[int, tuple[Table, Any, int]] = {}

        def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
            if not isinstance(value, Table):
                return copy.deepcopy(value, memo)
            if id(value) not in saved_state:
                shard = getattr(value, "stream_shard", None)
                length = len(shard.items) if shard is not None else 0
                saved_state[id(value)] = (value, copy.deepcopy(value.items), length)
            return value  # moto's "snapshot" is the table: a rollback puts the same object back

        with lock:
            saved = dynamodb_models.__dict__["copy"]
            setattr(dynamodb_models, "copy", types.SimpleNamespace(deepcopy=deepcopy))  # noqa: B010
            try:
                original(self, transact_items)
            except Exception:
                for table, items, length in saved_state.values():
                    table.items.clear()
                    table.items.update(items)
                    shard = getattr(table, "stream_shard", None)
                    if shard is not None:
                        del shard.items[length:]
                raise
            finally:
                setattr(dynamodb_models, "copy", saved)  # noqa: B010

    return transact_write_items


#: Access key -> account, filled as keys are issued (AssumeRole) or first looked up.
_KEY_ACCOUNTS: dict[str, str] = {}


def _remembered_account_lookup(original: Callable[[str], str]) -> Callable[[str], str]:
    """moto finds the account of a request's access key by scanning every account's keys,
    on every request: with a thousand accounts that scan is most of a request's time. An
    access key never moves to another account, so its account is recorded when AssumeRole
    issues it, or when a scan first finds it. A key no account holds (the management
    account's own, which moto serves from its default account) is recorded as such too:
    moto gives every key it issues (AssumeRole, CreateAccessKey) a fresh random id, so a
    key unknown once stays unknown."""

    def get_account_id_from(access_key: str) -> str:
        account = _KEY_ACCOUNTS.get(access_key)
        if account is None:
            account = original(access_key)
            _KEY_ACCOUNTS[access_key] = account
        return account

    return get_account_id_from


def _account_backend_without_lock(original: Callable[[Any, str], None]) -> Callable[[Any, str], None]:
    """moto looks up an account's backend of a service (``BackendDict[account]``) many times
    per request, each time under one process-wide lock, copying the dict's keys into a list
    and comparing the dict with every registered one: under concurrent requests the request
    threads queue on that lock. An account whose backend exists (and whose dict is
    registered, which moto's reset undoes together with the backends) is answered without
    the lock; the first lookup of an account still creates its backend under moto's lock."""

    def create_account_specific_backend(self: Any, account_id: str) -> None:
        if dict.__contains__(self, account_id) and any(d is self for d in BackendDict._instances):  # type: ignore[misc]
            return
        original(self, account_id)

    return create_account_specific_backend


#: (id of the shape, key) -> (the shape, the keys moto tries for it on a dict)
_POSSIBLE_KEYS: dict[tuple[int, str], tuple[Any, tuple[str, ...]]] = {}
_POSSIBLE_KEYS_KEPT = 50_000


def _possible_keys_remembered(original: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """moto serialises every response member by asking six alias providers which keys to
    try on the object (new provider objects, ``hasattr`` and ``str.lower`` each time): for a
    Scan or a stream's GetRecords that is millions of calls, most of a loaded ``make local``'s
    CPU. On a plain ``dict`` (DynamoDB's items and records) the providers' answer depends only
    on the member's shape and key (a dict has no ``Meta`` and its class is ``dict``), so it is
    computed once per shape and key; the keys are then tried in the same order as before."""

    def get_possible_keys(self: Any, context: Any) -> Any:
        if type(context.obj) is not dict or self.alias_providers is not DEFAULT_ALIAS_PROVIDERS:
            return original(self, context)
        shape = context.shape
        cache_key = (id(shape), context.key)
        hit = _POSSIBLE_KEYS.get(cache_key)
        if hit is None or hit[0] is not shape:
            if len(_POSSIBLE_KEYS) >= _POSSIBLE_KEYS_KEPT:
                _POSSIBLE_KEYS.clear()
            hit = _POSSIBLE_KEYS[cache_key] = (shape, tuple(original(self, context)))
        return iter(hit[1])

    return get_possible_keys


#: UpdateExpression text -> moto's parse of it (an AST that nobody changes: see below)
_UPDATE_EXPRESSIONS: dict[str, Any] = {}
_UPDATE_EXPRESSIONS_KEPT = 2_000


def _update_expression_parsed_once(original: Callable[[str], Any]) -> Callable[[type, str], Any]:
    """moto parses an UpdateExpression twice per UpdateItem (the response layer, then the
    backend), with a pure-Python tokenizer and parser; ``budgetctl set`` and the functions
    send the same few expression texts thousands of times (the values are placeholders). The
    AST depends only on the text and is only read: the response layer lists its placeholders
    and moto's ``Validator`` deep-copies it before substituting anything. So a text's AST is
    parsed once and the same object returned; a text that fails to parse still fails each time
    with moto's own error (failures are not remembered)."""

    def make(cls: type, expression: str) -> Any:
        hit = _UPDATE_EXPRESSIONS.get(expression)
        if hit is None:
            hit = original(expression)
            if len(_UPDATE_EXPRESSIONS) >= _UPDATE_EXPRESSIONS_KEPT:
                _UPDATE_EXPRESSIONS.clear()
            _UPDATE_EXPRESSIONS[expression] = hit
        return hit

    return make


def _node_types_once_per_traversal(original: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """moto validates an UpdateExpression with ten depth-first traversals of its AST, and at
    every node each traversal rebuilds its processing map (a dict of node class -> method)
    to get the node classes it processes. The map is fixed per traverser, so here it is
    built once per traversal; the nodes are visited, processed and replaced in the same
    order as moto's ``DepthFirstTraverser.traverse_node_recursively`` does. A traverser
    class that overrides that traversal keeps moto's own."""

    def traverse(self: DepthFirstTraverser, node: Any) -> Any:
        cls = type(self)
        if (
            cls.traverse_node_recursively is not DepthFirstTraverser.traverse_node_recursively
            or cls.nodes_to_be_processed is not DepthFirstTraverser.nodes_to_be_processed
        ):
            return original(self, node)
        types_ = self.nodes_to_be_processed()

        def visit(node: Any, child_id: int) -> Any:
            if isinstance(node, Node):
                parent_node = node.parent
                if node.children is not None:
                    for i, child_node in enumerate(node.children):
                        self.pre_processing_of_child(node, i)
                        visit(child_node, i)
                if isinstance(node, types_):
                    node = self.process(node)
                    node.parent = parent_node
                    if parent_node:
                        parent_node.children[child_id] = node
            return node

        return visit(node, -1)

    return traverse
