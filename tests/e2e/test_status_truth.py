"""The status tells the truth about versions (issue 18): a report counts only for a version the
pipeline sent, a forged one poisons nothing, and a hand edit is drift, not APPLIED. Through the
result function as the template names it, on the local organisation."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from budget_sync.spoke import SsmSpokeGateway
from budget_sync_local.organisation import LocalOrganisation
from tests.e2e.test_closed_loop import reconcile
from tests.support.local_org import sent_minutes_ago

# every test: moto or the local organisation (make unit does not import this module)
pytestmark = [pytest.mark.e2e, pytest.mark.aws]

A = "111111111111"


def forged(version: int, limit: str = "1") -> dict[str, Any]:
    """A report any principal of the spoke account with events:PutEvents could send."""
    return {
        "source": "budget-sync.spoke",
        "detail-type": "Budget Update Result",
        "account": A,
        "detail": {
            "ExecutionId": "forged",
            "ParameterVersion": version,
            "Outcome": "APPLIED",
            "NewLimit": limit,
        },
    }


def confirmed_minutes_ago(org: LocalOrganisation, account: str, minutes: int) -> None:
    old = (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat(timespec="seconds")
    org.management.client("dynamodb").update_item(
        TableName=org.stack.status_table,
        Key={"AccountId": {"S": account}},
        UpdateExpression="SET ConfirmedAt = :old",
        ExpressionAttributeValues={":old": {"S": old}},
    )


def test_given_a_report_about_a_version_far_in_the_future_then_it_is_invalid_and_poisons_nothing(
    local_org: LocalOrganisation,
):
    # GIVEN A at 1000, confirmed
    local_org.put(A, 1000)
    local_org.pipeline.run_until_idle()
    # WHEN a principal of A reports parameter version 10^15
    answer = local_org.invoke_result_function(forged(10**15))
    # THEN it is refused as an invalid result, naming the field and the value
    assert answer["recorded"] is False
    assert "ParameterVersion" in answer["reason"]
    assert str(10**15) in answer["reason"]
    # and the next genuine value is confirmed as ever
    local_org.put(A, 2000)
    local_org.pipeline.run_until_idle()
    status = local_org.status(A)
    assert status is not None
    assert (status["Status"], status["ConfirmedLimit"]) == ("APPLIED", Decimal(2000))


def test_given_a_forged_report_a_few_versions_ahead_then_the_next_genuine_send_is_still_confirmed(
    local_org: LocalOrganisation,
):
    # GIVEN A at 1000, confirmed, and a forged report three versions ahead of the one sent
    local_org.put(A, 1000)
    local_org.pipeline.run_until_idle()
    sent = int(local_org.status(A)["ParameterVersion"])  # type: ignore[index]
    local_org.invoke_result_function(forged(sent + 3))
    # WHEN the operator writes 2000 (parameter version sent + 1)
    local_org.put(A, 2000)
    local_org.pipeline.run_until_idle()
    # THEN the spoke's own report of that version decides: APPLIED at 2000
    status = local_org.status(A)
    assert status is not None
    assert (status["Status"], status["ConfirmedLimit"], status["ConfirmedVersion"]) == (
        "APPLIED",
        Decimal(2000),
        sent + 1,
    )


def test_given_the_parameter_edited_by_hand_then_the_status_is_drift_not_applied_and_the_reconciler_repairs(
    local_org: LocalOrganisation,
):
    # GIVEN A at 1250.50, confirmed
    local_org.put(A, Decimal("1250.50"))
    local_org.pipeline.run_until_idle()
    # WHEN someone in A edits the parameter to 9999 by hand, and the spoke applies it
    local_org.session_in(A).client("ssm").put_parameter(
        Name=local_org.spokes[A].parameter_name, Value="9999", Overwrite=True
    )
    local_org.pipeline.run_until_idle()
    assert local_org.status(A)["ConfirmedLimit"] == Decimal(9999)  # type: ignore[index]
    # and no write of the pipeline claims that version within the bound
    confirmed_minutes_ago(local_org, A, 20)
    local_org.check_unconfirmed()
    # THEN the status is FAILED: the budget holds 9999, not the desired 1250.50
    status = local_org.status(A)
    assert status is not None
    assert status["Status"] == "FAILED"
    assert "9999" in status["Reason"]
    assert "1250.50" in status["Reason"]
    assert status["DesiredValue"] == Decimal("1250.50")
    # and the reconciler's repair brings it back, confirmed by the spoke
    reconcile(local_org)
    local_org.pipeline.run_until_idle()
    status = local_org.status(A)
    assert status is not None
    assert (status["Status"], status["ConfirmedLimit"]) == ("APPLIED", Decimal("1250.50"))


def report(step: str, version: int, **detail: Any) -> dict[str, Any]:
    """The Automation's report of one step, as its forwarding rule delivers it."""
    return {
        "source": "budget-sync.spoke",
        "detail-type": "Budget Update Result",
        "account": A,
        "detail": {
            "Step": step,
            "ExecutionId": "run-2",
            "ParameterVersion": version,
            "Outcome": "APPLIED",
            **detail,
        },
    }


