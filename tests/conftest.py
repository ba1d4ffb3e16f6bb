"""Shared test setup: fake credentials and a fixed region before any client is built; the
``aws`` and ``process`` markers that keep ``make unit`` to the tests that touch neither; the
Organizations reader's pacing in virtual time (moto does not throttle: no test waits for it)."""

from __future__ import annotations

import os

# Set at import, before any test module builds a boto3 client.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        # boto3 >= 1.44 sends DynamoDB (Streams) calls to account-based endpoints moto does not route.
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        "POWERTOOLS_METRICS_NAMESPACE": "BudgetSync",
        "POWERTOOLS_SERVICE_NAME": "budget-sync",
    }
)
os.environ.pop("AWS_PROFILE", None)


# -- EventBridge's delivery in the local organisation (budget_sync_local.pipeline.Delivery) ------
# Every local organisation in the suite delivers events at least once and in no order, from a
# seed. Each test draws its seed from a fixed list by its name, so a run is reproducible and
# the suite covers several schedules; the seed is shown with a failure. To reproduce a failure,
# run the test with BUDGET_SYNC_LOCAL_SEED set to the seed shown.

import time
import zlib
from collections.abc import Generator, Iterator
from typing import Any

import pytest

from budget_sync_local.seed import SEED_ENV

# tests/markers.py: the `aws` and `process` markers, set from fixtures and checked at run time;
# tests/support/: the fixtures shared across folders, registered once here (their helpers are
# imported from the same modules). None of them imports moto at collection (make unit).
pytest_plugins = (
    "tests.support.shared_models",  # one parse of botocore's models per process, not per session
    "tests.markers",
    "pytester",
    "tests.support.moto_org",
    "tests.support.operators",
    "tests.support.tree",
    "tests.support.spoke_account",
    "tests.support.local_org",
    "tests.support.demo",
)

SEEDS = (3, 17, 29, 42, 58, 71, 86, 97)
_SEED = pytest.StashKey[str]()


def pytest_report_header() -> str:
    given = os.environ.get(SEED_ENV)
    if given:
        return f"local organisation delivery: {SEED_ENV}={given} for every test"
    return f"local organisation delivery: each test's seed from {SEEDS} by its name (shown on failure)"


@pytest.fixture(autouse=True)
def fresh_metrics() -> None:
    """Each test starts with no metric left unflushed by another (Powertools' Metrics is one
    object per process, as in a warm Lambda): a count a test asserts is its own."""
    from budget_sync.observability import metrics

    metrics.clear_metrics()


class VirtualClock:
    """A monotonic clock whose ``sleep`` moves it forward instead of waiting: what the
    Organizations reader's pacing sleeps is recorded in ``slept`` and taken off no wall clock."""

    def __init__(self) -> None:
        self._ahead = 0.0
        self.slept: list[float] = []

    def now(self) -> float:
        return time.monotonic() + self._ahead

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self._ahead += seconds


@pytest.fixture(autouse=True)
def organizations_pace_in_virtual_time() -> Iterator[None]:
    """The Organizations reader (``budget_sync.organizations``) spaces its calls at
    ``OrganizationsMaxRps`` (4 a second, as the template ships) by sleeping; moto does not
    throttle, so in a test those sleeps only idle a worker (about 150 s of a full run). Each
    pace a test's code creates keeps the same spacing on its own ``VirtualClock``: the same
    calls, counted and spaced as on AWS, without the wait. Processes a test starts (the demo,
    ``make local``) pace in real time. tests/unit/test_organizations.py checks both."""
    from budget_sync import organizations

    real = organizations._Pace

    class VirtualPace(real):  # type: ignore[misc,valid-type]
        def __init__(self, rps: float, clock: Any = None, sleep: Any = None) -> None:
            self.virtual = VirtualClock()
            super().__init__(rps, clock or self.virtual.now, sleep or self.virtual.sleep)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(organizations, "_Pace", VirtualPace)
        yield


@pytest.fixture(autouse=True)
def delivery_seed(request: pytest.FixtureRequest) -> Iterator[str]:
    """The seed of this test's local organisations (BUDGET_SYNC_LOCAL_SEED, if set, wins).

    Its own MonkeyPatch, not the test's ``monkeypatch``: an autouse fixture would set that one
    up before the test's other fixtures, so its undo would run after theirs and put back what
    a test patched inside them (the stand-ins' methods) after they restored moto's own."""
    seed = os.environ.get(SEED_ENV) or str(SEEDS[zlib.crc32(request.node.nodeid.encode()) % len(SEEDS)])
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SEED_ENV, seed)
        request.node.stash[_SEED] = seed
        yield seed


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    seed = item.stash.get(_SEED, None)
    if seed is not None and report.failed:
        report.sections.append(("local organisation delivery", f"{SEED_ENV}={seed} (set it to reproduce)"))
    return report


# -- Order: the modules that take longest first -------------------------------------------------
# pytest-xdist's worksteal (make pytest) gives each worker a contiguous share of the collection
# and lets a worker that runs out take tests from the end of the other's share. Whatever starts
# last decides when the run ends: the modules whose tests start processes (the demo, make local,
# make unit's selection: long, and partly idle while the process starts) and the end-to-end
# modules (a local organisation each) go first, so that the tail is made of short tests that
# the workers share out. Each module stays whole and in its own order (module-scoped fixtures
# are set up once); the order of the modules is otherwise the collection's.


def _module_rank(items: list[pytest.Item]) -> int:
    if any(item.get_closest_marker("process") for item in items):
        return 0
    return 1 if "/e2e/" in items[0].nodeid.replace("\\", "/") else 2


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    modules: dict[str, list[pytest.Item]] = {}
    for item in items:
        modules.setdefault(item.nodeid.split("::", 1)[0], []).append(item)
    ordered = sorted(modules.values(), key=_module_rank)  # stable: ties keep the collection's order
    items[:] = [item for module in ordered for item in module]
