"""What a test touches: the ``aws`` and ``process`` markers, which ``make unit`` leaves out.

``aws``: moto (``mock_aws`` or a moto server) or the local organisation; ``process``: a
subprocess (budgetctl's console script, make, sam, a browser, another Python). ``make unit``
runs ``-m "not aws and not process"`` with sockets disabled (pytest-socket). A test is marked
by hand (``@pytest.mark.aws``, or ``pytestmark`` for a module) or, when it uses one of
``AWS_FIXTURES`` (directly or through another fixture), from its fixtures. Forgetting cannot go
unseen: a test that is not marked and still starts moto, a moto server or a process fails with
a message naming the marker, in every run (``make test`` included). Loaded by tests/conftest.py.

Collecting ``make unit``'s selection imports no moto (seconds of import): a test module whose
``pytestmark`` alone takes all its tests out of the ``-m`` selection is not imported at all
(``pytest_ignore_collect`` reads the mark from the module's source), and this module patches
moto only once something has imported it (``_after_import``).
"""

from __future__ import annotations

import ast
import contextlib
import importlib.abc
import importlib.machinery
import itertools
import re
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

import pytest
from _pytest.mark.expression import Expression

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


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Leave out a test module that the ``-m`` expression deselects whole by its ``pytestmark``
    (whatever marks its tests add), without importing it."""
    markexpr = config.getoption("markexpr", "")
    if not markexpr or collection_path.suffix != ".py" or not collection_path.name.startswith("test_"):
        return None
    marks = module_marks(collection_path.read_text(encoding="utf-8"))
    return True if marks and deselects_every_test(markexpr, marks) else None


def module_marks(source: str) -> frozenset[str]:
    """The names of the marks a module's top-level ``pytestmark`` gives (``pytest.mark.NAME``,
    alone or in a list or tuple, called or not); none if it is set any other way."""
    names: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "pytestmark" for target in node.targets
        ):
            values = node.value.elts if isinstance(node.value, ast.List | ast.Tuple) else [node.value]
            for value in values:
                mark = value.func if isinstance(value, ast.Call) else value
                if not (isinstance(mark, ast.Attribute) and ast.unparse(mark.value) == "pytest.mark"):
                    return frozenset()
                names.add(mark.attr)
    return frozenset(names)


def deselects_every_test(markexpr: str, marks: frozenset[str]) -> bool:
    """Whether ``markexpr`` is false for a test with ``marks`` and any other marks of its own:
    each combination of the expression's other names is tried."""
    expression = Expression.compile(markexpr)
    others: Sequence[str] = sorted(set(re.findall(r"[\w.]+", markexpr)) - {"and", "or", "not"} - marks)
    for extra in itertools.chain.from_iterable(
        itertools.combinations(others, n) for n in range(len(others) + 1)
    ):
        present = marks | set(extra)
        if expression.evaluate(lambda name, present=present, **_kwargs: name in present):
            return False
    return True


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
            refuse_moto = _unmarked(item, "aws", "starts moto")  # its own name: the lambdas run later
            _after_import(
                stack,
                "moto.core.models",
                lambda module: stack.enter_context(mock.patch.object(module.MockAWS, "start", refuse_moto)),
            )
            _after_import(
                stack,
                "moto.moto_server.threaded_moto_server",
                lambda module: stack.enter_context(
                    mock.patch.object(module.ThreadedMotoServer, "start", refuse_moto)
                ),
            )
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


def _after_import(stack: contextlib.ExitStack, name: str, then: Callable[[ModuleType], Any]) -> None:
    """``then(module)`` now if ``name`` is imported, else as soon as it is (until ``stack``
    closes): moto is not imported for a run that needs none (``make unit``)."""
    if name in sys.modules:
        then(sys.modules[name])
        return
    finder = _PatchOnImport(name, then)
    sys.meta_path.insert(0, finder)
    stack.callback(lambda: finder in sys.meta_path and sys.meta_path.remove(finder))


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Finds one module as the path finder does, and calls ``then`` once it has run."""

    def __init__(self, name: str, then: Callable[[ModuleType], Any]) -> None:
        self.name, self.then = name, then

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None) -> Any:
        if fullname != self.name:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None:
            return spec
        loader, then = spec.loader, self.then

        class Loader(importlib.abc.Loader):
            def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
                return loader.create_module(spec)

            def exec_module(self, module: ModuleType) -> None:
                loader.exec_module(module)
                then(module)

        spec.loader = Loader()
        return spec
