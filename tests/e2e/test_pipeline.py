"""End to end on the local organisation: an item in the management table, checked at the
budget in the spoke account, through the stream, the function, the parameter, the rule
and the Automation document."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from moto.budgets.models import Budget

from budget_sync_local.organisation import LocalOrganisation
from tests.support.local_org import Recorder

# every test: moto or the local organisation (make unit does not import this module)
pytestmark = [pytest.mark.e2e, pytest.mark.aws]

A, B, C = "111111111111", "222222222222", "333333333333"


def limit(org: LocalOrganisation, account: str) -> Decimal:
    budget = org.budget(account)
    assert budget is not None, f"{account} has no budget"
    return Decimal(budget["BudgetLimit"]["Amount"])


def test_given_a_new_item_then_the_spoke_budget_takes_its_value(
    local_org: LocalOrganisation, recorder: Recorder
):
    assert limit(local_org, A) == Decimal(1000)  # the spoke template's initial amount

    local_org.put(A, 4321)
    local_org.pipeline.run_until_idle()

    view = local_org.view(A)
    assert (view.parameter, view.budget_limit, view.status) == ("4321", Decimal(4321), "APPLIED")
    # (at least once: a duplicated delivery may run the document twice, each run succeeds)
    assert {s.detail["status"] for s in recorder.automations(A)} == {"Success"}
    assert limit(local_org, B) == Decimal(1000)  # nobody else changed


def test_given_a_change_then_only_the_limit_changes(local_org: LocalOrganisation):
    local_org.put(A, 500)
    local_org.pipeline.run_until_idle()
    before = local_org.budget(A)
    alerts_before = local_org.alerts(A)

    local_org.put(A, 800)
    local_org.pipeline.run_until_idle()

    after = local_org.budget(A)
    assert before is not None
    assert after is not None
    assert Decimal(after["BudgetLimit"]["Amount"]) == Decimal(800)
    for kept in ("BudgetName", "BudgetType", "TimeUnit", "CostTypes", "TimePeriod"):
        assert after.get(kept) == before.get(kept), kept
    assert local_org.alerts(A) == alerts_before


#: What a FilterExpression/Metrics budget counts: everything but credits and refunds.
NO_CREDITS = {"Not": {"Dimensions": {"Key": "RECORD_TYPE", "Values": ["Credit", "Refund"]}}}
MOTO_COST_TYPES = {"IncludeCredit": True, "IncludeRefund": True, "IncludeTax": True, "UseBlended": False}


@contextlib.contextmanager
def cost_types_in_every_answer() -> Any:
    """DescribeBudget answers default CostTypes beside FilterExpression and Metrics, as moto
    itself does (the stand-in models AWS, which returns only the pair the budget has)."""
    modelled: Callable[[Budget], dict[str, Any]] = Budget.to_dict
    with mock.patch.object(Budget, "to_dict", lambda self: {"CostTypes": MOTO_COST_TYPES, **modelled(self)}):
        yield


@pytest.mark.parametrize("answer", ["as AWS answers", "with CostTypes beside the filter"])
def test_given_a_filtered_budget_then_the_document_changes_the_limit_and_keeps_the_filter(
    local_org: LocalOrganisation, answer: str
):
    # GIVEN A's budget counts with FilterExpression and Metrics (no CostTypes, no CostFilters)
    budgets = local_org.session_in(A).client("budgets")
    name = local_org.spokes[A].budget_name
    definition = {
        "BudgetName": name,
        "BudgetType": "COST",
        "TimeUnit": "MONTHLY",
        "BudgetLimit": {"Amount": "1000", "Unit": "USD"},
        "FilterExpression": NO_CREDITS,
        "Metrics": ["UnblendedCost"],
    }
    budgets.update_budget(AccountId=A, NewBudget=definition)
    described = cost_types_in_every_answer() if answer != "as AWS answers" else contextlib.nullcontext()

    # WHEN a new value goes through the template's Automation document
    with described:
        local_org.put(A, 640)
        local_org.pipeline.run_until_idle()

    # THEN the limit changed, the filter and metric stayed, and no CostTypes were sent with
    # them (the strict stand-in refuses "FilterExpression and Metrics" with "CostTypes")
    after = budgets.describe_budget(AccountId=A, BudgetName=name, ShowFilterExpression=True)["Budget"]
    assert (local_org.view(A).status, after["BudgetLimit"]["Amount"]) == ("APPLIED", "640")
    assert (after["FilterExpression"], after["Metrics"]) == (NO_CREDITS, ["UnblendedCost"])
    assert "CostTypes" not in after
    assert "CostFilters" not in after


def test_given_cents_then_the_budget_keeps_them(local_org: LocalOrganisation):
    local_org.put(B, Decimal("1250.50"))
    local_org.pipeline.run_until_idle()

    assert local_org.parameter(B) == "1250.5"
    assert limit(local_org, B) == Decimal("1250.5")


def test_given_an_invalid_value_then_the_status_says_why_and_nothing_else_changes(
    local_org: LocalOrganisation, recorder: Recorder
):
    local_org.put(C, 700)
    local_org.pipeline.run_until_idle()
    recorder.clear()

    local_org.put(C, Decimal("12.345"))
    local_org.put(B, 900)
    local_org.pipeline.run_until_idle()

    view = local_org.view(C)
    assert view.status == "FAILED"
    assert "BudgetValue 12.345 has more than two decimals" in view.reason
    assert (view.parameter, view.budget_limit) == ("700", Decimal(700))
    assert recorder.automations(C) == []
    assert limit(local_org, B) == Decimal(900)  # the rest of the batch went through


def test_given_an_unchanged_value_then_no_automation_runs(local_org: LocalOrganisation, recorder: Recorder):
    local_org.put(A, 600, Note="first")
    local_org.pipeline.run_until_idle()
    version = (
        local_org.session_in(A).client("ssm").get_parameter(Name="/BlogBudgets/CostThreshold")["Parameter"]
    )
    recorder.clear()

    local_org.put(A, 600, Note="someone edited the note")
    local_org.pipeline.run_until_idle()

    again = (
        local_org.session_in(A).client("ssm").get_parameter(Name="/BlogBudgets/CostThreshold")["Parameter"]
    )
    assert again["Version"] == version["Version"]
    assert [s.kind for s in recorder.steps] == ["batch"]  # the record was read, nothing else happened


def test_given_a_removed_item_then_the_spoke_keeps_its_last_budget(local_org: LocalOrganisation):
    local_org.put(A, 750)
    local_org.pipeline.run_until_idle()

    local_org.delete(A)
    local_org.pipeline.run_until_idle()

    view = local_org.view(A)
    assert view.status == "UNMANAGED"
    assert (view.desired, view.parameter, view.budget_limit) == (None, "750", Decimal(750))


@pytest.mark.aws
def test_given_50_accounts_written_in_one_burst_then_every_budget_arrives():
    accounts = [f"{400000000000 + i:012d}" for i in range(50)]
    with LocalOrganisation(accounts, function_output=io.StringIO()) as org:
        for i, account in enumerate(accounts):
            org.put(account, Decimal(1000 + i) + Decimal("0.25"))
        org.pipeline.run_until_idle()

        wrong = {
            a: limit(org, a)
            for a in accounts
            if limit(org, a) != Decimal(1000 + accounts.index(a)) + Decimal("0.25")
        }
    assert wrong == {}


def test_given_simulated_spend_then_the_notifications_that_fire_are_listed(local_org: LocalOrganisation):
    local_org.put(A, 1000)
    local_org.pipeline.run_until_idle()

    local_org.set_spend(A, actual=Decimal(850), forecasted=Decimal(1200))

    firing = {(a.notification_type, a.threshold) for a in local_org.alerts(A) if a.fires}
    assert ("ACTUAL", Decimal(80)) in firing
    assert ("ACTUAL", Decimal(100)) not in firing
    assert ("FORECASTED", Decimal(100)) in firing
    assert all(a.subscribers for a in local_org.alerts(A))


@pytest.mark.aws
def test_given_two_organisations_one_after_the_other_then_each_delivers_to_its_own_spokes():
    # The second starts a new execution environment: no client of the first moto survives
    # (moto would serve its unknown credentials from the management account).
    for value in (Decimal(10), Decimal(11)):
        with LocalOrganisation((A,), function_output=io.StringIO()) as org:
            org.put(A, value)
            org.pipeline.run_until_idle()
            assert limit(org, A) == value


def test_given_a_cancelled_transaction_on_the_table_then_later_writes_still_reach_the_spoke(
    local_org: LocalOrganisation,
):
    # GIVEN the pipeline's stream poller attached to the budgets table, and a transaction on
    # that table cancelled by its condition (budgetctl's and the status store's writes are
    # conditional transactions designed to conflict); moto's rollback used to put a copy of
    # the table, with a new stream shard, in its place, so the poller read nothing afterwards
    local_org.put(A, 500)
    local_org.pipeline.run_until_idle()
    dynamodb = local_org.management.client("dynamodb")
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        dynamodb.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": local_org.stack.budgets_table,
                        "Item": {"AccountId": {"S": B}, "BudgetValue": {"N": "7"}},
                    }
                },
                {
                    "Put": {
                        "TableName": local_org.stack.budgets_table,
                        "Item": {"AccountId": {"S": A}, "BudgetValue": {"N": "9"}},
                        "ConditionExpression": "attribute_not_exists(AccountId)",  # A exists: cancelled
                    }
                },
            ]
        )

    # WHEN the table is written afterwards
    local_org.put(A, 800)
    local_org.pipeline.run_until_idle()

    # THEN the pipeline processes the write, and nothing of the cancelled transaction
    assert (local_org.view(A).status, limit(local_org, A)) == ("APPLIED", Decimal(800))
    assert local_org.desired(B) is None
    assert limit(local_org, B) == Decimal(1000)
