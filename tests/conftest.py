"""Shared test setup: fake credentials and a fixed region before any client is built; the
``aws`` and ``process`` markers that keep ``make unit`` to the tests that touch neither."""

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

import zlib
from collections.abc import Generator, Iterator

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
