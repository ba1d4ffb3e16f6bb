"""The resolver's decisions (budget_sync.resolve.Resolver) on in-memory tables and an
in-memory organisation (tests/fakes): own, inherited and removed items, skipped and waiting
accounts, items changed by another client, conditional losses and stale runs, invalid
defaults, and which errors reach Lambda (retried) and which are answers. No AWS: the adapters
are proven on moto in tests/resolve and on botocore's Stubber in test_resolve_tables.py."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from budget_sync.errors import TransientError
from budget_sync.resolve import Resolver
from budget_sync.status import Status
from tests.fakes import FakeOrganisation, FakeReadiness, FakeResolverTables

SANDBOX = "ou-abcd-11111111"
PRODUCTION = "ou-abcd-22222222"
ROOT = "r-abcd"
A, B, C, D = "111111111111", "222222222222", "333333333333", "444444444444"


@pytest.fixture
def organisation() -> FakeOrganisation:
    organisation = FakeOrganisation(ROOT)
    organisation.add_ou(SANDBOX, "Sandbox")
    organisation.add_ou(PRODUCTION, "Production")
    organisation.add_account(A, SANDBOX)
    organisation.add_account(B, SANDBOX)
    organisation.add_account(C, PRODUCTION)
    organisation.add_account(D, ROOT)
    return organisation


def resolver(
    tables: FakeResolverTables, organisation: FakeOrganisation, readiness: FakeReadiness | None = None
) -> Resolver:
    return Resolver(tables, organisation, readiness, "budget-sync resolver (test)")


def test_given_defaults_on_an_ou_and_the_root_then_each_account_inherits_its_nearest_default(organisation):
    tables = FakeResolverTables(defaults={SANDBOX: Decimal(100), ROOT: Decimal(50)})

    summary = resolver(tables, organisation).resolve_all()

    assert {a: (i["BudgetValue"], i["InheritedFrom"]) for a, i in tables.budget_items.items()} == {
        A: (Decimal(100), SANDBOX),
        B: (Decimal(100), SANDBOX),
        C: (Decimal(50), ROOT),
        D: (Decimal(50), ROOT),
    }
    assert tables.budget_items[A]["InheritedValue"] == Decimal(100)
    assert tables.budget_items[A]["UpdatedBy"] == "budget-sync resolver (test)"
    assert summary.counts["InheritedWritten"] == 4
    assert (summary.scope, summary.conflicts, summary.stale) == ("organisation", 0, 0)


def test_given_an_explicit_item_then_it_wins_over_any_default_and_is_never_written(organisation):
    tables = FakeResolverTables(defaults={SANDBOX: Decimal(100)}, items={A: {"BudgetValue": Decimal(700)}})

    summary = resolver(tables, organisation).resolve_all()

    assert tables.budget_items[A] == {"BudgetValue": Decimal(700)}
    assert tables.budget_items[B]["BudgetValue"] == Decimal(100)
    assert summary.counts["Unchanged"] == 3  # A (own item), C and D (nothing applies)


def test_given_an_inherited_item_whose_default_is_gone_then_it_is_removed_and_explicit_items_stay(
    organisation,
):
    inherited = {"BudgetValue": Decimal(100), "InheritedFrom": SANDBOX, "InheritedValue": Decimal(100)}
    tables = FakeResolverTables(items={A: {"BudgetValue": Decimal(700)}, B: inherited})

    summary = resolver(tables, organisation).resolve_target(SANDBOX)

    assert B not in tables.budget_items
    assert tables.budget_items[A] == {"BudgetValue": Decimal(700)}
    assert summary.counts["InheritedRemoved"] == 1
    assert summary.scope == SANDBOX


def test_given_an_unchanged_inherited_item_then_nothing_is_written(organisation):
    inherited = {"BudgetValue": Decimal(100), "InheritedFrom": SANDBOX, "InheritedValue": Decimal(100)}
    tables = FakeResolverTables(defaults={SANDBOX: Decimal(100)}, items={A: inherited, B: dict(inherited)})

    summary = resolver(tables, organisation).resolve_target(SANDBOX)

    assert "write_inherited" not in tables.calls
    assert summary.counts == {"Unchanged": 2}


@pytest.mark.parametrize("state", ["SUSPENDED", "PENDING_CLOSURE", "CLOSED"])
def test_given_a_suspended_or_closed_account_then_it_is_skipped_and_nothing_is_written(organisation, state):
    organisation.add_account(A, SANDBOX, state=state)
    tables = FakeResolverTables(defaults={SANDBOX: Decimal(100)})

    summary = resolver(tables, organisation).resolve_account(A)

    assert A not in tables.budget_items
    assert tables.status[A]["Status"] == Status.SKIPPED.value
    assert state in tables.status[A]["Reason"]
    assert tables.status[A]["Source"] == "resolver"
    assert summary.counts == {"AccountSkipped": 1}


def test_given_an_account_without_its_spoke_stack_then_it_waits_and_inherits_once_the_stack_exists(
    organisation,
):
    tables = FakeResolverTables(defaults={SANDBOX: Decimal(100)})
    readiness = FakeReadiness(B, C, D)

    waiting = resolver(tables, organisation, readiness).resolve_account(A)

    assert A not in tables.budget_items
    assert tables.status[A]["Status"] == Status.WAITING.value
    assert tables.status[A]["DesiredValue"] == Decimal(100)
    assert waiting.counts == {"WaitingForSpoke": 1}

    ready = resolver(tables, organisation, readiness).resolve_account(A, spoke_ready=True)

    assert tables.budget_items[A]["BudgetValue"] == Decimal(100)
    assert ready.counts == {"InheritedWritten": 1}


def test_given_an_applied_budget_then_waiting_never_hides_it(organisation):
    tables = FakeResolverTables(defaults={SANDBOX: Decimal(100)}, status={A: {"Status": "APPLIED"}})

    resolver(tables, organisation, FakeReadiness()).resolve_account(A)

    assert tables.status[A] == {"Status": "APPLIED"}


def test_given_the_management_account_then_no_default_applies_to_it(organisation):
    organisation.management_account = D
    tables = FakeResolverTables(defaults={ROOT: Decimal(50)})

    resolver(tables, organisation).resolve_all()

    assert D not in tables.budget_items
    assert tables.budget_items[C]["BudgetValue"] == Decimal(50)


def test_given_an_inherited_item_another_client_changed_then_it_becomes_explicit_and_is_kept(
    organisation, caplog
):
    changed = {"BudgetValue": Decimal(900), "InheritedFrom": SANDBOX, "InheritedValue": Decimal(100)}
    tables = FakeResolverTables(defaults={SANDBOX: Decimal(100)}, items={A: changed})

    with caplog.at_level(logging.INFO):
        resolver(tables, organisation).resolve_account(A)

    assert tables.budget_items[A] == {"BudgetValue": Decimal(900)}
    assert "item changed by another client: now explicit" in caplog.text


def test_given_an_item_written_between_read_and_write_then_it_wins_as_a_conflict_not_stale(
    organisation, caplog
):
    tables = FakeResolverTables(defaults={SANDBOX: Decimal(100)})

    def operator_writes() -> None:
        tables.budget_items.setdefault(A, {"BudgetValue": Decimal(700)})

    tables.before_write = operator_writes

    with caplog.at_level(logging.INFO):
        summary = resolver(tables, organisation).resolve_account(A)

    assert tables.budget_items[A] == {"BudgetValue": Decimal(700)}
    assert (summary.conflicts, summary.stale) == (1, 0)
    assert "the item changed after this run read it: it won" in caplog.text


def test_given_a_default_changed_between_read_and_write_then_the_run_is_stale_and_writes_nothing(
    organisation, caplog
):
    tables = FakeResolverTables(defaults={SANDBOX: Decimal(100)})

    def operator_changes_default() -> None:
        tables.default_values[SANDBOX] = Decimal(200)

    tables.before_write = operator_changes_default

    summary = resolver(tables, organisation).resolve_target(SANDBOX)

    assert tables.budget_items == {}
    assert (summary.conflicts, summary.stale) == (2, 2)
    assert summary.counts["InheritedWritten"] == 2  # decided, not done: counted as conflicts
    assert "stale resolution: the default changed after this run read it" in caplog.text


def test_given_a_default_recreated_between_read_and_delete_then_the_stale_delete_does_not_happen(
    organisation,
):
    inherited = {"BudgetValue": Decimal(100), "InheritedFrom": SANDBOX, "InheritedValue": Decimal(100)}
    tables = FakeResolverTables(items={A: inherited})

    def operator_sets_it_again() -> None:
        tables.default_values[SANDBOX] = Decimal(300)

    tables.before_write = operator_sets_it_again

    summary = resolver(tables, organisation).resolve_account(A)

    assert tables.budget_items[A]["BudgetValue"] == Decimal(100)
    assert (summary.conflicts, summary.stale) == (1, 1)


def test_given_an_invalid_default_then_it_fails_once_naming_field_and_value_and_the_next_default_up_applies(
    organisation,
):
    tables = FakeResolverTables(defaults={SANDBOX: Decimal("12.345"), ROOT: Decimal(50)})

    resolver(tables, organisation).resolve_all()
    resolver(tables, organisation).resolve_all()

    failure = tables.status[SANDBOX]
    assert failure["Status"] == Status.FAILED.value
    assert "BudgetValue 12.345" in failure["Reason"]
    assert "applies to nobody until it is fixed" in failure["Reason"]
    assert failure["Source"] == "resolver"
    assert tables.calls.count("record_default_failure") == 2  # the second changes nothing
    assert tables.budget_items[A]["InheritedFrom"] == ROOT

    # WHEN it is fixed and its stream record's run comes, THEN its failure is cleared
    tables.default_values[SANDBOX] = Decimal(100)
    resolver(tables, organisation).resolve_target(SANDBOX)

    assert SANDBOX not in tables.status
    assert tables.budget_items[A]["BudgetValue"] == Decimal(100)


def test_given_an_invalid_default_with_inherited_items_then_their_removal_does_not_wait_for_its_absence(
    organisation,
):
    inherited = {"BudgetValue": Decimal(100), "InheritedFrom": SANDBOX, "InheritedValue": Decimal(100)}
    tables = FakeResolverTables(defaults={SANDBOX: "abc"}, items={A: inherited})

    resolver(tables, organisation).resolve_account(A)

    assert A not in tables.budget_items  # read as invalid: no check that it is absent


def test_a_failure_the_resolver_did_not_write_is_never_cleared(organisation):
    tables = FakeResolverTables(
        defaults={SANDBOX: Decimal(100)}, status={SANDBOX: {"Status": "FAILED", "Source": "reconciler"}}
    )

    resolver(tables, organisation).resolve_target(SANDBOX)

    assert tables.status[SANDBOX]["Source"] == "reconciler"


def test_given_a_gone_ou_then_its_change_resolves_the_whole_organisation(organisation):
    tables = FakeResolverTables(defaults={ROOT: Decimal(50)})

    summary = resolver(tables, organisation).resolve_target("ou-abcd-99999999")

    assert summary.scope == "organisation"
    assert len(tables.budget_items) == 4


def test_given_the_root_default_changed_then_the_whole_organisation_is_resolved_without_a_subtree(
    organisation,
):
    tables = FakeResolverTables(defaults={ROOT: Decimal(50)})

    summary = resolver(tables, organisation).resolve_target(ROOT)

    assert summary.scope == "organisation"
    assert organisation.calls == {"full": 1}


def test_given_an_account_outside_the_organisation_then_nothing_is_decided(organisation):
    tables = FakeResolverTables(defaults={ROOT: Decimal(50)})

    summary = resolver(tables, organisation).resolve_account("999999999999")

    assert summary.decisions == []
    assert tables.budget_items == {}


@pytest.mark.parametrize("method", ["defaults", "items", "write_inherited", "record_status"])
def test_a_table_error_reaches_lambda_as_retryable_and_a_failed_read_writes_nothing(organisation, method):
    tables = FakeResolverTables(defaults={SANDBOX: Decimal(100)})
    tables.fail[method] = TransientError(f"{method} throttled")

    with pytest.raises(TransientError) as raised:
        resolver(tables, organisation, FakeReadiness(A)).resolve_all()

    assert raised.value.retryable is True
    if method in ("defaults", "items"):
        assert tables.budget_items == {}
