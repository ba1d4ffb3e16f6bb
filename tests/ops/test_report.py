"""``budgetctl report`` as a user types it, on moto: text outputs and the HTML file.

The page's look in a real browser is tested in test_report_browser.py."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from budgetctl.errors import ExitCode
from tests.support.moto_org import SPOKES, Org
from tests.support.operators import BUDGET, HOSTILE, budgetctl, give_spend, organisation_with_names

A, B, C = SPOKES
#: The report's tests build their own organisation (organisation_with_names), or none.
pytestmark = pytest.mark.without_organisation


@pytest.fixture
def spend(ops: Org) -> Org:
    """A over (forecast 150 %), B near (90 %), C within (30 %); every limit 1000 as the table says."""
    give_spend(ops, A, "1000", "1100", "1500")
    give_spend(ops, B, "1000", "500", "900")
    give_spend(ops, C, "1000", "100", "300")
    return ops


def test_given_three_spokes_with_spend_when_report_json_then_each_account_sorted_by_forecast_share(
    spend: Org,
):
    # WHEN
    result = budgetctl("report", "--output", "json")

    # THEN
    assert result.code == ExitCode.OK, result.stderr
    rows = result.json()
    assert [r["AccountId"] for r in rows] == [A, B, C]
    assert [r["Level"] for r in rows] == ["OVER", "NEAR", "OK"]
    assert rows[0] | {"ReadAt": None} == {
        "AccountId": A,
        "Name": None,
        "BudgetLimit": "1,000.00",
        "ActualSpend": "1,100.00",
        "ForecastedSpend": "1,500.00",
        "ActualPercent": "110.0",
        "ForecastPercent": "150.0",
        "Level": "OVER",
        "Status": None,
        "Drift": "IN_SYNC",
        "Reason": None,
        "ReadAt": None,
        "CostBasis": None,  # no spoke report of what the budget counts
        "Incident": None,  # the optional incidents are not deployed here (docs/itsm.md)
    }
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", r["ReadAt"]) for r in rows)
    # the organisation's totals on stderr
    assert "limits 3,000.00, actual 1,700.00 (56.7 %), forecast 2,700.00 (90.0 %)" in result.stderr
    assert "over 1, near 1, failed 0, drifted 0" in result.stderr


def test_given_organizations_refuses_when_report_then_names_are_missing_and_it_says_why(
    spend: Org, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    # GIVEN a caller who may not list the organisation's accounts
    original = BaseClient._make_api_call

    def denied(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if operation == "ListAccounts":
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, operation)
        return original(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", denied)

    # WHEN
    result = budgetctl("report", "--file", str(tmp_path / "r.html"))

    # THEN the report is made all the same, and says why there are no names
    assert result.code == ExitCode.OK
    note = "Account names are not shown: organizations:ListAccounts failed (AccessDeniedException: no)."
    assert note in result.stderr
    assert note in (tmp_path / "r.html").read_text(encoding="utf-8")


def test_given_an_unreadable_spoke_a_drift_and_a_status_when_report_then_each_is_a_line_with_its_reason(
    spend: Org,
):
    # GIVEN an item for an account without spoke stack, a hand-edited limit in C, and a status
    # the pipeline wrote for B (whatever the state is called, it is shown as it is)
    spend.put("444444444444", Decimal("10"))
    give_spend(spend, C, "700", "100", "300")
    spend.management.client("dynamodb").put_item(
        TableName=spend.status_table,
        Item={"AccountId": {"S": B}, "Status": {"S": "SENT"}, "Reason": {"S": "waiting for the spoke"}},
    )

    # WHEN
    result = budgetctl("report", "--output", "csv")

    # THEN every account is a row: the unreadable one with its reason and no figures
    assert result.code == ExitCode.PROBLEM
    rows = {r["AccountId"]: r for r in csv.DictReader(io.StringIO(result.stdout))}
    assert set(rows) == {A, B, C, "444444444444"}
    unreadable = rows["444444444444"]
    assert (unreadable["Level"], unreadable["Drift"]) == ("NO_DATA", "UNREACHABLE")
    assert "cannot assume" in unreadable["Reason"]
    assert unreadable["BudgetLimit"] == unreadable["ReadAt"] == ""
    assert (rows[C]["Drift"], rows[C]["BudgetLimit"]) == ("BUDGET_DRIFT", "700.00")
    assert "differs from desired 1000" in rows[C]["Reason"]
    assert (rows[B]["Status"], rows[B]["Reason"]) == ("SENT", "status: waiting for the spoke")
    assert list(rows)[-1] == "444444444444"  # no figures: last
    assert "failed 1, drifted 1, no data 1" in result.stderr


def test_given_an_organisation_when_report_then_names_are_shown_and_accounts_without_item_listed(
    spend: Org,
):
    # GIVEN names in Organizations (one hostile) and an account without an item
    organisation_with_names({A: "payments-prod", B: HOSTILE, C: "sandbox", "555555555555": "new-team"})

    # WHEN
    result = budgetctl("report", "--output", "json")

    # THEN
    rows = {r["AccountId"]: r for r in result.json()}
    assert rows[A]["Name"] == "payments-prod"
    assert rows[B]["Name"] == HOSTILE  # data, as it is: escaping is each output's job
    assert rows["555555555555"] | {"Reason": ""} == {
        "AccountId": "555555555555",
        "Name": "new-team",
        "BudgetLimit": None,
        "ActualSpend": None,
        "ForecastedSpend": None,
        "ActualPercent": None,
        "ForecastPercent": None,
        "Level": "NO_DATA",
        "Status": None,
        "Drift": "NOT_MANAGED",
        "Reason": "",
        "ReadAt": None,
        "CostBasis": None,
        "Incident": None,
    }
    assert "no item in the budgets table" in rows["555555555555"]["Reason"]
    assert result.code == ExitCode.OK  # an account budget-sync does not manage is no problem
    assert "names are not shown" not in result.stderr


def test_given_file_when_report_then_one_self_contained_page_with_totals_and_escaped_text(
    spend: Org, tmp_path: Path
):
    # GIVEN a hostile name and a hostile reason in the status table
    organisation_with_names({A: HOSTILE})
    spend.management.client("dynamodb").put_item(
        TableName=spend.status_table,
        Item={"AccountId": {"S": C}, "Status": {"S": "FAILED"}, "Reason": {"S": HOSTILE}},
    )
    page = tmp_path / "report.html"

    # WHEN
    result = budgetctl("report", "--file", str(page))

    # THEN the page is written (and nothing on stdout), with the totals and every account
    assert result.code == ExitCode.PROBLEM  # C's pipeline failed
    assert result.stdout == ""
    assert f"wrote {page} (4 accounts)" in result.stderr
    html = page.read_text(encoding="utf-8")
    assert 'id="total-limit">3,000.00<' in html
    assert 'id="total-forecast">2,700.00<' in html
    assert len(re.findall(r'id="account-\d{12}-(?:over|near|ok)"', html)) == 3
    assert re.search(rf'id="account-{A}-over"', html)
    # nothing fetched at view time: no script, no external style, image or font
    assert not re.search(r"<script|<link|<iframe|\bsrc=|url\((?!#)", html.replace(HOSTILE_ESCAPED, ""))
    # the hostile text is escaped where it appears, never markup
    assert HOSTILE not in html
    assert html.count(HOSTILE_ESCAPED) == 3  # A's name (table), C's reason (attention list, table)


HOSTILE_ESCAPED = (
    "&lt;script&gt;document.title=&#34;pwned&#34;&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
    "=HYPERLINK(&#34;http://x&#34;)"
)


def test_given_no_budget_can_be_read_when_report_file_then_the_page_says_so_without_a_chart(
    ops: Org, tmp_path: Path
):
    for account in SPOKES:
        ops.spokes[account].client("budgets").delete_budget(AccountId=account, BudgetName=BUDGET)
    page = tmp_path / "report.html"

    result = budgetctl("report", "--file", str(page))

    html = page.read_text(encoding="utf-8")
    assert result.code == ExitCode.PROBLEM  # MISSING_BUDGET is drift
    assert "No budget could be read: nothing to draw." in html
    assert "<svg" not in html
    assert html.count("the spoke has no budget") == 0  # the drift's own reason says it
    assert html.count("budget missing; desired 1000") == 6  # attention list and table, 3 accounts


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("report", "--near", "lots"), "--near 'lots' is not a number"),
        (("report", "--near", "0"), "--near '0' must be a percentage above 0 and at most 100"),
        (("report", "--near", "120"), "--near '120' must be a percentage"),
        (("report", "--file", "/no/such/folder/r.html"), "the folder '/no/such/folder' does not exist"),
    ],
)
def test_bad_report_options_are_refused_before_any_aws_call(
    ops: Org, argv: tuple[str, ...], message: str, monkeypatch: pytest.MonkeyPatch
):
    calls: list[str] = []
    original = BaseClient._make_api_call
    monkeypatch.setattr(
        BaseClient,
        "_make_api_call",
        lambda client, operation, params: calls.append(operation) or original(client, operation, params),
    )

    result = budgetctl(*argv)

    assert result.code == ExitCode.USAGE
    assert message in result.stderr
    assert calls == []


def test_near_moves_the_near_line(spend: Org):
    rows = budgetctl("report", "--near", "25", "--output", "json").json()
    assert [r["Level"] for r in rows] == ["OVER", "NEAR", "NEAR"]


def test_the_table_output_lists_every_account_for_a_person(spend: Org):
    result = budgetctl("report")
    assert result.code == ExitCode.OK
    for shown in ("budget-sync report", A, "OVER", "150.0", B, "NEAR", C, "OK"):
        assert shown in result.stdout


def test_given_no_report_extra_when_report_file_then_it_says_how_to_install_it(
    ops: Org, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a)
    )

    result = budgetctl("report", "--file", str(tmp_path / "r.html"))

    assert result.code == ExitCode.USAGE
    assert "--file needs matplotlib: pip install 'budget-sync[report]'" in result.stderr
    assert not (tmp_path / "r.html").exists()


def test_given_an_account_far_over_when_report_file_then_its_cut_bar_carries_its_value_and_the_card_reads(
    ops: Org, tmp_path: Path
):
    # GIVEN A at 1,400 % of its limit, B at 300 %, C within
    give_spend(ops, A, "1000", "1100", "14000")
    give_spend(ops, B, "1000", "500", "3000")
    give_spend(ops, C, "1000", "100", "300")
    page = tmp_path / "report.html"

    # WHEN
    assert budgetctl("report", "--file", str(page)).code == ExitCode.OK
    html = page.read_text(encoding="utf-8")

    # THEN A's bar, cut at 300 %, is labelled with its value; B's (not above the cut) is not
    label = re.search(rf'<g id="cut-{A}">.*?</g>', html, re.S)
    assert label is not None
    assert "1,400 %" in label.group(0)
    assert f'id="cut-{B}"' not in html
    # AND the legend names the near line and the cut, and the caption says so
    assert "80 % of the limit (near)" in html
    assert "bar above 300 %: cut, value on top" in html
    assert "Bars above 300 % are cut at the top and labelled with their value" in html
    # AND the over card is a whole sentence: 2 over, their forecast and its share of the total
    card = re.search(r'id="over-share">(.*?)</div>', html)
    assert card is not None
    assert card.group(1) == "forecast 17,000.00 USD: 98.3 % of the organisation's forecast"


def test_given_no_spend_when_report_file_then_the_over_card_says_no_account_is_over(ops: Org, tmp_path: Path):
    page = tmp_path / "report.html"

    assert budgetctl("report", "--file", str(page)).code == ExitCode.OK

    card = re.search(r'id="over-share">(.*?)</div>', page.read_text(encoding="utf-8"))
    assert card is not None
    assert card.group(1) == "no account over its limit"
