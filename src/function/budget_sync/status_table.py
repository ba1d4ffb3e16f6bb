"""The status table's adapter: DynamoDB calls for the status store and the result store.

``DynamoStatusTable`` implements the Protocols its two users declare beside their logic:
``status.StatusTable`` (the stream function's and the reconciler's status writes) and
``results.ResultTable`` (the result function's ordered writes and the unconfirmed check's
scan). All boto3 and ClientError/BotoCoreError handling for the status table lives here;
callers see the project's own errors (errors.py): a condition that fails is False, anything
else that stops a read or a write (throttling, a 5xx, a timeout, a missing table) is
TransientError. The item contract is status.py's docstring. The other AWS adapters follow the
same rule, one module per thing reached: spoke.py (a spoke account), alarm_topic.py (SNS).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from budget_sync.errors import TransientError
from budget_sync.status import Status, StatusUpdate, _deserialize, now_text, padded

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

_CONDITION_FAILED = "ConditionalCheckFailedException"
_CANCELLED = "TransactionCanceledException"


class DynamoStatusTable:
    """The status table on DynamoDB (one client, built by the handler)."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table_name = table_name

    # status.StatusTable and results.ResultTable

    def read(self, account_id: str) -> dict[str, Any] | None:
        try:
            raw = self._client.get_item(
                TableName=self._table_name, Key={"AccountId": {"S": account_id}}, ConsistentRead=True
            ).get("Item")
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(f"account {account_id}: status read failed ({exc})") from exc
        return None if raw is None else {k: _deserialize(v) for k, v in raw.items()}

    # status.StatusTable

    def write(self, update: StatusUpdate, *, guard_confirmation: bool = True) -> bool:
        try:
            self._client.update_item(**self._update(update, guard_confirmation=guard_confirmation))
        except ClientError as exc:
            if _code(exc) == _CONDITION_FAILED:
                return False
            raise TransientError(f"account {update.account_id}: status write failed ({exc})") from exc
        except BotoCoreError as exc:
            raise TransientError(f"account {update.account_id}: status write failed ({exc})") from exc
        return True

    def write_all(self, updates: Sequence[StatusUpdate]) -> list[int]:
        try:
            items: list[TransactWriteItemTypeDef] = [{"Update": self._update(u)} for u in updates]  # type: ignore[typeddict-item]
            self._client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if _code(exc) == _CANCELLED:
                return _cancelled_by(exc, len(updates))
            raise TransientError(f"{len(updates)} statuses not written ({exc})") from exc
        except BotoCoreError as exc:
            raise TransientError(f"{len(updates)} statuses not written ({exc})") from exc
        return []

    # results.ResultTable

    def update_if(self, account_id: str, values: Mapping[str, Any], expected: Mapping[str, Any]) -> bool:
        names: dict[str, str] = {}
        typed: dict[str, Any] = {}
        sets: list[str] = []
        for index, (attribute, value) in enumerate(values.items()):
            names[f"#v{index}"] = attribute
            typed[f":v{index}"] = _typed(value)
            sets.append(f"#v{index} = :v{index}")
        conditions = []
        for index, (attribute, value) in enumerate(expected.items()):
            names[f"#l{index}"] = attribute
            if value is None:
                conditions.append(f"attribute_not_exists(#l{index})")
            else:
                typed[f":l{index}"] = _typed(value)
                conditions.append(f"#l{index} = :l{index}")
        try:
            self._client.update_item(
                TableName=self._table_name,
                Key={"AccountId": {"S": account_id}},
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression=" AND ".join(conditions),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=typed,
            )
        except ClientError as exc:
            if _code(exc) == _CONDITION_FAILED:
                return False
            raise TransientError(f"account {account_id}: status write failed ({exc})") from exc
        except BotoCoreError as exc:
            raise TransientError(f"account {account_id}: status write failed ({exc})") from exc
        return True

    def due(self, cutoff: str, ended_cutoff: str) -> Iterator[dict[str, Any]]:
        paginator = self._client.get_paginator("scan")
        pages = paginator.paginate(
            TableName=self._table_name,
            FilterExpression="(#st = :sent AND (SentAt < :cutoff OR EndedAt < :ended)) OR (#st = :applied AND "
            "ConfirmedVersion > ParameterVersion AND ConfirmedAt < :cutoff)",
            ExpressionAttributeNames={"#st": "Status"},
            ExpressionAttributeValues={
                ":sent": {"S": Status.SENT.value},
                ":applied": {"S": Status.APPLIED.value},
                ":cutoff": {"S": cutoff},
                ":ended": {"S": ended_cutoff},
            },
        )
        try:
            for page in pages:
                for raw in page.get("Items", []):
                    yield {k: _deserialize(v) for k, v in raw.items()}
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(f"status table scan failed ({exc})") from exc

    def _update(self, update: StatusUpdate, *, guard_confirmation: bool = True) -> dict[str, Any]:
        now = now_text()
        values: dict[str, Any] = {
            ":status": {"S": update.status.value},
            ":reason": {"S": update.reason},
            ":at": {"S": now},
            ":seq": {"S": padded(update.sequence_number)},
            ":source": {"S": update.source},
        }
        sets = [
            "#st = :status",
            "Reason = :reason",
            "UpdatedAt = :at",
            "SequenceNumber = :seq",
            "#src = :source",
        ]
        for attribute, value in (("DesiredValue", update.desired), ("AppliedValue", update.applied)):
            if value is not None:
                values[f":{attribute}"] = {"N": str(value)}
                sets.append(f"{attribute} = :{attribute}")
        condition = "(attribute_not_exists(SequenceNumber) OR SequenceNumber <= :seq)"
        if update.status is Status.SENT:
            # Every send starts the bound again, an alerts-only send (no new limit version) too:
            # the unconfirmed check counts from here.
            sets.append("SentAt = :at")
        condition += _sent_version(update, values, sets, guard_confirmation=guard_confirmation)
        if update.alerts is not None:
            values[":alerts"] = {"S": update.alerts}
            sets.append("AlertSettings = :alerts")
        if update.alerts_version is not None:
            values[":alerts_version"] = {"N": str(update.alerts_version)}
            sets.append("SentAlertsVersion = :alerts_version")
            if update.repaired:
                sets.append("RepairedAlertsVersion = :alerts_version")
            if update.status is Status.SENT and guard_confirmation:
                # the alerts step's report of these settings may have come first
                condition += " AND (attribute_not_exists(ConfirmedAlertsVersion) OR ConfirmedAlertsVersion < :alerts_version)"
        removes = [] if update.desired is not None else ["DesiredValue"]
        removes += _who_and_what(update, values, sets)
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        return {
            "TableName": self._table_name,
            "Key": {"AccountId": {"S": update.account_id}},
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {"#st": "Status", "#src": "Source"},
            "ExpressionAttributeValues": values,
        }


