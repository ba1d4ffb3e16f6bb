"""The budgets table as operators change it: conditional writes with an audit trail.

Every write sets ``BudgetValue`` (canonical amount) plus ``UpdatedBy`` (the caller's ARN)
and ``UpdatedAt`` (ISO 8601, UTC, milliseconds), and is conditional on what the writer last
saw: the previous ``BudgetValue`` and ``UpdatedAt``, or the item's absence. If another
operator changed the item in between, the write is refused (ConflictError) and nothing is
overwritten. Other attributes of an item (notes, owner) are kept: writes are UpdateItem.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from budget_sync.domain import ACCOUNT_ID_FIELD, BUDGET_VALUE_FIELD, format_amount
from budget_sync.effective_budget import INHERITED_FROM_FIELD, INHERITED_VALUE_FIELD
from budgetctl.errors import AwsError, ConflictError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

TRANSACTION_LIMIT = 100
_serialize = TypeSerializer().serialize
_deserialize = TypeDeserializer().deserialize


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True, slots=True)
class Write:
    """One intended change: ``amount`` None deletes. ``previous`` is the item as last read."""

    account_id: str
    amount: Decimal | None
    previous: dict[str, Any] | None
    #: "read": on ``previous``; a Decimal: --expect VALUE; None: --expect none; "force": none at all
    expect: Decimal | str | None = "read"
    #: Alert attributes to set (canonical text) or, with None, to remove (budget_sync.alerts)
    alerts: dict[str, object] | None = None


class BudgetsTable:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        caller_arn: Callable[[], str],
        *,
        key_field: str = ACCOUNT_ID_FIELD,
        noun: str = "account",
    ) -> None:
        """``key_field``/``noun``: the same writes serve the defaults table (TargetId, "default")."""
        self._client = client
        self._table = table_name
        self._caller_arn = caller_arn
        self._key = key_field
        self._noun = noun

    @property
    def name(self) -> str:
        return self._table

    def get(self, account_id: str) -> dict[str, Any] | None:
        response = self._client.get_item(
            TableName=self._table, Key={self._key: {"S": account_id}}, ConsistentRead=True
        )
        raw = response.get("Item")
        return {k: _deserialize(v) for k, v in raw.items()} if raw else None

    def scan(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for page in self._client.get_paginator("scan").paginate(TableName=self._table, ConsistentRead=True):
            items.extend({k: _deserialize(v) for k, v in raw.items()} for raw in page.get("Items", []))
        return sorted(items, key=lambda i: str(i.get(self._key, "")))

    def write(self, write: Write) -> dict[str, Any]:
        """Apply one write under its condition; raise ConflictError naming the current item.

        If the condition fails because botocore retried a write whose first response was lost
        (the first attempt succeeded), the item holds exactly this write: its amount, this
        caller as UpdatedBy and this write's own UpdatedAt. That is a success, not a conflict.
        """
        at = now_iso()
        try:
            if write.amount is None:
                self._client.delete_item(**self._delete(write))
            else:
                self._client.update_item(**self._update(write, at))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                current = self.get(write.account_id)
                if self._holds(write, current, at):
                    return {"retried": True}
                raise ConflictError(conflict_message(write, current, self._noun)) from exc
            raise
        return {}

    def _holds(self, write: Write, current: dict[str, Any] | None, at: str) -> bool:
        """True if ``current`` is this very write (the same amount, writer and timestamp)."""
        return (
            write.amount is not None
            and current is not None
            and current.get(BUDGET_VALUE_FIELD) == write.amount
            and current.get("UpdatedBy") == self._caller_arn()
            and current.get("UpdatedAt") == at
        )

    def write_many(
        self, writes: Sequence[Write], on_written: Callable[[int], None] | None = None
    ) -> list[tuple[Write, str]]:
        """Batched conditional writes: TransactWriteItems of up to 100 items.

        A cancelled transaction (one item changed since it was read) is retried item by item,
        so that only the conflicting items are left out. Returns the conflicts.
        """
        conflicts: list[tuple[Write, str]] = []
        written: list[Write] = []
        in_flight: list[Write] = []
        try:
            for start in range(0, len(writes), TRANSACTION_LIMIT):
                chunk = in_flight = list(writes[start : start + TRANSACTION_LIMIT])
                try:
                    self._client.transact_write_items(TransactItems=[self._transact(w) for w in chunk])  # type: ignore[misc]
                    written.extend(chunk)
                    in_flight = []
                except ClientError as exc:
                    in_flight = []
                    if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                        raise PartialWriteError(written, _not_in(writes, written), exc) from exc
                    for write in chunk:
                        in_flight = [write]
                        try:
                            self.write(write)
                            written.append(write)
                        except ConflictError as conflict:
                            conflicts.append((write, str(conflict)))
                        except (ClientError, BotoCoreError) as error:
                            raise PartialWriteError(written, _not_in(writes, written), error) from error
                        in_flight = []
                except BotoCoreError as exc:
                    raise PartialWriteError(written, _not_in(writes, written), exc) from exc
                if on_written is not None:
                    on_written(len(chunk))
        except KeyboardInterrupt as interrupt:
            done = {w.account_id for w in (*written, *in_flight)} | {w.account_id for w, _ in conflicts}
            raise InterruptedWriteError(
                written, in_flight, [w for w in writes if w.account_id not in done]
            ) from interrupt
        return conflicts

    def _condition(self, write: Write) -> tuple[str, dict[str, Any], dict[str, str]]:
        names = {"#id": self._key}
        if write.expect == "force":
            return "attribute_exists(#id) OR attribute_not_exists(#id)", {}, names
        if write.expect != "read":
            if write.expect is None:
                return "attribute_not_exists(#id)", {}, names
            names["#v"] = BUDGET_VALUE_FIELD
            return "#v = :expected", {":expected": _serialize(write.expect)}, names
        previous = write.previous
        if previous is None:
            return "attribute_not_exists(#id)", {}, names
        names["#v"] = BUDGET_VALUE_FIELD
        names["#at"] = "UpdatedAt"
        values: dict[str, Any] = {}
        if BUDGET_VALUE_FIELD in previous:
            parts = ["#v = :previous"]
            values[":previous"] = _serialize(previous[BUDGET_VALUE_FIELD])
        else:
            parts = ["attribute_not_exists(#v)"]
        if "UpdatedAt" in previous:
            parts.append("#at = :previous_at")
            values[":previous_at"] = _serialize(previous["UpdatedAt"])
        else:
            parts.append("attribute_not_exists(#at)")
        return "attribute_exists(#id) AND " + " AND ".join(parts), values, names

    def _update(self, write: Write, at: str | None = None) -> dict[str, Any]:
        assert write.amount is not None
        condition, values, names = self._condition(write)
        names.update({"#v": BUDGET_VALUE_FIELD, "#by": "UpdatedBy", "#at": "UpdatedAt"})
        values.update(
            {
                ":amount": {"N": format_amount(write.amount)},
                ":by": {"S": self._caller_arn()},
                ":at": {"S": at or now_iso()},
            }
        )
        # An operator's write makes the item explicit: it no longer follows a default.
        names["#inh"] = INHERITED_FROM_FIELD
        names["#marker"] = INHERITED_VALUE_FIELD
        expression = "SET #v = :amount, #by = :by, #at = :at"
        removed: list[str] = ["#inh", "#marker"]
        for index, (field, text) in enumerate(sorted((write.alerts or {}).items())):
            names[f"#alert{index}"] = field
            if text is None:
                removed.append(f"#alert{index}")
            else:
                values[f":alert{index}"] = {"S": str(text)}
                expression += f", #alert{index} = :alert{index}"
        expression += " REMOVE " + ", ".join(removed)
        return {
            "TableName": self._table,
            "Key": {self._key: {"S": write.account_id}},
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": _used(names, expression, condition),
            "ExpressionAttributeValues": values,
        }

    def _delete(self, write: Write) -> dict[str, Any]:
        condition, values, names = self._condition(write)
        if write.expect == "read" and write.previous is None:
            condition = "attribute_exists(#id)"
        arguments: dict[str, Any] = {
            "TableName": self._table,
            "Key": {self._key: {"S": write.account_id}},
            "ConditionExpression": condition,
            "ExpressionAttributeNames": _used(names, condition),
        }
        if values:
            arguments["ExpressionAttributeValues"] = values
        return arguments

    def _transact(self, write: Write) -> dict[str, Any]:
        if write.amount is None:
            return {"Delete": self._delete(write)}
        return {"Update": self._update(write)}


class PartialWriteError(AwsError):
    """A batch of writes stopped part-way (throttling past retries, a network error): which
    were written and which were not. A transaction is all or nothing, so ``written`` is exact."""

    def __init__(self, written: Sequence[Write], unwritten: Sequence[Write], cause: Exception) -> None:
        self.written = list(written)
        self.unwritten = list(unwritten)
        self.cause = cause
        super().__init__(
            f"stopped after {len(self.written)} of {len(self.written) + len(self.unwritten)} write(s): {_cause(cause)}"
        )


class InterruptedWriteError(KeyboardInterrupt):
    """Ctrl-C during a batch of writes: which were written, which were in flight (a transaction
    sent and not answered: all or none of it was written) and which were not sent."""

    def __init__(self, written: Sequence[Write], in_flight: Sequence[Write], unsent: Sequence[Write]) -> None:
        self.written = list(written)
        self.in_flight = list(in_flight)
        self.unsent = list(unsent)
        super().__init__(f"interrupted after {len(self.written)} write(s)")


def _cause(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{exc.operation_name}: {error.get('Code', '?')}: {error.get('Message', '')}"
    return str(exc)


def _not_in(writes: Sequence[Write], written: Sequence[Write]) -> list[Write]:
    """The writes not done (a conflict is not written either)."""
    done = {w.account_id for w in written}
    return [w for w in writes if w.account_id not in done]


def conflict_message(write: Write, current: dict[str, Any] | None, noun: str = "account") -> str:
    if current is None:
        now = "the item no longer exists"
    else:
        now = (
            f"it now holds {BUDGET_VALUE_FIELD} {_shown(current.get(BUDGET_VALUE_FIELD))}"
            f" (UpdatedBy {current.get('UpdatedBy', '-')}, UpdatedAt {current.get('UpdatedAt', '-')})"
        )
    if write.expect != "read":
        expected = "no item" if write.expect is None else f"{BUDGET_VALUE_FIELD} {_shown(write.expect)}"
        return f"{noun} {write.account_id}: expected {expected}, but {now}; nothing written"
    return f"{noun} {write.account_id} changed since it was read: {now}; nothing written"


def _used(names: dict[str, str], *expressions: str) -> dict[str, str]:
    """DynamoDB refuses attribute names an expression does not use."""
    return {k: v for k, v in names.items() if any(k in e for e in expressions)}


def _shown(value: object) -> str:
    if isinstance(value, Decimal):
        return format_amount(value) if value == value.quantize(Decimal("0.01")) else str(value)
    return repr(value)


def values_of(items: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(item.get(ACCOUNT_ID_FIELD)): item for item in items}
