"""Approvals on the local organisation: a raise above the rule (ApprovalThresholdAmount) is
held whoever wrote it, through the budgets table's stream, the update function as its template
role, the reconciler and the failure notices, with duplicated and unordered delivery on."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError

from budget_sync.handlers import update as update_handler
from budget_sync_local.organisation import MANAGEMENT_ACCOUNT, OPERATOR_ROLE, LocalOrganisation
from budgetctl.cli import main
from budgetctl.errors import ExitCode
from tests.support.local_org import Recorder, notifications

pytestmark = [pytest.mark.e2e, pytest.mark.aws]

A, B, C = "111111111111", "222222222222", "333333333333"


@pytest.fixture
def org(recorder: Recorder) -> Iterator[LocalOrganisation]:
    update_handler.build_service.cache_clear()
    with LocalOrganisation(
        management_parameters={"ApprovalThresholdAmount": "500", "AlarmEmail": "finops@example.com"},
        observer=recorder,
        function_output=io.StringIO(),
    ) as local:
        yield local
    update_handler.build_service.cache_clear()


def requests(org: LocalOrganisation) -> list[dict[str, Any]]:
    table = org.management.resource("dynamodb").Table(org.stack.approval_requests_table)
    return list(table.scan(ConsistentRead=True)["Items"])


def limit(org: LocalOrganisation, account: str) -> Decimal:
    budget = org.budget(account)
    assert budget is not None
    return Decimal(budget["BudgetLimit"]["Amount"])


def test_given_a_direct_put_item_above_the_rule_then_the_spoke_keeps_its_budget_and_one_request_is_pending(
    org: LocalOrganisation,
):
    # GIVEN A applied at 1000, in two steps within the rule (a first value is judged from 0)
    org.put(A, 500)
    org.pipeline.run_until_idle()
    org.put(A, 1000)
    org.pipeline.run_until_idle()
    assert (org.view(A).status, limit(org, A)) == ("APPLIED", Decimal(1000))
    published_before = len(notifications(org))

    # WHEN someone writes 5000 with the AWS CLI's put-item (no budgetctl, no UpdatedBy)
    org.management.client("dynamodb").put_item(
        TableName=org.stack.budgets_table,
        Item={"AccountId": {"S": A}, "BudgetValue": {"N": "5000"}},
    )
    org.pipeline.run_until_idle()

    # THEN the spoke keeps 1000, the status says how to get it approved, one request holds it
    view = org.view(A)
    assert (view.parameter, limit(org, A), view.status) == ("1000", Decimal(1000), "FAILED")
    pending = requests(org)
    assert len(pending) == 1
    request = pending[0]
    assert (request["AccountId"], request["RequestedValue"], request["State"]) == (
        A,
        Decimal(5000),
        "PENDING",
    )
    assert (request["CurrentValue"], request["RequestedBy"]) == (Decimal(1000), "")
    assert f"budgetctl approve {request['RequestId']}" in view.reason
    status = org.status(A)
    assert status is not None
    assert status["Source"] == "approval"
    assert status["AppliedValue"] == Decimal(1000)
    # notified once (delivery is at least once: the record may have been handled twice)
    new = notifications(org)[published_before:]
    assert len(new) == 1
    assert request["RequestId"] in new[0][1]

    # WHEN the reconciler runs: it must not "repair" the spoke to the held value
    org.invoke_reconciler()
    org.pipeline.run_until_idle()
    assert (org.parameter(A), limit(org, A)) == ("1000", Decimal(1000))
    assert org.status(A)["Reason"] == view.reason  # type: ignore[index]
    assert len(notifications(org)) == published_before + 1

    # WHEN a small step follows the held value (OldImage 5000, +100): still held
    org.put(A, 5100)
    org.pipeline.run_until_idle()
    assert (org.parameter(A), org.view(A).status) == ("1000", "FAILED")
    assert len(requests(org)) == 2

    # WHEN the value goes back within the rule, it flows as before
    org.put(A, 1200)
    org.pipeline.run_until_idle()
    view = org.view(A)
    assert (view.parameter, limit(org, A), view.status) == ("1200", Decimal(1200), "APPLIED")


def test_given_an_ou_default_that_raises_accounts_above_the_rule_then_each_is_held(org: LocalOrganisation):
    # GIVEN every account inherits 400 from the root (a first value within the rule)
    org.set_default("Root", 400)
    org.pipeline.run_until_idle()
    assert {limit(org, a) for a in (A, B, C)} == {Decimal(400)}

    # WHEN the root default goes to 2000 (each account's raise is 1600) and B has its own item
    org.put(B, 600)
    org.pipeline.run_until_idle()
    org.set_default("Root", 2000)
    org.pipeline.run_until_idle()

    # THEN the inheriting accounts keep 400, each with its own request; B is untouched
    assert (limit(org, A), limit(org, C), limit(org, B)) == (Decimal(400), Decimal(400), Decimal(600))
    held = sorted((r["AccountId"], r["RequestedValue"]) for r in requests(org))
    assert held == [(A, Decimal(2000)), (C, Decimal(2000))]
    assert org.view(A).status == org.view(C).status == "FAILED"


# -- budgetctl, as typed, by two principals ---------------------------------------------------


def budgetctl(session: Any, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err, session=session)
    return code, out.getvalue(), err.getvalue()


def test_given_a_held_value_then_only_another_principal_approves_it_and_the_spoke_takes_it(
    org: LocalOrganisation,
):
    operator = org.operator_session()
    bob = org.approver_session("bob")
    # GIVEN the operator set 1000 then 5000 with budgetctl: 5000 is held
    assert budgetctl(operator, "set", A, "500")[0] == 0
    org.pipeline.run_until_idle()
    assert budgetctl(operator, "set", A, "1000")[0] == 0
    org.pipeline.run_until_idle()
    code, _, err = budgetctl(operator, "set", A, "5000")
    # set exits 0 and says that the value waits (the rule read from the stack, the applied value
    # from the status table); a value within the rule says nothing of the kind
    assert code == 0
    assert f"account {A}: 5000 USD is an increase of more than 500 USD (applied: 1000)" in err
    assert "held until another principal approves it" in err
    org.pipeline.run_until_idle()
    assert (org.parameter(A), limit(org, A)) == ("1000", Decimal(1000))

    # WHEN the operator lists the requests
    code, out, _ = budgetctl(operator, "requests", "--output", "json")
    assert code == 0
    (request,) = json.loads(out)
    operator_arn = f"arn:aws:sts::{MANAGEMENT_ACCOUNT}:assumed-role/{OPERATOR_ROLE}/operator"
    assert (request["AccountId"], request["RequestedValue"], request["CurrentValue"]) == (A, "5000", "1000")
    assert (request["State"], request["RequestedBy"]) == ("PENDING", operator_arn)
    rid = request["RequestId"]

    # THEN the requester cannot approve it (exit 6), and nothing is sent
    code, _, err = budgetctl(operator, "approve", rid)
    assert code == ExitCode.REFUSED
    assert f"request {rid} was made by you ({operator_arn})" in err
    org.pipeline.run_until_idle()
    assert org.parameter(A) == "1000"
    assert requests(org)[0]["State"] == "PENDING"

    # WHEN bob, an approver, approves it
    code, out, err = budgetctl(bob, "approve", rid, "--output", "json")
    assert code == 0, err
    assert json.loads(out)["State"] == "APPROVED"
    org.pipeline.run_until_idle()

    # THEN the spoke takes 5000, the request is APPLIED, and a second approval is refused
    view = org.view(A)
    assert (view.parameter, limit(org, A), view.status) == ("5000", Decimal(5000), "APPLIED")
    assert requests(org)[0]["State"] == "APPLIED"
    assert budgetctl(bob, "approve", rid)[0] == ExitCode.CONFLICT
    approvals = org.management.resource("dynamodb").Table(org.stack.approvals_table).scan()["Items"]
    bob_id = bob.client("sts").get_caller_identity()["UserId"]
    assert [(a["ApproverId"], a["RequestId"], a["Decision"]) for a in approvals] == [
        (bob_id, rid, "APPROVED")
    ]


def test_given_a_rejected_request_then_the_spoke_keeps_its_budget_even_if_the_item_claims_an_approval(
    org: LocalOrganisation,
):
    operator, bob = org.operator_session(), org.approver_session("bob")
    org.put(A, 500)
    org.pipeline.run_until_idle()
    org.put(A, 5000)
    org.pipeline.run_until_idle()
    (request,) = requests(org)
    rid = request["RequestId"]

    assert budgetctl(bob, "reject", rid)[0] == 0
    # WHEN someone writes the item's ApprovalId by hand, naming bob
    bob_id = bob.client("sts").get_caller_identity()["UserId"]
    org.put(A, 5000, ApprovalId=rid, ApprovedBy=bob_id)
    org.pipeline.run_until_idle()

    # THEN the rejected value is not applied, and the status says why
    assert (org.parameter(A), limit(org, A)) == ("500", Decimal(500))
    assert f"request {rid} is REJECTED" in org.view(A).reason
    assert budgetctl(operator, "requests", "--all", "--output", "json")[0] == 0


def test_given_the_approver_policy_then_iam_refuses_approvals_in_another_name_and_budget_writes(
    org: LocalOrganisation,
):
    bob = org.approver_session("bob").client("dynamodb")
    operator = org.operator_session().client("dynamodb")
    bob_id = org.approver_session("bob").client("sts").get_caller_identity()["UserId"]
    approval = {"RequestId": {"S": "REQ-000000000000"}, "Decision": {"S": "APPROVED"}}

    # an approval under the caller's own aws:userid is allowed
    bob.put_item(TableName=org.stack.approvals_table, Item={"ApproverId": {"S": bob_id}, **approval})
    # under anybody else's, IAM refuses it (dynamodb:LeadingKeys)
    with pytest.raises(ClientError, match="AccessDenied"):
        bob.put_item(
            TableName=org.stack.approvals_table, Item={"ApproverId": {"S": "AROAOTHER:alice"}, **approval}
        )
    # an approver cannot change a budget (dynamodb:Attributes), nor can an operator write approvals
    with pytest.raises(ClientError, match="AccessDenied"):
        bob.update_item(
            TableName=org.stack.budgets_table,
            Key={"AccountId": {"S": A}},
            UpdateExpression="SET BudgetValue = :v",
            ExpressionAttributeValues={":v": {"N": "99999"}},
        )
    with pytest.raises(ClientError, match="AccessDenied"):
        operator.put_item(TableName=org.stack.approvals_table, Item={"ApproverId": {"S": "x"}, **approval})


def test_given_an_import_then_it_says_which_values_wait_for_approval(org: LocalOrganisation, tmp_path: Any):
    operator = org.operator_session()
    for value in ("500", "1000"):
        org.put(A, Decimal(value))
        org.put(B, Decimal(value))
        org.pipeline.run_until_idle()
    budgets = tmp_path / "budgets.csv"
    budgets.write_text(f"AccountId,BudgetValue\n{A},1400\n{B},9000\n")

    code, _, err = budgetctl(operator, "import", str(budgets))
    org.pipeline.run_until_idle()

    assert code == 0
    assert f"account {B}: 9000 USD is an increase of more than 500 USD" in err
    assert f"account {A}:" not in err
    assert (org.parameter(A), org.parameter(B)) == ("1400", "1000")
    assert [r["AccountId"] for r in requests(org)] == [B]
