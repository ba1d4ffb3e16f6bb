"""The item contract, without AWS."""

from __future__ import annotations

from decimal import Decimal

import pytest

from budget_sync.domain import (
    MAX_BUDGET_VALUE,
    ChangeKind,
    amount_text,
    format_amount,
    is_amount_text,
    newest_per_account,
    parse_account_id,
    parse_budget_text,
    parse_budget_value,
    parse_change,
)
from budget_sync.errors import InvalidItemError

ACCOUNT = "111111111111"


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        (Decimal("1000"), Decimal("1000.00")),
        (Decimal("1250.50"), Decimal("1250.50")),
        (Decimal("1250.5"), Decimal("1250.50")),
        (Decimal("0.01"), Decimal("0.01")),
        (7, Decimal("7.00")),
        (MAX_BUDGET_VALUE, MAX_BUDGET_VALUE),
    ],
)
def test_given_a_valid_stored_number_when_parsed_then_it_is_kept_to_the_cent(stored, expected):
    assert parse_budget_value(stored) == expected


@pytest.mark.parametrize(
    ("stored", "reason"),
    [
        (None, "is missing"),
        ("1000", "must be a DynamoDB number (type N), got a string ('1000')"),
        ("abc", "must be a DynamoDB number (type N), got a string ('abc')"),
        (True, "must be a DynamoDB number (type N), got bool"),
        (Decimal("0"), "must be greater than 0"),
        (Decimal("-5"), "must be greater than 0"),
        (Decimal("10.505"), "has more than two decimals"),
        (Decimal("1E+15"), "exceeds the maximum of 1000000000 USD"),
        (Decimal("1000000000.01"), "exceeds the maximum"),
        (Decimal("NaN"), "is not a finite number"),
    ],
)
def test_given_a_bad_stored_value_when_parsed_then_the_error_names_field_value_and_reason(stored, reason):
    with pytest.raises(InvalidItemError) as caught:
        parse_budget_value(stored, ACCOUNT)
    assert caught.value.field == "BudgetValue"
    assert reason in str(caught.value)
    shown = stored if isinstance(stored, Decimal) else repr(stored)  # 10.505 as typed, 'abc' quoted
    assert f"BudgetValue {shown} " in str(caught.value)
    assert caught.value.account_id == ACCOUNT


@pytest.mark.parametrize(
    ("text", "expected"), [("1000", "1000"), (" 1250.50 ", "1250.5"), ("99.99", "99.99")]
)
def test_given_operator_text_when_parsed_then_canonical(text, expected):
    assert format_amount(parse_budget_text(text)) == expected


#: Decimal() takes all of these; the item contract, the spoke's AllowedPattern and the
#: Automation script take none of them (one ASCII rule everywhere).
DECIMAL_BUT_NOT_AMOUNT = [
    "\u0661\u0662\u0663",
    "\uff11\uff12\uff13",
    "1_000",
    "1E3",
    "+5",
    "0100",
    " 1e3 ",
    "\u0663.\u0665\u0660",
]


@pytest.mark.parametrize(
    "text", ["", "abc", "1,000", "12.345", "-1", "0", "1e30", "inf", *DECIMAL_BUT_NOT_AMOUNT]
)
def test_given_bad_operator_text_when_parsed_then_rejected(text):
    with pytest.raises(InvalidItemError, match="BudgetValue"):
        parse_budget_text(text)


@pytest.mark.parametrize(
    ("amount", "text"),
    [("1250.50", "1250.5"), ("1000.00", "1000"), ("1000", "1000"), ("0.10", "0.1"), ("1E+3", "1000")],
)
def test_format_amount_is_what_budgets_reports(amount, text):
    assert format_amount(Decimal(amount)) == text
    assert is_amount_text(text)


def test_the_amount_pattern_refuses_what_the_function_never_writes():
    for text in ["1.234", "01", "abc", "-1", "1e3", ""]:
        assert not is_amount_text(text), text


@pytest.mark.parametrize(
    ("value", "status_key"),
    [("12345", "12345"), ("1111111111111", "1111111111111"), ("abcdefghijkl", "abcdefghijkl"), ("", None)],
)
def test_given_a_malformed_account_id_then_rejected_and_the_raw_key_kept_for_the_status(value, status_key):
    with pytest.raises(InvalidItemError, match="exactly 12 digits") as caught:
        parse_account_id(value)
    assert caught.value.account_id == status_key


def test_given_a_non_string_account_id_then_rejected_without_a_status_key():
    with pytest.raises(InvalidItemError, match="must be a string") as caught:
        parse_account_id(111111111111)
    assert caught.value.account_id is None


def test_given_a_modify_with_the_same_value_then_the_change_is_unchanged():
    change = parse_change(
        "MODIFY",
        "10",
        None,
        {"AccountId": ACCOUNT, "BudgetValue": Decimal("100"), "Note": "ignored"},
        {"AccountId": ACCOUNT, "BudgetValue": Decimal("100.00")},
    )
    assert change.kind is ChangeKind.UPSERT
    assert change.unchanged


def test_given_an_insert_then_it_is_never_unchanged():
    change = parse_change("INSERT", "10", None, {"AccountId": ACCOUNT, "BudgetValue": Decimal("100")}, None)
    assert not change.unchanged


def test_given_a_remove_then_the_change_carries_the_old_value():
    change = parse_change(
        "REMOVE", "11", {"AccountId": ACCOUNT}, None, {"AccountId": ACCOUNT, "BudgetValue": 5}
    )
    assert change.kind is ChangeKind.REMOVE
    assert change.old_value == Decimal("5.00")


def test_given_an_item_of_another_schema_then_rejected_without_a_key():
    with pytest.raises(InvalidItemError) as caught:
        parse_change("MODIFY", "1", {"Id": Decimal(101)}, {"Id": Decimal(101), "Message": "x"}, None)
    assert caught.value.field == "AccountId"
    assert caught.value.account_id is None


def test_newest_per_account_compares_sequence_numbers_as_numbers():
    older = parse_change("INSERT", "9", None, {"AccountId": ACCOUNT, "BudgetValue": 1}, None)
    newer = parse_change("MODIFY", "10", None, {"AccountId": ACCOUNT, "BudgetValue": 2}, None)
    assert newest_per_account([newer, older])[ACCOUNT] is newer


@pytest.mark.parametrize("text", DECIMAL_BUT_NOT_AMOUNT)
def test_given_text_decimal_accepts_when_typed_then_the_error_names_field_value_and_the_ascii_rule(text):
    # GIVEN text that Decimal() reads as a number
    Decimal(text.strip())
    # WHEN an operator types it THEN it is refused, naming the field, the value and the rule
    with pytest.raises(InvalidItemError) as caught:
        parse_budget_text(text, ACCOUNT)
    assert f"BudgetValue {text!r} " in str(caught.value)
    assert "ASCII digits" in str(caught.value)
    # AND the spoke's own rule (parameter AllowedPattern, Automation script) agrees
    assert not is_amount_text(text.strip())


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        (Decimal("1250.50"), "1250.5"),
        (Decimal("12.345"), "12.345"),  # invalid: shown as typed
        (Decimal("1E+30"), "1E+30"),  # too many digits to quantize: shown as stored, no error
        (Decimal("NaN"), "NaN"),
        ("abc", "abc"),
        (None, None),
    ],
)
def test_amount_text_shows_any_stored_value_without_raising(stored, shown):
    assert amount_text(stored) == shown
