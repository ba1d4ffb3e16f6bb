"""The reconciler on moto: drift is found, classified and repaired by re-writing the parameter.

On plain moto nothing runs the spoke's Automation document, so a repair shows as a new
parameter version (each version is a Parameter Store Change event in AWS) and the status
table's record; the local organisation's end-to-end test follows it to the budget.
"""

from __future__ import annotations

import json
from decimal import Decimal

import boto3
import pytest

from budget_sync.budgets_table import BudgetsTable, read_desired
from budget_sync.reconcile import Action, DesiredItem, Drift, Reconciler, classify
from budget_sync.spoke import AlertReading, BudgetReading, ParameterReading, SsmSpokeGateway
from budget_sync.status import Status, StatusStore, StatusUpdate
from budget_sync.status_table import DynamoStatusTable, read_statuses
from budget_sync_local.lambda_runtime import function_spec, invoke
from tests.fakes import FakeBudgetsTable
from tests.support.moto_org import PARAMETER, REGION, SPOKE_ROLE, SPOKES, Org, session_in
from tests.support.operators import (
    budget_limit,
    create_budget,
    edit_budget_limit,
    parameter_version,
)

A, B, C = SPOKES


def usd(amount: str) -> BudgetReading:
    return BudgetReading(Decimal(amount), "USD", Decimal("0"), Decimal("0"))


@pytest.mark.parametrize(
    ("parameter", "budget", "expected"),
    [
        (ParameterReading("1000", 3), usd("1000"), Drift.IN_SYNC),
        (ParameterReading("1000", 3), usd("1000.0"), Drift.IN_SYNC),  # Budgets answers "1000.0"
        (ParameterReading("900", 3), usd("1000"), Drift.PARAMETER_DRIFT),
        (ParameterReading("not a number", 3), usd("1000"), Drift.PARAMETER_DRIFT),
        (ParameterReading(None, None), usd("1000"), Drift.MISSING_PARAMETER),
        (ParameterReading("1000", 3), usd("1500"), Drift.BUDGET_DRIFT),
        (ParameterReading("1000", 3), BudgetReading(None, "GBP", None, None), Drift.BUDGET_DRIFT),
        (ParameterReading("1000", 3), None, Drift.MISSING_BUDGET),
    ],
)
def test_classify_compares_desired_with_the_parameter_first_then_the_budget(parameter, budget, expected):
    drift, reason = classify(Decimal("1000.00"), parameter, budget)
    assert drift is expected
    assert (reason == "") == (expected is Drift.IN_SYNC)


def gateway() -> SsmSpokeGateway:
    return SsmSpokeGateway(
        parameter_name=PARAMETER,
        role_name=SPOKE_ROLE,
        region=REGION,
        session_name="reconcile-test",
        session=boto3.Session(region_name=REGION),
    )


def run(org: Org, apply: bool):
    dynamodb = org.management.client("dynamodb")
    status = StatusStore(DynamoStatusTable(dynamodb, org.status_table))
    reconciler = Reconciler(
        gateway(),
        status,
        max_concurrency=4,
        desired=BudgetsTable(dynamodb, org.budgets_table),
    )
    summary = reconciler.run(
        read_desired(dynamodb, org.budgets_table), read_statuses(dynamodb, org.status_table), apply=apply
    )
    return {r.account_id: r for r in summary.reports}, summary


def test_given_a_budget_limit_edited_by_hand_when_reconciling_then_it_is_reported_and_repaired(ops: Org):
    # GIVEN someone raised A's budget limit to 1500 in the console; the parameter still says 1000
    edit_budget_limit(ops, A, "1500")
    version = parameter_version(ops, A)

    # WHEN the drift is only looked at
    reports, summary = run(ops, apply=False)

    # THEN A is reported as BUDGET_DRIFT, the others are in sync, and nothing was written
    assert reports[A].drift is Drift.BUDGET_DRIFT
    assert "budget limit 1500 differs from desired 1000" in reports[A].reason
    assert {reports[B].drift, reports[C].drift} == {Drift.IN_SYNC}
    assert summary.drifted == 1
    assert summary.repaired == 0
    assert parameter_version(ops, A) == version
    assert ops.status(A) is None

    # WHEN it is applied
    reports, summary = run(ops, apply=True)

    # THEN the parameter was written again with the same value: a new version, i.e. a new
    # Parameter Store Change event that starts the Automation, which resets the limit
    assert reports[A].action is Action.REPAIRED
    assert parameter_version(ops, A) == version + 1
    assert ops.parameter(A) == "1000"
    status = ops.status(A)
    assert status is not None
    assert status["Status"] == "SENT"  # APPLIED once the spoke reports (tests/e2e/test_closed_loop.py)
    assert status["Source"] == "reconciler"
    assert status["ParameterVersion"] == version + 1
    assert summary.repaired == 1
    assert summary.failed == 0
    assert parameter_version(ops, B) == 1  # accounts in sync are not written


