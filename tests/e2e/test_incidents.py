"""End to end on the local organisation with the optional incidents (docs/itsm.md): the templates
deployed with ServiceNowSecretArn and IncidentQueueArn, AWS Budgets' alerts published to the
spoke's alert topic, delivered to the management account's incident queue through its policy,
the incident function run as its role (the secret, the spoke's incident read role, the
tables, Organizations: every call authorised), and the local ServiceNow stand-in."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from budget_sync.handlers import incidents as handler_module
from budget_sync.incidents.budget_alarms import current_period
from budget_sync_local.lambda_runtime import (
    FakeContext,
    FunctionSpec,
    lambda_environment,
    load_handler,
    new_execution_environment,
)
from budget_sync_local.organisation import LocalOrganisation
from budget_sync_local.servicenow import StandIn
from budgetctl.cli import main as budgetctl
from tests.support.local_org import notifications

pytestmark = [pytest.mark.e2e, pytest.mark.aws]

A = "111111111111"


@pytest.fixture
def org() -> Iterator[LocalOrganisation]:
    with LocalOrganisation(accounts=(A,), function_output=io.StringIO(), servicenow=StandIn()) as org:
        org.put(A, 1000, IncidentUrgency=3)
        org.pipeline.run_until_idle()
        yield org


def incidents(org: LocalOrganisation) -> list[dict[str, str]]:
    assert org.servicenow is not None
    return sorted(org.servicenow.incidents.values(), key=lambda i: i["number"])


def test_given_an_over_budget_account_when_its_alerts_arrive_twice_then_one_incident_updated_then_resolved(
    org: LocalOrganisation, tmp_path: Path
) -> None:
    assert org.incidents is not None
    # GIVEN the account over its 80 % threshold: AWS Budgets publishes to the spoke's topic,
    # twice (a second notification of the same alarm)
    org.set_spend(A, Decimal(850), Decimal(900))
    published = org.send_budget_alerts(A) + org.send_budget_alerts(A)
    assert published
    # WHEN the queue's messages reach the incident function
    org.incidents.deliver()

    # THEN one incident, opened with the budget's figures
    [incident] = incidents(org)
    assert incident["state"] == "1"
    assert incident["urgency"] == "3"
    assert incident["correlation_id"].startswith(f"{A}/SpokeAccountBudget/")
    assert "ACTUAL 80%" in incident["short_description"]
    assert "Actual spend: 850.00 USD" in incident["description"]
    assert org.incidents.waiting() == 0

    # budgetctl status, as the operators' role, shows the open incident's number
    out, err = io.StringIO(), io.StringIO()
    code = budgetctl(
        ["status", "--output", "json", "--account", A, "--region", org.region],
        stdout=out,
        stderr=err,
        session=org.operator_session(),
    )
    assert code == 0, err.getvalue()
    [row] = json.loads(out.getvalue())
    assert row["Incident"] == incident["number"]
    # and so does budgetctl report (its rows, and its page)
    out = io.StringIO()
    budgetctl(
        ["report", "--output", "json", "--region", org.region],
        stdout=out,
        stderr=err,
        session=org.operator_session(),
    )
    assert [r["Incident"] for r in json.loads(out.getvalue()) if r["AccountId"] == A] == [incident["number"]]
    page = tmp_path / "report.html"
    budgetctl(
        ["report", "--file", str(page), "--region", org.region],
        stdout=io.StringIO(),
        stderr=err,
        session=org.operator_session(),
    )
    assert f"<td>{incident['number']}</td>" in page.read_text(encoding="utf-8")

    # WHEN the spend crosses 100 %: the same incident, a work note and a higher urgency
    org.set_spend(A, Decimal(1100), Decimal(1200))
    org.send_budget_alerts(A)
    org.incidents.deliver()
    [incident] = incidents(org)
    assert incident["urgency"] == "2"
    assert org.servicenow is not None
    assert len(org.servicenow.journal[incident["sys_id"]]) == 1

    # WHEN the budget is no longer in alarm (here: the spend reads lower), the schedule resolves it
    org.set_spend(A, Decimal(10), Decimal(10))
    summary = org.incidents.schedule()
    assert summary["actions"] == {"resolved": 1}
    [incident] = incidents(org)
    assert (incident["state"], incident["close_code"]) == ("6", "Solution provided")


def test_given_servicenow_down_when_alerts_arrive_then_they_wait_in_the_queue_and_open_one_incident_after(
    org: LocalOrganisation,
) -> None:
    assert org.incidents is not None
    assert org.servicenow is not None
    org.set_spend(A, Decimal(850), Decimal(900))
    org.servicenow.fail_next(1000, 503)
    org.send_budget_alerts(A)

    answers = org.incidents.deliver()

    assert answers[0]["batchItemFailures"]
    assert org.incidents.waiting() >= 1  # kept
    assert incidents(org) == []
    org.servicenow.recover()
    org.incidents.deliver()
    assert org.incidents.waiting() == 0
    assert len(incidents(org)) == 1


def test_given_a_bad_credential_when_alerts_keep_arriving_then_one_notice_and_the_queue_is_emptied(
    org: LocalOrganisation,
) -> None:
    assert org.incidents is not None
    assert org.servicenow is not None
    org.servicenow.password = "rotated"  # the secret no longer matches
    org.set_spend(A, Decimal(850), Decimal(900))

    for _ in range(3):
        org.send_budget_alerts(A)
        org.incidents.deliver()

    refused = [n for n in notifications(org) if "ServiceNow refused" in n[0]]
    assert len(refused) == 1
    assert "User Not Authenticated" in refused[0][1]
    assert org.incidents.waiting() == 0  # not retried forever
    assert incidents(org) == []


# -- the hourly sweep at scale (docs/itsm.md, "The hourly sweep at scale") ------------------

MANY = tuple(f"{n:012d}" for n in range(100000000001, 100000000013))  # twelve accounts
#: actual and forecasted spend of each (limit 1,000): under, over 80 %, over 100 %
SPEND = [(Decimal(300), Decimal(400)), (Decimal(850), Decimal(900)), (Decimal(1100), Decimal(1200))]
SCHEDULED = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}


class ShrinkingContext(FakeContext):
    """Lambda's context, whose remaining time drops by ``step_ms`` each time the function asks
    (once before it starts each account or ended period): how many it starts is known."""

    def __init__(self, spec: FunctionSpec, left_ms: int, step_ms: int) -> None:
        super().__init__(
            spec.function_name, spec.memory_mb, f"arn:aws:lambda:::{spec.function_name}", "r", 300
        )
        self.left, self.step = left_ms, step_ms

    def get_remaining_time_in_millis(self) -> int:
        left, self.left = self.left, self.left - self.step
        return left


def run_schedule(
    org: LocalOrganisation,
    *,
    concurrency: int | None = None,
    context: FakeContext | None = None,
    at: str = "",
) -> dict[str, Any]:
    """The incident function's scheduled run as Lambda runs it (the handler the template names,
    its environment, its role), in a new execution environment: with INCIDENT_SWEEP_CONCURRENCY
    ``concurrency`` instead of the template's, and ``context`` for Lambda's."""
    assert org.incidents is not None
    spec = org.incidents._spec
    assert spec is not None
    if concurrency is not None:
        spec = replace(spec, environment={**spec.environment, "INCIDENT_SWEEP_CONCURRENCY": str(concurrency)})
    new_execution_environment(spec)  # the settings are read again
    event = {**SCHEDULED, **({"time": at} if at else {})}
    with lambda_environment(spec, org.region):
        answer: dict[str, Any] = load_handler(spec)(
            event,
            context
            or FakeContext(
                spec.function_name, spec.memory_mb, f"arn:aws:lambda:::{spec.function_name}", "r", 300
            ),
        )
    new_execution_environment(spec)  # the next run reads the template's settings again
    return answer


def outcomes(org: LocalOrganisation) -> list[tuple[str, ...]]:
    """What ServiceNow holds, by correlation id (the INC numbers follow the order of creation)."""
    assert org.servicenow is not None
    return sorted(
        (
            i["correlation_id"],
            i["state"],
            i["urgency"],
            i["short_description"],
            i.get("close_code", ""),
            str(len(org.servicenow.journal.get(i["sys_id"], []))),
        )
        for i in org.servicenow.incidents.values()
    )


@contextmanager
def many_accounts() -> Iterator[LocalOrganisation]:
    with LocalOrganisation(accounts=MANY, function_output=io.StringIO(), servicenow=StandIn()) as org:
        for index, account in enumerate(MANY):
            org.put(account, 1000)
            org.set_spend(account, *SPEND[index % 3])
        org.pipeline.run_until_idle()
        yield org


def test_given_many_accounts_when_swept_concurrently_then_the_same_outcomes_as_one_after_another() -> None:
    runs: dict[int, list[Any]] = {}
    for concurrency in (1, 8):
        with many_accounts() as org:
            # WHEN the schedule runs: four accounts over 80 %, four over 100 %
            first = run_schedule(org, concurrency=concurrency)
            opened = outcomes(org)
            # then the spend moves: under to over 80 % (opened), over 80 % to over 100 %
            # (updated), over 100 % back under (resolved)
            for index, account in enumerate(MANY):
                org.set_spend(account, *SPEND[(index + 1) % 3])
            second = run_schedule(org, concurrency=concurrency)
            runs[concurrency] = [first["actions"], opened, second["actions"], outcomes(org)]
            assert first["skipped"] == second["skipped"] == first["unfinished"] == second["unfinished"] == []

    # THEN the same incidents, in the same states, as one account after another
    assert runs[8] == runs[1]
    assert runs[1][0] == {"none": 4, "opened": 8}
    assert runs[1][2] == {"opened": 4, "resolved": 4, "updated": 4}


def test_given_too_little_time_when_the_month_has_ended_then_its_incidents_resolved_first_and_the_rest_reported() -> (
    None
):
    with many_accounts() as org:
        assert run_schedule(org)["actions"] == {"none": 4, "opened": 8}
        assert org.incidents is not None
        spec = org.incidents._spec
        assert spec is not None
        start, first = current_period("MONTHLY", datetime.now(UTC).date())
        at = f"{first.isoformat()}T05:00:00+00:00"

        # WHEN the run on the 1st of the next month has time to start ten things before its
        # reserve (each start costs 10 s of the remaining time here)
        reserve = handler_module.SWEEP_RESERVE_MS
        summary = run_schedule(org, context=ShrinkingContext(spec, reserve + 100_000, 10_000), at=at)

        # THEN the eight incidents of the month that ended are resolved first, two accounts are
        # looked at, and the ten others are reported as left for the next hour
        assert org.servicenow is not None
        ended = [
            i for i in org.servicenow.incidents.values() if i["correlation_id"].endswith(start.isoformat())
        ]
        assert [i["state"] for i in ended] == ["6"] * 8
        assert all("period has ended" in i["close_notes"] for i in ended)
        assert len(summary["skipped"]) == 10
        assert summary["skipped"] == handler_module.rotated(MANY, datetime.fromisoformat(at))[2:]
        assert summary["skipped_ended"] == []
        assert sum(summary["actions"].values()) == 10
        assert summary["actions"]["resolved"] == 8
