"""What the commands print: columns and one row per item or account."""

from __future__ import annotations

from typing import Any

from budget_sync.alerts import ALERT_FIELDS, parse_alerts
from budget_sync.cost_basis import COST_FIELDS, own_attributes
from budget_sync.domain import (
    ACCOUNT_ID_FIELD,
    BUDGET_VALUE_FIELD,
    amount_text,
)
from budget_sync.errors import InvalidItemError
from budget_sync.incidents.lifecycle import INCIDENT_FIELDS, IncidentSettings
from budget_sync.reconcile import AccountReport

STATUS_COLUMNS = (
    "AccountId",
    "Name",
    "Desired",
    "Source",
    "LastStatus",
    "Parameter",
    "BudgetLimit",
    "ActualSpend",
    "ForecastedSpend",
    "PercentOfLimit",
    "Drift",
    "Reason",
    "Health",  # the budget's HealthStatus as AWS reports it (HEALTHY, UNHEALTHY): JSON, CSV, --wide
)
RECONCILE_COLUMNS = ("AccountId", "Desired", "Parameter", "BudgetLimit", "Drift", "Action", "Reason")
ITEM_COLUMNS = (
    "AccountId",
    "BudgetValue",
    "UpdatedBy",
    "UpdatedAt",
    *ALERT_FIELDS,
    *COST_FIELDS,
    *INCIDENT_FIELDS,
)
#: status: the alert settings last sent (status table) and what the spoke budget has now
ALERT_STATUS_COLUMNS = ("AlertsSent", "SpokeAlerts", "CostBasis")
#: status as a table: what fits 100 characters; with --wide, every column but the alerts in one
#: line (``Alerts``, budgetctl.alerts_view); JSON and CSV have all of STATUS_COLUMNS and the alerts.
STATUS_BRIEF = ("AccountId", "Name", "Desired", "BudgetLimit", "LastStatus", "Drift", "Reason")
STATUS_WIDE = (*STATUS_COLUMNS, "CostBasis", "Alerts")


def item_row(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "AccountId": item.get(ACCOUNT_ID_FIELD),
        "BudgetValue": amount_text(item.get(BUDGET_VALUE_FIELD)),
        "UpdatedBy": item.get("UpdatedBy"),
        "UpdatedAt": item.get("UpdatedAt"),
        **alert_columns(item),
    }


def alert_columns(item: dict[str, Any]) -> dict[str, str | None]:
    """The item's alert, cost basis and incident attributes as canonical text; a value breaking
    the contract as it is."""
    try:
        settings = parse_alerts(own_attributes(item))  # what it inherits is not its own
        columns = {**settings.columns(), **settings.cost_basis.columns()}
    except ValueError:
        columns = {field: _as_stored(item.get(field)) for field in (*ALERT_FIELDS, *COST_FIELDS)}
    return {**columns, **incident_columns(item)}


def incident_columns(item: dict[str, Any]) -> dict[str, str | None]:
    """The item's ``Incident*`` attributes as canonical text (budget_sync.incidents.lifecycle); a value
    breaking the contract as it is."""
    try:
        return IncidentSettings.from_item(item).columns()
    except InvalidItemError:
        return {field: _as_stored(item.get(field)) for field in INCIDENT_FIELDS}


def _as_stored(value: object) -> str | None:
    return None if value is None else str(value)


def status_row(report: AccountReport, source: str | None = None, name: str | None = None) -> dict[str, Any]:
    """``source``: where the desired value comes from ("item", "default ou-... (Name)");
    ``name``: the account's name in the organisation, where it could be read."""
    budget = report.budget
    return {
        "AccountId": report.account_id,
        "Name": name or None,
        "Desired": amount_text(report.desired),
        "Source": source,
        "LastStatus": report.last_status or None,
        "Parameter": report.parameter,
        "BudgetLimit": amount_text(report.budget_limit),
        "ActualSpend": amount_text(budget.actual) if budget else None,
        "ForecastedSpend": amount_text(budget.forecasted) if budget else None,
        "PercentOfLimit": None if report.percent_of_limit is None else str(report.percent_of_limit),
        "Drift": report.drift.value,
        "Reason": report.reason or None,
        "Health": (budget.health or None) if budget else None,
    }
