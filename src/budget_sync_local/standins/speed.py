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
    """moto's TransactWriteItems deep-copies a table (items and stream records) for every
    item of the transaction, as a rollback snapshot: a 100-item transaction on a table of
    a thousand accounts copies it a hundred times. The same snapshot, taken once per table
    per transaction, gives the same rollback. Its stream records are not copied: a record
    is never changed once written, and the snapshot's list of them (copied) still ends
    where the table was before the transaction, so a rollback still drops the records of a
    cancelled transaction."""
    lock = threading.Lock()

    def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        snapshots: dict[int, Table] = {}

        def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
            if not isinstance(value, Table):
                return copy.deepcopy(value, memo)
            if id(value) not in snapshots:
                memo = {} if memo is None else memo
                shard = getattr(value, "stream_shard", None)
                for record in shard.items if shard is not None else ():
                    memo[id(record)] = record  # a stream record never changes once written: kept, not copied
                snapshots[id(value)] = copy.deepcopy(value, memo)
            return snapshots[id(value)]

        with lock:
            saved = dynamodb_models.__dict__["copy"]
            setattr(dynamodb_models, "copy", types.SimpleNamespace(deepcopy=deepcopy))  # noqa: B010
            try:
                original(self, transact_items)
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
