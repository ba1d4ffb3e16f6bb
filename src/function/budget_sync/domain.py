"""The item contract and the per-batch plan. Pure Python: no AWS, no boto3.

The budgets table holds one item per account: ``AccountId`` (S, 12 digits) and
``BudgetValue`` (N, a positive USD amount with at most two decimals). Anything else on
the item is ignored. This module is the one implementation of those rules: the stream
function, the reconciler and ``budgetctl`` all validate through it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from budget_sync.alerts import AlertSettings, parse_alerts
from budget_sync.errors import InvalidItemError

ACCOUNT_ID_FIELD = "AccountId"
BUDGET_VALUE_FIELD = "BudgetValue"

#: The largest monthly limit budget-sync accepts, in USD. AWS Budgets takes larger
#: strings, but a value past this is a typo (an extra zero or two), not a budget.
MAX_BUDGET_VALUE = Decimal("1000000000")
#: Kept in step with the spoke parameter's AllowedPattern and the Automation script.
AMOUNT_PATTERN = r"^(0|[1-9][0-9]{0,9})(\.[0-9]{1,2})?$"

_CENT = Decimal("0.01")
_ACCOUNT_ID = re.compile(r"[0-9]{12}")
_AMOUNT_TEXT = re.compile(AMOUNT_PATTERN)
#: What an operator may type, checked before Decimal() (a sign only so that '-3' is told why).
_NUMBER_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?", re.ASCII)
_RULE = (
    "must be a plain amount in ASCII digits with at most two decimals, like 1000 or 1250.50 "
    "(no sign, exponent, digit separators, leading zeros or non-ASCII digits)"
)


class ChangeKind(StrEnum):
    UPSERT = "UPSERT"  # INSERT or MODIFY: the account should have this limit
    REMOVE = "REMOVE"  # the item was deleted: the account is no longer managed


def parse_account_id(value: object) -> str:
    """Return the account id, or raise InvalidItemError naming the value."""
    if not isinstance(value, str):
        raise InvalidItemError(ACCOUNT_ID_FIELD, value, f"must be a string of 12 digits, got {_kind(value)}")
    if not _ACCOUNT_ID.fullmatch(value):
        # The status is still recorded under the raw key, so that the operator sees the typo.
        status_key = value if 0 < len(value) <= 64 else None
        raise InvalidItemError(ACCOUNT_ID_FIELD, value, "must be exactly 12 digits", status_key)
    return value


def parse_budget_value(value: object, account_id: str | None = None) -> Decimal:
    """Validate a BudgetValue as stored in DynamoDB (type N, deserialised to Decimal)."""
    if value is None:
        raise InvalidItemError(BUDGET_VALUE_FIELD, value, "is missing", account_id)
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        raise InvalidItemError(
            BUDGET_VALUE_FIELD,
            value,
            f"must be a DynamoDB number (type N), got {_kind(value)}",
            account_id,
        )
    return _check_amount(Decimal(value), value, account_id)


def parse_budget_text(text: str, account_id: str | None = None) -> Decimal:
    """Validate an amount typed by an operator (CLI, CSV): ``1000``, ``1250.50``."""
    cleaned = text.strip()
    # ASCII digits only, before Decimal(): it would take Arabic-Indic and fullwidth digits,
    # '1_000', '1E3' and '+5', which the spoke's AllowedPattern and Automation script refuse.
    if not _NUMBER_TEXT.fullmatch(cleaned):
        raise InvalidItemError(BUDGET_VALUE_FIELD, text, _not_amount_text(cleaned), account_id)
    amount = _check_amount(Decimal(cleaned), text, account_id)
    if not is_amount_text(cleaned):  # what is left: leading zeros ('0100')
        raise InvalidItemError(BUDGET_VALUE_FIELD, text, "is not a plain amount: it " + _RULE, account_id)
    return amount


def _not_amount_text(text: str) -> str:
    """Why ``text`` is not an amount: the one rule, said for people."""
    if any(c.isdigit() and not c.isascii() for c in text):
        return "has non-ASCII digits: it " + _RULE
    if not any(c.isdigit() for c in text):
        return "is not a number"
    return "is not a plain amount: it " + _RULE


def _check_amount(amount: Decimal, shown: object, account_id: str | None) -> Decimal:
    if not amount.is_finite():
        raise InvalidItemError(BUDGET_VALUE_FIELD, shown, "is not a finite number", account_id)
    if amount <= 0:
        raise InvalidItemError(BUDGET_VALUE_FIELD, shown, "must be greater than 0", account_id)
    if amount > MAX_BUDGET_VALUE:
        raise InvalidItemError(
            BUDGET_VALUE_FIELD,
            shown,
            f"exceeds the maximum of {format_amount(MAX_BUDGET_VALUE)} USD",
            account_id,
        )
    if amount != amount.quantize(_CENT):
        raise InvalidItemError(BUDGET_VALUE_FIELD, shown, "has more than two decimals", account_id)
    return amount.quantize(_CENT)


def format_amount(amount: Decimal) -> str:
    """The canonical text of an amount: ``1250.50`` -> ``1250.5``, ``1000.00`` -> ``1000``.

    This is what the spoke parameter holds and what AWS Budgets reports back.
    """
    text = f"{amount.quantize(_CENT):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def amount_text(value: object) -> str | None:
    """An amount as people read it: canonical if it keeps the contract, as stored otherwise
    (``12.345`` stays ``12.345``, so an invalid value is shown as typed); None for none."""
    if isinstance(value, Decimal):
        try:
            canonical = value.is_finite() and value == value.quantize(_CENT)
        except InvalidOperation:  # too many digits to quantize (1E+30): shown as stored
            canonical = False
        return format_amount(value) if canonical else str(value)
    return None if value is None else str(value)


def is_amount_text(text: str) -> bool:
    """True if ``text`` matches the spoke parameter's AllowedPattern."""
    return _AMOUNT_TEXT.fullmatch(text) is not None


