"""The Automation step ReconcileAlerts (src/budget_sync_spoke/alerts.py): its own functions on
a moto budgets client with the stand-ins' notification and subscriber APIs, and the whole
document on a deployed spoke stack."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from budget_sync import alerts as contract
from budget_sync.errors import InvalidItemError
from budget_sync_local.templates import SPOKE_TEMPLATE, load
from budget_sync_spoke import alerts
from tests.spoke.sync_inline_script import ALERTS_SCRIPT, synced_template
from tests.support.lazy import lazy
from tests.support.spoke_account import Spoke

if TYPE_CHECKING:
    import moto

    from budget_sync_local import standins
else:  # moto: imported by the first test that uses it, not at collection (make unit)
    standins = lazy("budget_sync_local.standins")
    moto = lazy("moto")

ACCOUNT = "123456789012"
BUDGET = "SpokeAccountBudget"
DEFAULTS = {
    "emails": "finance@example.com,owner@example.com,",
    "actual": "80,100",
    "forecasted": "100",
    "sns": "",
}
MUTATING = {
    "CreateNotification",
    "UpdateNotification",
    "DeleteNotification",
    "CreateSubscriber",
    "UpdateSubscriber",
    "DeleteSubscriber",
    "CreateBudget",
    "UpdateBudget",
    "DeleteBudget",
}


class Recorder:
    """Counts the Budgets API calls a client makes (botocore's before-call event)."""

    def __init__(self, client: Any) -> None:
        self.calls: Counter[str] = Counter()
        client.meta.events.register("before-call.budgets.*", self._seen)

    def _seen(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1

    def changes(self) -> Counter[str]:
        return Counter({k: v for k, v in self.calls.items() if k in MUTATING})


@pytest.fixture
def budgets() -> Iterator[Any]:
    with moto.mock_aws(), standins.installed():
        client = boto3.client("budgets", region_name="us-east-1")
        client.create_budget(
            AccountId=ACCOUNT,
            Budget={
                "BudgetName": BUDGET,
                "BudgetType": "COST",
                "TimeUnit": "MONTHLY",
                "BudgetLimit": {"Amount": "1000", "Unit": "USD"},
            },
            NotificationsWithSubscribers=alerts_as_created(),
        )
        yield client


def alerts_as_created() -> list[Any]:
    from budget_sync_spoke.update_budget import notifications_with_subscribers

    return notifications_with_subscribers(DEFAULTS["emails"], DEFAULTS["actual"], DEFAULTS["forecasted"], "")


def state(client: Any) -> dict[tuple[str, str], set[tuple[str, str]]]:
    """The budget's notifications as {(type, threshold): {(kind, address)}}."""
    return {
        (n["NotificationType"], alerts.threshold_text("t", str(n["Threshold"]))): subs
        for n, subs in alerts.current_alerts(client, ACCOUNT, BUDGET)
    }


def run(client: Any, settings: dict[str, Any], defaults: dict[str, Any] = DEFAULTS) -> Counter[str]:
    recorder = Recorder(client)
    calls = alerts.reconcile(client, ACCOUNT, BUDGET, alerts.desired_alerts(settings, defaults))
    assert calls == sum(recorder.changes().values())
    return recorder.changes()


def emails(*addresses: str) -> set[tuple[str, str]]:
    return {("EMAIL", a) for a in addresses}


@pytest.mark.aws
def test_given_the_budget_already_has_the_alerts_when_reconciled_then_no_call_changes_anything(budgets: Any):
    before = state(budgets)
    assert run(budgets, {}) == Counter()
    assert state(budgets) == before


@pytest.mark.aws
def test_given_a_new_recipient_then_one_create_subscriber_per_notification(budgets: Any):
    changes = run(budgets, {"emails": ["finance@example.com", "owner@example.com", "cto@example.com"]})
    assert changes == Counter({"CreateSubscriber": 3})
    want = emails("finance@example.com", "owner@example.com", "cto@example.com")
    assert state(budgets) == {("ACTUAL", "80"): want, ("ACTUAL", "100"): want, ("FORECASTED", "100"): want}


@pytest.mark.aws
def test_given_a_changed_recipient_then_it_is_updated_in_place(budgets: Any):
    changes = run(budgets, {"emails": ["finance@example.com", "team@example.com"]})
    assert changes == Counter({"UpdateSubscriber": 3})
    assert set(map(frozenset, state(budgets).values())) == {
        frozenset(emails("finance@example.com", "team@example.com"))
    }


@pytest.mark.aws
def test_given_a_removed_recipient_then_one_delete_subscriber_per_notification(budgets: Any):
    changes = run(budgets, {"emails": "finance@example.com"})
    assert changes == Counter({"DeleteSubscriber": 3})
    assert set(map(frozenset, state(budgets).values())) == {frozenset(emails("finance@example.com"))}


@pytest.mark.aws
def test_given_a_changed_threshold_then_the_notification_is_updated_and_keeps_its_subscribers(budgets: Any):
    changes = run(budgets, {"actual": ["90", "100"]})
    assert changes == Counter({"UpdateNotification": 1})
    assert set(state(budgets)) == {("ACTUAL", "90"), ("ACTUAL", "100"), ("FORECASTED", "100")}
    assert state(budgets)[("ACTUAL", "90")] == emails("finance@example.com", "owner@example.com")


@pytest.mark.aws
def test_given_more_thresholds_and_no_forecast_then_the_forecast_becomes_the_new_actual_one(budgets: Any):
    changes = run(budgets, {"actual": "50,80,100", "forecasted": "none"})
    # the FORECASTED notification is not needed and an ACTUAL one is missing: one update, no create/delete
    assert changes == Counter({"UpdateNotification": 1})
    assert set(state(budgets)) == {("ACTUAL", "50"), ("ACTUAL", "80"), ("ACTUAL", "100")}


@pytest.mark.aws
def test_given_fewer_thresholds_then_the_extra_notification_is_deleted(budgets: Any):
    changes = run(budgets, {"actual": "100"})
    assert changes == Counter({"DeleteNotification": 1})
    assert set(state(budgets)) == {("ACTUAL", "100"), ("FORECASTED", "100")}


@pytest.mark.aws
def test_given_a_notification_added_by_hand_then_budget_sync_replaces_it(budgets: Any):
    budgets.create_notification(
        AccountId=ACCOUNT,
        BudgetName=BUDGET,
        Notification={"NotificationType": "ACTUAL", "ComparisonOperator": "LESS_THAN", "Threshold": 5.0},
        Subscribers=[{"SubscriptionType": "EMAIL", "Address": "someone@example.com"}],
    )
    assert run(budgets, {}) == Counter({"DeleteNotification": 1})
    assert len(state(budgets)) == 3


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"emails": ["not-an-address"]}, "AlertEmails 'not-an-address' is not a well-formed email address"),
        ({"emails": [f"u{i}@example.com" for i in range(11)]}, "11 addresses; AWS Budgets takes at most 10"),
        ({"actual": ["80", "abc"]}, "AlertThresholds 'abc' is not a number"),
        ({"actual": ["1000001"]}, "must be from 0 to 1000000"),
        ({"forecasted": "90,100"}, "must be one threshold at most"),
        ({"actual": [str(t) for t in range(10, 110, 10)]}, "11 notifications; AWS Budgets takes at most 10"),
    ],
)
@pytest.mark.aws
def test_given_invalid_settings_then_nothing_is_called_and_the_budget_keeps_its_alerts(
    budgets: Any, settings: dict[str, Any], message: str
):
    before = state(budgets)
    recorder = Recorder(budgets)
    with pytest.raises(ValueError, match=message):
        alerts.reconcile(budgets, ACCOUNT, BUDGET, alerts.desired_alerts(settings, DEFAULTS))
    assert recorder.calls == Counter()
    assert state(budgets) == before


