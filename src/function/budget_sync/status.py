"""The status table: per account, what was asked, what the spoke confirmed, and why not.

Item (key ``AccountId``):
  DesiredValue    N   the value the budgets table asked for (absent if the item was invalid)
  AppliedValue    N   the last value written to the spoke parameter
  Status          S   SENT | APPLIED | FAILED | UNMANAGED | WAITING | SKIPPED (see Status)
  Reason          S   why, for FAILED and UNMANAGED (a spoke's reason is the spoke's own text)
  UpdatedAt       S   ISO 8601, UTC
  SequenceNumber  S   the stream record that produced this status, zero-padded so that
                      string order is stream order; a status is never replaced by an older one
  Source          S   stream | reconciler | spoke | timeout
  ParameterVersion N  the spoke parameter's version after the write
  AlertSettings   S   the alert settings last sent to /BlogBudgets/AlertSettings (JSON,
                      budget_sync.alerts)
  ConfirmedAlerts S   the alert settings the spoke reported its budget has (JSON: emails,
                      actual, forecasted, sns), from the document's ReconcileAlerts step
  SentAlertsVersion N  the version of /BlogBudgets/AlertSettings the last alert settings sent
                      were written as (PutParameter's answer): the status is APPLIED only once
                      the spoke's alerts step reported applying this version or a newer one
  ConfirmedAlertsVersion, ConfirmedAlertDefaultsVersion N
                      the versions of /BlogBudgets/AlertSettings and /BlogBudgets/AlertDefaults
                      that report applied (0: missing): an alerts report about older ones is
                      ignored (budget_sync.results)
  RequestedBy     S   who asked for the repair (``budgetctl reconcile --apply``), if someone did
  SentAt          S   when the value or the alert settings were last sent (SENT); the bound
                      ConfirmTimeoutMinutes counts from it
  ConfirmedVersion N  the parameter version the spoke's latest report is about: a report about
                      an older version never overwrites a newer status; above ParameterVersion,
                      a report held for a SENT not recorded yet (or a hand edit's: drift once
                      the bound passes; see budget_sync.results)
  ConfirmedLimit  N   the budget limit the spoke reported (success only)
  ConfirmedAt     S   when the report arrived
  ExecutionId     S   the spoke's Automation execution that reported
  SpokeOutcome    S   APPLIED | FAILED: what the spoke's latest report said
  SpokeReason     S   the spoke's reason with a FAILED report
  SpokeStep       S   UpdateBudgetLimit | ReconcileAlerts: the step whose report SpokeOutcome is
  EndedExecutionId, EndedStatus, EndedAt S
                      AWS's notice that an execution ended Failed, TimedOut or Cancelled before
                      its report arrived: the report may still come and decides; without one
                      the schedule's check fails the status (budget_sync.results)
  RepairedVersion N   the parameter version the reconciler's last repair wrote
  RepairedAlertsVersion N
                      the alert parameter version the reconciler's last alert repair wrote
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import BotoCoreError, ClientError

from budget_sync.errors import TransientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

_deserialize = TypeDeserializer().deserialize

SEQUENCE_WIDTH = 40
TRANSACTION_LIMIT = 100  # TransactWriteItems' maximum


class Status(StrEnum):
    """An account's state. New states are new members; code matches on members, never on order."""

    SENT = "SENT"  # the value is in the spoke parameter; the spoke has not confirmed its budget yet
    APPLIED = "APPLIED"  # the spoke confirmed its budget's limit is the desired value (and the alerts sent)
    FAILED = "FAILED"  # bad item, spoke unreachable, value rejected, the spoke's failure, no confirmation
    UNMANAGED = "UNMANAGED"  # the item was deleted: the spoke keeps its last budget
    WAITING = "WAITING"  # (resolver) a default applies; the account's spoke stack is not there yet
    SKIPPED = "SKIPPED"  # (resolver) a suspended or closed account: left as it is


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    account_id: str
    status: Status
    sequence_number: str
    desired: Decimal | None = None
    applied: Decimal | None = None
    reason: str = ""
    parameter_version: int | None = None
    source: str = "stream"
    alerts: str | None = None  # the alert settings sent with this update (None: none sent)
    requested_by: str = ""  # the operator whose request this write carried out
    repaired: bool = False  # a reconciler repair: Repaired(Alerts)Version records the version written
    alerts_version: int | None = None  # the alert parameter's version after writing ``alerts``


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def padded(sequence_number: str) -> str:
    return sequence_number.zfill(SEQUENCE_WIDTH)