def _kind(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, str):
        return f"a string ({value!r})"
    return type(value).__name__


@dataclass(frozen=True, slots=True)
class Change:
    """One stream record, understood: what the account's limit should now be."""

    account_id: str
    kind: ChangeKind
    sequence_number: str
    new_value: Decimal | None = None
    old_value: Decimal | None = None
    #: The item's alert settings (budget_sync.alerts); None on the old side: not known.
    alerts: AlertSettings = field(default_factory=AlertSettings)
    old_alerts: AlertSettings | None = None

    @property
    def unchanged(self) -> bool:
        """A MODIFY that kept the same BudgetValue and alerts: nothing to send to the spoke."""
        return self.value_unchanged and self.alerts_unchanged

    @property
    def value_unchanged(self) -> bool:
        return (
            self.kind is ChangeKind.UPSERT and self.old_value is not None and self.old_value == self.new_value
        )

    @property
    def alerts_unchanged(self) -> bool:
        """Same settings as before; a new item without alert attributes sends none."""
        before = AlertSettings() if self.old_alerts is None else self.old_alerts
        return self.kind is ChangeKind.UPSERT and before == self.alerts

    @property
    def order(self) -> int:
        return int(self.sequence_number)


def parse_change(
    event_name: str,
    sequence_number: str,
    keys: Mapping[str, object] | None,
    new_image: Mapping[str, object] | None,
    old_image: Mapping[str, object] | None,
) -> Change:
    """Turn one deserialised stream record into a Change, or raise InvalidItemError."""
    image = new_image or old_image or keys or {}
    account_id = parse_account_id(image.get(ACCOUNT_ID_FIELD))
    if event_name == "REMOVE":
        return Change(account_id, ChangeKind.REMOVE, sequence_number, old_value=_old_value(old_image))
    if event_name not in ("INSERT", "MODIFY"):
        raise InvalidItemError("eventName", event_name, "is not INSERT, MODIFY or REMOVE", account_id)
    if new_image is None:
        raise InvalidItemError(
            "NewImage", None, "is missing: the stream must use NEW_AND_OLD_IMAGES", account_id
        )
    new_value = parse_budget_value(new_image.get(BUDGET_VALUE_FIELD), account_id)
    alerts = parse_alerts(new_image, account_id)
    return Change(
        account_id,
        ChangeKind.UPSERT,
        sequence_number,
        new_value,
        _old_value(old_image),
        alerts,
        _old_alerts(old_image),
    )


def _old_value(old_image: Mapping[str, object] | None) -> Decimal | None:
    """The previous value, if it was valid (an invalid old value never counts as 'unchanged')."""
    if not old_image:
        return None
    try:
        return parse_budget_value(old_image.get(BUDGET_VALUE_FIELD))
    except InvalidItemError:
        return None


def _old_alerts(old_image: Mapping[str, object] | None) -> AlertSettings | None:
    """The previous alert settings, if they were valid (invalid ones never count as 'unchanged')."""
    if not old_image:
        return None
    try:
        return parse_alerts(old_image)
    except InvalidItemError:
        return None


def newest_per_account(changes: Iterable[Change]) -> dict[str, Change]:
    """Per account, the change with the highest sequence number: the newest value wins."""
    newest: dict[str, Change] = {}
    for change in changes:
        current = newest.get(change.account_id)
        if current is None or change.order > current.order:
            newest[change.account_id] = change
    return newest
