"""In-memory spoke accounts as the reconciler reads and repairs them (reconcile.SpokeReader;
spoke.SsmSpokeGateway on AWS): per account a parameter (value, version), a budget reading, the
alert state (stack defaults, notifications) and the alert parameter's version. A write makes a
new version (as SSM does, even for an unchanged value) and records the call; nothing runs the
spoke's Automation, so the budget stays as it is. Each operation can fail per account
(``fail``), and ``same_version`` makes a write keep the parameter's version."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from budget_sync.errors import SpokeAccessDenied
from budget_sync.spoke import AlertReading, BudgetReading, ParameterReading

#: The operations of reconcile.SpokeReader, as ``fail`` names them.
OPERATIONS = frozenset(
    {"read_parameter", "read_budget", "read_alert_state", "put_budget_value", "put_alert_settings"}
)


def usd(amount: str | int, actual: str | None = "0", forecasted: str | None = "0") -> BudgetReading:
    """A budget reading with a USD limit."""
    return BudgetReading(
        Decimal(amount),
        "USD",
        None if actual is None else Decimal(actual),
        None if forecasted is None else Decimal(forecasted),
    )


@dataclass
class FakeSpoke:
    parameter: str | None = "1000"
    version: int = 1
    budget: BudgetReading | None = field(default_factory=lambda: usd(1000))
    alerts: AlertReading = field(default_factory=lambda: AlertReading({}, {}))
    alerts_version: int = 0
    same_version: bool = False  # a write that makes no new version (no change event)


class FakeSpokeAccounts:
    def __init__(self) -> None:
        """``FakeSpokeAccounts()`` and then ``add(account, ...)``; an account never added has no
        spoke stack (every call fails as the gateway's unassumable role does)."""
        self.spokes: dict[str, FakeSpoke] = {}
        self.failures: dict[tuple[str, str], Exception] = {}
        self.calls: list[tuple[str, str]] = []  # (operation, account)
        self.writes: list[tuple[str, str]] = []  # (account, amount text)
        self.alert_writes: list[tuple[str, str]] = []  # (account, settings JSON)
        self.budget_names: set[str] = set()

    def add(self, account_id: str, spoke: FakeSpoke | None = None) -> FakeSpoke:
        """An account with a spoke stack (default: parameter "1000" at version 1, budget 1000 USD)."""
        self.spokes[account_id] = spoke = spoke or FakeSpoke()
        return spoke

    def fail(self, account_id: str, operation: str, error: Exception) -> None:
        """Make ``operation`` (one of OPERATIONS) raise ``error`` for ``account_id``."""
        assert operation in OPERATIONS, operation
        self.failures[(account_id, operation)] = error

    def _spoke(self, operation: str, account_id: str) -> FakeSpoke:
        self.calls.append((operation, account_id))
        if (account_id, operation) in self.failures:
            raise self.failures[(account_id, operation)]
        if account_id not in self.spokes:
            raise SpokeAccessDenied(
                f"account {account_id}: cannot assume BlogBudgetsSpokeRole (no spoke stack)"
            )
        return self.spokes[account_id]

    def read_parameter(self, account_id: str) -> ParameterReading:
        spoke = self._spoke("read_parameter", account_id)
        return ParameterReading(spoke.parameter, None if spoke.parameter is None else spoke.version)

    def read_budget(self, account_id: str, budget_name: str = "SpokeAccountBudget") -> BudgetReading | None:
        self.budget_names.add(budget_name)
        return self._spoke("read_budget", account_id).budget

    def read_alert_state(
        self, account_id: str, budget_name: str = "SpokeAccountBudget"
    ) -> AlertReading | None:
        self.budget_names.add(budget_name)
        spoke = self._spoke("read_alert_state", account_id)
        return None if spoke.budget is None else spoke.alerts

    def put_budget_value(self, account_id: str, amount_text: str) -> int:
        spoke = self._spoke("put_budget_value", account_id)
        self.writes.append((account_id, amount_text))
        spoke.parameter = amount_text
        if not spoke.same_version:
            spoke.version += 1
        return spoke.version

    def put_alert_settings(self, account_id: str, settings_json: str) -> int:
        spoke = self._spoke("put_alert_settings", account_id)
        self.alert_writes.append((account_id, settings_json))
        spoke.alerts_version += 1
        return spoke.alerts_version
