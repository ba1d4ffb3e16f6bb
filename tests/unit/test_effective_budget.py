"""The effective-budget rule and the resolver's per-account decision (pure), and the
Organizations reader's paging (a fake client)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from budget_sync.effective_budget import (
    Action,
    OrgAccount,
    Source,
    TableItem,
    decide,
    effective,
    parse_target_id,
)
from budget_sync.errors import InvalidItemError
from budget_sync.organizations import OrganizationsReader

ROOT, SANDBOX, TEAM = "r-ab12", "ou-ab12-11111111", "ou-ab12-22222222"
ACCOUNT = OrgAccount("111111111111", "a", "ACTIVE", (ROOT, SANDBOX, TEAM))


def test_the_nearest_default_up_to_the_root_applies_and_an_explicit_item_wins():
    defaults = {ROOT: Decimal(10), SANDBOX: Decimal(100)}
    assert effective(ACCOUNT, None, defaults) == effective(ACCOUNT, TableItem(Decimal(5), SANDBOX), defaults)
    assert effective(ACCOUNT, None, defaults).target_id == SANDBOX
    assert effective(ACCOUNT, None, {**defaults, TEAM: Decimal(1)}).value == Decimal(1)
    assert effective(ACCOUNT, None, {ROOT: Decimal(10)}).target_id == ROOT
    assert effective(ACCOUNT, TableItem(Decimal(700), None), defaults).source is Source.ITEM
    assert effective(ACCOUNT, None, {}).source is Source.NONE


@pytest.mark.parametrize(
    ("item", "defaults", "ready", "action"),
    [
        (None, {SANDBOX: Decimal(100)}, True, Action.WRITE),
        (None, {SANDBOX: Decimal(100)}, False, Action.WAIT),
        (TableItem(Decimal(100), SANDBOX), {SANDBOX: Decimal(100)}, True, Action.KEEP),
        (TableItem(Decimal(100), SANDBOX), {SANDBOX: Decimal(150)}, True, Action.WRITE),
        (TableItem(Decimal(100), SANDBOX), {SANDBOX: Decimal(150)}, False, Action.WRITE),  # stack exists
        (TableItem(Decimal(100), SANDBOX), {}, True, Action.DELETE),
        (TableItem(Decimal(700), None), {SANDBOX: Decimal(100)}, True, Action.KEEP),
        (TableItem(Decimal(700), None), {}, True, Action.KEEP),
        (None, {}, True, Action.KEEP),
    ],
)
def test_decide(item: TableItem | None, defaults: dict[str, Decimal], ready: bool, action: Action):
    assert decide(ACCOUNT, item, defaults, ready).action is action


def test_closed_accounts_are_skipped_and_the_management_account_takes_no_default():
    closed = OrgAccount("111111111111", "a", "SUSPENDED", (ROOT, SANDBOX))
    decision = decide(closed, None, {SANDBOX: Decimal(100)}, True)
    assert decision.action is Action.SKIP
    assert "SUSPENDED" in decision.reason
    management = OrgAccount("123456789012", "m", "ACTIVE", (ROOT,))
    kept = decide(management, None, {ROOT: Decimal(100)}, True, "123456789012")
    assert kept.action is Action.KEEP
    assert "management account" in kept.reason


@pytest.mark.parametrize("text", ["ou-nope", "r-", "OU-AB12-11111111", "123456789012", "", "ou-ab12-1111111"])
def test_a_target_that_is_no_root_or_ou_id_is_refused_naming_the_field_and_value(text: str):
    with pytest.raises(InvalidItemError) as caught:
        parse_target_id(text)
    assert caught.value.field == "TargetId"
    assert repr(text) in str(caught.value)


class _Pages:
    """ListAccountsForParent answering an empty page with a token first (as List* may)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def list_accounts_for_parent(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        token = kwargs.get("NextToken")
        if token is None:
            return {"Accounts": [], "NextToken": "1"}
        if token == "1":
            return {"Accounts": [{"Id": "111111111111", "Name": "a", "Status": "ACTIVE"}], "NextToken": "2"}
        return {"Accounts": [{"Id": "222222222222", "Name": "b", "State": "CLOSED"}]}

    def list_organizational_units_for_parent(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {"OrganizationalUnits": []}


def test_the_reader_follows_tokens_past_empty_pages_with_the_largest_page_size_and_counts_its_calls():
    client = _Pages()
    reader = OrganizationsReader(client, max_rps=0)  # type: ignore[arg-type]
    accounts: dict[str, OrgAccount] = {}
    reader._walk(ROOT, (), {}, accounts)
    assert sorted(accounts) == ["111111111111", "222222222222"]
    assert accounts["222222222222"].active is False
    assert all(c["MaxResults"] == 20 for c in client.calls)
    assert reader.calls == {"list_accounts_for_parent": 3, "list_organizational_units_for_parent": 1}
