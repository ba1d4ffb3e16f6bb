"""Every change's history on the local organisation: the history function the template names,
fed by the status table's and the defaults table's streams (delivered at least once, in no
order), as the operators' role writes with budgetctl and someone else writes around it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from budget_sync.history import NOT_RECORDED, Kind, settled_changes
from budget_sync_local.organisation import MANAGEMENT_ACCOUNT, LocalOrganisation
from tests.support.operators import budgetctl

# every test: moto or the local organisation (make unit does not import this module)
pytestmark = [pytest.mark.e2e, pytest.mark.aws]

A = "111111111111"  # in Sandbox


def hand_edit_limit(org: LocalOrganisation, account: str, amount: str) -> None:
    """What someone does in the Budgets console: change the limit, keep everything else."""
    budget = org.budget(account)
    assert budget is not None
    budget["BudgetLimit"] = {"Amount": amount, "Unit": "USD"}
    budget.pop("CalculatedSpend", None)
    budget.pop("LastUpdatedTime", None)
    org.session_in(account).client("budgets").update_budget(AccountId=account, NewBudget=budget)


def test_given_a_default_an_own_item_a_refused_value_and_a_repair_then_the_history_has_each_with_who(
    local_org: LocalOrganisation, monkeypatch: pytest.MonkeyPatch
):
    for name, value in local_org.operator_credentials().items():
        monkeypatch.setenv(name, value)
    operator = budgetctl("status", "--output", "json")  # the operators' role works here
    sandbox = local_org.ous["Sandbox"]

    # GIVEN a Sandbox default (budgetctl), reaching A
    assert budgetctl("default", "set", sandbox, "300").code == 0
    local_org.pipeline.run_until_idle()
    # WHEN A gets its own item (budgetctl), then a value written around budgetctl that is refused,
    # then a valid one again (budgetctl)
    assert budgetctl("set", A, "1200").code == 0
    local_org.pipeline.run_until_idle()
    local_org.put(A, Decimal("12.345"))
    local_org.pipeline.run_until_idle()
    assert budgetctl("set", A, "1300").code == 0
    local_org.pipeline.run_until_idle()
    # AND the spoke's limit is edited by hand, and an operator asks for a repair
    hand_edit_limit(local_org, A, "5000")
    assert budgetctl("reconcile", "--apply").code in (0, 1)
    local_org.pipeline.run_until_idle()

    # THEN A's history, oldest first, is every step, with who did it and through which path;
    # each step's outcome is on it (the spoke's report came first) or on an OUTCOME after it
    history = list(reversed(local_org.history(A)))
    steps: list[list[object]] = []
    for record in history:
        if record.kind is Kind.OUTCOME:
            assert steps, "an outcome before any change"
            steps[-1][-1] = record.status
        else:
            steps.append([record.kind, record.previous, record.value, record.via, record.status])
    assert steps == [
        [Kind.CHANGED, "", "300", sandbox, "APPLIED"],
        [Kind.CHANGED, "300", "1200", "item", "APPLIED"],
        [Kind.CHANGED, "1200", "12.345", "item", "FAILED"],
        [Kind.CHANGED, "12.345", "1300", "item", "APPLIED"],
        [Kind.REPAIRED, "", "1300", "reconciler", "APPLIED"],
    ], steps
    changes = [r for r in history if r.kind is not Kind.OUTCOME]
    operator_arn = changes[1].by
    assert ":assumed-role/" in operator_arn, operator.stderr
    assert changes[3].by == operator_arn  # budgetctl set, by the operator
    assert changes[4].by == operator_arn  # reconcile --apply: RequestedBy
    assert changes[0].by  # the resolver wrote the inherited item
    assert changes[0].by != operator_arn
    assert changes[2].who() == NOT_RECORDED  # written around budgetctl
    assert "BudgetValue 12.345" in changes[2].reason

    # AND the default's own history says who set it
    (default,) = local_org.history(sandbox)
    assert (default.kind, default.value, default.by) == (Kind.DEFAULT_SET, "300", operator_arn)


def test_the_history_functions_client_is_built_with_its_own_role_before_any_event(
    local_org: LocalOrganisation,
):
    # GIVEN a fresh local organisation (invocations overlap in threads there, with one os.environ)
    from budget_sync.handlers import history as history_handler

    # THEN its client was built at init, in its own environment, with its own role's keys: a
    # first event handled while another function's invocation has the environment cannot give
    # it that function's credentials (which may not write the history table)
    assert history_handler.build_table.cache_info().currsize == 1
    credentials = history_handler.build_table()._client._request_signer._credentials  # type: ignore[attr-defined]
    spec_credentials = local_org._history_spec.credentials
    assert spec_credentials is not None
    assert credentials.access_key == spec_credentials[0]


def test_given_the_history_table_cannot_be_written_then_the_batch_is_retried_and_parked_in_its_own_queue(
    local_org: LocalOrganisation, monkeypatch: pytest.MonkeyPatch
):
    from budget_sync.errors import TransientError
    from budget_sync.history_table import DynamoHistoryTable

    # GIVEN every append fails (throttled)
    def throttled(self: DynamoHistoryTable, record: object) -> bool:
        raise TransientError("history record not written (throttled)")

    with monkeypatch.context() as patch:
        patch.setattr(DynamoHistoryTable, "append", throttled)
        # WHEN a budget changes and its outcome arrives
        local_org.put(A, 1500)
        local_org.pipeline.run_until_idle()

    # THEN the budget is applied all the same, and the history batch's description is in the
    # history function's own queue, not in the one budgetctl parked re-applies from
    assert local_org.status(A)["Status"] == "APPLIED"  # type: ignore[index]
    sqs = local_org.management.client("sqs")

    def messages(url: str) -> list[dict[str, object]]:
        return sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])

    parked = messages(local_org.stack.history_failure_queue_url)
    assert parked
    assert all("DDBStreamBatchInfo" in str(m["Body"]) for m in parked)
    assert messages(local_org.stack.on_failure_queue_url) == []
    assert local_org.history(A) == []


def test_given_a_cost_basis_change_then_the_accounts_history_has_it_with_who(
    local_org: LocalOrganisation, monkeypatch: pytest.MonkeyPatch
):
    for name, value in local_org.operator_credentials().items():
        monkeypatch.setenv(name, value)
    # GIVEN A at 1200 (budgetctl)
    assert budgetctl("set", A, "1200").code == 0
    local_org.pipeline.run_until_idle()
    # WHEN its cost basis changes (the value stays), then changes again
    local_org.put(A, 1200, CostMetric="amortized", CostExclusions="credits,refunds")
    local_org.pipeline.run_until_idle()
    local_org.put(A, 1200, CostMetric="net-unblended", CostExclusions="credits,refunds")
    local_org.pipeline.run_until_idle()
    local_org.put(A, 1200)
    local_org.pipeline.run_until_idle()

    # THEN each change of the cost basis is a change in A's history, with what it sent and who
    # wrote it (here: around budgetctl), and the spoke's report as its outcome
    history = list(reversed(local_org.history(A)))
    changes = [r for r in history if r.kind is not Kind.OUTCOME]
    assert [(r.kind, r.change(), r.who()) for r in changes[1:]] == [
        (Kind.CHANGED, "cost basis amortized, excluding credits, refunds (own item)", NOT_RECORDED),
        (Kind.CHANGED, "cost basis net-unblended, excluding credits, refunds (own item)", NOT_RECORDED),
        (Kind.CHANGED, "alerts {} (own item)", NOT_RECORDED),  # back to the stack's defaults
    ]
    assert changes[0].by  # budgetctl set
    assert [s.status for s in settled_changes(history)] == ["APPLIED"] * 4


def test_given_a_parked_history_batch_then_parked_history_lists_it_and_reapply_appends_it_once(
    local_org: LocalOrganisation, monkeypatch: pytest.MonkeyPatch
):
    from budget_sync.errors import TransientError
    from budget_sync.history_table import DynamoHistoryTable

    # GIVEN a history batch parked in HistoryFailureQueue (every append throttled)
    def throttled(self: DynamoHistoryTable, record: object) -> bool:
        raise TransientError("history record not written (throttled)")

    with monkeypatch.context() as patch:
        patch.setattr(DynamoHistoryTable, "append", throttled)
        local_org.put(A, 1500)
        local_org.pipeline.run_until_idle()
    assert local_org.history(A) == []

    # WHEN an operator lists the history queue
    listed = budgetctl("parked", "--history", "--output", "json", "--visibility-timeout", "0")

    # THEN each batch is shown with the table whose stream it comes from; something is parked
    assert listed.code == 1, listed.stderr
    assert listed.json()
    assert {row["Targets"] for row in listed.json()} <= {"BlogBudgetsStatus", "BlogBudgetsDefaults"}

    # WHEN the operators' role tries --reapply: refused (no lambda:InvokeFunction on the history
    # function), the messages kept
    with monkeypatch.context() as patch:
        for name, value in local_org.operator_credentials().items():
            patch.setenv(name, value)
        refused = budgetctl(
            "parked", "--history", "--reapply", "--output", "json", "--visibility-timeout", "0"
        )
    assert refused.code == 1
    assert all(row["Note"].startswith("not re-appended") for row in refused.json()), refused.json()
    assert "AccessDenied" in refused.json()[0]["Note"]
    assert local_org.history(A) == []

    # WHEN an administrator re-applies them (twice: nothing is appended twice)
    reapplied = budgetctl("parked", "--history", "--reapply", "--output", "json", "--visibility-timeout", "0")

    # THEN the history function read the records back and appended them; the queue is empty
    assert reapplied.code == 0, reapplied.stdout + reapplied.stderr
    assert all(row["Note"].startswith("re-appended") for row in reapplied.json()), reapplied.json()
    history = local_org.history(A)
    assert [(r.kind, r.value) for r in history if r.kind is not Kind.OUTCOME] == [(Kind.CHANGED, "1500")]
    assert budgetctl("parked", "--history", "--output", "json").json() == []


def test_the_history_function_refuses_a_parked_batch_of_another_stream_naming_it(
    local_org: LocalOrganisation,
):
    from budget_sync.handlers.results import UnrecognisedEvent

    arn = f"arn:aws:dynamodb:us-east-1:{MANAGEMENT_ACCOUNT}:table/BlogBudgetsDynamoDB/stream/x"
    info = {"streamArn": arn, "shardId": "s", "startSequenceNumber": "1", "endSequenceNumber": "2"}
    with pytest.raises(UnrecognisedEvent, match="BlogBudgetsDynamoDB"):
        local_org.invoke_history_function({"ParkedBatch": info})
