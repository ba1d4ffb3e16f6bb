"""The resolver function (the template's handler) on a moto organisation: defaults reach the
accounts that inherit them, explicit items always win, moves and removals re-evaluate."""

from __future__ import annotations

import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from budget_sync import resolve as resolve_module
from budget_sync.errors import UnrecognisedEvent
from tests.support.tree import PRODUCTION_ACCOUNTS, ROOT_ACCOUNTS, SANDBOX_ACCOUNTS, SCHEDULED, Tree


def test_given_ou_defaults_when_resolved_then_each_account_inherits_its_nearest_default(tree: Tree):
    # GIVEN a default on Sandbox and one on the root
    tree.set_default(tree.sandbox, "100")
    tree.set_default(tree.root, "50")

    # WHEN the scheduled full resolution runs
    result = tree.resolve(SCHEDULED)

    # THEN Sandbox accounts get Sandbox's default, the others the root's, each marked with its source
    for account in SANDBOX_ACCOUNTS:
        item = tree.item(account)
        assert item is not None
        assert (item["BudgetValue"], item["InheritedFrom"]) == (Decimal(100), tree.sandbox)
    for account in (*PRODUCTION_ACCOUNTS, *ROOT_ACCOUNTS):
        item = tree.item(account)
        assert item is not None
        assert (item["BudgetValue"], item["InheritedFrom"]) == (Decimal(50), tree.root)
    assert result["actions"]["InheritedWritten"] == 4
    assert result["organizations_calls"] > 0


def test_given_an_explicit_item_when_a_default_applies_then_the_item_wins(tree: Tree):
    account = SANDBOX_ACCOUNTS[0]
    tree.table("BlogBudgetsDynamoDB").put_item(Item={"AccountId": account, "BudgetValue": Decimal(700)})
    tree.set_default(tree.sandbox, "100")

    tree.resolve(SCHEDULED)

    item = tree.item(account)
    assert item is not None
    assert item["BudgetValue"] == Decimal(700)
    assert "InheritedFrom" not in item
    other = tree.item(SANDBOX_ACCOUNTS[1])
    assert other is not None
    assert other["BudgetValue"] == Decimal(100)


def test_given_a_default_change_when_its_stream_record_arrives_then_only_inheriting_accounts_change(
    tree: Tree,
):
    tree.set_default(tree.sandbox, "100")
    tree.set_default(tree.production, "5000")
    tree.resolve(SCHEDULED)
    tree.table("BlogBudgetsDynamoDB").put_item(
        Item={"AccountId": SANDBOX_ACCOUNTS[0], "BudgetValue": Decimal(700)}
    )

    # WHEN Sandbox's default changes and its stream record reaches the function
    tree.set_default(tree.sandbox, "150")
    result = tree.resolve(_defaults_record(tree.sandbox, "MODIFY"))

    # THEN the inheriting Sandbox account changes, the overridden one and Production do not
    assert result["scopes"] == [tree.sandbox]
    assert tree.item(SANDBOX_ACCOUNTS[1])["BudgetValue"] == Decimal(150)  # type: ignore[index]
    assert tree.item(SANDBOX_ACCOUNTS[0])["BudgetValue"] == Decimal(700)  # type: ignore[index]
    assert tree.item(PRODUCTION_ACCOUNTS[0])["BudgetValue"] == Decimal(5000)  # type: ignore[index]


def test_given_a_removed_default_then_inherited_items_are_removed_and_explicit_ones_stay(tree: Tree):
    tree.set_default(tree.sandbox, "100")
    tree.resolve(SCHEDULED)
    tree.table("BlogBudgetsDynamoDB").put_item(
        Item={"AccountId": SANDBOX_ACCOUNTS[0], "BudgetValue": Decimal(700)}
    )

    tree.delete_default(tree.sandbox)
    result = tree.resolve(_defaults_record(tree.sandbox, "REMOVE"))

    assert tree.item(SANDBOX_ACCOUNTS[1]) is None  # the stream then marks it UNMANAGED
    assert tree.item(SANDBOX_ACCOUNTS[0]) is not None
    assert result["actions"]["InheritedRemoved"] == 1


