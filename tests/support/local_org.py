"""The local organisation, fresh for each test: templates deployed, pipeline idle."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from budget_sync.handlers import update as update_handler

if TYPE_CHECKING:  # the local organisation imports moto: not at collection (make unit)
    from budget_sync_local.organisation import LocalOrganisation
    from budget_sync_local.pipeline import Step


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
    from budget_sync_local.organisation import LocalOrganisation

    update_handler.build_service.cache_clear()  # clients of an earlier moto must not leak in
    with LocalOrganisation(observer=recorder, function_output=io.StringIO()) as org:
        yield org
    update_handler.build_service.cache_clear()
