"""What a test touches: the ``aws`` and ``process`` markers, which ``make unit`` leaves out.

``aws``: moto (``mock_aws`` or a moto server) or the local organisation; ``process``: a
subprocess (budgetctl's console script, make, sam, a browser, another Python). ``make unit``
runs ``-m "not aws and not process"`` with sockets disabled (pytest-socket). A test is marked
by hand (``@pytest.mark.aws``, or ``pytestmark`` for a module) or, when it uses one of
``AWS_FIXTURES`` (directly or through another fixture), from its fixtures. Forgetting cannot go
unseen: a test that is not marked and still starts moto, a moto server or a process fails with
a message naming the marker, in every run (``make test`` included). Loaded by tests/conftest.py.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from moto.core.models import MockAWS
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

#: Fixtures that start moto or the local organisation (a test using one, directly or through
#: another fixture, is marked ``aws``).
AWS_FIXTURES = frozenset(
    {
        "org",  # tests/support/moto_org.py: the management account and spokes on moto
        "enforced_org",  # tests/support/moto_org.py: the same under the local organisation's IAM
        "ops",  # tests/support/operators.py: the above with budgets, the reconciler and an organisation
        "tree",  # tests/support/tree.py: an organisation tree on moto
        "local_org",  # tests/support/local_org.py: the local organisation
        "moto_with_standins",  # tests/support/spoke_account.py: moto with the stand-ins
    }
)


#: Commands an unmarked test may still start, each for a library that runs it on its own:
#: matplotlib (budgetctl report's chart) lists the system's fonts with fc-list when it builds
#: its font cache, once per machine, in whichever test first draws a chart.
ALLOWED_COMMANDS = frozenset({"fc-list"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if AWS_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.aws)


def _unmarked(item: pytest.Item, marker: str, what: str) -> Callable[..., Any]:
    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        pytest.fail(
            f"{item.nodeid} {what} but is not marked `{marker}`: add @pytest.mark.{marker} "
            f"(or a module's pytestmark), or use a fixture of AWS_FIXTURES in tests/markers.py; "
            f"`make unit` runs only the tests marked neither aws nor process",
            pytrace=False,
        )

    return refuse


@pytest.fixture(autouse=True)
def touches_only_what_it_is_marked_for(request: pytest.FixtureRequest) -> Iterator[None]:
    """An unmarked test that starts moto, a moto server or a process fails (see above)."""
    item = request.node
    with contextlib.ExitStack() as stack:
        if item.get_closest_marker("aws") is None:
            refuse = _unmarked(item, "aws", "starts moto")
            stack.enter_context(mock.patch.object(MockAWS, "start", refuse))
            stack.enter_context(mock.patch.object(ThreadedMotoServer, "start", refuse))
        if item.get_closest_marker("process") is None:
            refuse = _unmarked(item, "process", "starts a process")
            popen = subprocess.Popen.__init__

            def refuse_process(self: subprocess.Popen[Any], args: Any, *rest: Any, **options: Any) -> None:
                if _allowed(args):
                    popen(self, args, *rest, **options)
                else:
                    refuse()

            stack.enter_context(mock.patch.object(subprocess.Popen, "__init__", refuse_process))
        yield


def _allowed(args: Any) -> bool:
    """The commands a library runs on its own, which no marker could foresee."""
    command = args if isinstance(args, str) else next(iter(args), "")
    return Path(str(command).split()[0] if command else "").name in ALLOWED_COMMANDS
