"""Speed-ups of moto for organisations of thousands of accounts: same behaviour, less CPU."""

from __future__ import annotations

import base64
import copy
import json
import threading
import types
from collections import deque
from collections.abc import Callable
from enum import Enum
from typing import Any

from botocore.model import Shape
from moto import settings
from moto.core.base_backend import BackendDict
from moto.core.responses import ActionContext, ActionResult
from moto.core.serialize import DEFAULT_ALIAS_PROVIDERS, JSONSerializer, TimestampSerializer
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
    to get the node classes it processes, and again for each node it processes. The map is
    fixed per traverser, so here it is built once per traversal; whether a class is a node,
    and which processor (if any) takes it, is answered once per class and traversal (moto's
    node classes are ABCs, whose isinstance is slow); the hook called before each child is
    skipped for the traversers that do not override it (it does nothing then). The nodes are
    visited, processed and replaced in the same order as moto's
    ``DepthFirstTraverser.traverse_node_recursively`` does. A traverser class that overrides
    that traversal, ``nodes_to_be_processed`` or ``process`` keeps moto's own."""

    def traverse(self: DepthFirstTraverser, node: Any) -> Any:
        cls = type(self)
        if _own_traversal(cls):
            return original(self, node)
        overridden = cls.pre_processing_of_child is not DepthFirstTraverser.pre_processing_of_child
        walk = _Walk(
            list(self._processing_map().items()), self.pre_processing_of_child if overridden else None
        )
        return walk.visit(node, -1)

    return traverse


class _Walk:
    """One traversal: the traverser's processors, its hook before each child (None: moto's,
    which does nothing), and per node class None (not a node), False (a node no processor
    takes) or its processor."""

    def __init__(self, processing: list[tuple[type, Any]], pre: Callable[[Any, int], None] | None) -> None:
        self.processing = processing
        self.pre = pre
        self.kinds: dict[type, Any] = {}

    def visit(self, node: Any, child_id: int) -> Any:
        node_class = type(node)
        kinds = self.kinds
        if node_class not in kinds:
            kinds[node_class] = _processor_for(node_class, self.processing)
        processor = kinds[node_class]
        if processor is None:
            return node
        parent_node = node.parent
        children = node.children
        if children is not None:
            pre = self.pre
            for i, child_node in enumerate(children):
                if pre is not None:
                    pre(node, i)
                self.visit(child_node, i)
        if processor is not False:
            node = processor(node)
            node.parent = parent_node
            if parent_node:
                parent_node.children[child_id] = node
        return node


def _own_traversal(cls: type) -> bool:
    """Does this traverser class override how moto's DepthFirstTraverser traverses?"""
    base = DepthFirstTraverser
    return any(
        getattr(cls, name) is not getattr(base, name)
        for name in ("traverse_node_recursively", "nodes_to_be_processed", "process")
    )


def _processor_for(node_class: type, processing: list[tuple[type, Any]]) -> Any:
    """None: not a node; False: a node no processor takes; else the first processor whose class
    the node's is (moto's ``DepthFirstTraverser.process`` takes the first that matches)."""
    if not issubclass(node_class, Node):
        return None
    return next((processor for key, processor in processing if issubclass(node_class, key)), False)


class _NotPlain(Exception):
    """A value the direct serialisation does not cover: moto's serialiser answers instead."""


_TIMESTAMPS = TimestampSerializer(JSONSerializer.DEFAULT_TIMESTAMP_FORMAT)


def _base64(value: str | bytes) -> str:
    """moto's ``ResponseSerializer._base64``."""
    raw = value.encode(JSONSerializer.DEFAULT_ENCODING) if isinstance(value, str) else value
    return base64.b64encode(raw).strip().decode(JSONSerializer.DEFAULT_ENCODING)


def _plain(shape: Shape, value: Any) -> Any:
    """``value`` (plain dicts, lists and scalars) as moto's JSON serialiser writes it for
    ``shape``: structure members in the shape's order, None members left out, strings
    ``str``-ed, blobs in base64, timestamps as moto's epoch seconds (milliseconds truncated).
    Anything else (an object, a key the shape lacks, a member renamed on the wire, a type
    not listed here) raises _NotPlain."""
    write = _PLAIN.get(shape.type_name)
    if write is None:
        raise _NotPlain(shape.name)
    return write(shape, value)


def _plain_structure(shape: Any, value: Any) -> dict[str, Any]:
    members = shape.members
    if type(value) is not dict or shape.is_document_type or not value.keys() <= members.keys():
        raise _NotPlain(shape.name)
    out = {}
    for name, member in members.items():
        member_value = value.get(name)
        if member_value is not None:
            if "name" in member.serialization:
                raise _NotPlain(name)
            out[name] = _plain(member, member_value)
    return out


