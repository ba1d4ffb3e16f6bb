"""The spoke stack's alert-email parameters refuse control, format and separator characters at
deploy time, as the Automation script refuses them at run time (``str.isprintable``).

CloudFormation checks a String parameter's ``AllowedPattern`` against the whole value (AWS's own
examples rely on it: ``[a-zA-Z][a-zA-Z0-9]*`` for a name that must start with a letter), so the
tests use ``re.fullmatch``. The patterns use only what Java's and Python's regular expressions
read alike (``\\xhh``, ``\\uhhhh``, character classes): Java's ``\\s`` is ASCII whitespace only,
which let NUL, ESC, NEL, no-break spaces and zero-width characters through before.
"""

from __future__ import annotations

import re
import unicodedata

import pytest

from budget_sync_local.templates import SPOKE_TEMPLATE, load
from budget_sync_spoke import alerts

TEMPLATE = load(SPOKE_TEMPLATE)
DOCUMENT_PARAMETERS = TEMPLATE["Resources"]["AutomationDocument"]["Properties"]["Content"]["parameters"]
SINGLE = ["AlertEmail1", "AlertEmail2", "AlertEmail3"]
LISTS = ["DefaultAlertEmails"]

VALID = [
    "finance@example.com",
    "a.b+budgets@mail.example.co.uk",
    "o'brien@example.ie",
    "zoë@exämple.de",
    "用户@例子.中国",
    "x" * 64 + "@" + "y" * 180 + ".com",
]
UNWANTED = {
    "newline": "\n",
    "carriage return": "\r",
    "tab": "\t",
    "NUL": "\x00",
    "ESC": "\x1b",
    "DEL": "\x7f",
    "NEL": "\x85",
    "no-break space": "\xa0",
    "soft hyphen": "\u00ad",
    "zero-width space": "\u200b",
    "zero-width joiner": "\u200d",
    "right-to-left override": "\u202e",
    "line separator": "\u2028",
    "word joiner": "\u2060",
    "byte order mark": "\ufeff",
    "ideographic space": "\u3000",
}


def pattern(parameter: str) -> re.Pattern[str]:
    return re.compile(TEMPLATE["Parameters"][parameter]["AllowedPattern"])


def spellings(character: str) -> list[str]:
    """The character in the local part, in the domain, at either end of the address."""
    return [
        f"fin{character}ance@example.com",
        f"finance@exa{character}mple.com",
        f"finance@example.c{character}om",
        f"{character}finance@example.com",
        f"finance@example.com{character}",
    ]


@pytest.mark.parametrize("parameter", SINGLE + LISTS)
@pytest.mark.parametrize("address", VALID)
def test_a_valid_address_is_accepted_by_the_template_and_the_script(parameter: str, address: str):
    assert pattern(parameter).fullmatch(address), address
    assert alerts.desired_alerts({"emails": address}, {}).emails == (address,)


@pytest.mark.parametrize("parameter", SINGLE + LISTS)
@pytest.mark.parametrize("name", list(UNWANTED))
def test_an_address_with_a_control_or_format_character_is_refused_at_deploy(parameter: str, name: str):
    for address in spellings(UNWANTED[name]):
        assert not pattern(parameter).fullmatch(address), f"{parameter} accepts {address!r} ({name})"
    for address in spellings(UNWANTED[name])[:3]:  # the script strips the ends of each address
        with pytest.raises(ValueError, match="AlertEmails"):  # as the script refuses it at run time
            alerts.desired_alerts({"emails": address}, {})


def test_a_list_of_addresses_refuses_a_control_character_in_any_of_them():
    good = ",".join(VALID[:3])
    assert pattern("DefaultAlertEmails").fullmatch(good)
    for character in UNWANTED.values():
        assert not pattern("DefaultAlertEmails").fullmatch(f"{good},a{character}@example.com")
        assert not pattern("DefaultAlertEmails").fullmatch(f"{good}{character},a@example.com")


@pytest.mark.parametrize("parameter", SINGLE + LISTS)
def test_no_control_format_or_separator_character_of_the_bmp_gets_through(parameter: str):
    compiled = pattern(parameter)
    through = [
        f"U+{code:04X}"
        for code in range(0x10000)
        if unicodedata.category(chr(code)) in {"Cc", "Cf", "Zs", "Zl", "Zp"}
        and compiled.fullmatch(f"fin{chr(code)}ance@example.com")
    ]
    assert through == []


def test_the_automation_document_refuses_what_the_stack_parameters_refuse():
    document = re.compile(DOCUMENT_PARAMETERS["AlertEmails"]["allowedPattern"])
    assert document.fullmatch(",".join(VALID))
    assert document.fullmatch("a@example.com,,b@example.com")  # AlertEmail2 empty, AlertEmail3 set
    for character in UNWANTED.values():
        for address in spellings(character):
            assert not document.fullmatch(address), repr(address)
            assert not document.fullmatch(f"a@example.com,{address}"), repr(address)