def alert_versions(org: LocalOrganisation) -> list[int]:
    ssm = org.session_in(A).client("ssm")
    return [
        int(ssm.get_parameter(Name=f"/BlogBudgets/{name}")["Parameter"]["Version"])
        for name in ("AlertSettings", "AlertDefaults")
    ]


APPLIED_ALERTS = '{"emails":["team-a@example.com"]}'


def test_given_an_alerts_only_change_then_the_limit_steps_report_alone_does_not_make_it_applied(
    local_org: LocalOrganisation,
):
    # GIVEN A at 1000, confirmed; then an alerts-only change sent, whose spoke run has not reported
    local_org.put(A, 1000)
    local_org.pipeline.run_until_idle()
    local_org.pipeline.spokes = {}
    local_org.put(A, 1000, AlertEmails="team-a@example.com")
    local_org.pipeline.run_until_idle()
    status = local_org.status(A)
    assert status is not None
    assert status["Status"] == "SENT"
    version = int(status["ParameterVersion"])

    # WHEN the run's limit step reports (and its alerts step dies without a report)
    local_org.invoke_result_function(report("UpdateBudgetLimit", version, NewLimit="1000", OldLimit="1000"))

    # THEN the status still waits for the alerts that were sent
    assert local_org.status(A)["Status"] == "SENT"  # type: ignore[index]
    # and the alerts step's report about the alert settings sent makes it APPLIED
    local_org.invoke_result_function(
        report("ReconcileAlerts", version, Applied=APPLIED_ALERTS, AlertsVersions=alert_versions(local_org))
    )
    status = local_org.status(A)
    assert status is not None
    assert (status["Status"], status["ConfirmedAlerts"]) == ("APPLIED", APPLIED_ALERTS)


def test_given_an_alerts_only_change_whose_run_reported_before_sent_then_it_is_applied_not_failed_after_the_bound(
    local_org: LocalOrganisation, monkeypatch: pytest.MonkeyPatch
):
    # GIVEN A at 1000, confirmed
    local_org.put(A, 1000)
    local_org.pipeline.run_until_idle()
    version = int(local_org.status(A)["ParameterVersion"])  # type: ignore[index]
    local_org.pipeline.spokes = {}
    original = SsmSpokeGateway.put_alert_settings

    def and_the_run_reports(self: SsmSpokeGateway, account_id: str, settings_json: str) -> int:
        written = original(self, account_id, settings_json)
        # the spoke's run of the new settings reports before the stream function records SENT
        local_org.invoke_result_function(
            report("UpdateBudgetLimit", version, NewLimit="1000", OldLimit="1000")
        )
        local_org.invoke_result_function(
            report(
                "ReconcileAlerts", version, Applied=APPLIED_ALERTS, AlertsVersions=alert_versions(local_org)
            )
        )
        return written

    monkeypatch.setattr(SsmSpokeGateway, "put_alert_settings", and_the_run_reports)

    # WHEN an alerts-only change is sent
    local_org.put(A, 1000, AlertEmails="team-a@example.com")
    local_org.pipeline.run_until_idle()

    # THEN the SENT takes the reports' verdict: APPLIED, and the bound's check leaves it so
    assert local_org.status(A)["Status"] == "APPLIED"  # type: ignore[index]
    sent_minutes_ago(local_org, A, 20)
    local_org.check_unconfirmed()
    assert local_org.status(A)["Status"] == "APPLIED"  # type: ignore[index]