class StatusStore:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table_name = table_name

    def record(self, update: StatusUpdate) -> bool:
        """Write one status unless a newer record already did. Returns False if it was older.

        Raises TransientError if the write fails: the record is then retried, because an
        operator must be able to see every outcome.
        """
        try:
            self._client.update_item(**self._update(update))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return self._confirmed_first(update)
            raise TransientError(f"account {update.account_id}: status write failed ({exc})") from exc
        except BotoCoreError as exc:
            raise TransientError(f"account {update.account_id}: status write failed ({exc})") from exc
        return True

    def _confirmed_first(self, update: StatusUpdate) -> bool:
        """A SENT whose spoke report arrived first: record the value with the report's verdict.

        The Automation can finish (and its report reach the management account) before the
        stream function writes SENT at the end of its batch. The report was then kept as
        ConfirmedVersion/SpokeOutcome only (budget_sync.results); SENT must not hide it.
        Returns False if the status is newer than ``update`` (nothing to do).
        """
        if update.status is not Status.SENT or (
            update.parameter_version is None and update.alerts_version is None
        ):
            return False
        item = self.read(update.account_id)
        if item is None or str(item.get("SequenceNumber", "")) > padded(update.sequence_number):
            return False
        confirmed = int(item.get("ConfirmedVersion", 0))
        limit_reported = update.parameter_version is None or confirmed == update.parameter_version
        alerts_reported = (
            update.alerts_version is None
            or int(item.get("ConfirmedAlertsVersion", 0)) >= update.alerts_version
        )
        if not limit_reported and not alerts_reported:
            return False  # the condition failed for another reason: a newer status
        limit = item.get("ConfirmedLimit")
        if not (limit_reported and alerts_reported):
            verdict = update  # one step's report came first: SENT waits for the other's
        elif item.get("SpokeOutcome") == Status.APPLIED and limit is not None and update.desired == limit:
            verdict = replace(update, status=Status.APPLIED, reason="")
        elif item.get("SpokeOutcome") == Status.APPLIED:
            verdict = replace(
                update, status=Status.FAILED, reason=limit_differs(limit, update.desired, confirmed)
            )
        else:
            verdict = replace(update, status=Status.FAILED, reason=f"spoke: {item.get('SpokeReason', '')}")
        try:
            self._client.update_item(**self._update(verdict, guard_confirmation=False))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise TransientError(f"account {update.account_id}: status write failed ({exc})") from exc
        except BotoCoreError as exc:
            raise TransientError(f"account {update.account_id}: status write failed ({exc})") from exc
        return True

    def read(self, account_id: str) -> dict[str, Any] | None:
        """The account's status item, read consistently, deserialised (None: no item)."""
        try:
            raw = self._client.get_item(
                TableName=self._table_name, Key={"AccountId": {"S": account_id}}, ConsistentRead=True
            ).get("Item")
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(f"account {account_id}: status read failed ({exc})") from exc
        return None if raw is None else {k: _deserialize(v) for k, v in raw.items()}

    def record_many(self, updates: Sequence[StatusUpdate]) -> list[str]:
        """Write a batch's statuses, up to 100 per TransactWriteItems call.

        Every write keeps its sequence-number condition. If a transaction is cancelled
        (a newer status exists for one of its accounts), its statuses are written one by one
        so that only the stale ones are skipped. Returns the accounts whose status could
        not be written: their records must be retried.
        """
        failed: list[str] = []
        for start in range(0, len(updates), TRANSACTION_LIMIT):
            chunk = updates[start : start + TRANSACTION_LIMIT]
            try:
                items: list[TransactWriteItemTypeDef] = [{"Update": self._update(u)} for u in chunk]  # type: ignore[typeddict-item]
                self._client.transact_write_items(TransactItems=items)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    failed.extend(u.account_id for u in chunk)
                    continue
                for update in chunk:
                    try:
                        self.record(update)
                    except TransientError:
                        failed.append(update.account_id)
            except BotoCoreError:
                failed.extend(u.account_id for u in chunk)
        return failed

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
        if update.requested_by:
            values[":requested_by"] = {"S": update.requested_by}
            sets.append("RequestedBy = :requested_by")
        expression = "SET " + ", ".join(sets) + (" REMOVE DesiredValue" if update.desired is None else "")
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


def limit_differs(limit: object, desired: object, version: int) -> str:
    return (
        f"the spoke confirmed a budget limit of {limit} for parameter version {version}, "
        f"but the desired value is {desired}"
    )
