"""tests/markers.py: a test is marked by what it touches, and an unmarked test that starts moto
or a process fails, so that ``make unit`` (``-m "not aws and not process"``) cannot take in a
test that needs AWS by mistake. Each case runs pytest in-process on a small test file."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.markers import deselects_every_test, module_marks

CONFTEST = """
import pytest

pytest_plugins = ("tests.markers",)


@pytest.fixture
def local_org():
    return "a fixture of AWS_FIXTURES"
"""


def run(pytester: pytest.Pytester, test: str, *args: str) -> pytest.RunResult:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_inner=test)
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:xdist", *args)


def test_given_an_unmarked_test_when_it_starts_moto_then_it_fails_naming_the_marker(
    pytester: pytest.Pytester,
):
    result = run(
        pytester,
        """
from moto import mock_aws

def test_forgot_the_marker():
    with mock_aws():
        pass
""",
    )

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*test_forgot_the_marker starts moto but is not marked `aws`*"])


@pytest.mark.process
def test_given_moto_not_yet_imported_when_an_unmarked_test_imports_and_starts_it_then_it_fails(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
):
    # a fresh interpreter, as `make unit` starts: nothing has imported moto before the test
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        test_inner="""
import sys

def test_forgot_the_marker():
    assert "moto" not in sys.modules
    from moto import mock_aws

    with mock_aws():
        pass
"""
    )
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parents[2]))  # tests.markers

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xdist")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*test_forgot_the_marker starts moto but is not marked `aws`*"])


def test_given_an_unmarked_test_when_it_starts_a_moto_server_then_it_fails(pytester: pytest.Pytester):
    result = run(
        pytester,
        """
from moto.server import ThreadedMotoServer

def test_forgot_the_marker():
    ThreadedMotoServer(port=0).start()
""",
    )

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*starts moto but is not marked `aws`*"])


def test_given_an_unmarked_test_when_it_starts_a_process_then_it_fails_naming_the_marker(
    pytester: pytest.Pytester,
):
    result = run(
        pytester,
        """
import subprocess

def test_forgot_the_marker():
    subprocess.run(["true"], check=True)
""",
    )

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*test_forgot_the_marker starts a process but is not marked `process`*"])


def test_given_the_markers_then_moto_and_processes_are_left_alone(pytester: pytest.Pytester):
    result = run(
        pytester,
        """
import subprocess

import pytest
from moto.core.models import MockAWS

START = MockAWS.start
POPEN = subprocess.Popen.__init__

@pytest.mark.aws
def test_marked_aws():
    assert MockAWS.start is START

@pytest.mark.process
def test_marked_process():
    assert subprocess.Popen.__init__ is POPEN
""",
    )

    result.assert_outcomes(passed=2)


def test_a_test_using_an_aws_fixture_is_marked_aws_and_make_unit_leaves_it_out(pytester: pytest.Pytester):
    test = """
def test_on_the_local_organisation(local_org):
    pass

def test_pure():
    pass
"""
    selected = run(pytester, test, "-m", "not aws and not process", "-v")

    selected.assert_outcomes(passed=1, deselected=1)
    selected.stdout.fnmatch_lines(["*test_pure PASSED*"])


def test_given_an_unmarked_test_when_a_library_lists_fonts_then_that_process_is_allowed(
    pytester: pytest.Pytester,
):
    # matplotlib runs fc-list on its own when it builds its font cache (a fresh machine)
    result = run(
        pytester,
        """
import subprocess

def test_draws_a_chart():
    try:
        subprocess.run(["fc-list", "--help"], capture_output=True, check=False)
    except FileNotFoundError:
        pass  # no fontconfig on this machine: matplotlib carries on without it too
""",
    )

    result.assert_outcomes(passed=1)


def test_given_a_module_marked_aws_when_make_units_selection_is_collected_then_it_is_not_imported(
    pytester: pytest.Pytester,
):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        test_on_aws="""
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.aws]
raise RuntimeError("imported")

def test_on_the_local_organisation():
    pass
""",
        test_pure="""
import pytest

pytestmark = pytest.mark.e2e

def test_pure():
    pass
""",
    )
    options = ("-p", "no:cacheprovider", "-p", "no:xdist")

    unit = pytester.runpytest_inprocess(*options, "-m", "not aws and not process")
    everything = pytester.runpytest_inprocess(*options, "--continue-on-collection-errors")

    unit.assert_outcomes(passed=1)  # test_on_aws.py was left out without being imported
    everything.assert_outcomes(passed=1, errors=1)  # selected, it is imported (and here fails to)


@pytest.mark.parametrize(
    ("markexpr", "marks", "deselected"),
    [
        ("not aws and not process", {"aws"}, True),
        ("not aws and not process", {"e2e", "process"}, True),
        ("not aws and not process", {"e2e"}, False),
        ("aws or e2e", {"aws"}, False),
        ("e2e and not aws", {"aws"}, True),
        ("e2e and not aws", {"e2e"}, False),  # a test of it may not add aws
        ("not e2e", {"aws"}, False),  # nor e2e
    ],
)
def test_a_module_is_left_out_only_if_no_test_of_it_could_be_selected(
    markexpr: str, marks: set[str], deselected: bool
):
    assert deselects_every_test(markexpr, frozenset(marks)) is deselected


@pytest.mark.parametrize(
    ("source", "marks"),
    [
        ("import pytest\npytestmark = pytest.mark.aws\n", {"aws"}),
        ("import pytest\npytestmark = [pytest.mark.e2e, pytest.mark.aws]\n", {"e2e", "aws"}),
        (
            "import pytest\npytestmark = (pytest.mark.process, pytest.mark.skipif(True, reason='x'))\n",
            {"process", "skipif"},
        ),
        ("import pytest\nMARKS = [pytest.mark.aws]\npytestmark = MARKS\n", set()),  # not read: imported
        ("def test_x():\n    pass\n", set()),
    ],
)
def test_a_modules_marks_are_read_from_its_source_only_when_they_are_written_out(
    source: str, marks: set[str]
):
    assert module_marks(source) == marks
