"""Issue 22's "Done when" on the local organisation: with an approval rule in the management stack
(ApprovalThresholdAmount), a raise above it is held, the spoke keeps its budget, the requester
cannot approve it, a second principal (the BudgetSyncApprover role) can, a direct put-item above
it is not applied, and ``budgetctl history ACCOUNT`` shows every step with who did it. Streams
delivered at least once and in no order, as every mapping of the local organisation."""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from budget_sync.handlers import update as update_handler
from budget_sync_local.organisation import MANAGEMENT_ACCOUNT, OPERATOR_ROLE, LocalOrganisation
from budgetctl.cli import main
from budgetctl.errors import ExitCode
from tests.support.local_org import Recorder

pytestmark = [pytest.mark.e2e, pytest.mark.aws]

A, B = "111111111111", "222222222222"


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


def budgetctl(session: Any, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err, session=session)
    return code, out.getvalue(), err.getvalue()


def next_second() -> None:
    """A person's next step, in the next second: records of different streams in one second are
    ordered by stream (a stream record's ApproximateCreationDateTime is whole seconds), which is
    the order of one step's records but not of two people's steps (docs/operate.md, History)."""
    time.sleep(1.001 - time.time() % 1)


def limit(org: LocalOrganisation, account: str) -> Decimal:
    budget = org.budget(account)
    assert budget is not None
    return Decimal(budget["BudgetLimit"]["Amount"])


def test_given_an_approval_rule_then_a_held_raise_is_approved_by_another_principal_and_the_history_has_every_step(
    org: LocalOrganisation, tmp_path: Path
):
    operator, bob = org.operator_session(), org.approver_session("bob")
    operator_arn = f"arn:aws:sts::{MANAGEMENT_ACCOUNT}:assumed-role/{OPERATOR_ROLE}/operator"
    bob_identity = bob.client("sts").get_caller_identity()
    bob_arn, bob_id = bob_identity["Arn"], bob_identity["UserId"]
    # GIVEN A applied at 1000 (two steps within the rule)
    for value in ("500", "1000"):
        assert budgetctl(operator, "set", A, value)[0] == 0
        org.pipeline.run_until_idle()
    # WHEN the operator raises it to 5000: held, the spoke keeps 1000
    next_second()
    code, _, _ = budgetctl(operator, "set", A, "5000")
    assert code == 0
    org.pipeline.run_until_idle()
    assert (org.parameter(A), limit(org, A), org.view(A).status) == ("1000", Decimal(1000), "FAILED")
    code, out, _ = budgetctl(operator, "requests", "--output", "json")
    (request,) = json.loads(out)
    rid = request["RequestId"]
    # THEN its requester cannot approve it; bob, an approver, does, and the spoke takes it
    assert budgetctl(operator, "approve", rid)[0] == ExitCode.REFUSED
    org.pipeline.run_until_idle()
    assert org.parameter(A) == "1000"
    next_second()
    code, _, err = budgetctl(bob, "approve", rid)
    assert code == 0, err
    org.pipeline.run_until_idle()
    assert (org.parameter(A), limit(org, A), org.view(A).status) == ("5000", Decimal(5000), "APPLIED")

    # AND a direct put-item above the rule (no budgetctl) is not applied
    next_second()
    org.management.client("dynamodb").put_item(
        TableName=org.stack.budgets_table, Item={"AccountId": {"S": A}, "BudgetValue": {"N": "9000"}}
    )
    org.pipeline.run_until_idle()
    assert (org.parameter(A), limit(org, A), org.view(A).status) == ("5000", Decimal(5000), "FAILED")

    # AND `budgetctl history A` shows every step, newest first, with who did it
    code, out, err = budgetctl(operator, "history", A, "--output", "json")
    assert code == 0, err
    rows = list(reversed(json.loads(out)))  # oldest first
    steps = [(r["Kind"], r["From"], r["To"], r["By"]) for r in rows if r["Kind"] != "OUTCOME"]
    assert steps[2:] == [
        ("REQUESTED", "1000", "5000", operator_arn),
        ("APPROVED", "", "5000", f"{bob_arn} (aws:userid {bob_id})"),
        ("CHANGED", "5000", "5000", bob_id),
        ("REQUESTED", "5000", "9000", "not recorded: written outside budgetctl"),
    ], steps
    approved = [r for r in rows if r["Kind"] == "CHANGED"][-1]
    assert approved["Change"] == f"5000 sent (approved, request {rid})"
    assert [s[0] for s in steps[:2]] == ["CHANGED", "CHANGED"]
    # each change with its outcome: the holds FAILED with how to approve, the approved value APPLIED
    outcomes = {}
    last = None
    for r in rows:
        if r["Kind"] == "OUTCOME" and last is not None:
            outcomes[last] = r["Outcome"]
        else:
            last = r["Revision"]
    held = [r for r in rows if r["Kind"] == "REQUESTED"]
    assert all(outcomes[r["Revision"]].startswith("FAILED: approval needed:") for r in held), outcomes

    # AND the report's "changes this period" has each step, with who and what came of it
    page = tmp_path / "report.html"
    code, _, err = budgetctl(operator, "report", "--file", str(page))
    assert code in (ExitCode.OK, ExitCode.PROBLEM), err
    section = page.read_text().split('<section id="changes">', 1)[1].split("</section>", 1)[0]
    kinds = re.findall(rf'<tr data-subject="{A}" data-kind="(\w+)">', section)
    assert kinds == ["REQUESTED", "CHANGED", "APPROVED", "REQUESTED", "CHANGED", "CHANGED"]  # newest first
    assert f"1000 -&gt; 5000 held for approval (request {rid})" in section
    assert f"5000 approved (request {rid})" in section
    assert "FAILED: approval needed:" in section
