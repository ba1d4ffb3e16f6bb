"""IncidentFunction through the entry point the template names (budget_sync.handlers.incidents.handler):
SQS batches of SNS notifications from spoke alert topics, and the hourly schedule. ServiceNow is
the local stand-in (in-process), the incidents table, the spoke budgets and the directory are
fakes; the logic and the adapter to ServiceNow are the real ones."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from budget_sync.budget_alarms import budget_state, current_period
from budget_sync.errors import ConfigError, SpokeAccessDenied, UnrecognisedEvent
from budget_sync.handlers import incidents as handler_module
from budget_sync.handlers.incidents import IncidentContext, handler
from budget_sync.incident_config import IncidentFunctionSettings
from budget_sync.incidents import Breach, BudgetState, Incidents, IncidentSettings, effective_settings
from budget_sync.servicenow import Credentials, ServiceNowDesk
from budget_sync_local.servicenow import StandIn
from tests.fakes import FakeAlarmTopic
from tests.fakes.incidents import FakeIncidentStore, StandInTransport

A, B = "111111111111", "222222222222"
CONTEXT = SimpleNamespace(
    function_name="BudgetSyncIncidents",
    memory_limit_in_mb=256,
    invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:BudgetSyncIncidents",
    aws_request_id="request-1",
)
SCHEDULED = {
    "source": "aws.events",
    "detail-type": "Scheduled Event",
    "account": "123456789012",
    "detail": {},
}
TODAY = datetime.now(UTC).date()


def alarm_state(account: str, *breaches: Breach) -> BudgetState:
    start, end = current_period("MONTHLY", TODAY)
    return BudgetState(
        account, "SpokeAccountBudget", start, end, breaches, limit=Decimal(100), actual=Decimal(120)
    )


@dataclass
class FakeAlarms:
    states: dict[str, BudgetState] = field(default_factory=dict)
    failures: dict[str, Exception] = field(default_factory=dict)
    days: list[date | None] = field(default_factory=list)

    def read(self, account_id: str, account_name: str = "", today: date | None = None) -> BudgetState | None:
        self.days.append(today)
        if account_id in self.failures:
            raise self.failures[account_id]
        state = self.states.get(account_id)
        return replace(state, account_name=account_name) if state else None


@dataclass
class FakeDirectory:
    names: dict[str, str] = field(default_factory=lambda: {A: "Sandbox A", B: "Sandbox B"})

    def accounts(self) -> list[str]:
        return sorted(self.names)

    def settings(self, account_id: str) -> tuple[IncidentSettings, str]:
        return effective_settings(IncidentSettings(urgency=3, impact=2)), self.names.get(account_id, "")


class World:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.instance = StandIn()
        self.transport = StandInTransport(self.instance)
        desk = ServiceNowDesk(
            StandInTransport.BASE,
            Credentials(self.instance.user, self.instance.password),
            self.transport,
            sleep=lambda _: None,
        )
        self.now = 1_000_000.0
        self.store = FakeIncidentStore()
        self.topic = FakeAlarmTopic()
        self.alarms = FakeAlarms()
        self.confirmed: list[str] = []
        incidents = Incidents(desk, self.store, self.topic, clock=lambda: self.now)
        self.ctx = IncidentContext(incidents, self.alarms, FakeDirectory(), self.confirmed.append)
        monkeypatch.setattr(handler_module, "build", lambda: self.ctx)

    def incidents_of(self, account: str) -> list[dict[str, str]]:
        return [i for i in self.instance.incidents.values() if i["correlation_id"].startswith(account)]


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    return World(monkeypatch)


def sns(account: str, message_id: str, kind: str = "Notification", **extra: str) -> dict[str, Any]:
    body = {
        "Type": kind,
        "MessageId": message_id,
        "TopicArn": f"arn:aws:sns:us-east-1:{account}:budget-sync-alerts",
        "Subject": "AWS Budgets: SpokeAccountBudget has exceeded your alert threshold",
        "Message": "AWS Budget Notification ...",
        **extra,
    }
    return {"messageId": message_id, "eventSource": "aws:sqs", "body": json.dumps(body)}


def batch(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


def test_given_a_batch_with_duplicate_alerts_when_delivered_twice_then_exactly_one_incident(
    world: World,
) -> None:
    world.alarms.states[A] = alarm_state(A, Breach("ACTUAL", Decimal(80)))

    first = handler(batch(sns(A, "m1"), sns(A, "m2")), CONTEXT)
    second = handler(batch(sns(A, "m1")), CONTEXT)  # SQS delivers at least once

    assert first == second == {"batchItemFailures": []}
    [incident] = world.incidents_of(A)
    assert "Sandbox A (111111111111)" in incident["short_description"]
    assert (incident["urgency"], incident["impact"]) == ("3", "2")


def test_given_a_second_threshold_when_its_alert_arrives_then_the_incident_is_updated(world: World) -> None:
    world.alarms.states[A] = alarm_state(A, Breach("ACTUAL", Decimal(80)))
    handler(batch(sns(A, "m1")), CONTEXT)
    world.alarms.states[A] = alarm_state(A, Breach("ACTUAL", Decimal(80)), Breach("ACTUAL", Decimal(100)))

    handler(batch(sns(A, "m2")), CONTEXT)

    [incident] = world.incidents_of(A)
    assert incident["urgency"] == "2"
    assert len(world.instance.journal[incident["sys_id"]]) == 1


def test_given_servicenow_down_when_alerts_arrive_then_they_go_back_to_the_queue_and_are_delivered_after(
    world: World,
) -> None:
    world.alarms.states[A] = alarm_state(A, Breach("ACTUAL", Decimal(80)))
    world.alarms.states[B] = alarm_state(B)  # not in alarm: nothing to send
    world.instance.fail_next(1000, 503)

    down = handler(batch(sns(A, "m1"), sns(B, "m2"), sns(A, "m3")), CONTEXT)

    assert down == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m3"}]}
    assert world.instance.incidents == {}
    world.instance.recover()
    world.now += 3600  # SQS makes the messages visible again after their visibility timeout
    after = handler(batch(sns(A, "m1"), sns(A, "m3")), CONTEXT)

    assert after == {"batchItemFailures": []}
    assert len(world.incidents_of(A)) == 1


def test_given_a_bad_credential_when_alerts_keep_arriving_then_one_notice_and_nothing_retried(
    world: World,
) -> None:
    world.alarms.states[A] = alarm_state(A, Breach("ACTUAL", Decimal(80)))
    world.instance.password = "rotated"

    answers = [handler(batch(sns(A, f"m{i}")), CONTEXT) for i in range(3)]

    assert answers == [{"batchItemFailures": []}] * 3
    assert len(world.topic.published) == 1
    assert "User Not Authenticated" in world.topic.published[0][1]
    assert len(world.transport.calls) == 3


def test_given_a_spoke_that_cannot_be_read_then_logged_and_not_retried_by_the_queue(world: World) -> None:
    world.alarms.failures[A] = SpokeAccessDenied("account 111111111111: cannot assume the spoke role")

    assert handler(batch(sns(A, "m1")), CONTEXT) == {"batchItemFailures": []}


def test_given_a_subscription_confirmation_then_confirmed_only_at_snss_own_host(world: World) -> None:
    good = "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=x&Token=t"
    bad = "https://sns.eu-west-1.amazonaws.com.attacker.example/?Token=t"

    answer = handler(
        batch(
            sns(A, "c1", "SubscriptionConfirmation", SubscribeURL=good),
            sns(A, "c2", "SubscriptionConfirmation", SubscribeURL=bad),
            {"messageId": "junk", "eventSource": "aws:sqs", "body": "not json"},
        ),
        CONTEXT,
    )

    assert answer == {"batchItemFailures": []}
    assert world.confirmed == [good]
    assert world.instance.incidents == {}


def test_given_the_schedule_when_an_alarm_ends_and_when_a_period_ends_then_resolved(world: World) -> None:
    world.alarms.states[A] = alarm_state(A, Breach("ACTUAL", Decimal(80)))  # no message ever came
    world.alarms.states[B] = alarm_state(B, Breach("FORECASTED", Decimal(100)))

    opened = handler(SCHEDULED, CONTEXT)
    world.alarms.states[A] = alarm_state(A)  # back under its thresholds
    resolved = handler(SCHEDULED, CONTEXT)

    assert opened["actions"] == {"opened": 2}
    assert resolved["actions"] == {"resolved": 1, "unchanged": 1}
    [a] = world.incidents_of(A)
    assert a["state"] == "6"
    # the period ends: the schedule's run on the 1st of the next month (its event's time)
    # resolves B's incident (its budget has no state any more)
    del world.alarms.states[B]
    first = current_period("MONTHLY", TODAY)[1]
    ended = handler({**SCHEDULED, "time": f"{first.isoformat()}T00:00:00Z"}, CONTEXT)
    assert ended["actions"] == {"none": 2, "resolved": 1}
    assert world.alarms.days[-1] == first
    [b] = world.incidents_of(B)
    assert "period has ended" in b["close_notes"]


@pytest.mark.parametrize("event", [{"source": "aws.sns"}, {"Records": [{"eventSource": "aws:dynamodb"}]}])
def test_given_another_sources_event_then_rejected(world: World, event: dict[str, Any]) -> None:
    with pytest.raises(UnrecognisedEvent, match="incident queue"):
        handler(event, CONTEXT)


def test_given_describe_answers_then_the_notifications_in_alarm_are_the_breaches() -> None:
    budget = {
        "BudgetName": "SpokeAccountBudget",
        "TimeUnit": "MONTHLY",
        "BudgetLimit": {"Amount": "100.0", "Unit": "USD"},
        "CalculatedSpend": {"ActualSpend": {"Amount": "104.5", "Unit": "USD"}},
    }
    notifications = [
        {
            "NotificationType": "ACTUAL",
            "Threshold": 80.0,
            "ThresholdType": "PERCENTAGE",
            "NotificationState": "ALARM",
        },
        {"NotificationType": "ACTUAL", "Threshold": 120.0, "NotificationState": "OK"},
        {"NotificationType": "FORECASTED", "Threshold": 100.0},
    ]

    state = budget_state(A, "Sandbox A", budget, notifications, date(2026, 12, 2))

    assert state.breaches == (Breach("ACTUAL", Decimal(80)),)
    assert (state.period_start, state.period_end) == (date(2026, 12, 1), date(2027, 1, 1))
    assert (state.limit, state.actual, state.forecasted) == (Decimal("100.0"), Decimal("104.5"), None)
    assert state.correlation_id == f"{A}/SpokeAccountBudget/2026-12-01"


@pytest.mark.parametrize(
    ("unit", "period"),
    [
        ("DAILY", (date(2026, 11, 30), date(2026, 12, 1))),
        ("QUARTERLY", (date(2026, 10, 1), date(2027, 1, 1))),
        ("ANNUALLY", (date(2026, 1, 1), date(2027, 1, 1))),
        ("MONTHLY", (date(2026, 11, 1), date(2026, 12, 1))),
    ],
)
def test_given_a_time_unit_then_the_current_period(unit: str, period: tuple[date, date]) -> None:
    assert current_period(unit, date(2026, 11, 30)) == period


ENV = {
    "INCIDENTS_TABLE_NAME": "BudgetSyncIncidents",
    "BUDGETS_TABLE_NAME": "BlogBudgetsDynamoDB",
    "SERVICENOW_INSTANCE_URL": "https://example.service-now.com",
    "SERVICENOW_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:servicenow-AbCdEf",
    "SPOKE_ROLE_NAME": "BlogBudgetsSpokeRole",
    "INCIDENT_URGENCY": "2",
}


def test_given_the_environment_then_settings_with_the_stack_defaults() -> None:
    settings = IncidentFunctionSettings.from_env(ENV)

    assert settings.stack == IncidentSettings(urgency=2)
    assert settings.close_code == "Solution provided"
    assert settings.defaults_table_name == ""


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("INCIDENT_URGENCY", "5", "INCIDENT_URGENCY '5' is not 1, 2 or 3"),
        ("INCIDENT_CALLER", "Jane", "INCIDENT_CALLER 'Jane' is not a ServiceNow sys_id"),
        ("SERVICENOW_INSTANCE_URL", "http://example.service-now.com", "SERVICENOW_INSTANCE_URL"),
        ("SERVICENOW_SECRET_ARN", "servicenow", "SERVICENOW_SECRET_ARN has an invalid value 'servicenow'"),
    ],
)
def test_given_a_bad_variable_then_config_error_names_it_and_the_value(
    name: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        IncidentFunctionSettings.from_env({**ENV, name: value})
