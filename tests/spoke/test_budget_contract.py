"""Nothing strips a budget, nothing regresses it: the Automation script's read-modify-write
against the SDK's own Budget shape, an SDK that lacks members, and overlapping runs."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import boto3
import botocore.session
import pytest
from botocore.model import ServiceModel

from budget_sync_spoke import update_budget
from budget_sync_spoke.update_budget import COMPUTED, KEPT, SdkTooOld, apply_limit
from tests.support.lazy import lazy

if TYPE_CHECKING:
    import moto

    from budget_sync_local import standins
else:  # moto: imported by the first test that uses it, not at collection (make unit)
    standins = lazy("budget_sync_local.standins")
    moto = lazy("moto")

ACCOUNT = "123456789012"
REGION = "us-east-1"
PARAMETER = "/BlogBudgets/CostThreshold"
#: A budget that uses the members today's read-modify-write must keep.
FILTERED = {
    "BudgetName": "b",
    "BudgetType": "COST",
    "TimeUnit": "MONTHLY",
    "BudgetLimit": {"Amount": "100", "Unit": "USD"},
    "FilterExpression": {"Not": {"Dimensions": {"Key": "RECORD_TYPE", "Values": ["Credit", "Refund"]}}},
    "Metrics": ["UnblendedCost"],
    "BillingViewArn": f"arn:aws:billing::{ACCOUNT}:billingview/primary",
}


@pytest.fixture
def aws() -> Iterator[boto3.Session]:
    with moto.mock_aws(), standins.installed():
        yield boto3.Session(region_name=REGION)


@pytest.fixture
def reports(aws: boto3.Session) -> Iterator[list[dict[str, Any]]]:
    """The events put on the account's bus (the stand-in hands PutEvents to subscribers)."""
    events: list[dict[str, Any]] = []
    with standins.installed() as active:
        active.subscribe(events.append)
        yield events


def test_every_member_of_the_sdks_budget_shape_is_classified_as_kept_or_computed():
    # GIVEN the Budget shape of the botocore the project is developed with
    members = set(botocore.session.get_session().get_service_model("budgets").shape_for("Budget").members)
    # THEN each member is either sent back as it is, or computed by AWS: a new member fails
    # this test until someone decides which it is
    assert members == set(KEPT) | set(COMPUTED), sorted(members ^ (set(KEPT) | set(COMPUTED)))
    assert not set(KEPT) & set(COMPUTED)


@pytest.mark.aws
def test_given_a_filter_expression_when_the_limit_changes_then_every_member_is_kept(aws: boto3.Session):
    # GIVEN a budget with a filter that excludes credits and refunds, metrics and a billing view
    budgets = aws.client("budgets")
    budgets.create_budget(AccountId=ACCOUNT, Budget=copy.deepcopy(FILTERED))
    # (the stand-in hides the filter unless it is asked for, as AWS documents)
    assert "FilterExpression" not in budgets.describe_budget(AccountId=ACCOUNT, BudgetName="b")["Budget"]

    # WHEN the script changes the limit
    result = apply_limit(budgets, ACCOUNT, "b", "250", [])

    # THEN only the limit changed
    after = budgets.describe_budget(AccountId=ACCOUNT, BudgetName="b", ShowFilterExpression=True)["Budget"]
    assert result["Action"] == "Updated"
    assert after["BudgetLimit"] == {"Amount": "250", "Unit": "USD"}
    for member in ("FilterExpression", "Metrics", "BillingViewArn", "BudgetType", "TimeUnit"):
        assert after[member] == FILTERED[member], member


def _model_without(member: str) -> ServiceModel:
    loader = botocore.session.get_session().get_component("data_loader")
    raw = copy.deepcopy(loader.load_service_model("budgets", "service-2"))
    del raw["shapes"]["Budget"]["members"][member]
    return ServiceModel(raw, "budgets")


@pytest.mark.parametrize("member", ["FilterExpression", "Metrics", "BillingViewArn"])
@pytest.mark.aws
def test_given_an_sdk_that_lacks_a_member_then_the_script_fails_and_changes_nothing(
    aws: boto3.Session, member: str
):
    # GIVEN a budget, and a runtime whose boto3 does not know one member of the definition
    real = aws.client("budgets")
    real.create_budget(AccountId=ACCOUNT, Budget=copy.deepcopy(FILTERED))
    calls: list[str] = []
    real.meta.events.register("provide-client-params.budgets.*", lambda model, **_: calls.append(model.name))
    old = SimpleNamespace(
        meta=SimpleNamespace(service_model=_model_without(member)),
        describe_budget=real.describe_budget,
        update_budget=real.update_budget,
        create_budget=real.create_budget,
        exceptions=real.exceptions,
    )

    # WHEN the script runs there
    with pytest.raises(SdkTooOld, match=member):
        apply_limit(old, ACCOUNT, "b", "250", [])

    # THEN it made no call at all: the budget is as it was
    assert calls == []
    after = real.describe_budget(AccountId=ACCOUNT, BudgetName="b", ShowFilterExpression=True)["Budget"]
    assert after["BudgetLimit"]["Amount"] == "100"
    assert after["FilterExpression"] == FILTERED["FilterExpression"]


