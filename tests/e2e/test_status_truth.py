"""The status tells the truth about versions (issue 18): a report counts only for a version the
pipeline sent, a forged one poisons nothing, and a hand edit is drift, not APPLIED. Through the
result function as the template names it, on the local organisation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from budget_sync_local.organisation import LocalOrganisation
from tests.e2e.test_closed_loop import reconcile

pytestmark = pytest.mark.e2e

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
