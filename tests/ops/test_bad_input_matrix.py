"""The bad-input matrix: every way in refuses bad input before anything is written.

Each case goes through a real entry point: the update function's handler on the budgets
table's stream (an item written by any client), ``budgetctl set`` and ``budgetctl default
set`` as typed, ``budgetctl import`` and ``budgetctl default import`` of a CSV file, and
budgetctl's own arguments. For each case:

* it is refused: the stream function records FAILED for the key, budgetctl exits 2;
* the message names the field and the value (the value as Python writes it, so a control
  character is shown escaped: ``'a\\x1b@example.com'``);
* nothing is written where it could do harm: the spoke's parameters keep what they held,
  the tables keep every item as it was (nothing stored is lost).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from budgetctl.errors import ExitCode
from tests.support.moto_org import SPOKES, Org
from tests.support.operators import budgetctl
from tests.support.tree import Tree

A, B, C = SPOKES
ALERT_PARAMETER = "/BlogBudgets/AlertSettings"

#: Ten valid addresses of 250 characters outside ASCII: 12,000+ characters as the settings' JSON.
LONG_NON_ASCII = ",".join(f"{'é' * 240}{i}@example.com" for i in range(10))
ESC = "a\x1b[2Jb@example.com"
NUL = "a\x00b@example.com"
ZERO_WIDTH = "a\u200bb@example.com"
BIDI = "a\u202eb@example.com"
BELL = "a\x07b@example.com"
NEWLINE_IN_ADDRESS = "a\u2028b@example.com"

# ------------------------------------------------------------------------------------------
# Items, as any client may write them: the stream function refuses each, naming field and value
# ------------------------------------------------------------------------------------------

STREAM_CASES: dict[str, tuple[dict[str, Any], str, str]] = {
    # name: (DynamoDB JSON attributes besides AccountId A, field, the value as the message shows it)
    "value negative": ({"BudgetValue": {"N": "-5"}}, "BudgetValue", "-5"),
    "value zero": ({"BudgetValue": {"N": "0"}}, "BudgetValue", "0"),
    "value three decimals": ({"BudgetValue": {"N": "12.345"}}, "BudgetValue", "12.345"),
    "value too large": ({"BudgetValue": {"N": "1E+30"}}, "BudgetValue", "1E+30"),
    "value as text": ({"BudgetValue": {"S": "100"}}, "BudgetValue", "'100'"),
    "value missing": ({}, "BudgetValue", "None"),
    "value boolean": ({"BudgetValue": {"BOOL": True}}, "BudgetValue", "True"),
    "value null": ({"BudgetValue": {"NULL": True}}, "BudgetValue", "None"),
    "value a list": ({"BudgetValue": {"L": [{"N": "1"}]}}, "BudgetValue", "[Decimal('1')]"),
    "email ESC": ({"AlertEmails": {"S": ESC}}, "AlertEmails", repr(ESC)),
    "email NUL": ({"AlertEmails": {"S": NUL}}, "AlertEmails", repr(NUL)),
    "email zero-width": ({"AlertEmails": {"S": ZERO_WIDTH}}, "AlertEmails", repr(ZERO_WIDTH)),
    "email bidi override": ({"AlertEmails": {"S": BIDI}}, "AlertEmails", repr(BIDI)),
    "email bell": ({"AlertEmails": {"S": BELL}}, "AlertEmails", repr(BELL)),
    "email line separator": (
        {"AlertEmails": {"S": NEWLINE_IN_ADDRESS}},
        "AlertEmails",
        repr(NEWLINE_IN_ADDRESS),
    ),
    "email in a set with ESC": ({"AlertEmails": {"SS": ["ok@example.com", ESC]}}, "AlertEmails", repr(ESC)),
    "email malformed": ({"AlertEmails": {"S": "ops(at)example.com"}}, "AlertEmails", "'ops(at)example.com'"),
    "emails eleven": (
        {"AlertEmails": {"S": ",".join(f"u{i}@example.com" for i in range(11))}},
        "AlertEmails",
        "has 11 addresses",
    ),
    "emails over 4096 characters as settings": (
        {"AlertEmails": {"S": LONG_NON_ASCII}},
        "AlertEmails",
        "the spoke parameter holds at most 4096",
    ),
    "emails a number": ({"AlertEmails": {"N": "5"}}, "AlertEmails", "5"),
    "threshold negative": ({"AlertThresholds": {"S": "-1"}}, "AlertThresholds", "'-1'"),
    "threshold above 1000000": ({"AlertThresholds": {"S": "1000001"}}, "AlertThresholds", "'1000001'"),
    "threshold three decimals": ({"AlertThresholds": {"S": "80.125"}}, "AlertThresholds", "'80.125'"),
    "threshold text": ({"AlertThresholds": {"S": "eighty"}}, "AlertThresholds", "'eighty'"),
    "threshold twice": ({"AlertThresholds": {"S": "80,80"}}, "AlertThresholds", "'80,80'"),
    "threshold NaN": ({"AlertThresholds": {"S": "NaN"}}, "AlertThresholds", "'NaN'"),
    "thresholds ten": (
        {"AlertThresholds": {"S": ",".join(str(10 * i) for i in range(1, 11))}},
        "AlertThresholds",
        "has 10 thresholds",
    ),
    "forecasted two": ({"ForecastedThreshold": {"S": "90,100"}}, "ForecastedThreshold", "'90,100'"),
    "forecasted text": ({"ForecastedThreshold": {"S": "soon"}}, "ForecastedThreshold", "'soon'"),
    "forecasted infinite": ({"ForecastedThreshold": {"S": "Infinity"}}, "ForecastedThreshold", "'Infinity'"),
}


def _table_item(org: Org, table: str, key: dict[str, str]) -> dict[str, Any] | None:
    found: dict[str, Any] | None = (
        org.management.resource("dynamodb").Table(table).get_item(Key=key, ConsistentRead=True).get("Item")
    )
    return found


def _alert_parameter(org: Org, account: str) -> str | None:
    ssm = org.spokes[account].client("ssm")
    try:
        return str(ssm.get_parameter(Name=ALERT_PARAMETER)["Parameter"]["Value"])
    except ssm.exceptions.ParameterNotFound:
        return None


@pytest.mark.parametrize("case", list(STREAM_CASES))
def test_a_bad_item_is_refused_by_the_stream_function_before_any_spoke_write(
    org: Org,
    case: str,
):
    attributes, field, shown = STREAM_CASES[case]
    item = {"AccountId": {"S": A}, **attributes}
    if "BudgetValue" not in attributes and not case.startswith("value"):
        item["BudgetValue"] = {"N": "500"}  # an alert case: the value itself is good
    org.put_raw(item)
    stored = _table_item(org, org.budgets_table, {"AccountId": A})

    response = org.invoke()

    assert response == {"batchItemFailures": []}  # permanent: the shard moves on
    status = org.status(A)
    assert status is not None
    assert status["Status"] == "FAILED"
    assert field in status["Reason"]
    assert shown in status["Reason"], status["Reason"]
    assert org.parameter(A) == "1000"  # the limit was not written
    assert _alert_parameter(org, A) is None  # nor the alert settings
    assert _table_item(org, org.budgets_table, {"AccountId": A}) == stored  # the item is kept


@pytest.mark.parametrize(
    ("key", "shown"),
    [
        ("12345", "'12345'"),
        ("1111111111111", "'1111111111111'"),
        ("arn:aws:organizations::123456789012:account/o-abcdefghij/1111111", "must be exactly 12 digits"),
        ("11111111111\x1b", "'11111111111\\x1b'"),
        (" 111111111111", "' 111111111111'"),
    ],
)
def test_a_bad_account_key_is_recorded_under_the_key_and_writes_no_spoke(
    org: Org,
    key: str,
    shown: str,
):
    org.put(key, 500)

    assert org.invoke() == {"batchItemFailures": []}

    status = org.status(key)
    assert status is not None
    assert status["Status"] == "FAILED"
    assert "AccountId" in status["Reason"]
    assert shown in status["Reason"]
    assert all(org.parameter(account) == "1000" for account in SPOKES)


# ------------------------------------------------------------------------------------------
# budgetctl set, as typed: exit 2, the field and value named, the item as it was
# ------------------------------------------------------------------------------------------

SET_CASES: dict[str, tuple[list[str], str]] = {
    # name: (argv after "set", text the error must hold)
    "account short": (["12345", "100"], "AccountId '12345'"),
    "account letters": (["11111111111x", "100"], "AccountId '11111111111x'"),
    "account with ESC": (["11111111111\x1b", "100"], "AccountId '11111111111\\x1b'"),
    "amount three decimals": ([A, "12.345"], "BudgetValue '12.345'"),
    "amount zero": ([A, "0"], "BudgetValue '0'"),
    "amount text": ([A, "lots"], "BudgetValue 'lots'"),
    "amount NaN": ([A, "NaN"], "BudgetValue 'NaN'"),
    "amount exponent": ([A, "1e3"], "BudgetValue '1e3'"),
    "amount too large": ([A, "100000000000000"], "BudgetValue '100000000000000'"),
    "amount with comma": ([A, "1,000"], "BudgetValue '1,000'"),
    "email ESC": ([A, "1000", "--alert-emails", ESC], f"AlertEmails {ESC!r}"),
    "email NUL": ([A, "1000", "--alert-emails", NUL], f"AlertEmails {NUL!r}"),
    "email zero-width": ([A, "1000", "--alert-emails", ZERO_WIDTH], f"AlertEmails {ZERO_WIDTH!r}"),
    "email bidi": ([A, "1000", "--alert-emails", BIDI], f"AlertEmails {BIDI!r}"),
    "emails over 4096 characters": ([A, "1000", "--alert-emails", LONG_NON_ASCII], "at most 4096"),
    "email malformed": ([A, "1000", "--alert-emails", "x@y"], "AlertEmails 'x@y'"),
    "threshold above 1000000": ([A, "1000", "--thresholds", "1000000.01"], "AlertThresholds '1000000.01'"),
    "threshold text": ([A, "1000", "--thresholds", "90,ninety"], "AlertThresholds 'ninety'"),
    "forecasted two": ([A, "1000", "--forecasted", "90,100"], "ForecastedThreshold '90,100'"),
    "forecasted negative": ([A, "1000", "--forecasted=-5"], "ForecastedThreshold '-5'"),
}


def _items(org: Org) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = org.management.resource("dynamodb").Table(org.budgets_table).scan()["Items"]
    return sorted(items, key=lambda i: str(i["AccountId"]))


@pytest.mark.parametrize("case", list(SET_CASES))
def test_budgetctl_set_refuses_bad_input_before_any_write(ops: Org, case: str):
    argv, expected = SET_CASES[case]
    before = _items(ops)

    result = budgetctl("set", *argv)

    assert result.code == ExitCode.USAGE, result.stderr
    assert expected in result.stderr
    assert _items(ops) == before
    assert all(ops.parameter(account) == "1000" for account in SPOKES)


# ------------------------------------------------------------------------------------------
# budgetctl import of a CSV file: one bad row and nothing is written, good rows included
# ------------------------------------------------------------------------------------------

IMPORT_CASES: dict[str, tuple[str, str]] = {
    # name: (the bad row's cells after the header, text the error must hold)
    "account short": ("12345,100,", "AccountId '12345'"),
    "account blank": (",100,", "AccountId ''"),
    "amount three decimals": (f"{A},12.345,", "BudgetValue '12.345'"),
    "amount negative": (f"{A},-5,", "BudgetValue '-5'"),
    "amount formula guarded": (f"{A},'=1+1,", "BudgetValue '=1+1'"),
    "amount blank": (f"{A},,", "BudgetValue ''"),
    "email ESC": (f'{A},100,"{ESC}"', f"AlertEmails {ESC!r}"),
    "email zero-width": (f"{A},100,{ZERO_WIDTH}", f"AlertEmails {ZERO_WIDTH!r}"),
    "emails over 4096 characters": (f'{A},100,"{LONG_NON_ASCII}"', "at most 4096"),
    "email malformed": (f"{A},100,not-an-address", "AlertEmails 'not-an-address'"),
    "too many fields": (f"{A},100,a@example.com,extra", "4 fields, the header has 3"),
}


@pytest.mark.parametrize("case", list(IMPORT_CASES))
def test_budgetctl_import_refuses_a_file_with_a_bad_row_and_writes_nothing(
    ops: Org,
    tmp_path: Path,
    case: str,
):
    row, expected = IMPORT_CASES[case]
    source = tmp_path / "budgets.csv"
    source.write_text(
        f"AccountId,BudgetValue,AlertEmails\n{B},2000,good@example.com\n{row}\n", encoding="utf-8"
    )
    before = _items(ops)

    result = budgetctl("import", str(source))

    assert result.code == ExitCode.USAGE, result.stderr
    assert "budgets.csv:3: " in result.stderr
    assert expected in result.stderr
    assert _items(ops) == before  # B's good row is not written either


# ------------------------------------------------------------------------------------------
# Defaults: budgetctl default set / import refuse before anything is written
# ------------------------------------------------------------------------------------------


def _defaults(tree: Tree) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = tree.table("BlogBudgetsDefaults").scan(ConsistentRead=True)["Items"]
    return sorted(items, key=lambda i: str(i["TargetId"]))


DEFAULT_SET_CASES: dict[str, tuple[list[str], str]] = {
    "target malformed": (["ou-nope", "100"], "TargetId 'ou-nope'"),
    "target an account": ([A, "100"], f"TargetId '{A}'"),
    "target with ESC": (["r-ab12\x1b", "100"], "TargetId 'r-ab12\\x1b'"),
    "amount three decimals": (["{sandbox}", "12.345"], "BudgetValue '12.345'"),
    "amount zero": (["{sandbox}", "0"], "BudgetValue '0'"),
    "amount text": (["{sandbox}", "much"], "BudgetValue 'much'"),
    "amount infinite": (["{sandbox}", "Infinity"], "BudgetValue 'Infinity'"),
}


@pytest.mark.parametrize("case", list(DEFAULT_SET_CASES))
def test_budgetctl_default_set_refuses_bad_input_before_any_write(tree: Tree, case: str):
    argv, expected = DEFAULT_SET_CASES[case]
    tree.set_default(tree.sandbox, "300")
    before = _defaults(tree)

    result = budgetctl(
        "default", "set", *(a.format(sandbox=tree.sandbox) for a in argv), "--region", "us-east-1"
    )

    assert result.code == ExitCode.USAGE, result.stderr
    assert expected in result.stderr
    assert _defaults(tree) == before


DEFAULT_IMPORT_CASES: dict[str, tuple[str, str]] = {
    "target malformed": ("ou-nope,100", "TargetId 'ou-nope'"),
    "amount three decimals": ("{sandbox},12.345", "BudgetValue '12.345'"),
    "amount negative": ("{sandbox},-1", "BudgetValue '-1'"),
    "amount blank": ("{sandbox},", "BudgetValue ''"),
    "target twice": ("{production},100", "already on line 2"),
}


@pytest.mark.parametrize("case", list(DEFAULT_IMPORT_CASES))
def test_budgetctl_default_import_refuses_a_file_with_a_bad_row_and_writes_nothing(
    tree: Tree,
    tmp_path: Path,
    case: str,
):
    row, expected = DEFAULT_IMPORT_CASES[case]
    source = tmp_path / "defaults.csv"
    rows = [f"{tree.production},200", row.format(sandbox=tree.sandbox, production=tree.production)]
    source.write_text("TargetId,BudgetValue\n" + "\n".join(rows) + "\n", encoding="utf-8")
    tree.set_default(tree.sandbox, "300")
    before = _defaults(tree)

    result = budgetctl("default", "import", str(source), "--region", "us-east-1")

    assert result.code == ExitCode.USAGE, result.stderr
    assert "defaults.csv:3: " in result.stderr
    assert expected in result.stderr
    assert _defaults(tree) == before


# ------------------------------------------------------------------------------------------
# budgetctl's own arguments
# ------------------------------------------------------------------------------------------

ARGUMENT_CASES: dict[str, tuple[list[str], str]] = {
    "concurrency zero": (["--concurrency", "0", "set", A, "100"], "--concurrency"),
    "concurrency text": (["--concurrency", "many", "set", A, "100"], "'many'"),
    "output unknown": (["--output", "xml", "set", A, "100"], "'xml'"),
    "expect malformed": (["set", A, "100", "--expect", "12.345"], "'12.345'"),
    "set without amount": (["set", A], "AMOUNT"),
    "default with unknown action": (["default", "frob"], "'frob'"),
}


@pytest.mark.parametrize("case", list(ARGUMENT_CASES))
def test_budgetctl_refuses_bad_arguments_before_any_write(
    ops: Org, case: str, capsys: pytest.CaptureFixture[str]
):
    argv, expected = ARGUMENT_CASES[case]
    before = _items(ops)

    result = budgetctl(*argv)

    assert result.code == ExitCode.USAGE, result.stderr
    assert expected in result.stderr + capsys.readouterr().err  # argparse writes to sys.stderr
    assert _items(ops) == before


def test_the_matrix_holds_at_least_sixty_bad_inputs():
    cases = (
        len(STREAM_CASES)
        + 5  # account keys
        + len(SET_CASES)
        + len(IMPORT_CASES)
        + len(DEFAULT_SET_CASES)
        + len(DEFAULT_IMPORT_CASES)
        + len(ARGUMENT_CASES)
    )
    assert cases >= 60
