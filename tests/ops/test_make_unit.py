"""`make unit` stays an inner loop of seconds: collecting its selection (``-m "not aws and not
process"``) imports neither moto, the SAM translator nor cfn-lint, each seconds of import
(tests/markers.py leaves out the modules marked ``aws`` whole; tests/support imports moto where
it is used; budget_sync_local.templates reads the templates with PyYAML), and running it imports
neither moto nor cfn-lint (the SAM translator: the tests of the translated template)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from budget_sync_local.templates import ROOT

pytestmark = pytest.mark.process

# A fresh interpreter: this one has imported moto for the other tests. argv: the heavy modules,
# then pytest's arguments besides make unit's own.
UNIT = """
import sys

import pytest

watched = set(sys.argv[1].split(","))
code = pytest.main(
    ["-q", "-p", "no:xdist", "-p", "no:cacheprovider", "-m", "not aws and not process", *sys.argv[2:]]
)
heavy = sorted(name for name in sys.modules if name.partition(".")[0] in watched)
print("imported:", " ".join(heavy[:5]) or "nothing heavy")
sys.exit(code)
"""


def make_unit(watched: set[str], *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", UNIT, ",".join(sorted(watched)), *arguments],
        cwd=ROOT,
        env={**os.environ, "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled", "PYTHONPATH": ""},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_collecting_make_units_selection_imports_neither_moto_the_sam_translator_nor_cfn_lint():
    result = make_unit({"moto", "samtranslator", "cfnlint"}, "--collect-only")

    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert result.stdout.splitlines()[-1] == "imported: nothing heavy"


def test_running_make_units_selection_imports_neither_moto_nor_cfn_lint():
    result = make_unit({"moto", "cfnlint"}, "--disable-socket")

    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert result.stdout.splitlines()[-1] == "imported: nothing heavy"
