"""The local organisation, fresh for each test: templates deployed, pipeline idle.

Deployed once per worker process for each set of arguments, then restored per test:
``local_organisation(...)`` is ``LocalOrganisation(...)`` with this process's ``DEPLOYMENTS``, so
the first organisation with given arguments (and templates) deploys its stacks on moto (seconds
of CloudFormation) and keeps a copy of the state it left (``budget_sync_local.snapshot``); every
later one starts from a fresh copy of that state (milliseconds) and connects its own functions,
pollers and pipeline, with its own observer, output and delivery seed. Nothing one test writes
reaches the next (tests/e2e/test_provisioned_once.py proves both, and that a restored
organisation equals a freshly deployed one).
"""

from __future__ import annotations

import io
from collections.abc import Hashable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from budget_sync.handlers import update as update_handler

if TYPE_CHECKING:  # the local organisation imports moto: not at collection (make unit)
    from budget_sync_local.organisation import Deployment, LocalOrganisation
    from budget_sync_local.pipeline import Step

#: This process's deployments by their arguments (pytest-xdist: one process, one set per worker).
DEPLOYMENTS: dict[Hashable, Deployment] = {}


def local_organisation(*args: Any, **kwargs: Any) -> LocalOrganisation:
    """``LocalOrganisation(*args, **kwargs)``, deployed once per process for its arguments (in its
    own ``mock_aws()``; a test that starts moto itself uses ``LocalOrganisation``)."""
    from budget_sync_local.organisation import LocalOrganisation

    return LocalOrganisation(*args, deployments=DEPLOYMENTS, **kwargs)


class Recorder:
    """Collects the pipeline's steps, so that a test can say what ran."""

    def __init__(self) -> None:
        self.steps: list[Step] = []

    def __call__(self, step: Step) -> None:
        self.steps.append(step)

    def automations(self, account: str | None = None) -> list[Step]:
        return [s for s in self.steps if s.kind == "automation" and account in (None, s.account)]

    def clear(self) -> None:
        self.steps.clear()


def sent_minutes_ago(org: LocalOrganisation, account: str, minutes: int) -> str:
    """Date the account's SentAt back, as if its value had been sent ``minutes`` ago; returns it."""
    old = (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat(timespec="seconds")
    org.management.client("dynamodb").update_item(
        TableName=org.stack.status_table,
        Key={"AccountId": {"S": account}},
        UpdateExpression="SET SentAt = :old",
        ExpressionAttributeValues={":old": {"S": old}},
    )
    return old


def notifications(org: LocalOrganisation) -> list[tuple[str, str]]:
    """(subject, message) of everything published to the management stack's alarm topic."""
    from moto.sns.models import sns_backends

    from budget_sync_local.organisation import MANAGEMENT_ACCOUNT

    topic = org.stack.physical_ids["AlarmTopic"]
    sent = sns_backends[MANAGEMENT_ACCOUNT][org.region].topics[topic].sent_notifications
    return [(str(n[2]), str(n[1])) for n in sent]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def local_org(recorder: Recorder) -> Iterator[LocalOrganisation]:
    update_handler.build_service.cache_clear()  # clients of an earlier moto must not leak in
    with local_organisation(observer=recorder, function_output=io.StringIO()) as org:
        yield org
    update_handler.build_service.cache_clear()
