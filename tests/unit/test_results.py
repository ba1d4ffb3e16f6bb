"""Parsing spoke results: text from another account is validated and bounded, never trusted."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from budget_sync.results import (
    MAX_TEXT,
    ExecutionEnded,
    InvalidResult,
    SpokeReport,
    alerts_confirmed,
    decide_ended,
    decide_report,
    decide_unclaimed,
    parse_event,
)
from budget_sync.status import Status

A = "111111111111"


def report(**detail: Any) -> dict[str, Any]:
    base = {
        "ExecutionId": "e",
        "ParameterVersion": 3,
        "Outcome": "APPLIED",
        "NewLimit": "555",
        "OldLimit": "1",
    }
    return {
        "source": "budget-sync.spoke",
        "detail-type": "Budget Update Result",
        "account": A,
        "detail": {**base, **detail},
    }


def test_a_report_names_the_account_of_the_envelope_not_of_its_detail():
    parsed = parse_event(report(AccountId="999999999999"))
    assert isinstance(parsed, SpokeReport)
    assert (parsed.account_id, parsed.parameter_version, parsed.outcome) == (A, 3, Status.APPLIED)


@pytest.mark.parametrize(
    ("detail", "field"),
    [
        ({"Outcome": "DONE"}, "Outcome"),
        ({"ParameterVersion": "3"}, "ParameterVersion"),
        ({"ParameterVersion": 0}, "ParameterVersion"),
        ({"NewLimit": "lots"}, "NewLimit"),
        ({"ExecutionId": ""}, "ExecutionId"),
    ],
)
def test_given_a_malformed_report_then_the_error_names_the_field(detail: dict[str, Any], field: str):
    with pytest.raises(InvalidResult, match=field):
        parse_event(report(**detail))


def test_a_spokes_reason_is_kept_as_bounded_text_without_control_characters():
    parsed = parse_event(report(Outcome="FAILED", Reason="\x1b[31m=cmd|' /C calc'!A0" + "x" * 5000))
    assert isinstance(parsed, SpokeReport)
    assert "\x1b" not in parsed.reason
    assert len(parsed.reason) == MAX_TEXT


def test_only_failed_timed_out_or_cancelled_executions_are_results():
    event = {
        "source": "aws.ssm",
        "detail-type": "EC2 Automation Execution Status-change Notification",
        "account": A,
        "detail": {"ExecutionId": "e", "Status": "Success"},
    }
    assert parse_event(event) is None
    event["detail"]["Status"] = "Cancelled"
    assert parse_event(event) == ExecutionEnded(A, "e", "Cancelled")


def test_an_event_of_another_source_is_refused():
    with pytest.raises(InvalidResult, match="source"):
        parse_event({**report(), "source": "someone.else"})


def alerts_report(**detail: Any) -> dict[str, Any]:
    event = report(Step="ReconcileAlerts", **detail)
    event["detail"].pop("NewLimit")
    event["detail"].pop("OldLimit")
    return event


APPLIED_ITEM = {
    "Status": "APPLIED",
    "DesiredValue": Decimal(555),
    "ParameterVersion": 3,
    "ConfirmedVersion": 3,
    "ConfirmedLimit": Decimal(555),
    "ExecutionId": "e",
    "SpokeOutcome": "APPLIED",
    "SpokeStep": "UpdateBudgetLimit",
}


def test_given_the_limit_applied_when_the_alerts_step_reports_its_settings_then_they_are_confirmed():
    parsed = parse_event(alerts_report(Applied='{"emails":["a@example.com"]}'))
    assert isinstance(parsed, SpokeReport)
    decision = decide_report(APPLIED_ITEM, parsed)
    assert decision is not None
    assert decision.status is None  # the status stays APPLIED
    assert decision.values["ConfirmedAlerts"] == '{"emails":["a@example.com"]}'


def test_given_the_limit_applied_when_the_alerts_step_fails_then_the_status_is_failed_with_its_reason():
    parsed = parse_event(alerts_report(Outcome="FAILED", Reason="AlertEmails 'x' is not well-formed"))
    assert isinstance(parsed, SpokeReport)
    decision = decide_report(APPLIED_ITEM, parsed)
    assert decision is not None
    assert decision.status is Status.FAILED
    assert decision.reason == "spoke: alerts not applied: AlertEmails 'x' is not well-formed"


def test_an_alerts_failure_about_an_older_version_never_overwrites_a_newer_status():
    parsed = parse_event(alerts_report(Outcome="FAILED", Reason="no", ParameterVersion=2))
    assert isinstance(parsed, SpokeReport)
    assert decide_report(APPLIED_ITEM, parsed) is None


def test_given_the_alerts_were_refused_when_a_limit_report_of_that_version_arrives_then_it_stays_failed():
    failed = {**APPLIED_ITEM, "Status": "FAILED", "SpokeOutcome": "FAILED", "SpokeStep": "ReconcileAlerts"}
    parsed = parse_event(report(ExecutionId="e2"))
    assert isinstance(parsed, SpokeReport)
    decision = decide_report(failed, parsed)
    assert decision is not None
    assert (decision.status, dict(decision.values)) == (None, {"ConfirmedLimit": Decimal(555)})
    # but a limit report of a newer version decides anew
    newer = parse_event(report(ExecutionId="e3", ParameterVersion=4))
    assert isinstance(newer, SpokeReport)
    later = decide_report({**failed, "ParameterVersion": 4}, newer)
    assert later is not None
    assert later.status is Status.APPLIED


def test_an_alerts_report_names_a_known_step_and_its_settings():
    with pytest.raises(InvalidResult, match="Step"):
        parse_event(report(Step="Other"))
    with pytest.raises(InvalidResult, match="Applied"):
        parse_event(alerts_report())


def test_of_two_alerts_only_runs_the_older_report_arriving_last_does_not_overwrite_the_newer():
    # GIVEN the newer run's report (alert settings version 5) was recorded
    newer = parse_event(
        alerts_report(ExecutionId="e5", Applied='{"emails":["new@example.com"]}', AlertsVersions=[5, 1])
    )
    assert isinstance(newer, SpokeReport)
    recorded = decide_report(APPLIED_ITEM, newer)
    assert recorded is not None
    assert (recorded.values["ConfirmedAlertsVersion"], recorded.values["ConfirmedAlertDefaultsVersion"]) == (
        5,
        1,
    )
    item = {**APPLIED_ITEM, **recorded.values}
    # WHEN the older run's report (version 4, same limit version) arrives after it
    older = parse_event(
        alerts_report(ExecutionId="e4", Applied='{"emails":["old@example.com"]}', AlertsVersions=[4, 1])
    )
    assert isinstance(older, SpokeReport)
    # THEN it is stale, and so is an older failure; a newer defaults version is not
    assert decide_report(item, older) is None
    failed = parse_event(
        alerts_report(ExecutionId="e4", Outcome="FAILED", Reason="no", AlertsVersions=[4, 1])
    )
    assert isinstance(failed, SpokeReport)
    assert decide_report(item, failed) is None
    defaults = parse_event(
        alerts_report(ExecutionId="e6", Applied='{"emails":["new@example.com"]}', AlertsVersions=[5, 2])
    )
    assert isinstance(defaults, SpokeReport)
    assert decide_report(item, defaults) is not None
    # and a report without versions (a spoke stack older than this field) is not ordered by them
    unordered = parse_event(alerts_report(ExecutionId="e7", Applied='{"emails":["x@example.com"]}'))
    assert isinstance(unordered, SpokeReport)
    assert unordered.alerts_versions is None
    assert decide_report(item, unordered) is not None


@pytest.mark.parametrize("versions", [[5], [5, -1], ["5", 1], [5, True], "5,1"])
def test_given_malformed_alerts_versions_then_the_error_names_the_field(versions: Any):
    with pytest.raises(InvalidResult, match="AlertsVersions"):
        parse_event(alerts_report(Applied="{}", AlertsVersions=versions))


@pytest.mark.parametrize(
    ("detail", "field"),
    [
        ({"ParameterVersion": 10**15}, "ParameterVersion 1000000000000000"),
        ({"NewLimit": "1e200"}, "NewLimit '1e200'"),
        ({"NewLimit": "-5"}, "NewLimit '-5'"),
        ({"NewLimit": "1." + "1" * 40}, "NewLimit"),
    ],
)
def test_given_a_number_no_table_or_budget_takes_then_the_report_is_invalid_naming_it(
    detail: dict[str, Any], field: str
):
    with pytest.raises(InvalidResult, match=field):
        parse_event(report(**detail))


def test_given_alerts_versions_beyond_any_parameters_then_the_report_is_invalid():
    with pytest.raises(InvalidResult, match="AlertsVersions"):
        parse_event(alerts_report(Applied="{}", AlertsVersions=[10**15, 1]))


def test_a_report_too_far_ahead_of_the_version_sent_is_invalid_and_one_within_reach_is_held():
    sent = {**APPLIED_ITEM, "ParameterVersion": 3}
    far = parse_event(report(ParameterVersion=3 + 11))
    assert isinstance(far, SpokeReport)
    with pytest.raises(
        InvalidResult, match="ParameterVersion 14 is more than 10 versions ahead of version 3"
    ):
        decide_report(sent, far)
    near = parse_event(report(ParameterVersion=5, NewLimit="1"))
    assert isinstance(near, SpokeReport)
    held = decide_report(sent, near)
    assert held is not None
    assert held.status is None  # kept, not a verdict: no run of the pipeline's is known to be about it


def test_a_held_report_ahead_of_the_version_sent_does_not_make_the_sent_versions_report_stale():
    # GIVEN a report of version 6 held while version 4 is the one sent
    item = {"Status": "SENT", "DesiredValue": Decimal(555), "ParameterVersion": 4, "ConfirmedVersion": 6}
    # WHEN the spoke's run of version 4 reports
    genuine = parse_event(report(ParameterVersion=4))
    assert isinstance(genuine, SpokeReport)
    decision = decide_report(item, genuine)
    # THEN it decides
    assert decision is not None
    assert decision.status is Status.APPLIED
    # but a report older than the held one, and newer than the sent one, is stale
    between = parse_event(report(ParameterVersion=5))
    assert isinstance(between, SpokeReport)
    assert decide_report(item, between) is None


def test_a_hand_edit_confirmed_under_an_applied_status_is_drift_and_the_same_value_is_not():
    edited = {**APPLIED_ITEM, "ConfirmedVersion": 4, "ConfirmedLimit": Decimal(9999)}
    decision = decide_unclaimed(edited)
    assert decision is not None
    assert decision.status is Status.FAILED
    assert "the budget's limit is 9999, the desired value is 555" in decision.reason
    assert decide_unclaimed({**edited, "ConfirmedLimit": Decimal(555)}) is None
    refused = decide_unclaimed({**edited, "SpokeOutcome": "FAILED", "SpokeReason": "not a number"})
    assert refused is not None
    assert refused.reason.endswith("the spoke failed: not a number")
    assert decide_unclaimed(APPLIED_ITEM) is None  # the version the pipeline sent


SENT_WITH_ALERTS = {
    "Status": "SENT",
    "DesiredValue": Decimal(555),
    "ParameterVersion": 3,
    "SentAlertsVersion": 7,
    "ConfirmedAlertsVersion": 6,
}


def test_given_alert_settings_sent_then_the_limit_report_waits_for_the_alerts_report_which_decides():
    limit = parse_event(report())
    assert isinstance(limit, SpokeReport)
    waiting = decide_report(SENT_WITH_ALERTS, limit)
    assert waiting is not None
    assert waiting.status is None  # still SENT: the alerts sent are not confirmed
    item = {**SENT_WITH_ALERTS, **waiting.values}
    older = parse_event(alerts_report(Applied="{}", AlertsVersions=[6, 1]))
    assert isinstance(older, SpokeReport)
    assert decide_report(item, older).status is None  # type: ignore[union-attr]  # older settings
    sent = parse_event(alerts_report(Applied="{}", AlertsVersions=[7, 1]))
    assert isinstance(sent, SpokeReport)
    decision = decide_report(item, sent)
    assert decision is not None
    assert decision.status is Status.APPLIED


def test_given_the_alerts_report_came_first_then_the_limit_report_decides_applied():
    alerts_first = {**SENT_WITH_ALERTS, "ConfirmedAlertsVersion": 7}
    assert alerts_confirmed(alerts_first)
    limit = parse_event(report())
    assert isinstance(limit, SpokeReport)
    assert decide_report(alerts_first, limit).status is Status.APPLIED  # type: ignore[union-attr]


SENT = {
    "Status": "SENT",
    "ParameterVersion": 3,
    "DesiredValue": Decimal(555),
    "SentAt": "2026-01-01T00:00:00+00:00",
}


def test_a_failure_notice_before_the_executions_report_is_recorded_and_does_not_fail_the_status():
    decision = decide_ended(SENT, ExecutionEnded(A, "e", "Failed"))

    assert decision is not None
    assert decision.status is None  # the report that may still come decides
    assert (decision.values["EndedExecutionId"], decision.values["EndedStatus"]) == ("e", "Failed")


def test_a_duplicate_failure_notice_changes_nothing():
    recorded = {
        **SENT,
        "EndedExecutionId": "e",
        "EndedStatus": "Failed",
        "EndedAt": "2026-01-01T00:00:01+00:00",
    }
    assert decide_ended(recorded, ExecutionEnded(A, "e", "Failed")) is None


def test_a_failure_notice_of_an_execution_that_reported_or_of_a_settled_status_changes_nothing():
    assert decide_ended({**SENT, "ExecutionId": "e"}, ExecutionEnded(A, "e", "Failed")) is None
    assert decide_ended({**SENT, "Status": "APPLIED"}, ExecutionEnded(A, "e", "Failed")) is None
    assert decide_ended(None, ExecutionEnded(A, "e", "Failed")) is None


def test_given_a_failure_notice_recorded_when_the_executions_report_arrives_then_it_decides_with_its_reason():
    recorded = {
        **SENT,
        "EndedExecutionId": "e",
        "EndedStatus": "Failed",
        "EndedAt": "2026-01-01T00:00:01+00:00",
    }
    failure = SpokeReport(A, "e", 3, Status.FAILED, None, reason="Budget uses PlannedBudgetLimits")

    decision = decide_report(recorded, failure)

    assert decision is not None
    assert (decision.status, decision.reason) == (Status.FAILED, "spoke: Budget uses PlannedBudgetLimits")
