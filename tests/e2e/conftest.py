"""The local organisation, fresh for each test: templates deployed, pipeline idle."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from budget_sync.handlers import stream as stream_handler
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


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def local_org(recorder: Recorder) -> Iterator[LocalOrganisation]:
    stream_handler.build_service.cache_clear()  # clients of an earlier moto must not leak in
    with LocalOrganisation(observer=recorder, function_output=io.StringIO()) as org:
        yield org
    stream_handler.build_service.cache_clear()