@pytest.mark.aws
def test_the_stack_topic_is_a_subscriber_of_every_notification(budgets: Any):
    topic = f"arn:aws:sns:us-east-1:{ACCOUNT}:alerts"
    changes = run(budgets, {}, {**DEFAULTS, "sns": topic})
    assert changes == Counter({"CreateSubscriber": 3})
    assert all(("SNS", topic) in subs for subs in state(budgets).values())


def test_the_script_keeps_the_item_contracts_rules():
    assert alerts.EMAIL_PATTERN == contract.EMAIL_PATTERN
    assert alerts.MAX_EMAILS == contract.MAX_EMAILS
    assert alerts.MAX_EMAIL_LENGTH == contract.MAX_EMAIL_LENGTH
    assert alerts.MAX_THRESHOLD == contract.MAX_THRESHOLD
    assert alerts.MAX_NOTIFICATIONS == contract.MAX_ACTUAL_THRESHOLDS + 1
    for text in ("80", "82.50", "100.00", "0"):
        assert alerts.threshold_text("t", text) == contract.format_threshold(Decimal(text))


def test_the_templates_inline_alerts_script_is_the_file_byte_for_byte():
    steps = load(SPOKE_TEMPLATE)["Resources"]["AutomationDocument"]["Properties"]["Content"]["mainSteps"]
    (step,) = [s for s in steps if s["name"] == "ReconcileAlerts"]
    assert [s["name"] for s in steps] == ["UpdateBudgetLimit", "ReconcileAlerts"]
    assert step["inputs"]["Script"] == ALERTS_SCRIPT.read_text(), (
        "run: .venv/bin/python -m tests.spoke.sync_inline_script"
    )
    text = SPOKE_TEMPLATE.read_text()
    assert synced_template(text, ALERTS_SCRIPT.read_text(), "ReconcileAlerts") == text
    assert step["inputs"]["Runtime"] == "python3.11"
    assert step["inputs"]["Handler"] == "handler"