def test_given_an_operators_write_between_the_reconcilers_reread_and_its_write_then_the_budget_ends_at_the_new_value(
    local_org: LocalOrganisation, monkeypatch: pytest.MonkeyPatch
):
    # GIVEN A at 1000, confirmed, then its budget limit edited by hand to 1500 (drift)
    local_org.put(A, 1000)
    local_org.pipeline.run_until_idle()
    budgets = local_org.session_in(A).client("budgets")
    budget = budgets.describe_budget(AccountId=A, BudgetName=local_org.spokes[A].budget_name)["Budget"]
    budget["BudgetLimit"] = {"Amount": "1500", "Unit": "USD"}
    budgets.update_budget(
        AccountId=A,
        NewBudget={k: v for k, v in budget.items() if k not in ("CalculatedSpend", "LastUpdatedTime")},
    )
    original = SsmSpokeGateway.put_budget_value
    interleaved: list[str] = []

    def operator_first(self: SsmSpokeGateway, account_id: str, amount_text: str) -> int:
        if not interleaved:
            # WHEN, after the reconciler re-read 1000 and before its write, an operator writes
            # 2000 and the stream function sends it
            interleaved.append(amount_text)
            local_org.put(A, 2000)
            local_org.pipeline.run_until_idle()
        return original(self, account_id, amount_text)

    monkeypatch.setattr(SsmSpokeGateway, "put_budget_value", operator_first)
    reconcile(local_org)
    local_org.pipeline.run_until_idle()

    # THEN the reconciler's 1000 did not win: the parameter and the budget end at 2000, APPLIED
    assert interleaved == ["1000"]
    view = local_org.view(A)
    assert (view.parameter, view.budget_limit, view.status) == ("2000", Decimal(2000), "APPLIED")


def test_given_the_spoke_refused_the_alerts_then_the_reconciler_does_not_call_the_account_applied(
    local_org: LocalOrganisation,
):
    # GIVEN A's limit applied but its alert settings refused by the spoke (an address the
    # management account never saw, in the spoke's defaults)
    local_org.put(A, 1000, AlertEmails="team-a@example.com")
    local_org.pipeline.run_until_idle()
    local_org.session_in(A).client("ssm").put_parameter(
        Name="/BlogBudgets/AlertDefaults",
        Value='{"emails": ["finance(at)example.com"], "actual": ["80"], "forecasted": "100"}',
        Overwrite=True,
    )
    local_org.put(A, 2000)
    local_org.pipeline.run_until_idle()
    failed = local_org.status(A)
    assert failed is not None
    assert failed["Status"] == "FAILED"
    assert failed["Reason"].startswith("spoke: alerts not applied")

    # WHEN the reconciler finds the limit in sync
    reports = reconcile(local_org)

    # THEN it compares the alerts (alert drift) and does not write APPLIED: the failure stands
    assert reports[A].drift.value == "ALERT_DRIFT"
    status = local_org.status(A)
    assert status is not None
    assert (status["Status"], status["Reason"]) == ("FAILED", failed["Reason"])


