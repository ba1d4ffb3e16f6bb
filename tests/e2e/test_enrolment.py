"""OU defaults and enrolment end to end on the local organisation: defaults table -> resolver
-> budgets table -> stream -> spoke parameter -> Automation -> budget, and Organizations'
own events for created and moved accounts. Accounts: 111 and 333 in Sandbox, 222 in
Production (the local organisation's placement)."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest

from budget_sync_local import enrolment
from budget_sync_local.organisation import LocalOrganisation
from tests.support.local_org import Recorder

# every test: moto or the local organisation (make unit does not import this module)
pytestmark = pytest.mark.aws

SANDBOX_A, PRODUCTION_A, SANDBOX_B = "111111111111", "222222222222", "333333333333"
NEW = "444444444444"


def arrived(org: LocalOrganisation, account: str, value: str) -> bool:
    view = org.view(account)
    return view.arrived and view.desired == Decimal(value)


def test_given_an_ou_default_when_an_account_is_created_there_then_it_waits_for_its_spoke_stack_then_gets_it(
    local_org: LocalOrganisation, recorder: Recorder
):
    # GIVEN a Sandbox default
    local_org.set_default("Sandbox", 100)
    local_org.pipeline.run_until_idle()

    # WHEN an account is created and moved into Sandbox; the StackSet deploys its stack later
    local_org.create_account(NEW, "Sandbox")

    # THEN (before the stack) it waits, with the default it will get
    steps = [s for s in recorder.steps if s.kind == "resolver" and s.account == NEW]
    assert steps == []  # nothing happens until the pipeline runs: events are queued
    local_org.enrolment.step()  # the two Organizations events reach the resolver
    status = local_org.status(NEW)
    assert status is not None
    assert status["Status"] == "WAITING"
    assert status["DesiredValue"] == Decimal(100)

    # and once the StackSet deployed the stack and reported it, the budget arrives
    local_org.pipeline.run_until_idle()
    assert arrived(local_org, NEW, "100")
    assert local_org.view(NEW).source == f"default {local_org.ous['Sandbox']}"
    assert local_org.status(NEW)["Status"] == "APPLIED"  # type: ignore[index]
    kinds = [s.kind for s in recorder.steps if s.account == NEW]
    assert kinds.index("stackset-deploy") < len(kinds) - 1


def test_given_an_override_then_it_wins_over_the_default_and_a_default_change_reaches_only_inheritors(
    local_org: LocalOrganisation,
):
    local_org.set_default("Sandbox", 100)
    local_org.put(SANDBOX_A, Decimal("1250.50"))  # the override
    local_org.pipeline.run_until_idle()
    assert arrived(local_org, SANDBOX_A, "1250.50")
    assert arrived(local_org, SANDBOX_B, "100")

    # WHEN the Sandbox default changes
    local_org.set_default("Sandbox", 150)
    local_org.pipeline.run_until_idle()

    # THEN the inheriting account follows, the overridden one and Production do not
    assert arrived(local_org, SANDBOX_B, "150")
    assert arrived(local_org, SANDBOX_A, "1250.50")
    assert local_org.desired(PRODUCTION_A) is None


def test_given_a_moved_account_then_it_takes_the_default_of_its_new_ou(local_org: LocalOrganisation):
    local_org.set_default("Sandbox", 100)
    local_org.set_default("Production", 5000)
    local_org.pipeline.run_until_idle()
    assert arrived(local_org, SANDBOX_B, "100")

    local_org.move_account(SANDBOX_B, "Production")
    local_org.pipeline.run_until_idle()

    assert arrived(local_org, SANDBOX_B, "5000")
    assert local_org.view(SANDBOX_B).source == f"default {local_org.ous['Production']}"


def test_given_a_removed_default_then_inheritors_keep_their_last_budget_and_are_unmanaged(
    local_org: LocalOrganisation,
):
    local_org.set_default("Sandbox", 100)
    local_org.pipeline.run_until_idle()
    assert arrived(local_org, SANDBOX_B, "100")

    local_org.delete_default("Sandbox")
    local_org.pipeline.run_until_idle()

    view = local_org.view(SANDBOX_B)
    assert view.desired is None  # the inherited item is gone
    assert view.parameter == "100"
    assert view.budget_limit == Decimal(100)  # the account keeps its last budget
    assert view.status == "UNMANAGED"


def test_given_a_deleted_override_then_the_account_falls_back_to_its_ous_default(
    local_org: LocalOrganisation,
):
    local_org.set_default("Sandbox", 100)
    local_org.put(SANDBOX_A, 700)
    local_org.pipeline.run_until_idle()
    assert arrived(local_org, SANDBOX_A, "700")

    local_org.delete(SANDBOX_A)
    local_org.pipeline.run_until_idle()

    assert arrived(local_org, SANDBOX_A, "100")
    assert local_org.view(SANDBOX_A).source == f"default {local_org.ous['Sandbox']}"


@pytest.mark.parametrize("forwarded", [True, False], ids=["forwarding stack", "no forwarding stack"])
@pytest.mark.aws
def test_given_a_management_stack_in_eu_west_1_then_organizations_events_reach_it_only_through_the_forwarding(
    forwarded: bool,
):
    # GIVEN the management stack in eu-west-1, with or without template-org-events.yaml's
    # stack in us-east-1 (Organizations' events reach EventBridge in us-east-1 only)
    recorder = Recorder()
    with LocalOrganisation(
        (SANDBOX_A,),
        region="eu-west-1",
        observer=recorder,
        function_output=io.StringIO(),
        forward_org_events=forwarded,
        # which rule delivers (the region), not in what order: the events arrive in order, once,
        # so that one enrolment step holds both (tests/e2e/test_delivery.py shuffles them)
        seed=None,
    ) as org:
        org.set_default("Sandbox", 100)
        org.pipeline.run_until_idle()

        # WHEN an account is created and moved into Sandbox
        org.create_account(NEW, "Sandbox")
        org.enrolment.step()  # its two Organizations events, before its spoke stack exists

        # THEN the resolver saw them only through the forwarding rule
        resolved = [s.detail["rule"] for s in recorder.steps if s.kind == "resolver" and s.account == NEW]
        ignored = [
            s.detail["reason"] for s in recorder.steps if s.kind == "ignored-event" and s.account == NEW
        ]
        status = org.status(NEW)
        if forwarded:
            assert resolved == ["OrganizationsEventsRule", "OrganizationsEventsRule"]
            assert status is not None
            assert status["Status"] == "WAITING"
        else:
            assert resolved == []
            assert len(ignored) == 2
            assert all("delivered in us-east-1 only" in reason for reason in ignored)
            assert status is None
        # and either way the StackSet's instance event (in the stack's region) enrols it
        org.pipeline.run_until_idle()
        assert arrived(org, NEW, "100")


def test_the_forwarding_stack_is_refused_for_a_management_stack_in_us_east_1(local_org: LocalOrganisation):
    with pytest.raises(enrolment.ForwardingStackError, match="receives Organizations events directly"):
        enrolment.deploy_org_events_forwarding(local_org.management, "123456789012", "us-east-1")
