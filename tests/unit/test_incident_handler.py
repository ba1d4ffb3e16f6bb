"""IncidentFunction through the entry point the template names (budget_sync.handlers.incidents.handler):
SQS batches of SNS notifications from spoke alert topics, and the hourly schedule. ServiceNow is
the local stand-in (in-process), the incidents table, the spoke budgets and the directory are
fakes; the logic and the adapter to ServiceNow are the real ones."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from budget_sync.errors import ConfigError, SpokeAccessDenied, UnrecognisedEvent
from budget_sync.handlers import incidents as handler_module
from budget_sync.handlers.incidents import IncidentContext, handler
from budget_sync.incidents.budget_alarms import budget_state, current_period
from budget_sync.incidents.config import IncidentFunctionSettings
from budget_sync.incidents.lifecycle import (
    Breach,
    BudgetState,
    Incidents,
    IncidentSettings,
    effective_settings,
)
from budget_sync.incidents.servicenow import Credentials, ServiceNowDesk
from budget_sync_local.servicenow import StandIn
from budget_sync_local.templates import MANAGEMENT_TEMPLATE, load
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
    gate: threading.Barrier | None = None  # each read waits there (reads in flight together)
    most_at_once: int = 0
    _in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def read(self, account_id: str, account_name: str = "", today: date | None = None) -> BudgetState | None:
        self.days.append(today)
        if self.gate is not None:
            with self._lock:
                self._in_flight += 1
                self.most_at_once = max(self.most_at_once, self._in_flight)
            self.gate.wait()
            with self._lock:
                self._in_flight -= 1
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
        monkeypatch.setattr(handler_module, "build", lambda: self.ctx)  # the current ctx, when called

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


class ShrinkingTime:
    """A Lambda context whose remaining time drops by ``step_ms`` each time it is asked: the
    sweep asks once before it starts each account or ended period, so how many it starts is
    known in advance, whatever the threads do."""

    def __init__(self, start_ms: int, step_ms: int) -> None:
        self.left = start_ms
        self.step = step_ms
        self.asked = 0
        for name, value in vars(CONTEXT).items():
            setattr(self, name, value)

    def get_remaining_time_in_millis(self) -> int:
        self.asked += 1
        left, self.left = self.left, self.left - self.step
        return left


def test_given_too_little_time_for_every_account_then_ended_periods_first_the_rest_reported_and_left(
    world: World,
) -> None:
    # GIVEN two incidents whose period has ended, and five accounts, two of them in alarm
    names = {f"{n}" * 12: f"Sandbox {n}" for n in range(1, 6)}
    world.ctx = replace(world.ctx, directory=FakeDirectory(names))
    for account in names:
        world.alarms.states[account] = alarm_state(account, Breach("ACTUAL", Decimal(80)))
    handler(SCHEDULED, CONTEXT)  # five incidents opened this month
    del world.alarms.states["111111111111"], world.alarms.states["222222222222"]
    first = current_period("MONTHLY", TODAY)[1]
    at = datetime(first.year, first.month, first.day, 3, tzinfo=UTC)  # on the 1st: last month has ended
    for account in ("333333333333", "444444444444", "555555555555"):
        world.alarms.states[account] = replace(
            alarm_state(account, Breach("ACTUAL", Decimal(80))),
            period_start=first,
            period_end=current_period("MONTHLY", first)[1],
        )

    # WHEN the schedule runs with time for four starts before the reserve (each start costs
    # 100 s of the context's remaining time here)
    context = ShrinkingTime(handler_module.SWEEP_RESERVE_MS + 400_000, 100_000)
    summary = handler({**SCHEDULED, "time": at.isoformat()}, context)

    # THEN the five ended periods come first: four resolved, one left for the next hour; no
    # account is started, and all five are reported as skipped
    assert summary["actions"] == {"resolved": 4}
    assert len(summary["skipped_ended"]) == 1
    assert summary["skipped"] == handler_module.rotated(list(names), at)
    assert summary["unfinished"] == []
    # AND the next hour's run (time enough) resolves the last ended period and opens this month's three
    later = handler({**SCHEDULED, "time": at.replace(hour=4).isoformat()}, CONTEXT)
    assert later["actions"] == {"resolved": 1, "opened": 3, "none": 2}
    assert later["skipped"] == later["skipped_ended"] == []


def test_given_time_for_some_accounts_when_cut_short_then_the_started_ones_are_the_rotation_s_first(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    names = {f"{n}" * 12: f"Sandbox {n}" for n in range(1, 8)}
    world.ctx = replace(world.ctx, directory=FakeDirectory(names))
    for account in names:
        world.alarms.states[account] = alarm_state(account, Breach("ACTUAL", Decimal(80)))
    at = datetime(2026, 12, 2, 13, tzinfo=UTC)

    summary = handler(
        {**SCHEDULED, "time": at.isoformat()},
        ShrinkingTime(handler_module.SWEEP_RESERVE_MS + 300_000, 100_000),
    )

    order = handler_module.rotated(list(names), at)
    assert summary["actions"] == {"opened": 3}
    assert summary["skipped"] == order[3:]
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert emitted[-1]["IncidentSweepSkipped"] == [4.0]
    # AND it is the metric IncidentSweepSkippedAlarm watches, under the namespace and service published
    alarm = load(MANAGEMENT_TEMPLATE)["Resources"]["IncidentSweepSkippedAlarm"]["Properties"]
    directive = emitted[-1]["_aws"]["CloudWatchMetrics"][0]
    assert alarm["MetricName"] in {m["Name"] for m in directive["Metrics"]}
    assert alarm["Namespace"] == directive["Namespace"]
    assert alarm["Dimensions"] == [{"Name": "service", "Value": emitted[-1]["service"]}]
    assert {i["correlation_id"].partition("/")[0] for i in world.instance.incidents.values()} == set(
        order[:3]
    )


def test_given_runs_cut_short_hour_after_hour_then_every_account_is_started_within_a_day() -> None:
    accounts = [f"{n:012d}" for n in range(1, 101)]
    for covered in (1, 5, 20):  # accounts a run has time for
        started: dict[str, int] = {}
        for hour in range(24 * 30):
            moment = datetime(2026, 12, 1, tzinfo=UTC) + timedelta(hours=hour)
            for account in handler_module.rotated(accounts, moment)[:covered]:
                started[account] = started.get(account, 0) + 1
        # over a month every account is started, and about as often as any other
        assert set(started) == set(accounts)
        expected = 24 * 30 * covered / len(accounts)
        assert min(started.values()) >= 0.5 * expected
        assert max(started.values()) <= 1.5 * expected + 1


def test_given_the_schedule_then_accounts_are_looked_at_concurrently_up_to_the_setting(world: World) -> None:
    names = {f"{n}" * 12: f"Sandbox {n}" for n in range(1, 9)}
    gate = threading.Barrier(4, timeout=10)  # four reads must be in flight together to pass
    world.alarms.gate = gate
    world.ctx = replace(world.ctx, directory=FakeDirectory(names), concurrency=4)
    for account in names:
        world.alarms.states[account] = alarm_state(account, Breach("ACTUAL", Decimal(80)))

    summary = handler(SCHEDULED, CONTEXT)

    assert summary["actions"] == {"opened": 8}
    assert world.alarms.most_at_once == 4


def test_given_the_schedule_and_an_alert_for_the_same_account_at_once_then_exactly_one_incident(
    world: World,
) -> None:
    # GIVEN one account in alarm; the sweep's and the delivery's reads before their claim (each
    # one's second: the first is the "already reported?" check) both see "no incident yet"
    world.ctx = replace(world.ctx, directory=FakeDirectory({A: "Sandbox A"}))
    world.store.__init__(gate=threading.Barrier(2, timeout=10), gate_at=2)  # type: ignore[misc]
    world.alarms.states[A] = alarm_state(A, Breach("ACTUAL", Decimal(80)))

    # WHEN the hourly sweep and a queue delivery handle it at the same time
    with ThreadPoolExecutor(max_workers=2) as pool:
        swept = pool.submit(handler, SCHEDULED, CONTEXT)
        delivered = pool.submit(handler, batch(sns(A, "m1")), CONTEXT)
        summary, answer = swept.result(), delivered.result()

    # THEN one incident, created once: the claim's loser found it opened (unchanged) or still
    # being opened (left for later: the message back to the queue, or the account to the next hour)
    [incident] = world.incidents_of(A)
    creates = [
        c for c in world.transport.calls if c[0] == "POST" and c[1].startswith("/api/now/table/incident")
    ]
    assert len(creates) == 1
    assert world.store.conflicts >= 1  # both reached the claim: the race happened
    assert summary["unfinished"] in ([], [A])
    assert answer in ({"batchItemFailures": []}, {"batchItemFailures": [{"itemIdentifier": "m1"}]})
    # AND the message delivered again (after its visibility timeout) changes nothing
    world.now += 3600
    assert handler(batch(sns(A, "m1")), CONTEXT) == {"batchItemFailures": []}
    assert world.incidents_of(A) == [incident]


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
    assert settings.sweep_concurrency == 16  # not set: the default


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("INCIDENT_URGENCY", "5", "INCIDENT_URGENCY '5' is not 1, 2 or 3"),
        ("INCIDENT_CALLER", "Jane", "INCIDENT_CALLER 'Jane' is not a ServiceNow sys_id"),
        ("SERVICENOW_INSTANCE_URL", "http://example.service-now.com", "SERVICENOW_INSTANCE_URL"),
        ("SERVICENOW_SECRET_ARN", "servicenow", "SERVICENOW_SECRET_ARN has an invalid value 'servicenow'"),
        (
            "INCIDENT_SWEEP_CONCURRENCY",
            "0",
            "INCIDENT_SWEEP_CONCURRENCY '0' is not a whole number from 1 to 64",
        ),
        (
            "INCIDENT_SWEEP_CONCURRENCY",
            "sixteen",
            "INCIDENT_SWEEP_CONCURRENCY 'sixteen' is not a whole number",
        ),
    ],
)
def test_given_a_bad_variable_then_config_error_names_it_and_the_value(
    name: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        IncidentFunctionSettings.from_env({**ENV, name: value})
