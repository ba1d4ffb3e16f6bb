"""Issue 21's "Done when" on the local organisation: ``budgetctl default set <Sandbox OU>
--exclude credits,refunds`` reaches every Sandbox account's budget (through the defaults
table's stream, the resolver, the budgets table's stream, the update function, the alert
parameter and the Automation document) as ``Metrics`` + a ``RECORD_TYPE`` exclusion, an
account owner's own tag filter survives it, ``budgetctl status`` shows the cost basis and
``HEALTHY``, and a budget made unhealthy by hand is ``FAILED`` with AWS's reason after the
reconciler's next run."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from budget_sync_local.organisation import LocalOrganisation
from budgetctl.cli import main
from tests.e2e.test_cost_basis import CREDITS_REFUNDS, TAG_FILTER, definition, set_by_hand

# every test: moto or the local organisation (make unit does not import this module)
pytestmark = [pytest.mark.e2e, pytest.mark.aws]

S1, P1, S3 = "111111111111", "222222222222", "333333333333"  # Sandbox, Production, Sandbox


def budgetctl(org: LocalOrganisation, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err, session=org.operator_session())
    return code, out.getvalue(), err.getvalue()


def status_rows(org: LocalOrganisation) -> dict[str, dict[str, Any]]:
    code, out, err = budgetctl(org, "status", "--output", "json")
    assert code in (0, 1), err
    return {row["AccountId"]: row for row in json.loads(out)}


def test_given_a_sandbox_default_excluding_credits_then_every_sandbox_budget_counts_it_and_an_own_filter_survives(
    local_org: LocalOrganisation,
):
    org = local_org
    sandbox = org.ous["Sandbox"]
    # GIVEN Sandbox's default of 1000 (S1 inherits it), S3 with its own budget and its owner's
    # tag filter set by hand, and P1 in Production with its own budget
    assert budgetctl(org, "default", "set", sandbox, "1000")[0] == 0
    org.put(S3, 1500)
    org.put(P1, 2000)
    org.pipeline.run_until_idle()
    set_by_hand(org, S3, Metrics=["UnblendedCost"], FilterExpression=TAG_FILTER)
    production_before = definition(org, P1)

    # WHEN the operator excludes credits and refunds for the Sandbox OU
    code, _, err = budgetctl(org, "default", "set", sandbox, "--exclude", "credits,refunds")
    assert code == 0, err
    org.pipeline.run_until_idle()

    # THEN every Sandbox budget counts Metrics with the RECORD_TYPE exclusion
    s1 = definition(org, S1)
    assert s1["Metrics"] == ["UnblendedCost"]
    assert s1["FilterExpression"] == CREDITS_REFUNDS
    assert not {"CostTypes", "CostFilters"} & set(s1)
    assert s1["BudgetLimit"]["Amount"].startswith("1000")
    # AND the owner's tag filter survives, joined with the exclusion; S3 keeps its own amount
    s3 = definition(org, S3)
    assert s3["FilterExpression"] == {"And": [TAG_FILTER, CREDITS_REFUNDS]}
    assert s3["BudgetLimit"]["Amount"].startswith("1500")
    # AND Production is untouched
    assert definition(org, P1) == production_before

    # AND status shows the cost basis and HEALTHY, APPLIED
    rows = status_rows(org)
    for account in (S1, S3):
        assert rows[account]["LastStatus"] == "APPLIED", rows[account]
        assert rows[account]["CostBasis"] == "UnblendedCost excl. Credit,Refund", rows[account]
        assert rows[account]["Health"] == "HEALTHY", rows[account]

    # WHEN AWS reports S1's budget UNHEALTHY and the reconciler runs on its schedule
    org.set_health(S1, "UNHEALTHY", "FILTER_INVALID")
    org.invoke_reconciler()
    org.pipeline.run_until_idle()

    # THEN status shows it FAILED with AWS's reason
    row = status_rows(org)[S1]
    assert row["LastStatus"] == "FAILED", row
    assert row["Health"] == "UNHEALTHY", row
    status = org.status(S1)
    assert status is not None
    assert status["Reason"].startswith("AWS Budgets reports the budget UNHEALTHY: FILTER_INVALID")

    # WHEN the default excludes nothing ('none') THEN the budgets lose the exclusion, and the
    # owner's filter stays
    org.set_health(S1, "HEALTHY")
    assert budgetctl(org, "default", "set", sandbox, "--exclude", "none")[0] == 0
    org.pipeline.run_until_idle()
    assert "FilterExpression" not in definition(org, S1)
    assert definition(org, S3)["FilterExpression"] == TAG_FILTER

    # WHEN the default's exclusions are removed ('') THEN what it gave is removed from the items;
    # the budgets keep their definition (no cost basis anywhere: left as it is)
    assert budgetctl(org, "default", "set", sandbox, "--exclude", "")[0] == 0
    org.pipeline.run_until_idle()
    table = org.management.resource("dynamodb").Table(org.stack.budgets_table)
    for account in (S1, S3):
        assert "InheritedCostExclusions" not in table.get_item(Key={"AccountId": account})["Item"]
    assert definition(org, S3)["FilterExpression"] == TAG_FILTER
    assert status_rows(org)[S1]["LastStatus"] == "APPLIED"