# -- the whole document on a deployed spoke stack --------------------------------------------


def _put_settings(spoke: Spoke, settings: dict[str, Any]) -> None:
    spoke.session.client("ssm").put_parameter(
        Name="/BlogBudgets/AlertSettings", Value=json.dumps(settings), Overwrite=True
    )


def test_given_the_account_settings_are_written_then_the_document_applies_them(spoke: Spoke):
    _put_settings(spoke, {"emails": ["team@example.com"], "actual": ["90"], "forecasted": "none"})
    (result,) = spoke.deliver()

    assert result is not None
    assert result.status == "Success", result.failure_message
    assert result.outputs["ReconcileAlerts.Action"] == "Reconciled"
    assert json.loads(result.outputs["ReconcileAlerts.Applied"]) == {
        "emails": ["team@example.com"],
        "actual": ["90"],
        "forecasted": "none",
    }
    assert [(n["NotificationType"], n["Threshold"], s) for n, s in spoke.notifications()] == [
        ("ACTUAL", 90.0, [{"SubscriptionType": "EMAIL", "Address": "team@example.com"}])
    ]


def test_given_invalid_settings_then_the_document_fails_and_the_budget_keeps_its_alerts(spoke: Spoke):
    before = spoke.notifications()
    _put_settings(spoke, {"emails": ["x@example.com", "bad address"]})
    (result,) = spoke.deliver()

    assert result is not None
    assert result.status == "Failed"
    assert "AlertEmails 'bad address' is not a well-formed email address" in str(result.failure_message)
    assert spoke.notifications() == before


# -- overlapping runs --------------------------------------------------------------------------

EVENTS = {
    "AccountId": ACCOUNT,
    "BudgetName": BUDGET,
    "AlertParameterName": "/BlogBudgets/AlertSettings",
    "AlertDefaultsParameterName": "/BlogBudgets/AlertDefaults",
    "ParameterName": "/BlogBudgets/CostThreshold",
    "ParameterVersion": "3",  # the document passes UpdateBudgetLimit's output: text
    "ExecutionId": "e-1",
}


