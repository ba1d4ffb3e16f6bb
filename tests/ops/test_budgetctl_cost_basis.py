"""budgetctl and the cost basis attributes (CostMetric, CostExclusions): set, get, import and
export, as a user types them; validated before anything is written."""

from __future__ import annotations

import json
from pathlib import Path

from budgetctl.errors import ExitCode
from tests.support.moto_org import SPOKES, Org
from tests.support.operators import BUDGET, budgetctl

A, B, _ = SPOKES


def stored(org: Org, account: str) -> dict:
    table = org.management.resource("dynamodb").Table(org.budgets_table)
    return table.get_item(Key={"AccountId": account}, ConsistentRead=True)["Item"]


def test_given_metric_and_exclude_when_set_then_the_item_carries_them_and_the_spoke_gets_them(ops: Org):
    result = budgetctl("set", A, "1000", "--metric", "Amortized", "--exclude", "refunds,credits")
    assert result.code == ExitCode.OK, result.stderr
    item = stored(ops, A)
    assert (item["CostMetric"], item["CostExclusions"]) == ("amortized", "credits,refunds")
    row = budgetctl("get", A, "--output", "json").json()
    assert (row["CostMetric"], row["CostExclusions"]) == ("amortized", "credits,refunds")

    ops.invoke()  # the update function sends them inside the alert settings
    sent = ops.spokes[A].client("ssm").get_parameter(Name="/BlogBudgets/AlertSettings")["Parameter"]["Value"]
    assert json.loads(sent) == {"metric": "amortized", "exclude": ["credits", "refunds"]}

    # the same again writes nothing; an empty option removes the attribute (the stack's default)
    assert "nothing written" in budgetctl("set", A, "1000", "--exclude", "credits,refunds").stderr
    assert budgetctl("set", A, "1000", "--metric", "").code == ExitCode.OK
    assert "CostMetric" not in stored(ops, A)
    assert stored(ops, A)["CostExclusions"] == "credits,refunds"


def test_given_an_unknown_record_type_then_exit_2_naming_it_and_nothing_is_written(ops: Org):
    before = stored(ops, A)
    result = budgetctl("set", A, "2000", "--exclude", "credits,coupons")
    assert result.code == ExitCode.USAGE
    assert "CostExclusions 'coupons' is not a record type budget-sync excludes" in result.stderr
    result = budgetctl("set", A, "2000", "--metric", "cheapest")
    assert result.code == ExitCode.USAGE
    assert "CostMetric 'cheapest' is not a cost metric" in result.stderr
    assert stored(ops, A) == before


def test_export_then_import_carries_the_cost_basis_columns(ops: Org, tmp_path: Path):
    budgetctl("set", A, "1000", "--exclude", "none", "--metric", "net-unblended")
    exported = tmp_path / "budgets.csv"
    assert budgetctl("export", "--file", str(exported)).code == ExitCode.OK
    lines = exported.read_text().splitlines()
    assert lines[0].endswith(
        ",CostMetric,CostExclusions,IncidentUrgency,IncidentImpact,IncidentAssignmentGroup,IncidentCaller"
    )
    assert any(line.startswith(f"{A},1000,") and line.endswith(",net-unblended,none,,,,") for line in lines)
    assert "0 to add, 0 to change, 3 unchanged" in budgetctl("import", str(exported)).stderr

    source = tmp_path / "change.csv"
    source.write_text(f"AccountId,BudgetValue,CostExclusions\n{A},1000,tax\n{B},1000,bonus\n")
    result = budgetctl("import", str(source))
    assert result.code == ExitCode.USAGE
    assert "change.csv:3: CostExclusions 'bonus' is not a record type" in result.stderr
    source.write_text(f"AccountId,BudgetValue,CostExclusions\n{A},1000,tax\n")
    assert budgetctl("import", str(source)).code == ExitCode.OK
    assert (stored(ops, A)["CostExclusions"], stored(ops, A)["CostMetric"]) == ("tax", "net-unblended")


def test_status_and_report_name_what_each_budget_counts_as_the_spoke_confirmed_it(ops: Org):
    # GIVEN the spoke confirmed A's budget counts amortized cost without credits (its report,
    # recorded as ConfirmedCostBasis), and B's budget keeps its own definition
    table = ops.management.resource("dynamodb").Table(ops.status_table)
    table.put_item(
        Item={
            "AccountId": A,
            "Status": "APPLIED",
            "ConfirmedCostBasis": '{"exclude":["Credit"],"metric":"AmortizedCost"}',
        }
    )
    table.put_item(Item={"AccountId": B, "Status": "APPLIED", "ConfirmedCostBasis": ""})

    status = {r["AccountId"]: r for r in budgetctl("status", "--output", "json").json()}
    assert (status[A]["CostBasis"], status[B]["CostBasis"]) == ("AmortizedCost excl. Credit", "budget's own")
    assert "AmortizedCost excl. Credit" in budgetctl("status", "--wide").stdout
    brief = budgetctl("status").stdout
    assert "CostBasis" not in brief  # the default table keeps to 100 columns

    report = {r["AccountId"]: r for r in budgetctl("report", "--output", "json").json()}
    assert report[A]["CostBasis"] == "AmortizedCost excl. Credit"


def test_status_shows_a_budget_aws_reports_unhealthy_as_a_problem_with_aws_s_reason(ops: Org):
    from budget_sync_local import standins

    assert budgetctl("status").code == ExitCode.OK
    standins.set_health(A, BUDGET, "UNHEALTHY", "MULTI_YEAR_HISTORICAL_DATA_DISABLED")

    result = budgetctl("status", "--output", "json")

    assert result.code == ExitCode.PROBLEM
    row = next(r for r in result.json() if r["AccountId"] == A)
    assert row["Drift"] == "UNHEALTHY"
    assert row["Reason"].startswith(
        "AWS Budgets reports the budget UNHEALTHY: MULTI_YEAR_HISTORICAL_DATA_DISABLED"
    )
