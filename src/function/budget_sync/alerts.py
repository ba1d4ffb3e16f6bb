"""An account's alert settings on its budgets-table item: recipients and thresholds. Pure Python.

Optional attributes of the item (each one absent: the spoke stack's default for it):

  AlertEmails          S "a@example.com,b@example.com" (comma separated), SS or L of S:
                       the addresses that get every alert of the account's budget
  AlertThresholds      S "80,100", NS, N or L of N: the ACTUAL thresholds, percent of the limit
  ForecastedThreshold  N or S: the FORECASTED threshold, percent; S "none" for no forecasted alert

An empty value (``""``, an empty list) counts as absent. Limits (the AWS Budgets API
reference: "a budget can have up to ten notifications"; "a notification can have one SNS
subscriber and up to 10 email subscribers", while the same page caps ``Subscribers`` at 11
items): at most 10 addresses (the stack's SNS topic is the 11th subscriber), at most 9
ACTUAL thresholds and one FORECASTED threshold (10 notifications), each a number from 0 to
1,000,000 (the API's "maximum limit for your threshold is 1,000,000%") with at most two
decimals, no threshold twice. An address is printable text: a control or format character
(NUL, ESC, a zero-width space, a bidirectional override) is refused, whatever the pattern
allows. The canonical JSON (below) is at most ``MAX_SETTINGS_LENGTH`` (4,096) characters, the
value limit of an SSM standard parameter (PutParameter: "Standard parameters have a value
limit of 4 KB"); non-ASCII addresses count as written in the JSON (``\\u00e9``, six
characters), so ten long non-ASCII addresses can exceed it and are refused, before anything
is written.

What the update function writes to the spoke parameter ``/BlogBudgets/AlertSettings`` is
``AlertSettings.to_parameter()``: canonical JSON with only the fields the item sets, so
the spoke's Automation document fills the others from its stack's defaults. The item's cost
basis (``CostMetric``, ``CostExclusions``: budget_sync.cost_basis) travels in the same JSON
(``metric``, ``exclude``) and counts towards its length; the module says why.
The Automation script (src/budget_sync_spoke/alerts.py) repeats these rules; a test keeps
the patterns and limits equal.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from budget_sync.cost_basis import CostBasis, parse_cost_basis
from budget_sync.errors import InvalidItemError

ALERT_EMAILS_FIELD = "AlertEmails"
ALERT_THRESHOLDS_FIELD = "AlertThresholds"
FORECASTED_FIELD = "ForecastedThreshold"
ALERT_FIELDS = (ALERT_EMAILS_FIELD, ALERT_THRESHOLDS_FIELD, FORECASTED_FIELD)

#: The spoke template's AlertEmail parameters use the same rule.
EMAIL_PATTERN = r"^[^@\s,\"]+@[^@\s,\"]+\.[^@\s,\"]+$"
MAX_EMAIL_LENGTH = 254
MAX_EMAILS = 10
MAX_ACTUAL_THRESHOLDS = 9
MAX_THRESHOLD = Decimal("1000000")
#: SSM PutParameter: "Standard parameters have a value limit of 4 KB" (the JSON is ASCII).
MAX_SETTINGS_LENGTH = 4096
NONE = "none"

_EMAIL = re.compile(EMAIL_PATTERN)
_CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """What an item says about its alerts; None for a field means "the stack's default".

    ``forecasted`` is a threshold, ``NONE`` (no forecasted alert) or None (default).
    """

    emails: tuple[str, ...] | None = None
    actual: tuple[Decimal, ...] | None = None
    forecasted: Decimal | str | None = None
    #: The item's cost basis (budget_sync.cost_basis), delivered in the same parameter.
    cost_basis: CostBasis = dataclasses.field(default_factory=CostBasis)

    @property
    def is_default(self) -> bool:
        return (
            self.emails is None
            and self.actual is None
            and self.forecasted is None
            and self.cost_basis.is_default
        )

    def to_parameter(self) -> str:
        """Canonical JSON for the spoke parameter (equal settings, equal text)."""
        body: dict[str, object] = {}
        if self.emails is not None:
            body["emails"] = list(self.emails)
        if self.actual is not None:
            body["actual"] = [format_threshold(t) for t in self.actual]
        if self.forecasted is not None:
            body["forecasted"] = (
                self.forecasted if isinstance(self.forecasted, str) else format_threshold(self.forecasted)
            )
        body.update(self.cost_basis.parameter_fields())
        return json.dumps(body, sort_keys=True, separators=(",", ":"))

    def columns(self) -> dict[str, str | None]:
        """The three attributes as text (budgetctl, CSV): ``a@x.com,b@x.com``, ``80,100``, ``100``."""
        return {
            ALERT_EMAILS_FIELD: None if self.emails is None else ",".join(self.emails),
            ALERT_THRESHOLDS_FIELD: None
            if self.actual is None
            else ",".join(format_threshold(t) for t in self.actual),
            FORECASTED_FIELD: None
            if self.forecasted is None
            else (self.forecasted if isinstance(self.forecasted, str) else format_threshold(self.forecasted)),
        }


def parse_alerts(item: Mapping[str, object], account_id: str | None = None) -> AlertSettings:
    """The item's alert settings, or InvalidItemError naming the field and the value."""
    settings = AlertSettings(
        emails=_emails(item.get(ALERT_EMAILS_FIELD), account_id),
        actual=_actual(item.get(ALERT_THRESHOLDS_FIELD), account_id),
        forecasted=_forecasted(item.get(FORECASTED_FIELD), account_id),
        cost_basis=parse_cost_basis(item, account_id),
    )
    size = len(settings.to_parameter())
    if size > MAX_SETTINGS_LENGTH:
        raise InvalidItemError(
            ALERT_EMAILS_FIELD,
            ",".join(settings.emails or ()),
            f"make alert settings of {size} characters; the spoke parameter holds at most "
            f"{MAX_SETTINGS_LENGTH} (an address outside ASCII counts 6 characters a letter)",
            account_id,
        )
    return settings


