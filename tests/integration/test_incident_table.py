"""The incidents table's adapter (budget_sync.incidents.table.DynamoIncidentStore) on moto: the
conditional write that keeps one incident per correlation id, the round trip of a record, and
the scans; and the logic's stories through it, as through the in-memory fake."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from decimal import Decimal

import boto3
import pytest
from moto import mock_aws

from budget_sync.errors import TransientError
from budget_sync.incidents.lifecycle import (
    OPEN,
    RESOLVED,
    Breach,
    BudgetState,
    IncidentRecord,
    Incidents,
    IncidentSettings,
)
from budget_sync.incidents.servicenow import Credentials, ServiceNowDesk
from budget_sync.incidents.table import DynamoIncidentStore
from budget_sync_local.servicenow import StandIn
from tests.fakes import FakeAlarmTopic
from tests.fakes.incidents import StandInTransport

pytestmark = pytest.mark.aws

TABLE = "BudgetSyncIncidents"
CID = "111111111111/SpokeAccountBudget/2026-12-01"


@pytest.fixture
def store() -> Iterator[DynamoIncidentStore]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "CorrelationId", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "CorrelationId", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield DynamoIncidentStore(client, TABLE)


def record(**changes: object) -> IncidentRecord:
    base = IncidentRecord(CID, "111111111111", "SpokeAccountBudget", "2027-01-01", claimed_at=12.5)
    return replace(base, **changes)  # type: ignore[arg-type]


def test_given_no_item_when_two_writers_put_the_first_version_then_only_one_wins(
    store: DynamoIncidentStore,
) -> None:
    assert store.put(record(), None) is True
    assert store.put(record(claimed_at=99.0), None) is False

    assert store.get(CID) == record()


def test_given_a_record_when_written_with_a_stale_version_then_refused(store: DynamoIncidentStore) -> None:
    store.put(record(), None)
    opened = record(
        state=OPEN, version=2, sys_id="a" * 32, number="INC0010001", notified=frozenset({"ACTUAL 80%"})
    )

    assert store.put(opened, 1) is True
    assert store.put(record(version=3), 1) is False
    assert store.get(CID) == opened
    assert store.get("222222222222/B/2026-12-01") is None


def test_given_records_when_scanned_then_unresolved_and_an_accounts_open_ones(
    store: DynamoIncidentStore,
) -> None:
    store.put(record(state=OPEN, number="INC0010001"), None)
    store.put(record(correlation_id="111111111111/Other/2026-12-01", state=RESOLVED), None)
    store.put(record(correlation_id="222222222222/B/2026-12-01", account_id="222222222222", state=OPEN), None)

    assert sorted(r.correlation_id for r in store.unresolved()) == [CID, "222222222222/B/2026-12-01"]
    assert [r.number for r in store.open_for_account("111111111111")] == ["INC0010001"]


def test_given_no_table_when_read_then_transient_error() -> None:
    with mock_aws():
        missing = DynamoIncidentStore(boto3.client("dynamodb", region_name="us-east-1"), "Missing")
        with pytest.raises(TransientError, match="read failed"):
            missing.get(CID)


def test_given_the_table_when_an_alert_is_delivered_twice_and_resolved_then_one_incident_resolved(
    store: DynamoIncidentStore,
) -> None:
    instance = StandIn()
    desk = ServiceNowDesk(
        StandInTransport.BASE, Credentials(instance.user, instance.password), StandInTransport(instance)
    )
    incidents = Incidents(desk, store, FakeAlarmTopic())
    alarm = BudgetState(
        "111111111111",
        "SpokeAccountBudget",
        date(2026, 12, 1),
        date(2027, 1, 1),
        (Breach("ACTUAL", Decimal(80)),),
    )
    settings = IncidentSettings(urgency=3, impact=3)

    actions = [incidents.alarm(alarm, settings).action for _ in range(2)]
    resolved = incidents.observe(replace(alarm, breaches=()), settings)

    assert actions == ["opened", "unchanged"]
    assert resolved.action == "resolved"
    assert [i["state"] for i in instance.by_correlation(CID)] == ["6"]
    assert store.get(CID).state == RESOLVED  # type: ignore[union-attr]
