"""`make unit` stays an inner loop of seconds: collecting its selection (``-m "not aws and not
process"``) imports neither moto nor the SAM translator, each seconds of import (tests/markers.py
leaves out the modules marked ``aws`` whole; tests/support imports moto where it is used)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from budget_sync_local.templates import ROOT

pytestmark = pytest.mark.process

# A fresh interpreter: this one has imported moto for the other tests.
COLLECT = """
import sys

import pytest

code = pytest.main(
    ["--collect-only", "-q", "-p", "no:xdist", "-p", "no:cacheprovider", "-m", "not aws and not process"]
)
heavy = sorted(name for name in sys.modules if name.partition(".")[0] in {"moto", "samtranslator"})
print("imported:", " ".join(heavy[:5]) or "nothing heavy")
sys.exit(code)
"""


def test_collecting_make_units_selection_imports_neither_moto_nor_the_sam_translator():
    result = subprocess.run(
        [sys.executable, "-c", COLLECT],
        cwd=ROOT,
        env={**os.environ, "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled", "PYTHONPATH": ""},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert result.stdout.splitlines()[-1] == "imported: nothing heavy"