def alert_attributes(
    emails: str | None, thresholds: str | None, forecasted: str | None, account_id: str | None = None
) -> dict[str, object]:
    """Validated item attributes from an operator's text (budgetctl options, CSV columns).

    A None argument is left out (the attribute is not touched); an empty text means "remove
    the attribute" and maps to None in the result.
    """
    given = {ALERT_EMAILS_FIELD: emails, ALERT_THRESHOLDS_FIELD: thresholds, FORECASTED_FIELD: forecasted}
    parse_alerts({k: v for k, v in given.items() if v is not None}, account_id)  # validate all first
    result: dict[str, object] = {}
    for field, text in given.items():
        if text is None:
            continue
        parsed = parse_alerts({field: text}, account_id).columns()[field]
        result[field] = parsed  # canonical text, or None to remove
    return result


def format_threshold(value: Decimal) -> str:
    """``80.00`` -> ``80``, ``82.50`` -> ``82.5``."""
    text = f"{value.quantize(_CENT):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _parts(value: object) -> list[object] | None:
    """The value as a list of parts, None if absent or empty."""
    if value is None:
        return None
    if isinstance(value, str):
        parts: list[object] = [p.strip() for p in value.split(",") if p.strip()]
    elif isinstance(value, (set, frozenset, list, tuple)):
        parts = [p.strip() if isinstance(p, str) else p for p in value]
        parts = [p for p in parts if p != ""]
    else:
        parts = [value]
    return parts or None


def _emails(value: object, account_id: str | None) -> tuple[str, ...] | None:
    parts = _parts(value)
    if parts is None:
        return None
    emails: list[str] = []
    for part in parts:
        if isinstance(part, str) and not part.isprintable():
            raise InvalidItemError(
                ALERT_EMAILS_FIELD,
                part,
                f"contains a control or format character ({unprintable(part)}), not allowed in an address",
                account_id,
            )
        if not isinstance(part, str) or len(part) > MAX_EMAIL_LENGTH or not _EMAIL.fullmatch(part):
            raise InvalidItemError(
                ALERT_EMAILS_FIELD, part, "is not a well-formed email address (name@domain.tld)", account_id
            )
        if part.lower() not in (e.lower() for e in emails):
            emails.append(part)
    if len(emails) > MAX_EMAILS:
        raise InvalidItemError(
            ALERT_EMAILS_FIELD,
            ",".join(emails),
            f"has {len(emails)} addresses; AWS Budgets takes at most {MAX_EMAILS} per notification",
            account_id,
        )
    return tuple(sorted(emails, key=str.lower))


def unprintable(text: str) -> str:
    """The code points of ``text``'s control and format characters: ``U+0000, U+200B``."""
    return ", ".join(dict.fromkeys(f"U+{ord(c):04X}" for c in text if not c.isprintable()))


def _threshold(field: str, part: object, account_id: str | None) -> Decimal:
    if isinstance(part, bool):
        raise InvalidItemError(field, part, "is not a number", account_id)
    try:
        number = Decimal(str(part).strip()) if isinstance(part, (str, int, Decimal, float)) else None
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        raise InvalidItemError(field, part, "is not a number", account_id)
    if number < 0 or number > MAX_THRESHOLD:
        raise InvalidItemError(field, part, "must be from 0 to 1000000 (percent of the limit)", account_id)
    if number != number.quantize(_CENT):
        raise InvalidItemError(field, part, "has more than two decimals", account_id)
    return number.quantize(_CENT)


def _actual(value: object, account_id: str | None) -> tuple[Decimal, ...] | None:
    parts = _parts(value)
    if parts is None:
        return None
    thresholds = sorted({_threshold(ALERT_THRESHOLDS_FIELD, p, account_id) for p in parts})
    if len(thresholds) != len(parts):
        raise InvalidItemError(ALERT_THRESHOLDS_FIELD, _shown(parts), "names a threshold twice", account_id)
    if len(thresholds) > MAX_ACTUAL_THRESHOLDS:
        raise InvalidItemError(
            ALERT_THRESHOLDS_FIELD,
            _shown(parts),
            f"has {len(thresholds)} thresholds; at most {MAX_ACTUAL_THRESHOLDS} "
            "(AWS Budgets: 10 notifications per budget, one is the forecasted one)",
            account_id,
        )
    return tuple(thresholds)


