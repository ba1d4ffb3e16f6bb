"""The Organizations and StackSets adapters: read the tree, and which spoke stacks exist.

Read-only. Every call needs the organisation's management account or a delegated
administrator (Organizations' List*/Describe* calls; ``ListStackInstances`` with
``CallAs=DELEGATED_ADMIN`` in a delegated administrator account for StackSets).
All ClientError handling for these services lives here (errors.py vocabulary).

Organizations throttles its API at a few requests per second per account: the reader
spaces its calls (``max_rps``) and counts them (``calls``), and botocore's standard retry
mode retries a throttled call before we see it. A full resolution costs

    1 ListRoots + 1 DescribeOrganization
  + per root and OU: ceil(OUs under it / 20) ListOrganizationalUnitsForParent pages
  + per root and OU: ceil(accounts directly in it / 20) ListAccountsForParent pages

(20 is the largest page size these two calls accept); one account costs its depth in
ListParents calls plus one DescribeAccount; one OU's subtree costs its depth in ListParents
plus the walk of the subtree.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from budget_sync.effective_budget import OrgAccount, OrgTree, Unit
from budget_sync.errors import PermanentError, TransientError

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_organizations import OrganizationsClient

PAGE_SIZE = 20  # MaxResults of ListAccountsForParent and ListOrganizationalUnitsForParent
_TRANSIENT = {
    "TooManyRequestsException",
    "ThrottlingException",
    "ServiceException",
    "ConcurrentModificationException",
}
_NOT_FOUND = {
    "AccountNotFoundException",
    "OrganizationalUnitNotFoundException",
    "ParentNotFoundException",
    "ChildNotFoundException",
    "TargetNotFoundException",
    "StackSetNotFoundException",
}


class NotInOrganization(PermanentError):
    """The account, OU or root is not part of this organisation (any more)."""


class _Pace:
    """At most ``rps`` calls per second, across threads."""

    def __init__(
        self,
        rps: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._interval = 1.0 / rps if rps > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self._interval:
            return
        with self._lock:
            now = self._clock()
            delay = self._next - now
            self._next = max(now, self._next) + self._interval
        if delay > 0:
            self._sleep(delay)


def _translate(operation: str, exc: Exception) -> Exception:
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in _NOT_FOUND:
            return NotInOrganization(f"{operation}: {code}")
        if code in _TRANSIENT or status >= 500:
            return TransientError(f"{operation}: {code}")
        return PermanentError(f"{operation}: {code}: {exc.response.get('Error', {}).get('Message', '')}")
    return TransientError(f"{operation}: {exc}")


class OrganizationsReader:
    """The organisation's tree, read with as few calls as the API allows."""

    def __init__(self, client: OrganizationsClient, max_rps: float = 4.0) -> None:
        self._client = client
        self._pace = _Pace(max_rps)
        self.calls: Counter[str] = Counter()
        self._management: str | None = None

    def management_account(self) -> str:
        """The organisation's management account (StackSets never deploy there)."""
        if self._management is None:
            organization = self._call("describe_organization")["Organization"]
            self._management = str(organization.get("MasterAccountId", ""))
        return self._management

    def _call(self, operation: str, **arguments: Any) -> dict[str, Any]:
        self._pace.wait()
        self.calls[operation] += 1
        try:
            answer: dict[str, Any] = getattr(self._client, operation)(**arguments)
        except (ClientError, BotoCoreError) as exc:
            raise _translate(operation, exc) from exc
        return answer

    def _pages(self, operation: str, key: str, **arguments: Any) -> Iterator[dict[str, Any]]:
        token: str | None = None
        while True:
            extra = {"NextToken": token} if token else {}
            answer = self._call(operation, MaxResults=PAGE_SIZE, **arguments, **extra)
            yield from answer.get(key, [])
            token = answer.get("NextToken")
            if not token:  # List* may answer an empty page with a token: keep going
                return

    # -- the tree ----------------------------------------------------------------------

    def roots(self) -> list[Unit]:
        return [Unit(r["Id"], r.get("Name", "Root"), None) for r in self._pages("list_roots", "Roots")]

    def full(self) -> OrgTree:
        """Every root, OU and account of the organisation."""
        units: dict[str, Unit] = {}
        accounts: dict[str, OrgAccount] = {}
        for root in self.roots():
            units[root.target_id] = root
            self._walk(root.target_id, (), units, accounts)
        return OrgTree(units, accounts, self.management_account())

    def subtree(self, target_id: str) -> OrgTree:
        """One OU (or root) and everything under it, with each account's full path."""
        path = self.ancestors(target_id)
        units: dict[str, Unit] = {}
        if target_id.startswith("ou-"):
            described = self._call("describe_organizational_unit", OrganizationalUnitId=target_id)
            name = described["OrganizationalUnit"].get("Name", "")
            units[target_id] = Unit(target_id, name, path[-1] if path else None)
        else:
            units[target_id] = Unit(target_id, "Root", None)
        accounts: dict[str, OrgAccount] = {}
        self._walk(target_id, path, units, accounts)
        return OrgTree(units, accounts, self.management_account())

    def account(self, account_id: str) -> OrgTree:
        """One account and its path (an empty tree if it is not in the organisation)."""
        try:
            path = self.ancestors(account_id)
            described = self._call("describe_account", AccountId=account_id)["Account"]
        except NotInOrganization:
            return OrgTree({}, {})
        return OrgTree({}, {account_id: _account(described, path)}, self.management_account())

    def ancestors(self, child_id: str) -> tuple[str, ...]:
        """The ids from the root down to the child's parent (empty for a root)."""
        if child_id.startswith("r-"):
            return ()
        path: list[str] = []
        current = child_id
        while True:
            parents = list(self._pages("list_parents", "Parents", ChildId=current))
            if not parents:
                raise NotInOrganization(f"{child_id} has no parent in this organisation")
            parent = parents[0]
            path.append(parent["Id"])
            if parent.get("Type") == "ROOT" or parent["Id"].startswith("r-"):
                return tuple(reversed(path))
            current = parent["Id"]

    def _walk(
        self,
        parent_id: str,
        above: tuple[str, ...],
        units: dict[str, Unit],
        accounts: dict[str, OrgAccount],
    ) -> None:
        path = (*above, parent_id)
        for raw in self._pages("list_accounts_for_parent", "Accounts", ParentId=parent_id):
            accounts[raw["Id"]] = _account(raw, path)
        children = list(
            self._pages("list_organizational_units_for_parent", "OrganizationalUnits", ParentId=parent_id)
        )
        for child in children:
            units[child["Id"]] = Unit(child["Id"], child.get("Name", ""), parent_id)
            self._walk(child["Id"], path, units, accounts)

    def describe_target(self, target_id: str) -> Unit:
        """The root or OU ``target_id`` of this organisation, or NotInOrganization."""
        if target_id.startswith("r-"):
            for root in self.roots():
                if root.target_id == target_id:
                    return root
            raise NotInOrganization(f"{target_id} is not the root of this organisation")
        described = self._call("describe_organizational_unit", OrganizationalUnitId=target_id)
        unit = described["OrganizationalUnit"]
        return Unit(unit["Id"], unit.get("Name", ""), None)


