"""Operators read through the read-only spoke role; a repair they ask for is done by
budget-sync's reconciler function, with its role, and records who asked (RequestedBy in the
status table, a per-person session name on the spoke assume-role)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from botocore.client import BaseClient

from budget_sync_local.templates import MANAGEMENT_TEMPLATE, SPOKE_TEMPLATE, Resolver, load
from budgetctl import cli
from budgetctl.errors import ExitCode
from tests.support.moto_org import SPOKES, Org
from tests.support.operators import budgetctl, parameter_version

A, B, C = SPOKES
CALLER = "arn:aws:sts::123456789012:user/moto"  # moto's identity for the test credentials


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """Every AWS call made in this process (budgetctl's and the in-process function's)."""
    recorded: list[tuple[str, dict[str, Any]]] = []
    original = BaseClient._make_api_call

    def record(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        recorded.append((operation, dict(params)))
        return original(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", record)
    return recorded


def assumed(calls: list[tuple[str, dict[str, Any]]]) -> set[tuple[str, str]]:
    """(role name, session name) of every AssumeRole."""
    return {
        (params["RoleArn"].rsplit("/", 1)[-1], params["RoleSessionName"])
        for operation, params in calls
        if operation == "AssumeRole"
    }


def test_status_reads_every_spoke_through_the_read_only_role(ops: Org, calls: list[Any]):
    result = budgetctl("status")

    assert result.code == ExitCode.OK, result.stderr
    assert assumed(calls) == {("BlogBudgetsSpokeReadRole", "budgetctl")}
    assert not [c for c in calls if c[0] == "PutParameter"]


def test_read_role_name_is_an_option_and_a_missing_read_role_is_reported_per_account(ops: Org):
    result = budgetctl("status", "--read-role-name", "NoSuchRole", "--output", "json")

    assert result.code == ExitCode.PROBLEM
    assert {r["Drift"] for r in result.json()} == {"UNREACHABLE"}
    assert all("NoSuchRole" in r["Reason"] for r in result.json())


def test_given_drift_when_an_operator_applies_then_the_reconciler_function_repairs_and_records_who_asked(
    ops: Org, calls: list[tuple[str, dict[str, Any]]]
):
    # GIVEN a lost stream write: the table says 3000, the parameter keeps 1000
    ops.put(A, Decimal("3000"))

    # WHEN an operator asks for the repair
    result = budgetctl("reconcile", "--apply", "--output", "json")

    # THEN the account is repaired
    assert result.code == ExitCode.OK, result.stderr
    rows = {r["AccountId"]: r for r in result.json()}
    assert rows[A]["Action"] == "REPAIRED"
    assert rows[B]["Drift"] == "IN_SYNC"
    assert ops.parameter(A) == "3000"
    # AND budgetctl only invoked the reconciler, naming the caller
    (invoke,) = [params for operation, params in calls if operation == "Invoke"]
    assert invoke["FunctionName"] == "BlogBudgetsReconciler"
    assert json.loads(invoke["Payload"]) == {"Accounts": [], "RequestedBy": CALLER}
    # AND the write role was assumed only in the function, with the person's session name
    writes = {(role, session) for role, session in assumed(calls) if role == "BlogBudgetsSpokeRole"}
    assert writes == {("BlogBudgetsSpokeRole", "budget-sync-for-moto")}
    # AND the status says who asked
    status = ops.status(A)
    assert status is not None
    assert status["RequestedBy"] == CALLER
    assert status["Source"] == "reconciler"
    assert parameter_version(ops, B) == 1  # in sync: not written


def test_apply_for_one_account_sends_only_that_account(ops: Org, calls: list[tuple[str, dict[str, Any]]]):
    ops.put(A, Decimal("3000"))
    ops.put(B, Decimal("4000"))

    result = budgetctl("reconcile", "--apply", "--account", B, "--output", "json")

    assert result.code == ExitCode.OK, result.stderr
    assert [r["AccountId"] for r in result.json()] == [B]
    (invoke,) = [params for operation, params in calls if operation == "Invoke"]
    assert json.loads(invoke["Payload"])["Accounts"] == [B]
    assert ops.parameter(B) == "4000"
    assert ops.parameter(A) == "1000"  # not asked for


def test_a_missing_reconciler_function_is_an_aws_error_and_nothing_is_written(ops: Org):
    ops.put(A, Decimal("3000"))

    result = budgetctl("reconcile", "--apply", "--reconciler-function", "NoSuchFunction")

    assert result.code == ExitCode.AWS
    assert "NoSuchFunction" in result.stderr
    assert ops.parameter(A) == "1000"


def test_the_reconciler_refuses_a_request_that_does_not_say_who_asked(ops: Org):
    response = ops.management.client("lambda").invoke(
        FunctionName="BlogBudgetsReconciler", Payload=json.dumps({"Accounts": [A], "RequestedBy": "me"})
    )

    assert response["FunctionError"] == "Unhandled"
    error = json.loads(response["Payload"].read())
    assert "RequestedBy 'me'" in error["errorMessage"]


def test_the_read_role_and_the_reconciler_function_are_the_templates_defaults():
    assert Resolver(load(SPOKE_TEMPLATE)).parameter("SpokeReadRoleName") == cli.DEFAULT_READ_ROLE
    assert Resolver(load(MANAGEMENT_TEMPLATE)).parameter("ReconcilerFunctionName") == cli.DEFAULT_RECONCILER
