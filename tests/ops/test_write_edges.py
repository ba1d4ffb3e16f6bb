"""Writes that fail half-way: an import throttled past its retries says exactly which rows were
written and which were not (and running it again is safe); a ``set`` whose first response was
lost and retried by botocore is recognised as its own write, not a conflict."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from budgetctl.errors import ExitCode
from tests.support.moto_org import SPOKES, Org
from tests.support.operators import CALLER, budgetctl, item

A, B, C = SPOKES
ACCOUNTS = [f"{100000000000 + n}" for n in range(150)]  # two transactions: 100 + 50
#: ACCOUNTS are not in the ops organisation: these imports skip the check, which is not their subject.
OUTSIDE = "--outside-organization"


def throttle_the_nth(monkeypatch: pytest.MonkeyPatch, operation: str, n: int) -> None:
    """The n-th ``operation`` fails as botocore reports throttling after its own retries."""
    original = BaseClient._make_api_call
    seen = {"count": 0}

    def call(client: BaseClient, name: str, params: dict[str, Any]) -> Any:
        if name == operation:
            seen["count"] += 1
            if seen["count"] == n:
                error = {
                    "Code": "ThrottlingException",
                    "Message": "Rate of requests exceeds the allowed throughput.",
                }
                raise ClientError({"Error": error}, name)
        return original(client, name, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", call)


def test_given_an_import_throttled_part_way_then_each_row_is_reported_and_a_rerun_finishes_it(
    ops: Org, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # GIVEN 150 rows, whose second transaction (rows 102-151) is throttled past the retries
    source = tmp_path / "budgets.csv"
    source.write_text("AccountId,BudgetValue\n" + "".join(f"{a},{500 + i}\n" for i, a in enumerate(ACCOUNTS)))
    throttle_the_nth(monkeypatch, "TransactWriteItems", 2)

    # WHEN it is imported
    result = budgetctl("import", str(source), OUTSIDE)

    # THEN it is an AWS error that says exactly which rows (by line) were written and which not
    assert result.code == ExitCode.AWS
    assert "stopped after 100 of 150 write(s): TransactWriteItems: ThrottlingException" in result.stderr
    assert f"written: line 2 account {ACCOUNTS[0]}" in result.stderr
    assert f"written: line 101 account {ACCOUNTS[99]}" in result.stderr
    assert f"NOT written: line 102 account {ACCOUNTS[100]}" in result.stderr
    assert f"NOT written: line 151 account {ACCOUNTS[149]}" in result.stderr
    assert "100 row(s) written, 50 not written" in result.stderr
    assert item(ops, ACCOUNTS[99]) is not None
    assert item(ops, ACCOUNTS[100]) is None

    # AND running the same import again writes the rest and leaves the written rows alone
    monkeypatch.undo()
    again = budgetctl("import", str(source), OUTSIDE)
    assert again.code == ExitCode.OK, again.stderr
    assert "50 to add, 0 to change, 100 unchanged" in again.stderr
    assert [item(ops, a)["BudgetValue"] for a in (ACCOUNTS[0], ACCOUNTS[149])] == [500, 649]  # type: ignore[index]


def lose_the_first_response(monkeypatch: pytest.MonkeyPatch, operation: str) -> list[int]:
    """The first ``operation`` reaches DynamoDB, but its response is lost: botocore retries it
    (its needs-retry hook is where a lost connection would lead). Returns the attempt log."""
    attempts: list[int] = []
    original_create = botocore.session.Session.create_client

    def lost_once(attempts_so_far: int, **_: Any) -> int | None:
        attempts.append(attempts_so_far)
        return 0 if len(attempts) == 1 else None  # retry at once, the first time only

    def create_client(self: botocore.session.Session, *args: Any, **kwargs: Any) -> Any:
        client = original_create(self, *args, **kwargs)
        register: Callable[..., None] = client.meta.events.register
        register(f"needs-retry.dynamodb.{operation}", lambda attempts, **kw: lost_once(attempts, **kw))
        return client

    monkeypatch.setattr(botocore.session.Session, "create_client", create_client)
    return attempts


def test_given_a_set_whose_first_response_was_lost_then_the_retry_is_recognised_as_its_own_write(
    ops: Org, monkeypatch: pytest.MonkeyPatch
):
    # GIVEN an UpdateItem that succeeds, whose response is lost and which botocore sends again
    attempts = lose_the_first_response(monkeypatch, "UpdateItem")

    # WHEN an operator sets a new value
    result = budgetctl("set", A, "2000")

    # THEN the retry met its own write: success, not a conflict
    assert len(attempts) == 2, "the call was sent twice"
    assert result.code == ExitCode.OK, result.stderr
    assert "the item holds this write" in result.stderr
    written = item(ops, A)
    assert written is not None
    assert written["BudgetValue"] == 2000
    assert written["UpdatedBy"] == CALLER


def test_a_different_write_between_read_and_write_is_still_a_conflict_even_with_the_same_value(
    ops: Org, monkeypatch: pytest.MonkeyPatch
):
    from budgetctl.budgets_table import BudgetsTable

    original_get = BudgetsTable.get

    def get_then_another_operator_writes(self: BudgetsTable, account: str) -> Any:
        found = original_get(self, account)
        ops.put(account, 2000, UpdatedBy="arn:aws:sts::123456789012:assumed-role/Ops/bob", UpdatedAt="x")
        return found

    monkeypatch.setattr(BudgetsTable, "get", get_then_another_operator_writes)

    result = budgetctl("set", A, "2000")

    assert result.code == ExitCode.CONFLICT
    assert "changed since it was read" in result.stderr


def test_given_an_import_interrupted_part_way_then_one_line_the_rows_by_line_and_exit_130(
    ops: Org, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # GIVEN 150 rows, and Ctrl-C while the second transaction (rows 102-151) is being sent
    source = tmp_path / "budgets.csv"
    source.write_text("AccountId,BudgetValue\n" + "".join(f"{a},{500 + i}\n" for i, a in enumerate(ACCOUNTS)))
    original = BaseClient._make_api_call
    seen = {"count": 0}

    def call(client: BaseClient, name: str, params: dict[str, Any]) -> Any:
        if name == "TransactWriteItems":
            seen["count"] += 1
            if seen["count"] == 2:
                raise KeyboardInterrupt
        return original(client, name, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", call)

    # WHEN it is imported
    result = budgetctl("import", str(source), OUTSIDE)

    # THEN exit 130, no traceback, the rows written and not written by line, one closing line
    assert result.code == 130
    assert "Traceback" not in result.stderr
    assert "written: 100 row(s), line(s) 2, 3, 4," in result.stderr
    assert "in flight (written or not: `budgetctl get` tells): 50 row(s), line(s) 102, 103," in result.stderr
    assert "interrupted: 100 row(s) written, 50 in flight, 0 not written." in result.stderr
    assert (
        result.stderr.strip().splitlines()[-1]
        == "budgetctl: error: interrupted (Ctrl-C); nothing more was sent"
    )
    assert item(ops, ACCOUNTS[99])["BudgetValue"] == 599  # type: ignore[index]
    assert item(ops, ACCOUNTS[100]) is None  # the interrupted transaction was never sent


def test_given_ctrl_c_during_a_read_command_then_one_line_and_exit_130(
    ops: Org, monkeypatch: pytest.MonkeyPatch
):
    original = BaseClient._make_api_call

    def call(client: BaseClient, name: str, params: dict[str, Any]) -> Any:
        if name == "Scan":
            raise KeyboardInterrupt
        return original(client, name, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", call)

    result = budgetctl("status")

    assert result.code == 130
    assert result.stderr == "budgetctl: error: interrupted (Ctrl-C); nothing more was sent\n"
