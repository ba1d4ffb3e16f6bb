"""The incidents' logic (budget_sync.incidents.lifecycle.Incidents) with the real ServiceNow adapter talking
to the local stand-in in-process, an in-memory incidents table and alarm topic: one incident per
account, budget and period, updated, never duplicated, resolved."""

from __future__ import annotations

import threading
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from budget_sync.errors import IncidentDeskUnavailable, InvalidItemError, TransientError
from budget_sync.incidents.lifecycle import (
    OPEN,
    OPENING,
    RESOLVED,
    Breach,
    BudgetState,
    Incidents,
    IncidentSettings,
    correlation_id,
    effective_settings,
    urgency_for,
)
from budget_sync.incidents.servicenow import Credentials, ServiceNowDesk
from budget_sync_local.servicenow import StandIn
from tests.fakes import FakeAlarmTopic
from tests.fakes.incidents import FakeIncidentStore, StandInTransport

ACCOUNT = "111111111111"
GROUP = "a" * 32
CALLER = "b" * 32
SETTINGS = effective_settings(IncidentSettings(urgency=3, impact=2, assignment_group=GROUP, caller=CALLER))


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class World:
    def __init__(self) -> None:
        self.instance = StandIn()
        self.transport = StandInTransport(self.instance)
        self.desk = ServiceNowDesk(
            StandInTransport.BASE,
            Credentials(self.instance.user, self.instance.password),
            self.transport,
            sleep=lambda _: None,
        )
        self.store = FakeIncidentStore()
        self.topic = FakeAlarmTopic()
        self.clock = Clock()
        self.incidents = Incidents(self.desk, self.store, self.topic, clock=self.clock, claim_timeout=300)

    def only_incident(self, cid: str) -> dict[str, str]:
        found = self.instance.by_correlation(cid)
        assert len(found) == 1, found
        return found[0]


@pytest.fixture
def world() -> World:
    return World()


