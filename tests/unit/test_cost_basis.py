"""The cost basis on an item (budget_sync.cost_basis): parsed and validated like the alert
settings, written in the alert settings' JSON, the same words on the spoke and in the spoke
template's parameters, and APPLIED only when the spoke confirmed the cost basis sent."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import pytest

from budget_sync import cost_basis
from budget_sync.alerts import parse_alerts
from budget_sync.cost_basis import CostBasis, parse_cost_basis, unconfirmed
from budget_sync.errors import InvalidItemError
from budget_sync.results import SpokeReport, decide_report, parse_event
from budget_sync.status import Status
from budget_sync_local.templates import SPOKE_TEMPLATE
from budget_sync_spoke import alerts as spoke_alerts

A = "111111111111"


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ({}, CostBasis()),
        ({"CostMetric": " Amortized "}, CostBasis(metric="amortized")),
        ({"CostExclusions": "refunds, credits"}, CostBasis(exclude=("credits", "refunds"))),
        ({"CostExclusions": {"tax", "support"}}, CostBasis(exclude=("support", "tax"))),
        ({"CostExclusions": "none"}, CostBasis(exclude=())),
        ({"CostExclusions": "", "CostMetric": ""}, CostBasis()),
    ],
)
def test_an_items_cost_basis_is_read_from_its_attributes(item: dict[str, Any], expected: CostBasis):
    assert parse_cost_basis(item, A) == expected


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"CostMetric": "cheapest"}, "CostMetric 'cheapest' is not a cost metric; one of unblended"),
        ({"CostMetric": 3}, "CostMetric 3 is not a cost metric"),
        ({"CostExclusions": "credits,coupons"}, "CostExclusions 'coupons' is not a record type"),
        ({"CostExclusions": "credits,none"}, "CostExclusions 'none' is not a record type"),
        ({"CostExclusions": "credits,Credits"}, "CostExclusions 'credits,Credits' names a record type twice"),
    ],
)
def test_a_bad_cost_basis_is_refused_naming_the_field_and_the_value(item: dict[str, Any], message: str):
    with pytest.raises(InvalidItemError, match=re.escape(message)):
        parse_alerts({"AlertThresholds": "80", **item}, A)  # the item contract reads it with the alerts


def test_the_cost_basis_travels_in_the_alert_settings_json_only_when_the_item_sets_it():
    assert parse_alerts({"AlertThresholds": "80"}).to_parameter() == '{"actual":["80"]}'
    settings = parse_alerts({"CostMetric": "net-amortized", "CostExclusions": "credits"})
    assert json.loads(settings.to_parameter()) == {"metric": "net-amortized", "exclude": ["credits"]}
    assert json.loads(parse_alerts({"CostExclusions": "none"}).to_parameter()) == {"exclude": []}
    assert settings != parse_alerts({})  # a changed cost basis is a change to send


def test_the_spoke_script_and_the_spoke_template_take_the_same_words():
    assert spoke_alerts.METRICS == cost_basis.METRICS
    assert spoke_alerts.EXCLUSIONS == cost_basis.EXCLUSIONS
    template = SPOKE_TEMPLATE.read_text()
    metric = re.search(r"DefaultCostMetric:\n(?:    .*\n)*?    AllowedPattern: \"(.*)\"", template)
    exclusions = re.search(r"DefaultCostExclusions:\n(?:    .*\n)*?    AllowedPattern: \"(.*)\"", template)
    assert metric is not None
    assert exclusions is not None
    assert metric.group(1) == f"^({'|'.join(cost_basis.METRICS)})?$"
    words = "|".join(cost_basis.EXCLUSIONS)
    assert exclusions.group(1) == f"^(({words})(,({words})){{0,{len(cost_basis.EXCLUSIONS) - 1}}}|none)?$"


@pytest.mark.parametrize(
    ("sent", "confirmed", "words"),
    [
        ('{"actual":["80"]}', None, ""),  # no cost basis sent: nothing to confirm
        ('{"exclude":["credits"]}', '{"exclude":["Credit"],"metric":"UnblendedCost"}', ""),
        ('{"exclude":["credits"]}', None, "does not apply a cost basis"),
        (
            '{"metric":"amortized"}',
            '{"exclude":[],"metric":"UnblendedCost"}',
            "metric UnblendedCost instead of",
        ),
        (
            '{"exclude":[]}',
            '{"exclude":["Tax"],"metric":"UnblendedCost"}',
            "excludes ['Tax'] instead of nothing",
        ),
    ],
)
def test_the_cost_basis_sent_is_confirmed_only_by_a_report_of_the_same(
    sent: str, confirmed: str | None, words: str
):
    reason = unconfirmed(sent, confirmed)
    assert (words in reason) if words else reason == ""


SENT_WITH_COST_BASIS = {
    "Status": "SENT",
    "ParameterVersion": 3,
    "DesiredValue": Decimal(555),
    "SentAt": "2026-01-01T00:00:00+00:00",
    "AlertSettings": '{"exclude":["credits"]}',
    "SentAlertsVersion": 7,
}


def _report(step: str, **detail: Any) -> SpokeReport:
    base: dict[str, Any] = {"ExecutionId": "e", "ParameterVersion": 3, "Outcome": "APPLIED", "Step": step}
    if step == "UpdateBudgetLimit":
        base.update(NewLimit="555", OldLimit="1")
    parsed = parse_event(
        {
            "source": "budget-sync.spoke",
            "detail-type": "Budget Update Result",
            "account": A,
            "detail": {**base, **detail},
        }
    )
    assert isinstance(parsed, SpokeReport)
    return parsed


@pytest.mark.parametrize("alerts_first", [True, False])
def test_given_a_cost_basis_sent_when_an_old_spoke_script_reports_none_then_the_status_is_failed(
    alerts_first: bool,
):
    old_spoke = _report("ReconcileAlerts", Applied="{}", AlertsVersions=[7, 1])  # no CostBasis member
    limit = _report("UpdateBudgetLimit")
    item = dict(SENT_WITH_COST_BASIS)
    for report in [old_spoke, limit] if alerts_first else [limit, old_spoke]:
        decision = decide_report(item, report)
        assert decision is not None
        item = {**item, **decision.values, **({"Status": decision.status.value} if decision.status else {})}
    assert item["Status"] == Status.FAILED
    assert decision.reason == (
        "spoke: cost basis not applied: the spoke stack's Automation document does not apply a cost basis "
        "(update the spoke stack to the current template-spoke.yaml)"
    )


@pytest.mark.parametrize("alerts_first", [True, False])
def test_given_a_cost_basis_sent_when_the_spoke_confirms_it_then_the_status_is_applied(alerts_first: bool):
    confirmed = '{"exclude":["Credit"],"metric":"UnblendedCost"}'
    alerts = _report("ReconcileAlerts", Applied="{}", AlertsVersions=[7, 1], CostBasis=confirmed)
    limit = _report("UpdateBudgetLimit")
    item = dict(SENT_WITH_COST_BASIS)
    for report in [alerts, limit] if alerts_first else [limit, alerts]:
        decision = decide_report(item, report)
        assert decision is not None
        item = {**item, **decision.values, **({"Status": decision.status.value} if decision.status else {})}
    assert item["Status"] == Status.APPLIED
    assert item["ConfirmedCostBasis"] == confirmed


def test_given_both_reports_came_before_sent_then_a_cost_basis_not_confirmed_is_failed_and_one_confirmed_applied():
    from dataclasses import replace

    from budget_sync.status import StatusStore, StatusUpdate
    from tests.fakes.status_table import FakeStatusTable

    update = StatusUpdate(
        A,
        Status.SENT,
        "30",
        desired=Decimal(700),
        applied=Decimal(700),
        parameter_version=7,
        alerts='{"exclude":["credits"]}',
        alerts_version=3,
    )
    for confirmed, expected in [
        (None, "FAILED"),  # an old spoke script: no CostBasis in its report
        ('{"exclude":["Credit"],"metric":"UnblendedCost"}', "APPLIED"),
    ]:
        table = FakeStatusTable()
        table.put(
            A,
            ConfirmedVersion=7,
            SpokeOutcome="APPLIED",
            SpokeStep="ReconcileAlerts",
            ConfirmedLimit=Decimal(700),
            ConfirmedAlertsVersion=3,
        )
        if confirmed is not None:
            table.put(A, ConfirmedCostBasis=confirmed)
        assert StatusStore(table).record(replace(update)) is True
        assert table.item(A)["Status"] == expected, table.item(A)
        if expected == "FAILED":
            assert "does not apply a cost basis" in table.item(A)["Reason"]