class _Shim:
    """The script's ``boto3``: clients of the test's session, the budgets one wrapped."""

    def __init__(self, session: boto3.Session, wrap: Any) -> None:
        self._session = session
        self._wrap = wrap

    def client(self, service: str, **kwargs: Any) -> Any:
        client = self._session.client(service, **kwargs)
        return self._wrap(client) if service == "budgets" else client


@pytest.mark.aws
def test_given_two_overlapping_runs_then_the_budget_ends_at_the_newest_value(
    aws: boto3.Session, reports: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
):
    # GIVEN a budget and its parameter at 100, and a run A that reads 300 (version 2)
    ssm = aws.client("ssm")
    ssm.put_parameter(Name=PARAMETER, Value="100", Type="String")
    aws.client("budgets").create_budget(AccountId=ACCOUNT, Budget=copy.deepcopy(FILTERED))
    ssm.put_parameter(Name=PARAMETER, Value="300", Overwrite=True)

    # WHEN, between A's read and A's update, run B writes 500 (version 3) and applies it
    # (the worst interleaving: A's older update lands last)
    def wrap(budgets: Any) -> Any:
        original = budgets.update_budget
        state = {"first": True}

        def update_budget(**kwargs: Any) -> Any:
            if state["first"]:
                state["first"] = False
                ssm.put_parameter(Name=PARAMETER, Value="500", Overwrite=True)
                apply_limit(aws.client("budgets"), ACCOUNT, "b", "500", [])  # run B
            return original(**kwargs)

        budgets.update_budget = update_budget
        return budgets

    monkeypatch.setattr(update_budget, "boto3", _Shim(aws, wrap))
    result = update_budget.handler(
        {"AccountId": ACCOUNT, "BudgetName": "b", "ParameterName": PARAMETER, "ExecutionId": "run-a"}, None
    )

    # THEN run A saw version 3 after its update and applied it again: the budget ends at 500
    budget = aws.client("budgets").describe_budget(AccountId=ACCOUNT, BudgetName="b")["Budget"]
    assert budget["BudgetLimit"]["Amount"] == "500"
    assert (result["NewLimit"], result["ParameterVersion"]) == ("500", "3")
    # and its report names the newest version and limit
    (report,) = [e["detail"] for e in reports if e["detail-type"] == "Budget Update Result"]
    assert (report["Outcome"], report["ParameterVersion"], report["NewLimit"]) == ("APPLIED", 3, "500")
    assert json.dumps(report)  # plain JSON, as EventBridge carries it


@pytest.mark.aws
def test_given_a_refused_value_then_the_report_carries_the_reason_and_the_run_fails(
    aws: boto3.Session, reports: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
):
    # GIVEN a budget with planned limits
    ssm = aws.client("ssm")
    ssm.put_parameter(Name=PARAMETER, Value="555", Type="String")
    aws.client("budgets").create_budget(
        AccountId=ACCOUNT,
        Budget={
            "BudgetName": "planned",
            "BudgetType": "COST",
            "TimeUnit": "MONTHLY",
            "PlannedBudgetLimits": {"1767225600": {"Amount": "100", "Unit": "USD"}},
        },
    )
    monkeypatch.setattr(update_budget, "boto3", _Shim(aws, lambda c: c))

    # WHEN the script runs
    with pytest.raises(ValueError, match="PlannedBudgetLimits"):
        update_budget.handler(
            {"AccountId": ACCOUNT, "BudgetName": "planned", "ParameterName": PARAMETER, "ExecutionId": "x"},
            None,
        )

    # THEN it reported FAILED with its reason, for the version it read
    (report,) = [e["detail"] for e in reports if e["detail-type"] == "Budget Update Result"]
    assert (report["Outcome"], report["ParameterVersion"], report["ExecutionId"]) == ("FAILED", 1, "x")
    assert "PlannedBudgetLimits" in report["Reason"]