def _plain_map(shape: Any, value: Any) -> dict[str, Any]:
    if type(value) is not dict or "name" in shape.value.serialization:
        raise _NotPlain(shape.name)
    return {key: _plain(shape.value, item) for key, item in value.items()}


def _plain_list(shape: Any, value: Any) -> list[Any]:
    if type(value) is not list or "name" in shape.member.serialization or any(i is None for i in value):
        raise _NotPlain(shape.name)
    return [_plain(shape.member, item) for item in value]


def _plain_string(shape: Shape, value: Any) -> str:
    if isinstance(value, Enum):
        value = value.value
    if not isinstance(value, str):
        raise _NotPlain(shape.name)
    return value


def _plain_scalar(kind: type) -> Callable[[Shape, Any], Any]:
    def write(shape: Shape, value: Any) -> Any:
        if type(value) is not kind:
            raise _NotPlain(shape.name)
        return value

    return write


def _plain_blob(shape: Shape, value: Any) -> str:
    if not isinstance(value, str | bytes):
        raise _NotPlain(shape.name)
    return _base64(value)


def _plain_timestamp(shape: Shape, value: Any) -> Any:
    timestamp_format = shape.serialization.get("timestampFormat", JSONSerializer.DEFAULT_TIMESTAMP_FORMAT)
    return _TIMESTAMPS._convert_timestamp_to_str(value, timestamp_format)


_PLAIN: dict[str, Callable[[Any, Any], Any]] = {
    "structure": _plain_structure,
    "map": _plain_map,
    "list": _plain_list,
    "string": _plain_string,
    "integer": _plain_scalar(int),
    "long": _plain_scalar(int),
    "boolean": _plain_scalar(bool),
    "blob": _plain_blob,
    "timestamp": _plain_timestamp,
}


class _StreamRecords(ActionResult):
    """A GetRecords answer, its body written by ``_plain`` (moto's serialiser otherwise)."""

    def execute_result(self, context: ActionContext) -> Any:
        result, shape = self.result, context.operation_model.output_shape
        if (
            context.serializer_class is not JSONSerializer
            or settings.PRETTIFY_RESPONSES
            or getattr(context.response, "RESPONSE_KEY_PATH_TO_TRANSFORMER", None)
            or not isinstance(result, dict)
            or shape is None
        ):
            return super().execute_result(context)
        try:
            body = _plain(shape, result)
        except _NotPlain:
            return super().execute_result(context)
        # the status and headers as moto's serialiser makes them (on the answer without records)
        status, headers, _ = ActionResult({k: v for k, v in result.items() if k != "Records"}).execute_result(
            context
        )
        return status, headers, json.dumps(body)