def test_given_a_lost_parameter_write_when_the_reconciler_function_runs_then_the_parameter_is_repaired(
    ops: Org, capsys: pytest.CaptureFixture[str]
):
    # GIVEN the table says 2500 for B but the stream's write never reached the spoke
    ops.put(B, Decimal("2500"))
    assert ops.parameter(B) == "1000"

    # WHEN the scheduled function runs, as the template defines it
    result = invoke(function_spec("ReconcilerFunction"), {"source": "aws.scheduler"}, REGION)

    # THEN B's parameter holds the table's value, the status says so, and the metrics count it
    assert ops.parameter(B) == "2500"
    assert result == {
        "accounts": 3,
        "drifted": 1,
        "repaired": 1,
        "failed": 0,
        "states": {"IN_SYNC": 2, "PARAMETER_DRIFT": 1},
    }
    status = ops.status(B)
    assert status is not None
    assert (status["Status"], status["Source"], status["AppliedValue"]) == ("SENT", "reconciler", 2500)
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert metrics, "the handler must publish its metrics (CloudWatch embedded metric format)"
    published = {m["Name"] for blob in metrics for m in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert {"Drifted", "Repaired", "Failed"} <= published
    assert metrics[-1]["Repaired"] == [1.0] or metrics[-1]["Repaired"] == 1.0


def test_given_a_deleted_parameter_and_a_deleted_budget_then_both_are_repaired_by_a_parameter_write(ops: Org):
    ops.spokes[A].client("ssm").delete_parameter(Name=PARAMETER)
    ops.spokes[C].client("budgets").delete_budget(AccountId=C, BudgetName="SpokeAccountBudget")

    reports, _ = run(ops, apply=True)

    assert reports[A].drift is Drift.MISSING_PARAMETER
    assert reports[C].drift is Drift.MISSING_BUDGET
    assert reports[A].action is reports[C].action is Action.REPAIRED
    assert ops.parameter(A) == "1000"
    assert parameter_version(ops, C) == 2


def test_given_an_account_without_spoke_stack_then_it_is_unreachable_failed_and_recorded(ops: Org):
    # GIVEN an item for an account whose spoke role does not exist
    ops.put("444444444444", Decimal("10"))

    reports, summary = run(ops, apply=True)

    report = reports["444444444444"]
    assert report.drift is Drift.UNREACHABLE
    assert "cannot assume" in report.reason
    assert summary.failed == 1
    status = ops.status("444444444444")
    assert status is not None
    assert (status["Status"], status["Source"]) == ("FAILED", "reconciler")
    assert "cannot assume" in status["Reason"]

    # and a second run does not rewrite the same failure
    before = ops.status("444444444444")
    run(ops, apply=True)
    assert ops.status("444444444444") == before


def test_given_an_invalid_item_then_nothing_is_applied_and_it_counts_as_failed(ops: Org):
    ops.put_raw({"AccountId": {"S": A}, "BudgetValue": {"N": "-5"}})
    version = parameter_version(ops, A)

    reports, summary = run(ops, apply=True)

    assert reports[A].drift is Drift.INVALID_ITEM
    assert "BudgetValue" in reports[A].reason
    assert "-5" in reports[A].reason
    assert summary.failed == 1
    assert parameter_version(ops, A) == version


def test_given_a_newer_stream_status_written_meanwhile_then_the_reconciler_does_not_replace_it(ops: Org):
    # GIVEN the reconciler read the status table before the stream function wrote a newer status
    dynamodb = ops.management.client("dynamodb")
    store = StatusStore(DynamoStatusTable(dynamodb, ops.status_table))
    store.record(StatusUpdate(A, Status.APPLIED, "100", Decimal("1000"), Decimal("1000")))
    statuses = read_statuses(dynamodb, ops.status_table)
    edit_budget_limit(ops, A, "1200")
    store.record(StatusUpdate(A, Status.APPLIED, "200", Decimal("1000"), Decimal("1000"), reason="stream"))

    # WHEN the reconciler records its repair
    Reconciler(gateway(), store, desired=BudgetsTable(dynamodb, ops.budgets_table)).run(
        read_desired(dynamodb, ops.budgets_table), statuses, apply=True
    )

    # THEN the stream's newer status stands
    status = ops.status(A)
    assert status is not None
    assert (status["Source"], status["Reason"]) == ("stream", "stream")


def test_a_reconciliation_reads_each_account_through_one_cached_role_session(ops: Org):
    spokes = gateway()
    items = [DesiredItem(a, Decimal("1000")) for a in SPOKES]
    Reconciler(spokes, None).run(items)
    Reconciler(spokes, None).run(items)
    assert set(spokes._clients) == set(SPOKES)
    assert budget_limit(ops, A) == Decimal("1000")


def test_spend_and_percent_of_limit_come_from_the_budget(ops: Org):
    ops.spokes[B].client("budgets").delete_budget(AccountId=B, BudgetName="SpokeAccountBudget")
    create_budget(ops, B, "1000", actual="812.40", forecast="1105")
    session_in(B)  # the account is reachable as an administrator too (sanity)

    reports, _ = run(ops, apply=False)

    budget = reports[B].budget
    assert budget is not None
    assert (budget.actual, budget.forecasted) == (Decimal("812.40"), Decimal("1105"))
    assert reports[B].percent_of_limit == Decimal("81.2")


def test_the_reconciler_rebuilds_a_missing_status_once_and_then_leaves_it_alone(ops: Org):
    # GIVEN accounts in sync whose status table is empty (it is derived data, e.g. re-created)
    assert ops.status(B) is None

    # WHEN the reconciler applies twice
    run(ops, apply=True)
    first = ops.status(B)
    run(ops, apply=True)

    # THEN the status was written once, as APPLIED by the reconciler, and not rewritten
    assert first is not None
    assert (first["Status"], first["Source"], first["DesiredValue"]) == ("APPLIED", "reconciler", 1000)
    assert first["Reason"] == "in sync: limit and alerts (checked by the reconciler)"
    assert ops.status(B) == first


class _SameVersionSpokes:
    """A spoke whose parameter does not take a new version for an unchanged value."""

    def read_parameter(self, account_id: str) -> ParameterReading:
        return ParameterReading("1000", 7)

    def read_budget(self, account_id: str, budget_name: str = "SpokeAccountBudget") -> BudgetReading:
        return usd("1500")

    def put_budget_value(self, account_id: str, amount_text: str) -> int:
        return 7

    def read_alert_state(self, account_id: str, budget_name: str = "SpokeAccountBudget") -> AlertReading:
        return AlertReading({}, {})

    def put_alert_settings(self, account_id: str, settings_json: str) -> int:
        return 1


def test_given_a_write_that_creates_no_new_version_then_the_repair_is_reported_as_failed():
    # GIVEN budget drift under a correct parameter, and a write that returns the same version
    # WHEN the reconciler repairs
    reconciler = Reconciler(
        _SameVersionSpokes(), None, desired=FakeBudgetsTable([DesiredItem(A, Decimal("1000"))])
    )
    summary = reconciler.run([DesiredItem(A, Decimal("1000"))])
    report = reconciler._repair(summary.reports[0])

    # THEN it does not claim a repair: no new version means no change event, no Automation run
    assert summary.reports[0].drift is Drift.BUDGET_DRIFT
    assert report.action is Action.FAILED
    assert "kept version 7" in report.reason


def test_given_a_suspended_account_skipped_by_the_resolver_then_the_reconciler_reports_no_new_failure(
    ops: Org,
):
    # GIVEN an account that was closed (its spoke role is gone) and that the resolver SKIPPED
    closed = "444444444444"
    ops.put(closed, Decimal("10"))
    ops.management.client("dynamodb").update_item(
        TableName=ops.status_table,
        Key={"AccountId": {"S": closed}},
        UpdateExpression="SET #st = :st, Reason = :reason, #src = :src",
        ExpressionAttributeNames={"#st": "Status", "#src": "Source"},
        ExpressionAttributeValues={
            ":st": {"S": "SKIPPED"},
            ":reason": {"S": "account is SUSPENDED"},
            ":src": {"S": "resolver"},
        },
    )
    before = ops.status(closed)

    # WHEN the reconciler runs, hour after hour
    for _ in range(2):
        reports, summary = run(ops, apply=True)

        # THEN the account stays SKIPPED (no FAILED, hence no new notice) and counts as no failure
        assert ops.status(closed) == before
        assert summary.failed == 0
        assert reports[closed].drift is Drift.UNREACHABLE
        assert "SKIPPED" in reports[closed].reason