def state(*breaches: Breach, period: date = date(2026, 12, 1), actual: str = "95") -> BudgetState:
    return BudgetState(
        account_id=ACCOUNT,
        account_name="Sandbox One",
        budget_name="SpokeAccountBudget",
        period_start=period,
        period_end=date(period.year + period.month // 12, period.month % 12 + 1, 1),
        breaches=breaches,
        limit=Decimal(100),
        actual=Decimal(actual),
        forecasted=Decimal(130),
    )


AT_80 = Breach("ACTUAL", Decimal(80))
AT_100 = Breach("ACTUAL", Decimal(100))
CID = state().correlation_id


def test_given_a_first_alarm_when_alarm_then_one_incident_with_the_configured_fields(world: World) -> None:
    outcome = world.incidents.alarm(state(AT_80), SETTINGS)

    incident = world.only_incident(CID)
    assert outcome.action == "opened"
    assert outcome.number == incident["number"]
    assert f"{ACCOUNT}/SpokeAccountBudget/2026-12-01" == CID
    assert (incident["urgency"], incident["impact"], incident["priority"]) == ("3", "2", "4")  # derived
    assert (incident["assignment_group"], incident["caller_id"]) == (GROUP, CALLER)
    assert "Sandbox One (111111111111)" in incident["short_description"]
    assert "ACTUAL 80%" in incident["short_description"]
    for text in ("Actual spend: 95.00 USD", "Forecasted spend: 130.00 USD", "Limit: 100.00 USD"):
        assert text in incident["description"]
    assert f"budgetctl status --account {ACCOUNT}" in incident["description"]
    assert world.store.get(CID).state == OPEN  # type: ignore[union-attr]


def test_given_the_same_alert_delivered_twice_then_one_incident_and_no_second_call(world: World) -> None:
    world.incidents.alarm(state(AT_80), SETTINGS)
    calls = len(world.transport.calls)

    again = world.incidents.alarm(state(AT_80), SETTINGS)

    assert again.action == "unchanged"
    world.only_incident(CID)
    assert len(world.transport.calls) == calls


def test_given_eight_concurrent_deliveries_then_exactly_one_incident(world: World) -> None:
    world.store = FakeIncidentStore(gate=threading.Barrier(8, timeout=10))  # all eight read "none yet"
    world.incidents = Incidents(world.desk, world.store, world.topic, clock=world.clock, claim_timeout=300)
    outcomes: list[str] = []

    def deliver() -> None:
        for _ in range(20):  # a delivery that loses is delivered again, as SQS would
            try:
                outcomes.append(world.incidents.alarm(state(AT_80), SETTINGS).action)
                return
            except TransientError:
                continue

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    world.only_incident(CID)
    assert outcomes.count("opened") == 1


def test_given_an_open_incident_when_a_higher_threshold_then_a_work_note_and_a_higher_urgency(
    world: World,
) -> None:
    world.incidents.alarm(state(AT_80), SETTINGS)

    outcome = world.incidents.alarm(state(AT_80, AT_100, actual="104"), SETTINGS)

    incident = world.only_incident(CID)
    assert outcome.action == "updated"
    assert incident["urgency"] == "2"  # one step higher at 100 %
    notes = [e.value for e in world.instance.journal[incident["sys_id"]]]
    assert len(notes) == 1
    assert "ACTUAL 100% crossed" in notes[0]
    assert "Actual 104.00 USD" in notes[0]


def test_given_a_raised_urgency_when_a_forecast_alert_then_the_urgency_is_not_lowered(world: World) -> None:
    world.incidents.alarm(state(AT_100), SETTINGS)

    world.incidents.alarm(state(AT_100, Breach("FORECASTED", Decimal(100))), SETTINGS)

    assert world.only_incident(CID)["urgency"] == "2"


def test_given_an_open_incident_when_no_longer_in_alarm_then_resolved_with_code_and_notes(
    world: World,
) -> None:
    world.incidents.alarm(state(AT_80), SETTINGS)

    outcome = world.incidents.observe(state(), SETTINGS)

    incident = world.only_incident(CID)
    assert outcome.action == "resolved"
    assert (incident["state"], incident["close_code"]) == ("6", "Solution provided")
    assert "no longer in alarm" in incident["close_notes"]
    assert world.store.get(CID).state == RESOLVED  # type: ignore[union-attr]
    assert world.incidents.observe(state(), SETTINGS).action == "none"  # resolving twice: nothing


def test_given_a_resolved_incident_when_the_budget_alarms_again_in_the_period_then_a_new_one(
    world: World,
) -> None:
    first = world.incidents.alarm(state(AT_80), SETTINGS)
    world.incidents.observe(state(), SETTINGS)

    second = world.incidents.alarm(state(AT_80), SETTINGS)

    assert second.action == "opened"
    assert second.number != first.number
    assert [i["state"] for i in world.instance.by_correlation(CID)] == ["6", "1"]


def test_given_the_period_ended_when_sweep_then_resolved_and_the_next_period_has_its_own(
    world: World,
) -> None:
    world.incidents.alarm(state(AT_80), SETTINGS)

    assert [o.action for o in world.incidents.sweep(date(2026, 12, 31))] == []
    swept = world.incidents.sweep(date(2027, 1, 1))
    january = world.incidents.alarm(state(AT_80, period=date(2027, 1, 1)), SETTINGS)

    assert [o.action for o in swept] == ["resolved"]
    assert "period has ended" in world.only_incident(CID)["close_notes"]
    assert january.action == "opened"
    assert january.correlation_id.endswith("/2027-01-01")


def test_given_an_outage_when_alarm_then_it_raises_and_after_it_exactly_one_incident(world: World) -> None:
    world.instance.fail_next(100, 503)
    with pytest.raises(IncidentDeskUnavailable):
        world.incidents.alarm(state(AT_80), SETTINGS)
    assert world.instance.incidents == {}
    assert world.store.get(CID).state == OPENING  # type: ignore[union-attr]
    world.instance.recover()

    # redelivered: the claim was given up, so the incident is looked up (none), then opened
    outcome = world.incidents.alarm(state(AT_80), SETTINGS)

    assert outcome.action == "opened"
    world.only_incident(CID)
    methods = [m for m, _ in world.transport.calls[-2:]]
    assert methods == ["GET", "POST"]  # the lookup, then the one creation


def test_given_a_creation_that_timed_out_after_servicenow_stored_it_when_redelivered_then_found_not_opened_again(
    world: World,
) -> None:
    # ServiceNow stores the incident but its answer never arrives
    real = world.transport
    answers: list[int] = []

    def lost_answer(method: str, url: str, headers: Any, body: bytes | None) -> Any:
        response = real(method, url, headers, body)
        if method == "POST" and not answers:
            answers.append(response.status)
            raise IncidentDeskUnavailable("no answer from ServiceNow (ReadTimeoutError)")
        return response

    world.desk = ServiceNowDesk(
        StandInTransport.BASE,
        Credentials(world.instance.user, world.instance.password),
        lost_answer,
        attempts=1,
    )
    world.incidents = Incidents(world.desk, world.store, world.topic, clock=world.clock, claim_timeout=300)
    with pytest.raises(IncidentDeskUnavailable):
        world.incidents.alarm(state(AT_80), SETTINGS)

    outcome = world.incidents.alarm(state(AT_80, AT_100), SETTINGS)

    assert answers == [201]
    assert outcome.action == "updated"
    world.only_incident(CID)


def test_given_an_incident_created_but_not_recorded_when_redelivered_then_found_by_correlation_id_not_opened_again(
    world: World,
) -> None:
    # a delivery that created the incident and died before recording it (ServiceNow answered,
    # the Lambda timed out): its claim is OPENING with no sys_id
    world.incidents.alarm(state(AT_80), SETTINGS)
    record = world.store.get(CID)
    assert record is not None
    world.store.records[CID] = type(record)(
        record.correlation_id,
        record.account_id,
        record.budget_name,
        record.period_end,
        OPENING,
        record.version + 1,
        world.clock.now,
    )
    world.clock.now += 301

    outcome = world.incidents.alarm(state(AT_80, AT_100), SETTINGS)

    assert outcome.action == "updated"
    world.only_incident(CID)


def test_given_a_bad_credential_when_three_alarms_then_one_failure_notice_and_no_retries(
    world: World,
) -> None:
    world.instance.password = "rotated"

    outcomes = [world.incidents.alarm(state(AT_80), SETTINGS) for _ in range(3)]

    assert [o.action for o in outcomes] == ["failed"] * 3
    assert "User Not Authenticated" in outcomes[0].failure
    assert len(world.topic.published) == 1
    subject, message = world.topic.published[0]
    assert CID in subject
    assert "ServiceNow answered 401: User Not Authenticated" in message
    assert len(world.transport.calls) == 3  # one request per alarm, none retried
    # fixed: the next alarm opens it, and a new failure would be notified again
    world.instance.password = "local-password"
    assert world.incidents.alarm(state(AT_80), SETTINGS).action == "opened"
    assert world.store.get(CID).failure == ""  # type: ignore[union-attr]


def test_given_an_incident_deleted_in_servicenow_when_the_next_alarm_then_a_new_one(world: World) -> None:
    world.incidents.alarm(state(AT_80), SETTINGS)
    world.instance.incidents.clear()

    outcome = world.incidents.alarm(state(AT_80, AT_100), SETTINGS)

    assert outcome.action == "opened"
    world.only_incident(CID)


@pytest.mark.parametrize(
    ("item", "field", "value"),
    [
        ({"IncidentUrgency": "4"}, "IncidentUrgency", "4"),
        ({"IncidentImpact": Decimal("1.5")}, "IncidentImpact", Decimal("1.5")),
        ({"IncidentAssignmentGroup": "Cloud Team"}, "IncidentAssignmentGroup", "Cloud Team"),
        ({"IncidentCaller": 12}, "IncidentCaller", 12),
    ],
)
def test_given_a_bad_setting_on_an_item_then_invalid_item_names_the_field_and_value(
    item: dict[str, object], field: str, value: object
) -> None:
    with pytest.raises(InvalidItemError) as error:
        IncidentSettings.from_item(item, ACCOUNT)

    assert (error.value.field, error.value.value) == (field, value)


def test_given_account_ou_and_stack_settings_then_the_nearest_wins_field_by_field() -> None:
    stack = IncidentSettings(urgency=3, impact=3, assignment_group=GROUP)
    ou = IncidentSettings.from_item({"IncidentUrgency": 2, "IncidentCaller": CALLER})
    account = IncidentSettings.from_item({"IncidentImpact": "1", "IncidentUrgency": ""})

    assert effective_settings(stack, account, ou) == IncidentSettings(2, 1, GROUP, CALLER)
    assert effective_settings(IncidentSettings()) == IncidentSettings(urgency=3, impact=3)


def test_given_thresholds_then_urgency_rises_one_step_at_100_percent_actual_only() -> None:
    assert urgency_for([AT_80], 3) == 3
    assert urgency_for([AT_80, AT_100], 3) == 2
    assert urgency_for([Breach("FORECASTED", Decimal(120))], 3) == 3
    assert urgency_for([AT_100], 1) == 1


def test_given_a_budget_name_an_encoded_query_would_split_then_the_correlation_id_is_safe_and_distinct() -> (
    None
):
    one = correlation_id(ACCOUNT, "team^active=false", date(2026, 12, 1))
    two = correlation_id(ACCOUNT, "team^active=true", date(2026, 12, 1))
    long = correlation_id(ACCOUNT, "x" * 100, date(2026, 12, 1))

    assert "^" not in one
    assert "=" not in one
    assert one != two
    assert len(long) <= 100