def _account(raw: dict[str, Any], path: tuple[str, ...]) -> OrgAccount:
    state = str(raw.get("State") or raw.get("Status") or "ACTIVE")
    return OrgAccount(raw["Id"], str(raw.get("Name", "")), state, path)


class StackSetReadiness:
    """Which accounts have the spoke stack: the service-managed StackSet's instances that
    succeeded in the spoke region (``ListStackInstances``, one call per page)."""

    def __init__(
        self, client: CloudFormationClient, stack_set_name: str, region: str, call_as: str = "SELF"
    ) -> None:
        self._client = client
        self._name = stack_set_name
        self._region = region
        self._call_as = call_as
        self.calls = 0

    def ready_accounts(self, account_id: str | None = None) -> set[str]:
        arguments: dict[str, Any] = {
            "StackSetName": self._name,
            "CallAs": self._call_as,
            "StackInstanceRegion": self._region,
        }
        if account_id is not None:
            arguments["StackInstanceAccount"] = account_id
        ready: set[str] = set()
        token: str | None = None
        try:
            while True:
                self.calls += 1
                page: dict[str, Any] = {**arguments, **({"NextToken": token} if token else {})}
                answer = self._client.list_stack_instances(**page)
                for summary in answer.get("Summaries", []):
                    if summary.get("Region", self._region) != self._region:
                        continue  # moto ignores the region filter; AWS applies it
                    if account_id is not None and summary.get("Account") != account_id:
                        continue
                    detailed = summary.get("StackInstanceStatus", {}).get("DetailedStatus", "")
                    if detailed == "SUCCEEDED" or (not detailed and summary.get("Status") == "CURRENT"):
                        ready.add(str(summary["Account"]))
                token = answer.get("NextToken")
                if not token:
                    return ready
        except (ClientError, BotoCoreError) as exc:
            raise _translate("list_stack_instances", exc) from exc

    def is_ready(self, account_id: str) -> bool:
        return account_id in self.ready_accounts(account_id)