def _stream_records_written_directly(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """moto serialises a stream's GetRecords answer member by member through its generic
    serialiser (an alias lookup, a dispatch and a path push per member of every attribute of
    every image): with ``make local``'s four stream pollers reading every record of two
    streams, that was the pipeline thread's largest single cost. The records are plain dicts
    of strings, numbers, booleans, bytes and a datetime, so the answer is written by
    ``_plain`` following the same output shape, with the same rules, to the same JSON text;
    an answer with anything else is left to moto's serialiser."""

    def get_records(self: Any) -> Any:
        answer = original(self)
        return _StreamRecords(answer.result) if type(answer) is ActionResult else answer

    return get_records


_SHARED = (str, int, float, bool, type(None))


def _ast_copy(value: Any, memo: dict[int, Any] | None = None) -> Any:
    """``copy.deepcopy`` for moto's expression ASTs, several times faster on them.

    moto's UpdateExpression validator deep-copies the parsed AST of every UpdateItem (and of
    every item of a TransactWriteItems) before substituting values into it; ``deepcopy`` goes
    through the pickle protocol for each of its hundreds of nodes. Here a ``Node`` (moto's AST
    classes define no copy hooks and no slots) is copied as ``deepcopy`` would copy it: a new
    instance of its class, registered in the memo before its attributes, whose attributes are
    copied the same way (nodes and lists by this function, str/int/float/bool/None shared as
    ``deepcopy`` shares them, anything else, e.g. a DynamoType, by ``copy.deepcopy`` with the same
    memo). Anything that is not a Node is ``copy.deepcopy``'s."""
    if memo is None:
        memo = {}
    if not isinstance(value, Node):
        return copy.deepcopy(value, memo)
    return _copy_node(value, memo)


def _copy_node(node: Any, memo: dict[int, Any]) -> Any:
    done = memo.get(id(node))
    if done is not None:
        return done
    cls: Any = type(node)
    new = cls.__new__(cls)
    memo[id(node)] = new
    state = new.__dict__
    for name, value in node.__dict__.items():
        state[name] = _copy_value(value, memo)
    return new


def _copy_value(value: Any, memo: dict[int, Any]) -> Any:
    if type(value) in _SHARED:
        return value
    if isinstance(value, Node):
        return _copy_node(value, memo)
    if type(value) is list:
        done = memo.get(id(value))
        if done is not None:
            return done
        new: list[Any] = []
        memo[id(value)] = new
        new.extend(_copy_value(item, memo) for item in value)
        return new
    return copy.deepcopy(value, memo)


#: id of a parsed UpdateExpression AST -> (that AST, the (attribute names, table keys) with which
#: it passed moto's three structural checks)
_STRUCTURE_CHECKED: dict[int, tuple[Any, set[tuple[Any, ...]]]] = {}
_STRUCTURE_CHECKED_KEPT = 2_000
#: moto's structural checks of an UpdateExpression: the first three of its validator's processors
_STRUCTURAL = ("ActionCountValidator", "OverlappingPathsValidator", "UpdateHashRangeKeyValidator")


def _structure_checked_once(
    original_init: Callable[..., None], original_validate: Callable[[Any], Any]
) -> tuple[Callable[..., None], Callable[[Any], Any]]:
    """moto's UpdateExpression validator runs ten traversals of the AST per UpdateItem. The
    first three only check its structure and return every node unchanged: at most one ADD,
    REMOVE and SET clause (``ActionCountValidator``), no two actions on overlapping paths
    (``OverlappingPathsValidator``), no key attribute updated (``UpdateHashRangeKeyValidator``);
    they read nothing but the AST, the ExpressionAttributeNames and the table's key attributes,
    and the first two re-search the whole subtree at every node (quadratic in the number of
    actions: most of the validation of the status table's long SET). The same text gives the
    same AST object (``_update_expression_parsed_once``), so once a validation of an AST with
    given names and keys has passed, the same AST, names and keys pass those three again: they
    are skipped then, and the other seven run as in moto. A validation that fails is never
    remembered (moto raises its own error each time). The AST is held here, so its id is not
    reused while it is recorded. (__init__ wraps moto's to note the AST it was given.)"""

    def __init__(self: Any, expression: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, expression, *args, **kwargs)
        self._parsed_expression = expression

    def validate(self: Any) -> Any:
        expression = self.__dict__.get("_parsed_expression")
        processors = self.processors
        structural = len(_STRUCTURAL)
        if expression is None or [type(p).__name__ for p in processors[:structural]] != list(_STRUCTURAL):
            return original_validate(self)  # not moto's processors as known here
        key = (
            tuple(sorted((self.expression_attribute_names or {}).items())),
            tuple(self.table.table_key_attrs),
        )
        hit = _STRUCTURE_CHECKED.get(id(expression))
        if hit is not None and hit[0] is expression and key in hit[1]:
            node = self.node_to_validate
            for processor in processors[structural:]:
                node = processor.traverse(node)
            return node
        node = original_validate(self)
        if len(_STRUCTURE_CHECKED) >= _STRUCTURE_CHECKED_KEPT:
            _STRUCTURE_CHECKED.clear()
        if hit is None or hit[0] is not expression:
            hit = _STRUCTURE_CHECKED[id(expression)] = (expression, set())
        hit[1].add(key)
        return node

    return __init__, validate


#: ConditionExpression text -> its lexed tokens (nonterminal, kind, text, value)
_CONDITION_TOKENS: dict[str, tuple[tuple[str, str, str, str], ...]] = {}
_CONDITION_TOKENS_KEPT = 2_000


def _condition_lexed_once(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """moto lexes a ConditionExpression (and a FilterExpression) on every call, character run
    by character run, rebuilding its list of six regular expressions and slicing the rest of
    the text at each token; the status store, the history and ``budgetctl`` send the same few
    texts thousands of times. The tokens depend only on the text, so a text is lexed once;
    each call then gets new token nodes (fresh ``children`` lists, as moto makes them) in a new
    deque. A text that fails to lex fails each time with moto's own error (not remembered)."""

    def lex(self: Any) -> Any:
        text = self.condition_expression
        tokens = _CONDITION_TOKENS.get(text)
        if tokens is None:
            nodes = original(self)
            tokens = tuple((n.nonterminal, n.kind, n.text, n.value) for n in nodes)
            if any(n.children for n in nodes):
                return nodes  # not moto's lexer as known here (its tokens have no children)
            if len(_CONDITION_TOKENS) >= _CONDITION_TOKENS_KEPT:
                _CONDITION_TOKENS.clear()
            _CONDITION_TOKENS[text] = tokens
            return nodes
        node = self.Node
        return deque(node(nonterminal, kind, token, value, []) for nonterminal, kind, token, value in tokens)

    return lex
