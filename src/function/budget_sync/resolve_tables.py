"""The resolver's tables: the budgets, defaults and status tables behind one small Protocol.

``ResolverTables`` speaks the project's types (account and target ids, ``Decimal`` amounts,
``TableItem``, ``Status``, ``WriteOutcome``); ``DynamoDBResolverTables`` is its DynamoDB
adapter and the only place the resolver's DynamoDB errors are translated (errors.py
vocabulary): a refused condition is an answer (False, or a ``WriteOutcome``), never an
error; anything else from botocore is a ``TransientError`` naming the account or target and
what failed (Lambda retries the event). The resolver's decisions (resolve.py) are tested
on an in-memory fake of the Protocol (tests/fakes/resolver_tables.py), this adapter on moto
(tests/resolve) and on botocore's Stubber (tests/unit/test_resolve_tables.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from budget_sync.cost_basis import COST_FIELDS, CostBasis
from budget_sync.domain import ACCOUNT_ID_FIELD, BUDGET_VALUE_FIELD, format_amount
from budget_sync.effective_budget import (
    INHERITED_FROM_FIELD,
    INHERITED_VALUE_FIELD,
    TARGET_ID_FIELD,
    TableItem,
)
from budget_sync.errors import TransientError
from budget_sync.status import Status

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

#: The status table's Source of what the resolver records.
SOURCE = "resolver"
_deserialize = TypeDeserializer().deserialize
_serialize = TypeSerializer().serialize
_CONDITION_FAILED = "ConditionalCheckFailedException"


class WriteOutcome(StrEnum):
    """What became of an inherited write or removal."""

    DONE = "done"
    CONFLICT = "conflict"  # the item is not the one this run read: it wins
    STALE = "stale"  # the default this run read changed since: a newer run decides


class ResolverTables(Protocol):
    """What the resolver reads and writes in the management account's tables."""

    def defaults(self) -> list[dict[str, Any]]:
        """Every item of the defaults table, as stored (strongly consistent)."""
        ...

    def items(self) -> dict[str, dict[str, Any]]:
        """Every item of the budgets table, by account id (strongly consistent)."""
        ...

    def item(self, account_id: str) -> dict[str, Any] | None:
        """The account's budgets-table item, or None (strongly consistent)."""
        ...

    def make_explicit(self, account_id: str, source: str, value: Any) -> bool:
        """Remove InheritedFrom and InheritedValue, if the item still has this InheritedFrom
        and BudgetValue; False if it changed meanwhile."""
        ...

    def write_inherited(
        self,
        account_id: str,
        value: Decimal,
        source: str,
        actor: str,
        at: str,
        previous: TableItem | None,
        default_as_read: Any,
        cost: CostBasis | None = None,
        path_as_read: Mapping[str, Mapping[str, Any] | None] | None = None,
    ) -> WriteOutcome:
        """The inherited item, if the item is still ``previous`` (None: no item) and, in the
        same transaction, the default ``source`` still has the BudgetValue ``default_as_read``.
        With ``cost``: its InheritedCostMetric/InheritedCostExclusions set (or removed) too, if
        they are still as ``previous`` holds them and each default of ``path_as_read`` still has
        the cost attributes read (None: still absent)."""
        ...

    def write_inherited_cost(
        self,
        account_id: str,
        cost: CostBasis,
        previous: TableItem,
        path_as_read: Mapping[str, Mapping[str, Any] | None],
    ) -> WriteOutcome:
        """An explicit item's InheritedCostMetric/InheritedCostExclusions set to ``cost`` (None
        fields removed), nothing else, if it is still explicit with them as ``previous`` holds
        them and, in the same transaction, each default of ``path_as_read`` is as read."""
        ...

    def delete_inherited(
        self, account_id: str, previous: TableItem, default_absent: str | None
    ) -> WriteOutcome:
        """Delete the inherited item, if it is still ``previous`` and, in the same transaction,
        the default ``default_absent`` still does not exist (None: no check on the default)."""
        ...

    def record_default_failure(self, target_id: str, reason: str, at: str) -> bool:
        """Status FAILED for an invalid default (False: it already says exactly that)."""
        ...

    def clear_default_failure(self, target_id: str) -> bool:
        """Delete the default's status item if the resolver wrote it (False: there is none)."""
        ...

    def record_status(
        self, account_id: str, status: Status, reason: str, desired: Decimal | None, at: str
    ) -> bool:
        """WAITING or SKIPPED (SequenceNumber left alone). WAITING never replaces APPLIED:
        False when the status is APPLIED."""
        ...


