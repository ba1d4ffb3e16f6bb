"""`make demo`'s last step: the report of the local organisation, written and readable.

The demo runs as a user runs it (a fresh interpreter in an empty folder); the page it names is
then opened in headless Chromium: one account over its limit, one near, one failed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.chromium import Page, dump_dom
from tests.support.demo import DemoRun

pytestmark = [pytest.mark.e2e, pytest.mark.aws, pytest.mark.process]


def test_given_the_demo_when_it_ends_then_it_names_a_report_showing_over_near_and_failed(
    demo_run: DemoRun, tmp_path: Path
):
    # WHEN the demo runs (once for the tests that read its output: tests/support/demo.py)
    done = demo_run.done

    # THEN the demo succeeds and says where the report is
    assert done.returncode == 0, done.stdout + done.stderr
    named = re.search(r"^Report: (\S+)", done.stdout, re.MULTILINE)
    assert named, done.stdout
    report = Path(named.group(1))
    assert report == (demo_run.folder / ".local-org" / "report.html").resolve()
    assert "Result per account" in done.stdout  # the demo's own table is still there, before it

    # and a person opening it sees the over, the near and the failed account
    page = Page(dump_dom(report, tmp_path / "profile"))
    marks = {e.attrs["id"] for e in page.root.by_id("chart").find(id_prefix="account-")}
    # (every spoke with a budget is a bar: the failed account's spoke still has its last budget)
    assert {"account-111111111111-over", "account-222222222222-near"} <= marks
    attention = page.root.by_id("attention").words
    assert "333333333333" in attention
    assert "FAILED" in attention
    assert "BudgetValue 12.345 has more than two decimals" in attention
    assert page.root.by_id("count-over").words == str(sum(m.endswith("-over") for m in marks))