def test_given_a_moved_account_when_the_move_event_arrives_then_it_takes_its_new_ous_default(tree: Tree):
    tree.set_default(tree.sandbox, "100")
    tree.set_default(tree.production, "5000")
    tree.resolve(SCHEDULED)
    account = SANDBOX_ACCOUNTS[1]
    tree.organizations.move_account(
        AccountId=account, SourceParentId=tree.sandbox, DestinationParentId=tree.production
    )

    result = tree.resolve(_cloudtrail("MoveAccount", {"accountId": account}))

    assert result["scopes"] == [account]
    item = tree.item(account)
    assert item is not None
    assert (item["BudgetValue"], item["InheritedFrom"]) == (
        Decimal(5000),
        tree.production,
    )


def test_given_a_new_account_without_its_spoke_stack_then_it_waits_and_is_enrolled_when_the_stack_exists(
    tree: Tree,
):
    # GIVEN a StackSet-managed organisation and a Sandbox default
    tree.set_default(tree.sandbox, "100")
    parameters = {"SpokeStackSetName": "budget-sync-spoke"}
    cloudformation = tree.management.client("cloudformation")
    cloudformation.create_stack_set(StackSetName="budget-sync-spoke", TemplateBody='{"Resources": {}}')
    tree.create_account("555555555555", tree.sandbox)

    # WHEN the account is created (CreateAccountResult) before its stack instance exists
    created = {"createAccountStatus": {"state": "SUCCEEDED", "accountId": "555555555555"}}
    tree.resolve(_cloudtrail("CreateAccountResult", service=created), parameters)

    # THEN it is WAITING, not FAILED, and nothing is written
    status = tree.status("555555555555")
    assert status is not None
    assert status["Status"] == "WAITING"
    assert status["DesiredValue"] == Decimal(100)
    assert tree.item("555555555555") is None

    # WHEN the StackSet reports its stack instance
    arn = cloudformation.describe_stack_set(StackSetName="budget-sync-spoke")["StackSet"]["StackSetARN"]
    event = {
        "source": "aws.cloudformation",
        "detail-type": "CloudFormation StackSet StackInstance Status Change",
        "detail": {
            "stack-set-arn": arn,
            "stack-id": "arn:aws:cloudformation:us-east-1:555555555555:stack/StackSet-x/1",
            "action": "CREATE",
            "status-details": {"status": "CURRENT", "detailed-status": "SUCCEEDED"},
        },
    }
    tree.resolve(event, parameters)

    # THEN the default is written, for the stream function to deliver
    item = tree.item("555555555555")
    assert item is not None
    assert item["BudgetValue"] == Decimal(100)


def test_given_a_closed_account_then_it_is_skipped_and_shown_as_such(tree: Tree):
    # GIVEN a Sandbox default and a Sandbox account that was closed (moto: SUSPENDED)
    tree.set_default(tree.sandbox, "100")
    account = SANDBOX_ACCOUNTS[0]
    tree.organizations.close_account(AccountId=account)

    # WHEN the organisation is resolved
    tree.resolve(SCHEDULED)

    # THEN nothing is written for it and its status says why
    assert tree.item(account) is None
    status = tree.status(account)
    assert status is not None
    assert status["Status"] == "SKIPPED"
    assert "SUSPENDED" in status["Reason"]
    assert tree.item(SANDBOX_ACCOUNTS[1]) is not None


def _defaults_record(target: str, event_name: str) -> dict:
    return {
        "Records": [
            {
                "eventName": event_name,
                "eventSource": "aws:dynamodb",
                "dynamodb": {"Keys": {"TargetId": {"S": target}}, "SequenceNumber": "1"},
            }
        ]
    }


def _cloudtrail(name: str, request: dict | None = None, service: dict | None = None) -> dict:
    detail: dict = {"eventSource": "organizations.amazonaws.com", "eventName": name}
    if request is not None:
        detail["requestParameters"] = request
    if service is not None:
        detail["serviceEventDetails"] = service
    return {"source": "aws.organizations", "detail-type": "AWS API Call via CloudTrail", "detail": detail}


