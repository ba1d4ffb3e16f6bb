"""OU defaults and enrolment end to end on the local organisation: defaults table -> resolver
-> budgets table -> stream -> spoke parameter -> Automation -> budget, and Organizations'
own events for created and moved accounts. Accounts: 111 and 333 in Sandbox, 222 in
Production (the local organisation's placement)."""

from __future__ import annotations

from decimal import Decimal

from budget_sync_local.organisation import LocalOrganisation
from tests.e2e.conftest import Recorder

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
