"""End to end on the local organisation with the optional incidents (docs/itsm.md): the templates
deployed with ServiceNowSecretArn and IncidentQueueArn, AWS Budgets' alerts published to the
spoke's alert topic, delivered to the management account's incident queue through its policy,
the incident function run as its role (the secret, the spoke's incident read role, the
tables, Organizations: every call authorised), and the local ServiceNow stand-in."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

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
