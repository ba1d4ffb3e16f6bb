"""An in-memory organisation tree (the resolver's ``OrganisationTree``, which
budget_sync.organizations.OrganizationsReader is on AWS): roots and OUs with their parents,
accounts with their parent and state; ``calls`` counts what was asked."""

from __future__ import annotations

from collections import Counter

from budget_sync.effective_budget import OrgAccount, OrgTree, Unit
from budget_sync.organizations import NotInOrganization


class FakeOrganisation:
    def __init__(self, root: str = "r-abcd", management_account: str = "") -> None:
        self.root = root
        self.management_account = management_account
        self.units: dict[str, Unit] = {root: Unit(root, "Root", None)}
        self.accounts: dict[str, tuple[str, str]] = {}  # account id -> (parent, state)
        self.calls: Counter[str] = Counter()

    def add_ou(self, ou_id: str, name: str, parent: str | None = None) -> str:
        self.units[ou_id] = Unit(ou_id, name, parent or self.root)
        return ou_id

    def add_account(self, account_id: str, parent: str | None = None, state: str = "ACTIVE") -> str:
        self.accounts[account_id] = (parent or self.root, state)
        return account_id

    def remove_ou(self, ou_id: str) -> None:
        del self.units[ou_id]

    def _path(self, parent: str) -> tuple[str, ...]:
        path: list[str] = []
        current: str | None = parent
        while current is not None:
            path.append(current)
            current = self.units[current].parent
        return tuple(reversed(path))

    def _tree(self, units: dict[str, Unit], account_ids: list[str]) -> OrgTree:
        accounts = {
            a: OrgAccount(a, f"acct-{a}", self.accounts[a][1], self._path(self.accounts[a][0]))
            for a in account_ids
        }
        return OrgTree(units, accounts, self.management_account)

    def full(self) -> OrgTree:
        self.calls["full"] += 1
        return self._tree(dict(self.units), list(self.accounts))

    def subtree(self, target_id: str) -> OrgTree:
        self.calls["subtree"] += 1
        if target_id not in self.units:
            raise NotInOrganization(f"describe_organizational_unit: {target_id}")
        under = {u: unit for u, unit in self.units.items() if target_id in self._path(u)}
        accounts = [a for a, (parent, _) in self.accounts.items() if parent in under]
        return self._tree(under, accounts)

    def account(self, account_id: str) -> OrgTree:
        self.calls["account"] += 1
        if account_id not in self.accounts:
            return OrgTree({}, {})
        return self._tree({}, [account_id])
