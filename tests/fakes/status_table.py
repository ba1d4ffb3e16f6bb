"""An in-memory status table: the ``StatusTable`` (status.py) and ``ResultTable`` (results.py)
Protocols, with DynamoDB's conditions as status_table.DynamoStatusTable writes them.

Items are kept as the adapter reads them back (numbers as Decimal). Every call is recorded in
``calls``; it can be told to fail per account (``failures``: the exception every read or write
of that account raises, a project error as the adapter would), to fail its scan
(``scan_failure``), to cancel every transaction (``cancel_transactions``, before any failure,
without saying which statuses cancelled it),
and to lose the next conditional writes of an account to a concurrent writer (``conflicts``:
how many; ``between``: what that writer changes first, applied before the write so its
condition fails as DynamoDB's would).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

from budget_sync.errors import TransientError
from budget_sync.status import TRANSACTION_LIMIT, Status, StatusUpdate, now_text, padded


class FakeStatusTable:
    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []  # (method, account or "*")
        self.failures: dict[str, Exception] = {}
        self.scan_failure: Exception | None = None
        self.cancel_transactions = False
        self.conflicts: dict[str, int] = {}
        self.between: dict[str, Callable[[dict[str, Any]], None]] = {}

    # helpers for tests

    def item(self, account_id: str) -> dict[str, Any]:
        """The account's item as it is stored (KeyError: none)."""
        return self.items[account_id]

    def put(self, account_id: str, **attributes: Any) -> None:
        """Set attributes directly (a write outside the stores: a test's GIVEN)."""
        self.items.setdefault(account_id, {"AccountId": account_id}).update(
            {k: _stored(v) for k, v in attributes.items()}
        )

    def count(self, method: str) -> int:
        return sum(1 for m, _ in self.calls if m == method)

    # status.StatusTable and results.ResultTable

    def read(self, account_id: str) -> dict[str, Any] | None:
        self._call("read", account_id)
        item = self.items.get(account_id)
        return None if item is None else copy.deepcopy(item)

    # status.StatusTable

    def write(self, update: StatusUpdate, *, guard_confirmation: bool = True) -> bool:
        self._call("write", update.account_id)
        if self._lost(update.account_id) or not self._holds(update, guard_confirmation):
            return False
        self._apply(update)
        return True

    def write_all(self, updates: Sequence[StatusUpdate]) -> list[int]:
        self._call("write_all", "*")
        if self.cancel_transactions:
            return list(range(len(updates)))  # cancelled, DynamoDB not saying which (every position)
        for update in updates:
            if update.account_id in self.failures:
                raise self.failures[update.account_id]
        if len(updates) > TRANSACTION_LIMIT:
            raise TransientError(f"{len(updates)} statuses not written (more than {TRANSACTION_LIMIT})")
        refused = [i for i, u in enumerate(updates) if not self._holds(u, True)]
        if refused:
            return refused
        for update in updates:
            self._apply(update)
        return []

    # results.ResultTable

    def update_if(self, account_id: str, values: Mapping[str, Any], expected: Mapping[str, Any]) -> bool:
        self._call("update_if", account_id)
        if not values:  # DynamoDB refuses an empty SET (ValidationException): the adapter's TransientError
            raise TransientError(f"account {account_id}: status write failed (empty update)")
        if self._lost(account_id):
            return False
        item = self.items.get(account_id, {})
        for attribute, value in expected.items():
            if (value is None and attribute in item) or (value is not None and item.get(attribute) != value):
                return False
        self.put(account_id, **dict(values))
        return True

    def due(self, cutoff: str, ended_cutoff: str) -> Iterator[dict[str, Any]]:
        self._call("due", "*")
        if self.scan_failure is not None:
            raise self.scan_failure
        for item in list(self.items.values()):
            if _due(item, cutoff, ended_cutoff):
                yield copy.deepcopy(item)

    # DynamoDB's side

    def _call(self, method: str, account_id: str) -> None:
        self.calls.append((method, account_id))
        if account_id in self.failures:
            raise self.failures[account_id]

    def _lost(self, account_id: str) -> bool:
        """A concurrent writer's write lands first: this write's condition fails."""
        if self.conflicts.get(account_id, 0) <= 0:
            return False
        self.conflicts[account_id] -= 1
        change = self.between.get(account_id)
        if change is not None:
            change(self.items.setdefault(account_id, {"AccountId": account_id}))
        return True

    def _holds(self, update: StatusUpdate, guard_confirmation: bool) -> bool:
        """status_table.DynamoStatusTable's ConditionExpression for ``update``."""
        item = self.items.get(update.account_id, {})
        if "SequenceNumber" in item and item["SequenceNumber"] > padded(update.sequence_number):
            return False
        sent = update.status is Status.SENT and guard_confirmation
        if (
            sent
            and update.parameter_version is not None
            and item.get("ConfirmedVersion") == update.parameter_version
        ):
            return False
        return not (
            sent
            and update.alerts_version is not None
            and "ConfirmedAlertsVersion" in item
            and item["ConfirmedAlertsVersion"] >= update.alerts_version
        )

    def _apply(self, update: StatusUpdate) -> None:
        now = now_text()
        values: dict[str, Any] = {
            "Status": update.status.value,
            "Reason": update.reason,
            "UpdatedAt": now,
            "SequenceNumber": padded(update.sequence_number),
            "Source": update.source,
        }
        for attribute, value in (("DesiredValue", update.desired), ("AppliedValue", update.applied)):
            if value is not None:
                values[attribute] = value
        if update.status is Status.SENT:
            values["SentAt"] = now
        values.update(_versions(update))
        if update.alerts is not None:
            values["AlertSettings"] = update.alerts
        if update.requested_by:
            values["RequestedBy"] = update.requested_by
        if update.change is not None:
            values.update(
                ChangedFrom=update.change.previous,
                ChangedTo=update.change.requested,
                ChangedBy=update.change.by,
                ChangedAt=update.change.at,
                ChangedVia=update.change.via,
            )
        self.put(update.account_id, **values)
        if update.desired is None:
            self.items[update.account_id].pop("DesiredValue", None)
        if update.repaired and not update.requested_by:
            self.items[update.account_id].pop("RequestedBy", None)


def _versions(update: StatusUpdate) -> dict[str, Any]:
    """The versions an update records, as the adapter's SET does."""
    values: dict[str, Any] = {}
    if update.parameter_version is not None:
        values["ParameterVersion"] = update.parameter_version
        if update.repaired:
            values["RepairedVersion"] = update.parameter_version
    if update.alerts_version is not None:
        values["SentAlertsVersion"] = update.alerts_version
        if update.repaired:
            values["RepairedAlertsVersion"] = update.alerts_version
    return values


def _stored(value: Any) -> Any:
    if isinstance(value, bool):
        raise TypeError("no booleans in the status item")
    return Decimal(value) if isinstance(value, int) else value


def _due(item: Mapping[str, Any], cutoff: str, ended_cutoff: str) -> bool:
    """The adapter's FilterExpression (a comparison with a missing attribute is false)."""
    status = item.get("Status")
    if status == Status.SENT:
        return ("SentAt" in item and item["SentAt"] < cutoff) or (
            "EndedAt" in item and item["EndedAt"] < ended_cutoff
        )
    return (
        status == Status.APPLIED
        and "ConfirmedVersion" in item
        and "ParameterVersion" in item
        and item["ConfirmedVersion"] > item["ParameterVersion"]
        and "ConfirmedAt" in item
        and item["ConfirmedAt"] < cutoff
    )