def _forecasted(value: object, account_id: str | None) -> Decimal | str | None:
    parts = _parts(value)
    if parts is None:
        return None
    if len(parts) > 1:
        raise InvalidItemError(FORECASTED_FIELD, _shown(parts), "must be one threshold at most", account_id)
    (part,) = parts
    if isinstance(part, str) and part.lower() == NONE:
        return NONE
    return _threshold(FORECASTED_FIELD, part, account_id)


def _shown(parts: Iterable[object]) -> str:
    return ",".join(str(p) for p in parts)


#: A budget notification as the reconciler compares it: (NotificationType, "OPERATOR TYPE
#: threshold"), e.g. ("ACTUAL", "GREATER_THAN PERCENTAGE 80"); and a subscriber:
#: (SubscriptionType, address; an email address in lower case, as AWS Budgets compares them).
NotificationKey = tuple[str, str]
Subscriber = tuple[str, str]
Notifications = dict[NotificationKey, frozenset[Subscriber]]


def notification_key(kind: str, operator: str, threshold_type: str, threshold: Decimal) -> NotificationKey:
    """The key of a notification (``threshold`` as AWS Budgets returns it, a float's text)."""
    shown = (
        format_threshold(threshold.quantize(_CENT))
        if threshold == threshold.quantize(_CENT)
        else str(threshold)
    )
    return kind, f"{operator} {threshold_type} {shown}"


def subscriber(kind: str, address: str) -> Subscriber:
    return kind, address.lower() if kind == "EMAIL" else address


def effective_alerts(settings: AlertSettings, defaults: Mapping[str, object]) -> AlertSettings:
    """The item's alert settings merged over the spoke stack's defaults (the JSON of the spoke
    parameter /BlogBudgets/AlertDefaults: ``emails``, ``actual``, ``forecasted``), field by
    field, as the spoke's Automation document merges them (src/budget_sync_spoke/alerts.py,
    ``desired_alerts``): a field the item sets wins, the others are the stack's. The defaults
    are read by the item contract's own rules (``parse_alerts``), so a default the spoke would
    refuse is refused here too (InvalidItemError naming the field and the value)."""
    stack = parse_alerts(
        {
            ALERT_EMAILS_FIELD: defaults.get("emails"),
            ALERT_THRESHOLDS_FIELD: defaults.get("actual"),
            FORECASTED_FIELD: defaults.get("forecasted"),
        }
    )
    return AlertSettings(
        emails=settings.emails if settings.emails is not None else stack.emails or (),
        actual=settings.actual if settings.actual is not None else stack.actual or (),
        forecasted=settings.forecasted if settings.forecasted is not None else stack.forecasted or NONE,
    )


def expected_notifications(settings: AlertSettings, defaults: Mapping[str, object]) -> Notifications:
    """The notifications and subscribers the spoke's Automation gives the budget for these
    settings over these defaults: one GREATER_THAN PERCENTAGE notification per ACTUAL threshold
    and one FORECASTED (unless ``none``), each with every address and the stack's SNS topic
    (``sns`` of the defaults) as subscribers."""
    merged = effective_alerts(settings, defaults)
    topic = str(defaults.get("sns") or "").strip()
    subscribers = frozenset(
        {subscriber("EMAIL", e) for e in merged.emails or ()}
        | ({subscriber("SNS", topic)} if topic else set())
    )
    thresholds = [("ACTUAL", t) for t in merged.actual or ()]
    if isinstance(merged.forecasted, Decimal):
        thresholds.append(("FORECASTED", merged.forecasted))
    return {
        notification_key(kind, "GREATER_THAN", "PERCENTAGE", threshold): subscribers
        for kind, threshold in thresholds
    }


def notifications_differ(expected: Notifications, actual: Notifications) -> str:
    """Why the budget's notifications are not the expected ones ('' if they are), naming
    each notification missing, unexpected, or with other subscribers. Pure."""
    differences: list[str] = []
    for key in sorted(expected.keys() - actual.keys()):
        differences.append(f"missing {_shown_key(key)}")
    for key in sorted(actual.keys() - expected.keys()):
        differences.append(f"unexpected {_shown_key(key)}")
    for key in sorted(expected.keys() & actual.keys()):
        if expected[key] != actual[key]:
            lacking = ",".join(sorted(a for _, a in expected[key] - actual[key])) or "-"
            extra = ",".join(sorted(a for _, a in actual[key] - expected[key])) or "-"
            differences.append(f"{_shown_key(key)} subscribers: missing {lacking}, unexpected {extra}")
    return "; ".join(differences)


def _shown_key(key: NotificationKey) -> str:
    kind, rest = key
    operator, threshold_type, threshold = rest.split(" ", 2)
    sign = {"GREATER_THAN": ">", "LESS_THAN": "<", "EQUAL_TO": "="}.get(operator, operator)
    unit = "%" if threshold_type == "PERCENTAGE" else f" {threshold_type}"
    return f"{kind}{sign}{threshold}{unit}"