def alert_drift_by_hand(org: LocalOrganisation) -> None:
    """Someone with the spoke's console removes team-a from A's 80 % notification and adds an
    address of their own: the item still says team-a."""
    budgets = org.session_in(A).client("budgets")
    notification = {
        "NotificationType": "ACTUAL",
        "ComparisonOperator": "GREATER_THAN",
        "Threshold": 80.0,
        "ThresholdType": "PERCENTAGE",
    }
    budgets.create_subscriber(
        AccountId=A,
        BudgetName="SpokeAccountBudget",
        Notification=notification,
        Subscriber={"SubscriptionType": "EMAIL", "Address": "someone-else@example.com"},
    )
    budgets.delete_subscriber(
        AccountId=A,
        BudgetName="SpokeAccountBudget",
        Notification=notification,
        Subscriber={"SubscriptionType": "EMAIL", "Address": "team-a@example.com"},
    )


def test_given_alerts_changed_by_hand_when_the_reconciler_runs_then_it_reports_alert_drift_and_repairs_it(
    local_org: LocalOrganisation,
):
    # GIVEN A at 1000 with its own recipients, APPLIED; then its 80 % alert edited by hand
    local_org.put(A, 1000, AlertEmails="team-a@example.com")
    local_org.pipeline.run_until_idle()
    assert local_org.status(A)["Status"] == "APPLIED"  # type: ignore[index]
    alert_drift_by_hand(local_org)

    # WHEN the reconciler function runs (its schedule's event, its role, on the local organisation)
    result = local_org.invoke_reconciler()

    # THEN the account is alert drift (the limit is in sync), repaired by re-sending its
    # alert settings: SENT with the alert parameter's new version, not APPLIED
    assert result["states"] == {"ALERT_DRIFT": 1}
    assert result["repaired"] == 1
    sent = local_org.status(A)
    assert sent is not None
    assert sent["Status"] == "SENT"
    assert sent["Source"] == "reconciler"
    assert (
        "ACTUAL>80% subscribers: missing team-a@example.com, unexpected someone-else@example.com"
        in sent["Reason"]
    )
    assert sent["AlertSettings"] == '{"emails":["team-a@example.com"]}'
    version = local_org.session_in(A).client("ssm").get_parameter(Name="/BlogBudgets/AlertSettings")
    assert sent["SentAlertsVersion"] == version["Parameter"]["Version"]

    # and the spoke's Automation applies them and reports: APPLIED, the budget's alerts as the item says
    local_org.pipeline.run_until_idle()
    applied = local_org.status(A)
    assert applied is not None
    assert applied["Status"] == "APPLIED"
    recipients = {tuple(sorted(a.subscribers)) for a in local_org.alerts(A)}
    assert recipients == {("team-a@example.com",)}
    again = local_org.invoke_reconciler()
    assert again["states"] == {"IN_SYNC": 1}
    assert again["repaired"] == 0


def test_given_alerts_edited_by_hand_again_after_a_confirmed_repair_then_the_reconciler_fails_it_once_and_stops_repairing(
    local_org: LocalOrganisation,
):
    # GIVEN A's alerts edited by hand, repaired by the reconciler and confirmed by the spoke
    local_org.put(A, 1000, AlertEmails="team-a@example.com")
    local_org.pipeline.run_until_idle()
    alert_drift_by_hand(local_org)
    assert local_org.invoke_reconciler()["repaired"] == 1
    local_org.pipeline.run_until_idle()
    repaired = local_org.status(A)
    assert repaired is not None
    assert repaired["Status"] == "APPLIED"
    assert repaired["RepairedAlertsVersion"] == repaired["SentAlertsVersion"]
    ssm = local_org.session_in(A).client("ssm")
    version = ssm.get_parameter(Name="/BlogBudgets/AlertSettings")["Parameter"]["Version"]

    # WHEN the same hand edit comes back and the reconciler runs twice more
    alert_drift_by_hand(local_org)
    first = local_org.invoke_reconciler()
    local_org.pipeline.run_until_idle()
    failed = local_org.status(A)
    second = local_org.invoke_reconciler()

    # THEN it is not repaired again: FAILED once, saying the alert repair did not hold, and the
    # alert parameter is not written again
    assert first["repaired"] == 0
    assert second["repaired"] == 0
    assert failed is not None
    assert failed["Status"] == "FAILED"
    assert "alert repair" in failed["Reason"]
    assert "did not hold" in failed["Reason"]
    assert ssm.get_parameter(Name="/BlogBudgets/AlertSettings")["Parameter"]["Version"] == version
    assert local_org.status(A) == failed  # the second run writes nothing new

    # and a new alert setting from the table starts afresh: sent and applied
    local_org.put(A, 1000, AlertEmails="team-b@example.com")
    local_org.pipeline.run_until_idle()
    assert local_org.status(A)["Status"] == "APPLIED"  # type: ignore[index]