def _sent_version(
    update: StatusUpdate, values: dict[str, Any], sets: list[str], *, guard_confirmation: bool
) -> str:
    """The parameter version an update records (into ``values`` and ``sets``), and the condition
    it adds: a SENT must not undo the spoke's report of this version, which may come first."""
    condition = ""
    if update.parameter_version is not None:
        values[":version"] = {"N": str(update.parameter_version)}
        sets.append("ParameterVersion = :version")
        if update.repaired:
            sets.append("RepairedVersion = :version")
        if update.status is Status.SENT and guard_confirmation:
            # the spoke's report of this version may have come first
            # (a report held about another version, a hand edit's or a forged one, is no
            # verdict on this one: budget_sync.results)
            condition += " AND (attribute_not_exists(ConfirmedVersion) OR ConfirmedVersion <> :version)"
    return condition


def _who_and_what(update: StatusUpdate, values: dict[str, Any], sets: list[str]) -> list[str]:
    """Who asked (RequestedBy) and the change the update records (Changed*, for history), into
    ``values`` and ``sets``; the attributes to remove (a scheduled repair's RequestedBy)."""
    removes = []
    if update.requested_by:
        values[":requested_by"] = {"S": update.requested_by}
        sets.append("RequestedBy = :requested_by")
    elif update.repaired:
        removes.append("RequestedBy")  # a scheduled repair: nobody asked for this one
    if update.change is not None:
        for attribute, text in (
            ("ChangedFrom", update.change.previous),
            ("ChangedTo", update.change.requested),
            ("ChangedBy", update.change.by),
            ("ChangedAt", update.change.at),
            ("ChangedVia", update.change.via),
        ):
            values[f":{attribute}"] = {"S": text}
            sets.append(f"{attribute} = :{attribute}")
    return removes


def _cancelled_by(exc: ClientError, count: int) -> list[int]:
    """The positions of the items that cancelled a transaction of ``count``: those whose
    CancellationReasons entry (botocore's model of TransactionCanceledException: one per item,
    in order, Code "None" for an item that did not) names a reason; all of them when DynamoDB
    gave no reasons, or not one per item."""
    reasons: list[dict[str, Any]] = exc.response.get("CancellationReasons", [])  # type: ignore[assignment]
    refused = [i for i, reason in enumerate(reasons) if str(reason.get("Code", "None")) != "None"]
    if len(reasons) != count or not refused:
        return list(range(count))
    return refused


def _typed(value: Any) -> dict[str, str]:
    if isinstance(value, bool):
        raise TypeError("no booleans in the status item")
    if isinstance(value, int | Decimal):
        return {"N": str(value)}
    return {"S": str(value)}


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


__all__ = ["DynamoStatusTable"]


def read_statuses(client: DynamoDBClient, table_name: str) -> dict[str, dict[str, Any]]:
    """The status table, per account (one Scan: cheaper than a read per account), deserialised.
    The reconciler's handler and ``budgetctl`` read it once per run; the reconciler's logic
    takes the plain mapping, so it needs no Protocol for it."""
    statuses: dict[str, dict[str, Any]] = {}
    for page in client.get_paginator("scan").paginate(TableName=table_name):
        for raw in page.get("Items", []):
            item = {k: _deserialize(v) for k, v in raw.items()}
            statuses[str(item.get("AccountId"))] = item
    return statuses