def _older_run_reads_defaults_then(tree: Tree, monkeypatch: Any, meanwhile: Callable[[], None]) -> None:
    """The first resolution to read the defaults keeps what it read; before it writes, an
    operator changes the defaults and a newer resolution runs to its end (``meanwhile``)."""
    real = resolve_module.read_all_defaults
    done: list[bool] = []

    def read_then_wait(tables: Any) -> Any:
        read = real(tables)
        if not done:
            done.append(True)
            meanwhile()
        return read

    monkeypatch.setattr(resolve_module, "read_all_defaults", read_then_wait)


def test_given_an_older_run_that_read_a_default_before_a_change_then_it_cannot_write_it_back_after_a_newer_run(
    tree: Tree, monkeypatch: Any
):
    # GIVEN Sandbox's default 100 applied, then raised to 150
    account = SANDBOX_ACCOUNTS[1]
    tree.set_default(tree.sandbox, "100")
    tree.resolve(SCHEDULED)
    tree.set_default(tree.sandbox, "150")

    # WHEN the hourly run reads 150, and before it writes the operator sets 200 and its run ends
    def newer() -> None:
        tree.set_default(tree.sandbox, "200")
        tree.resolve(_defaults_record(tree.sandbox, "MODIFY"))

    _older_run_reads_defaults_then(tree, monkeypatch, newer)
    result = tree.resolve(SCHEDULED)

    # THEN the account keeps the newer run's 200: the older run's write found another item than it read
    assert tree.item(account)["BudgetValue"] == Decimal(200)  # type: ignore[index]
    assert result["conflicts"] >= 1


def test_given_an_older_run_that_read_a_default_before_its_removal_then_it_does_not_resurrect_it(
    tree: Tree, monkeypatch: Any
):
    # GIVEN Sandbox's default 100 applied, then changed to 150
    account = SANDBOX_ACCOUNTS[1]
    tree.set_default(tree.sandbox, "100")
    tree.resolve(SCHEDULED)
    tree.set_default(tree.sandbox, "150")

    # WHEN the hourly run reads 150, and before it writes the default is removed and that run ends
    def removed() -> None:
        tree.delete_default(tree.sandbox)
        tree.resolve(_defaults_record(tree.sandbox, "REMOVE"))

    _older_run_reads_defaults_then(tree, monkeypatch, removed)
    tree.resolve(SCHEDULED)

    # THEN the removed default's items stay removed
    assert tree.item(account) is None


def _interleaved(
    tree: Tree, monkeypatch: Any, change: Callable[[], None], newer_event: dict
) -> tuple[dict, dict]:
    """Two runs, interleaved as Lambda may run them: the older (the hourly run) reads the
    items and the defaults and stops; an operator changes the defaults (``change``); the
    newer run (``newer_event``) reads the items and the defaults; the older run then writes
    and ends; only then does the newer one write. Returns both runs' results."""
    real = resolve_module.read_all_defaults
    older_read, newer_read = threading.Event(), threading.Event()
    results: dict[str, dict] = {}

    def read(tables: Any) -> Any:
        answer = real(tables)
        if threading.current_thread() is older:
            older_read.set()
            assert newer_read.wait(60), "the newer run never read"
        else:
            newer_read.set()
            older.join(60)
            assert not older.is_alive(), "the older run never ended"
        return answer

    monkeypatch.setattr(resolve_module, "read_all_defaults", read)
    older = threading.Thread(target=lambda: results.setdefault("older", tree.resolve(SCHEDULED)))
    older.start()
    assert older_read.wait(60), "the older run never read"
    change()
    results["newer"] = tree.resolve(newer_event)
    return results["older"], results["newer"]