def test_given_the_spoke_refused_the_alerts_when_the_reconciler_handler_runs_then_it_is_alert_drift_not_applied(
    local_org: LocalOrganisation,
):
    # GIVEN A's limit applied but its alert settings refused by the spoke (FAILED "spoke: alerts not applied")
    local_org.put(A, 1000, AlertEmails="team-a@example.com")
    local_org.pipeline.run_until_idle()
    local_org.session_in(A).client("ssm").put_parameter(
        Name="/BlogBudgets/AlertDefaults",
        Value='{"emails": ["finance(at)example.com"], "actual": ["80", "90"], "forecasted": "100"}',
        Overwrite=True,
    )
    local_org.put(A, 2000)  # the item no longer names recipients: the invalid default applies
    local_org.pipeline.run_until_idle()
    failed = local_org.status(A)
    assert failed is not None
    assert failed["Status"] == "FAILED"
    assert failed["Reason"].startswith("spoke: alerts not applied")

    # WHEN the reconciler function runs: the limit is in sync
    result = local_org.invoke_reconciler()

    # THEN it compared the alerts and reports alert drift, naming the invalid default; no APPLIED
    assert result["states"]["ALERT_DRIFT"] == 1
    status = local_org.status(A)
    assert status is not None
    assert status["Status"] == "FAILED"
    assert status["Status"] != "APPLIED"


def test_given_a_spoke_role_without_the_alert_defaults_read_then_the_reconciler_says_to_update_the_spoke_stack(
    local_org: LocalOrganisation,
):
    # GIVEN A at 1000, APPLIED, whose spoke role is the earlier one (no read of AlertDefaults)
    local_org.put(A, 1000)
    local_org.pipeline.run_until_idle()
    iam = local_org.session_in(A).client("iam")
    parameter = f"arn:aws:ssm:{local_org.region}:{A}:parameter/BlogBudgets"
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["ssm:PutParameter", "ssm:GetParameter"],
                "Resource": [f"{parameter}/CostThreshold", f"{parameter}/AlertSettings"],
            },
            {
                "Effect": "Allow",
                "Action": "budgets:ViewBudget",
                "Resource": f"arn:aws:budgets::{A}:budget/SpokeAccountBudget",
            },
        ],
    }
    iam.put_role_policy(
        RoleName="BlogBudgetsSpokeRole", PolicyName="budget-sync-spoke", PolicyDocument=json.dumps(policy)
    )

    # WHEN the reconciler function runs
    result = local_org.invoke_reconciler()

    # THEN A is unreachable, FAILED with the reason naming the parameter and what to do; never APPLIED
    assert result["states"] == {"UNREACHABLE": 1}
    status = local_org.status(A)
    assert status is not None
    assert status["Status"] == "FAILED"
    assert "may not read /BlogBudgets/AlertDefaults" in status["Reason"]
    assert "update it to the current template-spoke.yaml" in status["Reason"]
