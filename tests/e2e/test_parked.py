"""`budgetctl parked` on the local organisation: a batch that exhausted its retries is listed
with its accounts, and re-applied from the table."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest

from budget_sync.errors import TransientError
from budget_sync.spoke import SsmSpokeGateway
from budget_sync_local.organisation import LocalOrganisation
from tests.support.operators import budgetctl

# every test: moto or the local organisation (make unit does not import this module)
pytestmark = [pytest.mark.e2e, pytest.mark.aws]

A, B = "111111111111", "222222222222"


@pytest.mark.aws
def test_a_parked_batch_is_listed_with_its_accounts_and_reapplied_from_the_table(
    monkeypatch: pytest.MonkeyPatch,
):
    with LocalOrganisation(
        accounts=(A, B),
        management_parameters={"StreamMaximumRetryAttempts": "0"},
        function_output=io.StringIO(),
    ) as org:
        # GIVEN A's write kept failing transiently until its batch was parked (no retries left)
        def throttled(self: SsmSpokeGateway, account_id: str, amount_text: str) -> int:
            raise TransientError(f"account {account_id}: throttled")

        with monkeypatch.context() as patch:
            patch.setattr(SsmSpokeGateway, "put_budget_value", throttled)
            org.put(A, Decimal("4321"))
            org.pipeline.run_until_idle()
        assert org.parameter(A) == "1000"

        # WHEN an operator lists what is parked
        listed = budgetctl("parked", "--output", "json", "--visibility-timeout", "0")

        # THEN the batch is shown with A's account, and the exit code says something is parked
        assert listed.code == 1, listed.stderr
        (row,) = listed.json()
        assert row["Accounts"] == A
        assert row["Records"] == 1

        # WHEN they re-apply it
        reapplied = budgetctl("parked", "--reapply", "--output", "json", "--visibility-timeout", "0")
        org.pipeline.run_until_idle()

        # THEN A is re-applied from the table and confirmed by its spoke, and the message is gone
        assert reapplied.code == 0, reapplied.stdout + reapplied.stderr
        assert reapplied.json()[0]["Note"] == "re-applied"
        view = org.view(A)
        assert (view.parameter, view.budget_limit, view.status) == ("4321", Decimal(4321), "APPLIED")
        assert budgetctl("parked", "--output", "json").json() == []


def test_a_parked_resolver_batch_names_its_defaults_and_is_cleared_by_a_full_resolution(
    local_org: LocalOrganisation, monkeypatch: pytest.MonkeyPatch
):
    from budget_sync.resolve import Resolver

    # GIVEN the resolver kept failing on a default's change until its batch was parked
    def throttled(self: Resolver, target_id: str) -> None:
        raise TransientError(f"default {target_id}: Organizations throttled")

    with monkeypatch.context() as patch:
        patch.setattr(Resolver, "resolve_target", throttled)
        local_org.set_default("Sandbox", 100)
        local_org.pipeline.run_until_idle()
    sandbox = local_org.ous["Sandbox"]

    # WHEN an operator lists what is parked
    listed = budgetctl("parked", "--output", "json", "--visibility-timeout", "0")

    # THEN the batch names the default (it carries no account), and something is parked
    assert listed.code == 1, listed.stderr
    rows = [r for r in listed.json() if r["Targets"]]
    assert [r["Targets"] for r in rows] == [sandbox]

    # WHEN they re-apply it: the resolver resolves the organisation again
    reapplied = budgetctl("parked", "--reapply", "--output", "json", "--visibility-timeout", "0")
    local_org.pipeline.run_until_idle()

    # THEN the message is gone, and the Sandbox default reached its accounts
    assert reapplied.code == 0, reapplied.stdout + reapplied.stderr
    assert reapplied.json()[0]["Note"].startswith("re-resolved")
    assert budgetctl("parked", "--output", "json").json() == []
    inherited = [
        item
        for item in local_org.management.resource("dynamodb")
        .Table(local_org.stack.budgets_table)
        .scan()["Items"]
        if item.get("InheritedFrom") == sandbox
    ]
    assert inherited
