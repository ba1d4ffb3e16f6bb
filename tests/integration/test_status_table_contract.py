"""The in-memory status table (tests/fakes) answers as the DynamoDB adapter does on moto: the
same stories through the status and result stores leave the same items and the same answers,
so the unit tests on the fake (tests/unit/test_status_store.py, test_result_store.py) speak
for the adapter."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from budget_sync.history import Provenance
from budget_sync.results import ALERTS_STEP, ExecutionEnded, ResultStore, SpokeReport
from budget_sync.status import Status, StatusStore, StatusTable, StatusUpdate
from budget_sync.status_table import DynamoStatusTable
from tests.fakes import FakeStatusTable
from tests.support.moto_org import SPOKES, Org

A, B = SPOKES[0], SPOKES[1]
_CLOCK = {"UpdatedAt", "SentAt", "ConfirmedAt", "EndedAt"}
#: a time inside a text (a timeout's Reason says when the value was sent): the two runs of a
#: story may straddle a second
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[+-]\d{2}:\d{2}|Z)?")


def _without_clock(item: dict[str, Any]) -> dict[str, Any]:
    return {
        k: _TIME.sub("<time>", v) if isinstance(v, str) else v for k, v in item.items() if k not in _CLOCK
    }


def sent(version: int | None, value: int, sequence: str, alerts_version: int | None = None) -> StatusUpdate:
    return StatusUpdate(
        A,
        Status.SENT,
        sequence,
        desired=Decimal(value),
        applied=Decimal(value),
        parameter_version=version,
        alerts_version=alerts_version,
    )


def report(
    version: int, limit: int | None, outcome: Status = Status.APPLIED, step: str = "UpdateBudgetLimit"
) -> SpokeReport:
    return SpokeReport(
        A,
        f"exec-{version}",
        version,
        outcome,
        None if limit is None else Decimal(limit),
        reason="" if outcome is Status.APPLIED else "no",
        step=step,
        alerts='{"emails": []}' if step == ALERTS_STEP and outcome is Status.APPLIED else "",
        alerts_versions=(3, 1) if step == ALERTS_STEP else None,
    )


Story = Callable[[StatusStore, ResultStore], list[Any]]

STORIES: dict[str, Story] = {
    "confirmed": lambda s, r: [s.record(sent(4, 300, "10")), r.record(report(4, 300))],
    "older then newer": lambda s, r: [
        s.record(sent(4, 400, "10")),
        s.record(sent(5, 500, "20")),
        r.record(report(4, 400)),
        s.record(sent(3, 300, "05")),
        r.record(report(5, 500)),
    ],
    "report before sent": lambda s, r: [r.record(report(7, 700)), s.record(sent(7, 700, "30"))],
    "failure before sent": lambda s, r: [
        r.record(report(2, None, Status.FAILED)),
        s.record(sent(2, 200, "10")),
    ],
    "another limit": lambda s, r: [s.record(sent(3, 300, "10")), r.record(report(3, 299))],
    "alerts both steps": lambda s, r: [
        s.record(sent(4, 400, "10", alerts_version=3)),
        r.record(report(4, 400)),
        r.record(report(4, None, step=ALERTS_STEP)),
    ],
    "alerts first then sent": lambda s, r: [
        r.record(report(4, 400)),
        r.record(report(4, None, step=ALERTS_STEP)),
        s.record(sent(4, 400, "10", alerts_version=3)),
    ],
    "notice then report": lambda s, r: [
        s.record(sent(2, 200, "10")),
        r.record(ExecutionEnded(A, "exec-9", "Failed")),
        r.record(ExecutionEnded(A, "exec-9", "Failed")),
        r.record(report(2, None, Status.FAILED)),
    ],
    "batch with a newer status": lambda s, r: [
        s.record(StatusUpdate(A, Status.APPLIED, "900", applied=Decimal(9))),
        s.record_many([StatusUpdate(a, Status.UNMANAGED, "5") for a in (A, B)]),
    ],
    # history's attributes: the change a stream write records, and who asked for a repair (a
    # scheduled repair after a requested one names nobody)
    "a change with its provenance": lambda s, r: [
        s.record(
            replace(sent(2, 200, "10"), change=Provenance("100", "200", "arn:aws:iam::1:user/a", "t", "item"))
        ),
    ],
    "requested then scheduled repair": lambda s, r: [
        s.record(replace(sent(2, 200, "10"), source="reconciler", repaired=True, requested_by="arn:x")),
        s.record(replace(sent(3, 200, "10"), source="reconciler", repaired=True)),
    ],
    "the check": lambda s, r: [
        s.record(sent(2, 200, "10")),
        [
            t.account_id
            for t in r.expire_unconfirmed(datetime.now(UTC) + timedelta(hours=1), timedelta(minutes=15))
        ],
        [
            t.account_id
            for t in r.expire_unconfirmed(datetime.now(UTC) + timedelta(hours=2), timedelta(minutes=15))
        ],
    ],
}


def run(
    table: StatusTable, story: Story, read: Callable[[str], dict[str, Any] | None]
) -> tuple[list[Any], list[Any]]:
    answers = story(StatusStore(table), ResultStore(table))  # type: ignore[arg-type]
    items = [read(a) for a in (A, B)]
    return answers, [None if i is None else _without_clock(i) for i in items]


@pytest.mark.parametrize("name", STORIES)
def test_the_fake_status_table_ends_each_story_as_dynamodb_does(org: Org, name: str):
    adapter = DynamoStatusTable(org.management.client("dynamodb"), org.status_table)
    fake = FakeStatusTable()

    on_moto = run(adapter, STORIES[name], adapter.read)
    in_memory = run(fake, STORIES[name], lambda a: fake.items.get(a))

    assert in_memory == on_moto


def test_a_scheduled_repair_after_a_requested_one_names_nobody_and_a_change_keeps_its_provenance(org: Org):
    adapter = DynamoStatusTable(org.management.client("dynamodb"), org.status_table)
    STORIES["requested then scheduled repair"](StatusStore(adapter), ResultStore(adapter))
    item = adapter.read(A)
    assert item is not None
    assert "RequestedBy" not in item
    assert item["RepairedVersion"] == 3
    STORIES["a change with its provenance"](StatusStore(adapter), ResultStore(adapter))
    item = adapter.read(A)
    assert item is not None
    assert (item["ChangedFrom"], item["ChangedTo"], item["ChangedBy"], item["ChangedVia"]) == (
        "100",
        "200",
        "arn:aws:iam::1:user/a",
        "item",
    )