def test_given_an_older_run_that_read_no_item_when_it_writes_between_a_newer_runs_read_and_write_then_it_loses(
    tree: Tree, monkeypatch: Any, caplog: Any
):
    # GIVEN an account with no item yet and Sandbox's default of 100
    account = SANDBOX_ACCOUNTS[0]
    tree.set_default(tree.sandbox, "100")
    assert tree.item(account) is None

    # WHEN the hourly run reads "no item" and 100, the operator sets 200, the run that change
    # starts reads "no item" and 200, and the hourly run writes before it
    older, newer = _interleaved(
        tree,
        monkeypatch,
        lambda: tree.set_default(tree.sandbox, "200"),
        _defaults_record(tree.sandbox, "MODIFY"),
    )

    # THEN the stale run wrote nothing (logged, counted) and the newer run's 200 is the item
    assert tree.item(account)["BudgetValue"] == Decimal(200)  # type: ignore[index]
    assert tree.item(account)["InheritedFrom"] == tree.sandbox  # type: ignore[index]
    assert older["stale"] >= 1
    assert older["conflicts"] >= older["stale"]
    assert newer["conflicts"] == 0
    assert "stale resolution: the default changed after this run read it" in caplog.text


def test_given_an_older_run_that_read_a_removed_default_when_it_deletes_between_a_newer_runs_read_and_write_then_it_loses(
    tree: Tree, monkeypatch: Any
):
    # GIVEN Sandbox's default 100 applied, then removed (the removal's own run not yet run)
    account = SANDBOX_ACCOUNTS[0]
    tree.set_default(tree.sandbox, "100")
    tree.resolve(SCHEDULED)
    tree.delete_default(tree.sandbox)

    # WHEN the hourly run reads "no default" (delete), the operator sets 300 again, the run that
    # change starts reads the inherited 100 and 300, and the hourly run deletes before it writes
    older, newer = _interleaved(
        tree,
        monkeypatch,
        lambda: tree.set_default(tree.sandbox, "300"),
        _defaults_record(tree.sandbox, "INSERT"),
    )

    # THEN the stale delete did not happen, and the account inherits the newer run's 300
    assert tree.item(account)["BudgetValue"] == Decimal(300)  # type: ignore[index]
    assert older["stale"] >= 1
    assert newer["conflicts"] == 0


#: Each resolver function, and an event another source sends (or none sends).
_FOREIGN_EVENTS = {
    "ResolverFunction": [{}, {"source": "aws.events"}, {"Records": []}],
    "DefaultsResolverFunction": [
        SCHEDULED,
        {"Records": [{"eventSource": "aws:dynamodb", "dynamodb": {"Keys": {"AccountId": {"S": "1"}}}}]},
    ],
    "ItemRemovedResolverFunction": [SCHEDULED, {"Records": [{"eventSource": "aws:sqs"}]}],
    "OrgEventsResolverFunction": [
        SCHEDULED,
        {
            "source": "aws.organizations",
            "detail-type": "AWS API Call via CloudTrail",
            "detail": {"eventName": "X"},
        },
        {
            "source": "aws.organizations",
            "detail-type": "AWS API Call via CloudTrail",
            "detail": {"eventName": "MoveAccount", "requestParameters": {"accountId": "not-an-account"}},
        },
    ],
    "StackInstanceResolverFunction": [SCHEDULED, {"Records": []}],
}


@pytest.mark.parametrize("function", sorted(_FOREIGN_EVENTS))
def test_given_an_event_its_source_does_not_send_then_each_function_rejects_it_and_resolves_nothing(
    tree: Tree, capsys: pytest.CaptureFixture[str], function: str
):
    # GIVEN a default that would reach every Sandbox account
    tree.set_default(tree.sandbox, "100")
    parameters = {"SpokeStackSetName": "budget-sync-spoke"}

    # WHEN the function is given events its source does not send
    for event in _FOREIGN_EVENTS[function]:
        with pytest.raises(UnrecognisedEvent, match="is not"):
            tree.resolve(event, parameters, function=function)

    # THEN each is rejected and counted, and nothing was resolved (never "the whole organisation")
    out = capsys.readouterr().out
    assert out.count('"UnrecognisedEvent"') >= len(_FOREIGN_EVENTS[function])
    assert all(tree.item(account) is None for account in SANDBOX_ACCOUNTS)
