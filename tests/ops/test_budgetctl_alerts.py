"""budgetctl and the alert attributes: set, get, status, import and export, as a user types them."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from budgetctl.errors import ExitCode
from tests.support.moto_org import SPOKES, Org
from tests.support.operators import BUDGET, budgetctl

A, B, _ = SPOKES


def stored(org: Org, account: str) -> dict:
    table = org.management.resource("dynamodb").Table(org.budgets_table)
    return table.get_item(Key={"AccountId": account}, ConsistentRead=True)["Item"]


def test_given_alert_options_when_set_then_the_item_carries_them_and_get_shows_them(ops: Org):
    result = budgetctl(
        "set",
        A,
        "1000",
        "--alert-emails",
        "b@example.com,a@example.com",
        "--thresholds",
        "100,80",
        "--forecasted",
        "100",
    )
    assert result.code == ExitCode.OK, result.stderr
    item = stored(ops, A)
    assert item["AlertEmails"] == "a@example.com,b@example.com"
    assert item["AlertThresholds"] == "80,100"
    assert item["ForecastedThreshold"] == "100"
    row = budgetctl("get", A, "--output", "json").json()  # one result: one object
    assert (row["AlertEmails"], row["AlertThresholds"], row["ForecastedThreshold"]) == (
        "a@example.com,b@example.com",
        "80,100",
        "100",
    )
    # the same again writes nothing; an empty option removes the attribute (the stack's default)
    assert "nothing written" in budgetctl("set", A, "1000", "--thresholds", "80,100").stderr
    assert budgetctl("set", A, "1000", "--thresholds", "").code == ExitCode.OK
    assert "AlertThresholds" not in stored(ops, A)
    assert stored(ops, A)["AlertEmails"] == "a@example.com,b@example.com"


def test_given_an_invalid_address_then_exit_2_naming_it_and_nothing_is_written(ops: Org):
    before = stored(ops, A)
    result = budgetctl("set", A, "2000", "--alert-emails", "ops@example.com,ops(at)example.com")
    assert result.code == ExitCode.USAGE
    assert "AlertEmails 'ops(at)example.com' is not a well-formed email address" in result.stderr
    assert stored(ops, A) == before


def test_given_too_many_recipients_or_two_forecasts_then_exit_2(ops: Org):
    eleven = ",".join(f"u{i}@example.com" for i in range(11))
    result = budgetctl("set", A, "1000", "--alert-emails", eleven)
    assert result.code == ExitCode.USAGE
    assert "has 11 addresses; AWS Budgets takes at most 10" in result.stderr
    result = budgetctl("set", A, "1000", "--forecasted", "90,100")
    assert result.code == ExitCode.USAGE
    assert "ForecastedThreshold '90,100' must be one threshold at most" in result.stderr


def test_export_then_import_carries_the_alert_columns_and_an_empty_cell_removes_one(ops: Org, tmp_path: Path):
    budgetctl("set", A, "1000", "--alert-emails", "team@example.com", "--forecasted", "none")
    exported = tmp_path / "budgets.csv"
    assert budgetctl("export", "--file", str(exported)).code == ExitCode.OK
    lines = exported.read_text().splitlines()
    assert lines[0].endswith(
        ",AlertEmails,AlertThresholds,ForecastedThreshold,CostMetric,CostExclusions,"
        "IncidentUrgency,IncidentImpact,IncidentAssignmentGroup,IncidentCaller"
    )
    assert any(
        line.startswith(f"{A},1000,") and line.endswith(",team@example.com,,none,,,,,,") for line in lines
    )
    assert "0 to add, 0 to change, 3 unchanged" in budgetctl("import", str(exported)).stderr

    source = tmp_path / "change.csv"
    source.write_text(
        f"AccountId,BudgetValue,AlertThresholds,ForecastedThreshold\n{A},1000,90,\n{B},1000,,\n"
    )
    result = budgetctl("import", str(source))
    assert result.code == ExitCode.OK, result.stderr
    assert "0 to add, 1 to change, 1 unchanged" in result.stderr
    item = stored(ops, A)
    assert item["AlertThresholds"] == "90"
    assert "ForecastedThreshold" not in item
    assert item["AlertEmails"] == "team@example.com"  # no AlertEmails column: untouched


def test_import_validates_the_alert_columns_by_line(ops: Org, tmp_path: Path):
    source = tmp_path / "bad.csv"
    source.write_text(f"AccountId,BudgetValue,AlertEmails\n{A},1000,not-an-address\n")
    result = budgetctl("import", str(source))
    assert result.code == ExitCode.USAGE
    assert "bad.csv:2: AlertEmails 'not-an-address' is not a well-formed email address" in result.stderr


def test_status_shows_the_alerts_sent_and_what_the_spoke_budget_has(ops: Org):
    budgetctl("set", A, "1000", "--alert-emails", "team@example.com", "--thresholds", "90")
    ops.invoke()  # the update function sends the alert settings and records them
    assert json.loads(
        ops.spokes[A].client("ssm").get_parameter(Name="/BlogBudgets/AlertSettings")["Parameter"]["Value"]
    ) == {
        "emails": ["team@example.com"],
        "actual": ["90"],
    }
    ops.spokes[A].client("budgets").create_notification(  # what the spoke document would have made
        AccountId=A,
        BudgetName=BUDGET,
        Notification={"NotificationType": "ACTUAL", "ComparisonOperator": "GREATER_THAN", "Threshold": 90.0},
        Subscribers=[{"SubscriptionType": "EMAIL", "Address": "team@example.com"}],
    )
    rows = {r["AccountId"]: r for r in budgetctl("status", "--output", "json").json()}
    assert rows[A]["AlertsSent"] == "emails=team@example.com actual=90"
    assert rows[A]["SpokeAlerts"] == "ACTUAL>90%: team@example.com"
    assert rows[B]["AlertsSent"] is None
    assert ops.status(A)["AlertSettings"] == '{"actual":["90"],"emails":["team@example.com"]}'  # type: ignore[index]
    assert ops.status(A)["DesiredValue"] == Decimal(1000)  # type: ignore[index]


def test_status_and_reconcile_show_alert_drift_when_the_budgets_notifications_are_not_the_items(ops: Org):
    # GIVEN A's item asks for alerts at 90 % to team@, and the spoke budget has them
    budgetctl(
        "set", A, "1000", "--alert-emails", "team@example.com", "--thresholds", "90", "--forecasted", "none"
    )
    ops.invoke()
    notification = {"NotificationType": "ACTUAL", "ComparisonOperator": "GREATER_THAN", "Threshold": 90.0}
    budgets = ops.spokes[A].client("budgets")
    budgets.create_notification(
        AccountId=A,
        BudgetName=BUDGET,
        Notification=notification,
        Subscribers=[{"SubscriptionType": "EMAIL", "Address": "team@example.com"}],
    )
    in_sync = {r["AccountId"]: r for r in budgetctl("status", "--output", "json").json()}
    assert in_sync[A]["Drift"] == "IN_SYNC"

    # WHEN someone adds a recipient by hand in the spoke
    budgets.create_subscriber(
        AccountId=A,
        BudgetName=BUDGET,
        Notification=notification,
        Subscriber={"SubscriptionType": "EMAIL", "Address": "intruder@example.com"},
    )

    # THEN status and reconcile show alert drift, naming the notification and the address (exit 1)
    result = budgetctl("status", "--output", "json")
    assert result.code == ExitCode.PROBLEM
    row = {r["AccountId"]: r for r in result.json()}[A]
    assert row["Drift"] == "ALERT_DRIFT"
    reconcile = budgetctl("reconcile", "--output", "json")
    assert reconcile.code == ExitCode.PROBLEM
    (shown,) = [r for r in reconcile.json() if r["AccountId"] == A]
    assert shown["Drift"] == "ALERT_DRIFT"
    assert "ACTUAL>90% subscribers: missing -, unexpected intruder@example.com" in shown["Reason"]
