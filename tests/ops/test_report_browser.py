"""``budgetctl report --file`` opened in headless Chromium: what a person sees.

The page is made by the command as a user types it (on moto), then opened offline in a real
browser; the checks read the DOM the browser built: the chart's marks, the totals, the
accounts that need attention, and text from other accounts shown as text."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from budgetctl.errors import ExitCode
from tests.chromium import Page, chromium, dump_dom, print_to_pdf, screenshot
from tests.support.moto_org import SPOKES, Org
from tests.support.operators import HOSTILE, budgetctl, give_spend, organisation_with_names

A, B, C = SPOKES
D = "444444444444"  # an item, but no spoke stack: unreadable
#: The report's tests build their own organisation (organisation_with_names), or none.
pytestmark = [pytest.mark.without_organisation, pytest.mark.process]


@pytest.fixture
def page(ops: Org, tmp_path: Path) -> Page:
    """A over (150 %), B near (90 %), C drifted (limit 700 by hand), D unreadable; a hostile
    account name (A) and a hostile status reason (B); the report written and opened."""
    give_spend(ops, A, "1000", "1100", "1500")
    give_spend(ops, B, "1000", "500", "900")
    give_spend(ops, C, "700", "100", "300")
    ops.put(D, Decimal("10"))
    organisation_with_names({A: HOSTILE, B: "payments-prod"})
    ops.management.client("dynamodb").put_item(
        TableName=ops.status_table,
        Item={"AccountId": {"S": B}, "Status": {"S": "FAILED"}, "Reason": {"S": HOSTILE}},
    )
    target = tmp_path / "report.html"
    result = budgetctl("report", "--file", str(target))
    assert result.code == ExitCode.PROBLEM, result.stderr
    return Page(dump_dom(target, tmp_path / "profile"))


def rows(page: Page) -> dict[str, list[str]]:
    """The table of every account: account id -> the words of each cell."""
    table = page.root.by_id("accounts")
    return {tr.attrs["data-account"]: [td.words for td in tr.find("td")] for tr in table.find("tr")[1:]}


def column(page: Page, header: str) -> int:
    """The index of the table's column headed ``header`` (columns may be added)."""
    return [th.words for th in page.root.by_id("accounts").find("th")].index(header)


def test_the_chart_has_one_mark_per_account_read_and_marks_the_over_budget_one(page: Page):
    chart = page.root.by_id("chart")
    marks = {e.attrs["id"] for e in chart.find(id_prefix="account-")}

    assert marks == {f"account-{A}-over", f"account-{B}-near", f"account-{C}-ok"}  # D has no figures
    assert len(chart.find("svg")) == 1
    assert chart.find(id_prefix="limit-line"), "the 100 % line is drawn"
    caption = chart.find("figcaption")[0].words
    assert "One bar per account whose budget was read (3)" in caption


def test_the_totals_are_the_sums_of_the_accounts_read(page: Page):
    assert page.root.by_id("total-limit").words == "2,700.00"  # 1000 + 1000 + 700
    assert page.root.by_id("total-actual").words == "1,700.00"
    assert page.root.by_id("total-forecast").words == "2,700.00"
    assert page.root.by_id("count-over").words == "1"
    assert page.root.by_id("count-near").words == "1"
    assert "UTC" in page.root.by_id("data-time").words


def test_failed_drifted_and_unreadable_accounts_stand_out_with_their_reason(page: Page):
    attention = page.root.by_id("attention")
    listed = {tr.attrs["data-account"]: tr.words for tr in attention.find("tr")[1:]}

    assert set(listed) == {B, C, D}
    assert "FAILED" in listed[B]
    assert "BUDGET_DRIFT" in listed[C]
    assert "budget limit 700 differs from desired 1000" in listed[C]
    assert "UNREACHABLE" in listed[D]
    assert "cannot assume" in listed[D]
    table = rows(page)
    # by forecast share; then no figures: needing attention first, then the management account
    assert list(table) == [A, B, C, D, "123456789012"]
    assert table[A][7] == "OVER"
    assert table[D][2:7] == ["—"] * 5


def test_text_from_other_accounts_is_shown_as_text_never_as_markup(page: Page):
    table = rows(page)

    assert table[A][1] == HOSTILE  # the name, character for character
    assert f"status: {HOSTILE}" in table[B][column(page, "Reason")]
    assert page.root.find("script") == []
    assert page.root.find("img") == []
    assert page.root.find("title")[0].words.startswith("budget-sync report")


def test_a_person_sees_the_page_laid_out(page: Page, ops: Org, tmp_path: Path):
    """A screenshot (kept in the test's folder): the page renders to an image of its full width."""
    target = tmp_path / "report.html"
    shot = screenshot(target, tmp_path / "profile", tmp_path / "report.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000  # a blank page is a few kB


def test_the_page_prints_on_a_few_landscape_pages(page: Page, tmp_path: Path):
    pdf = print_to_pdf(tmp_path / "report.html", tmp_path / "profile", tmp_path / "report.pdf").read_bytes()

    assert pdf.startswith(b"%PDF")
    pages = re.findall(rb"/Type\s*/Page[^s]", pdf)
    assert 1 <= len(pages) <= 4  # five accounts: totals, chart, attention list and table
    boxes = {
        tuple(round(float(v)) for v in box.split()) for box in re.findall(rb"/MediaBox\s*\[([^\]]+)\]", pdf)
    }
    assert boxes == {(0, 0, 842, 595)}  # A4 landscape, in points (the page's @page rule)


@pytest.mark.parametrize(("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_without_chromium_the_browser_tests_fail_in_ci_and_skip_elsewhere(
    monkeypatch: pytest.MonkeyPatch, ci: str, outcome: type[BaseException]
):
    monkeypatch.delenv("CHROMIUM", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("CI", ci)

    with pytest.raises(outcome, match="Chromium"):
        chromium()