class DynamoDBResolverTables:
    """``ResolverTables`` on DynamoDB (one client, built once by the handler)."""

    def __init__(
        self, client: DynamoDBClient, budgets_table: str, defaults_table: str, status_table: str
    ) -> None:
        self._client = client
        self._budgets = budgets_table
        self._defaults = defaults_table
        self._status = status_table

    # -- reads -------------------------------------------------------------------------

    def defaults(self) -> list[dict[str, Any]]:
        return [_python(raw) for raw in self._scan(self._defaults)]

    def items(self) -> dict[str, dict[str, Any]]:
        items = (_python(raw) for raw in self._scan(self._budgets))
        return {str(item.get(ACCOUNT_ID_FIELD, "")): item for item in items}

    def item(self, account_id: str) -> dict[str, Any] | None:
        try:
            answer = self._client.get_item(
                TableName=self._budgets, Key={ACCOUNT_ID_FIELD: {"S": account_id}}, ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(f"account {account_id}: read of the budgets table failed ({exc})") from exc
        raw = answer.get("Item")
        return _python(raw) if raw else None

    def _scan(self, table_name: str) -> Iterator[dict[str, Any]]:
        try:
            for page in self._client.get_paginator("scan").paginate(
                TableName=table_name, ConsistentRead=True
            ):
                yield from page.get("Items", [])
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(f"scan of {table_name} failed ({exc})") from exc

    # -- the budgets table -------------------------------------------------------------

    def make_explicit(self, account_id: str, source: str, value: Any) -> bool:
        return self._conditional(
            f"account {account_id}: making the item explicit failed",
            self._client.update_item,
            TableName=self._budgets,
            Key={ACCOUNT_ID_FIELD: {"S": account_id}},
            UpdateExpression="REMOVE #inh, #marker",
            ConditionExpression="#inh = :inh AND #v = :v",
            ExpressionAttributeNames={
                "#inh": INHERITED_FROM_FIELD,
                "#marker": INHERITED_VALUE_FIELD,
                "#v": BUDGET_VALUE_FIELD,
            },
            ExpressionAttributeValues={":inh": {"S": source}, ":v": _serialize(value)},
        )

    def write_inherited(
        self,
        account_id: str,
        value: Decimal,
        source: str,
        actor: str,
        at: str,
        previous: TableItem | None,
        default_as_read: Any,
        cost: CostBasis | None = None,
        path_as_read: Mapping[str, Mapping[str, Any] | None] | None = None,
    ) -> WriteOutcome:
        values: dict[str, Any] = {
            ":v": {"N": format_amount(value)},
            ":src": {"S": source},
            ":by": {"S": actor},
            ":at": {"S": at},
        }
        condition, names, read = as_read_condition(previous)
        values.update(read)
        expression = "SET #v = :v, #inh = :src, #marker = :v, UpdatedBy = :by, UpdatedAt = :at"
        if cost is not None:
            expression, condition = _with_cost(expression, condition, cost, previous, names, values)
        update = {
            "TableName": self._budgets,
            "Key": {ACCOUNT_ID_FIELD: {"S": account_id}},
            "UpdateExpression": expression,
            # the item this run read, nothing else: an explicit item, or an inherited one
            # that a newer run (newer defaults) wrote or removed meanwhile, always wins
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {
                **names,
                "#v": BUDGET_VALUE_FIELD,
                "#inh": INHERITED_FROM_FIELD,
                "#marker": INHERITED_VALUE_FIELD,
            },
            "ExpressionAttributeValues": values,
        }
        checks = self._path_checks(path_as_read or {}, skip=source) if cost is not None else []
        check, check_names, check_values = (
            "#dv = :dv",
            {"#dv": BUDGET_VALUE_FIELD},
            {":dv": _serialize(default_as_read)},
        )
        source_read = (path_as_read or {}).get(source)
        if cost is not None and source_read is not None:
            more, more_names, more_values = _cost_as_read(source_read)
            check, check_names, check_values = (
                f"{check} AND {more}",
                {**check_names, **more_names},
                {**check_values, **more_values},
            )
        unchanged = self._default_check(source, check, check_names, check_values)
        return self._transact(account_id, "inherited write", [unchanged, *checks], {"Update": update})

    def write_inherited_cost(
        self,
        account_id: str,
        cost: CostBasis,
        previous: TableItem,
        path_as_read: Mapping[str, Mapping[str, Any] | None],
    ) -> WriteOutcome:
        names = {"#id": ACCOUNT_ID_FIELD, "#inh": INHERITED_FROM_FIELD}
        values: dict[str, Any] = {}
        # still explicit (the resolver's own items are written by write_inherited)
        expression, condition = _with_cost(
            "", "attribute_exists(#id) AND attribute_not_exists(#inh)", cost, previous, names, values
        )
        update: dict[str, Any] = {
            "TableName": self._budgets,
            "Key": {ACCOUNT_ID_FIELD: {"S": account_id}},
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
        }
        if values:
            update["ExpressionAttributeValues"] = values
        checks = self._path_checks(path_as_read)
        return self._transact(account_id, "inherited cost basis write", checks, {"Update": update})

    def _path_checks(
        self, path_as_read: Mapping[str, Mapping[str, Any] | None], skip: str | None = None
    ) -> list[dict[str, Any]]:
        """A ConditionCheck per default on the path: still absent, or its cost attributes as read."""
        checks = []
        for target, item in path_as_read.items():
            if target == skip:
                continue
            if item is None:
                checks.append(
                    self._default_check(target, "attribute_not_exists(#t)", {"#t": TARGET_ID_FIELD}, {})
                )
            else:
                condition, names, values = _cost_as_read(item)
                checks.append(self._default_check(target, condition, names, values))
        return checks

    def delete_inherited(
        self, account_id: str, previous: TableItem, default_absent: str | None
    ) -> WriteOutcome:
        condition, names, read = as_read_condition(previous)
        delete = {
            "TableName": self._budgets,
            "Key": {ACCOUNT_ID_FIELD: {"S": account_id}},
            "ConditionExpression": condition,  # the inherited item this run read, unchanged
            "ExpressionAttributeNames": names,
            **({"ExpressionAttributeValues": read} if read else {}),
        }
        gone = []
        if default_absent is not None:
            gone = [
                self._default_check(default_absent, "attribute_not_exists(#t)", {"#t": TARGET_ID_FIELD}, {})
            ]
        return self._transact(account_id, "inherited delete", gone, {"Delete": delete})

    def _default_check(
        self, target_id: str, condition: str, names: dict[str, str], values: dict[str, Any]
    ) -> dict[str, Any]:
        check: dict[str, Any] = {
            "TableName": self._defaults,
            "Key": {TARGET_ID_FIELD: {"S": target_id}},
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
        }
        if values:
            check["ExpressionAttributeValues"] = values
        return {"ConditionCheck": check}

    def _transact(
        self, account_id: str, what: str, default_checks: list[dict[str, Any]], change: dict[str, Any]
    ) -> WriteOutcome:
        """``change`` after ``default_checks`` in one transaction. A refused condition is an
        outcome: a default's check (first) refused is STALE, the item's (last) is CONFLICT."""
        items = [*default_checks, change]
        try:
            self._client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise TransientError(f"account {account_id}: {what} failed ({exc})") from exc
            # botocore's model of TransactionCanceledException: CancellationReasons, one per item
            cancelled: list[dict[str, Any]] = exc.response.get("CancellationReasons", [])  # type: ignore[assignment]
            reasons = [str(reason.get("Code", "")) for reason in cancelled]
            if "ConditionalCheckFailed" not in reasons:
                raise TransientError(f"account {account_id}: {what} failed ({exc})") from exc
            if "ConditionalCheckFailed" in reasons[: len(default_checks)]:
                return WriteOutcome.STALE
            return WriteOutcome.CONFLICT
        except BotoCoreError as exc:
            raise TransientError(f"account {account_id}: {what} failed ({exc})") from exc
        return WriteOutcome.DONE

    # -- the status table --------------------------------------------------------------

    def record_default_failure(self, target_id: str, reason: str, at: str) -> bool:
        return self._conditional(
            f"{target_id}: status write failed",
            self._client.update_item,
            TableName=self._status,
            Key={ACCOUNT_ID_FIELD: {"S": target_id}},
            UpdateExpression="SET #st = :failed, Reason = :reason, UpdatedAt = :at, #src = :source",
            ConditionExpression="attribute_not_exists(#st) OR #st <> :failed OR Reason <> :reason",
            ExpressionAttributeNames={"#st": "Status", "#src": "Source"},
            ExpressionAttributeValues={
                ":failed": {"S": Status.FAILED.value},
                ":reason": {"S": reason},
                ":at": {"S": at},
                ":source": {"S": SOURCE},
            },
        )

    def clear_default_failure(self, target_id: str) -> bool:
        return self._conditional(
            f"default {target_id}: status delete failed",
            self._client.delete_item,
            TableName=self._status,
            Key={ACCOUNT_ID_FIELD: {"S": target_id}},
            ConditionExpression="attribute_exists(#st) AND #src = :source",
            ExpressionAttributeNames={"#st": "Status", "#src": "Source"},
            ExpressionAttributeValues={":source": {"S": SOURCE}},
        )

    def record_status(
        self, account_id: str, status: Status, reason: str, desired: Decimal | None, at: str
    ) -> bool:
        values: dict[str, Any] = {
            ":st": {"S": status.value},
            ":reason": {"S": reason},
            ":at": {"S": at},
            ":source": {"S": SOURCE},
        }
        expression = "SET #st = :st, Reason = :reason, UpdatedAt = :at, #src = :source"
        if desired is not None:
            values[":desired"] = {"N": format_amount(desired)}
            expression += ", DesiredValue = :desired"
        arguments: dict[str, Any] = {
            "TableName": self._status,
            "Key": {ACCOUNT_ID_FIELD: {"S": account_id}},
            "UpdateExpression": expression,
            "ExpressionAttributeNames": {"#st": "Status", "#src": "Source"},
            "ExpressionAttributeValues": values,
        }
        if status is Status.WAITING:
            arguments["ConditionExpression"] = "attribute_not_exists(#st) OR #st <> :applied"
            values[":applied"] = {"S": Status.APPLIED.value}
        return self._conditional(
            f"account {account_id}: status write failed", self._client.update_item, **arguments
        )

    @staticmethod
    def _conditional(what: str, call: Any, **arguments: Any) -> bool:
        """One conditional write: True if done, False if its condition was refused."""
        try:
            call(**arguments)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == _CONDITION_FAILED:
                return False
            raise TransientError(f"{what} ({exc})") from exc
        except BotoCoreError as exc:
            raise TransientError(f"{what} ({exc})") from exc
        return True


def as_read_condition(previous: TableItem | None) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The condition "the budgets-table item is still the one this run read" (its expression,
    names and values): no item, or an inherited item with the same InheritedFrom and
    BudgetValue. A run that read older defaults finds a newer run's write (or removal) and
    writes nothing."""
    if previous is None:
        return "attribute_not_exists(#id)", {"#id": ACCOUNT_ID_FIELD}, {}
    names = {"#inh": INHERITED_FROM_FIELD}
    if previous.inherited_from is None:  # explicit: never the resolver's to change (a plan never does)
        return "attribute_exists(#inh)", names, {}
    values: dict[str, Any] = {":read_src": {"S": previous.inherited_from}}
    if previous.value is None:  # an inherited item whose value is not valid: the same source
        return "#inh = :read_src", names, values
    values[":read_v"] = {"N": format_amount(previous.value)}
    return "#inh = :read_src AND #v = :read_v", {**names, "#v": BUDGET_VALUE_FIELD}, values


def _with_cost(
    expression: str,
    condition: str,
    cost: CostBasis,
    previous: TableItem | None,
    names: dict[str, str],
    values: dict[str, Any],
) -> tuple[str, str]:
    """``expression`` setting (or removing) the item's inherited cost attributes to ``cost``, and
    ``condition`` extended with "they are still as ``previous`` holds them" (names, values added)."""
    sets, removes, conditions = [], [], []
    before = (previous.inherited_cost if previous else CostBasis()).inherited_columns()
    for index, (field_name, text) in enumerate(cost.inherited_columns().items()):
        names[f"#ic{index}"] = field_name
        if text is None:
            removes.append(f"#ic{index}")
        else:
            values[f":ic{index}"] = {"S": text}
            sets.append(f"#ic{index} = :ic{index}")
        if previous is not None:
            if before[field_name] is None:
                conditions.append(f"attribute_not_exists(#ic{index})")
            else:
                values[f":icread{index}"] = {"S": before[field_name]}
                conditions.append(f"#ic{index} = :icread{index}")
    if sets:
        expression = f"{expression}, {', '.join(sets)}" if expression else f"SET {', '.join(sets)}"
    if removes:
        expression = f"{expression} REMOVE {', '.join(removes)}".strip()
    return expression, " AND ".join([condition, *conditions])


def _cost_as_read(item: Mapping[str, Any]) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The condition "the default's cost attributes are as read" (expression, names, values)."""
    parts, names, values = [], {}, {}
    for index, field_name in enumerate(COST_FIELDS):
        names[f"#dc{index}"] = field_name
        if field_name in item:
            values[f":dc{index}"] = _serialize(item[field_name])
            parts.append(f"#dc{index} = :dc{index}")
        else:
            parts.append(f"attribute_not_exists(#dc{index})")
    return " AND ".join(parts), names, values


def _python(raw: dict[str, Any]) -> dict[str, Any]:
    return {key: _deserialize(value) for key, value in raw.items()}