@pytest.mark.aws
def test_given_the_settings_change_during_a_run_then_the_run_ends_at_the_newest(
    budgets: Any, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    ssm = boto3.client("ssm", region_name="us-east-1")
    ssm.put_parameter(Name="/BlogBudgets/AlertDefaults", Value=json.dumps(DEFAULTS), Type="String")
    ssm.put_parameter(Name="/BlogBudgets/AlertSettings", Value='{"actual":["90"]}', Type="String")
    real, passes = alerts.reconcile, []

    def a_second_write_lands_meanwhile(*args: Any) -> int:
        passes.append(args[-1])
        calls = real(*args)
        if len(passes) == 1:
            ssm.put_parameter(Name="/BlogBudgets/AlertSettings", Value='{"actual":["95"]}', Overwrite=True)
        return calls

    monkeypatch.setattr(alerts, "reconcile", a_second_write_lands_meanwhile)
    reported: list[dict[str, Any]] = []
    monkeypatch.setattr(alerts, "report", lambda _client, detail: reported.append(detail))
    result = alerts.handler(EVENTS, None)

    assert [p.actual for p in passes] == [("90",), ("95",)]
    assert set(state(budgets)) == {("ACTUAL", "95"), ("FORECASTED", "100")}
    assert json.loads(result["Applied"])["actual"] == ["95"]
    # and the report says which versions of the settings (2) and defaults (1) it applied
    (detail,) = reported
    assert (detail["Outcome"], detail["AlertsVersions"]) == ("APPLIED", [2, 1])


@pytest.mark.aws
def test_given_an_overlapping_run_changed_the_budget_first_then_this_run_plans_again_and_succeeds(
    budgets: Any, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    ssm = boto3.client("ssm", region_name="us-east-1")
    ssm.put_parameter(Name="/BlogBudgets/AlertDefaults", Value=json.dumps(DEFAULTS), Type="String")
    settings = {"emails": ["finance@example.com", "cto@example.com"], "actual": ["50"]}
    ssm.put_parameter(Name="/BlogBudgets/AlertSettings", Value=json.dumps(settings), Type="String")
    stale_view = alerts.current_alerts(budgets, ACCOUNT, BUDGET)  # read before the other run
    alerts.reconcile(budgets, ACCOUNT, BUDGET, alerts.desired_alerts(settings, DEFAULTS))  # the other run
    real, reads = alerts.current_alerts, []

    def stale_first(*args: Any) -> Any:
        reads.append(1)
        return stale_view if len(reads) == 1 else real(*args)

    monkeypatch.setattr(alerts, "current_alerts", stale_first)
    result = alerts.handler(EVENTS, None)

    assert len(reads) == 2  # the stale plan met a conflict; the second pass read the budget again
    assert json.loads(result["Applied"])["actual"] == ["50"]
    assert run(budgets, settings) == Counter()  # the budget is as wanted


def test_the_script_bounds_the_settings_and_refuses_control_characters_as_the_item_contract_does():
    assert alerts.MAX_SETTINGS_LENGTH == contract.MAX_SETTINGS_LENGTH
    settings = contract.parse_alerts(
        {
            "AlertEmails": "b@example.com,A@example.com",
            "AlertThresholds": "80,100",
            "ForecastedThreshold": "none",
        }
    )
    desired = alerts.desired_alerts(json.loads(settings.to_parameter()), DEFAULTS)
    assert alerts.settings_text(desired) == settings.to_parameter()  # the same size, counted alike
    long_non_ascii = [f"{'é' * 240}{i}@example.com" for i in range(10)]
    with pytest.raises(ValueError, match="at most 4096"):
        alerts.desired_alerts({"emails": long_non_ascii}, DEFAULTS)
    with pytest.raises(InvalidItemError, match="at most 4096"):
        contract.parse_alerts({"AlertEmails": ",".join(long_non_ascii)})
    for address in (
        "a\x1bb@example.com",
        "a\x00b@example.com",
        "a\u200bb@example.com",
        "a\u202eb@example.com",
    ):
        with pytest.raises(ValueError, match="control or format character"):
            alerts.desired_alerts({"emails": [address]}, DEFAULTS)
        with pytest.raises(InvalidItemError, match="control or format character"):
            contract.parse_alerts({"AlertEmails": address})
