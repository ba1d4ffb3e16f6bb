"""Speed-ups of moto for organisations of thousands of accounts: same behaviour, less CPU."""

from __future__ import annotations

import copy
import json
import threading
import types
from collections.abc import Callable
from typing import Any

from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table


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
