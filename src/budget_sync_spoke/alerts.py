"""BlogBudgetsAutomationDoc, step ReconcileAlerts: make the budget's alerts what the table says.

Runs inside SSM Automation (aws:executeScript, python3.11) with the automation role's
credentials, after UpdateBudgetLimit. template-spoke.yaml holds this file verbatim as the
step's inline Script.

1. Read the account's alert settings (parameter /BlogBudgets/AlertSettings, JSON written by
   the management account: any of "emails", "actual", "forecasted") and the stack's
   defaults (parameter /BlogBudgets/AlertDefaults, written by CloudFormation), both in one
   GetParameters call. A field the
   account's settings leave out takes the default.
2. Validate the result before any call (addresses of printable text, at most 10 per
   notification, thresholds 0 to 1,000,000 percent, at most 10 notifications, settings of at
   most 4,096 characters as JSON): a bad value fails the step and the budget keeps the alerts
   it has.
3. Reconcile with the fewest calls: nothing when the budget already has exactly these
   notifications (ACTUAL thresholds, one FORECASTED, GREATER_THAN, PERCENTAGE) with exactly
   these subscribers (the emails, and the stack's SNS topic if any). A notification whose
   threshold changed is updated in place (UpdateNotification), a subscriber whose address
   changed too (UpdateSubscriber); the rest are created or deleted. Never a budget
   replacement. budget-sync owns the budget's notifications: one added by hand is changed
   or deleted here.
4. Read both parameters again (one call): if they changed during the run (a second write, whose own
   run may have finished first), reconcile again, so that overlapping runs end at the
   newest settings. A create that finds its notification or subscriber already there, or a
   delete that finds it gone (an overlapping run did it), counts as done; any other such
   conflict (an update of what an overlapping run already changed) reads the budget again
   and plans anew.
5. Report the outcome on the account's default event bus (source ``budget-sync.spoke``,
   detail-type ``Budget Update Result``, ``"Step": "ReconcileAlerts"``), about the budget
   parameter version that UpdateBudgetLimit applied and the versions of the two settings
   parameters it last read (``AlertsVersions``, 0 for a missing one: two runs' reports are
   ordered by them): success with the alert settings the budget now has (``Applied``), or
   failure with the reason (the execution then fails too).
   The spoke stack's rule forwards it to the management account, which records the
   settings as ConfirmedAlerts, or FAILED with the reason.

The same settings carry the account's cost basis (``metric``, ``exclude``; the stack's
defaults too: DefaultCostMetric, DefaultCostExclusions), which this step applies after the
alerts (budget_sync.cost_basis says why it travels here). With no cost basis in either
parameter the budget's definition is not touched. Otherwise, validated before any call:
describe the budget with ShowFilterExpression and send its whole definition back (the
read-modify-write of UpdateBudgetLimit) with ``Metrics`` (the metric given, else the budget's
own, else the one its CostTypes say) and a ``FilterExpression`` that is the budget's own filter
with budget-sync's ``Not RECORD_TYPE`` exclusion (at the top, or a member of a top-level
``And``) replaced by the one given, and never CostTypes or CostFilters with them. A budget
still on CostTypes moves once to Metrics + FilterExpression (docs/cost-basis.md has the
mapping); CostTypes or CostFilters that have no faithful equivalent, or an own filter that
cannot take the exclusion within AWS's 2 levels of nesting, fail the step with the reason
before any change to the definition. The report's ``CostBasis`` is the JSON of the Metrics and
excluded record types the budget now has ("" when no cost basis is set anywhere).

Last, the budget's ``HealthStatus`` is read (one DescribeBudget) and reported as
``HealthStatus`` and ``HealthReason`` ("" when this runtime's boto3 or AWS gives none): the
management account records an UNHEALTHY budget as FAILED with AWS's reason.

Only the standard library and boto3 are available, so the rules of budget_sync.alerts and
budget_sync.cost_basis are repeated here (a test keeps the two equal).
"""

from __future__ import annotations

import contextlib
import json
import re
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, NamedTuple

import boto3
from botocore.config import Config

if TYPE_CHECKING:  # type stubs for the checker only; the Automation runtime has boto3 alone
    from mypy_boto3_budgets import BudgetsClient
    from mypy_boto3_budgets.type_defs import NotificationTypeDef, SubscriberTypeDef
    from mypy_boto3_ssm import SSMClient

EMAIL_PATTERN = r"^[^@\s,\"]+@[^@\s,\"]+\.[^@\s,\"]+$"
MAX_EMAIL_LENGTH = 254
MAX_EMAILS = 10
MAX_NOTIFICATIONS = 10
MAX_THRESHOLD = Decimal("1000000")
#: SSM PutParameter: "Standard parameters have a value limit of 4 KB" (the JSON is ASCII).
MAX_SETTINGS_LENGTH = 4096
NONE = "none"
REPORT_SOURCE = "budget-sync.spoke"
REPORT_DETAIL_TYPE = "Budget Update Result"
STEP = "ReconcileAlerts"
#: Reconcile passes per run while the parameters keep changing under it.
MAX_PASSES = 3

#: aws:executeScript does not retry throttled calls itself: the clients do (standard mode: exponential backoff).
RETRIES = Config(retries={"max_attempts": 10, "mode": "standard"})

_EMAIL = re.compile(EMAIL_PATTERN)
_CENT = Decimal("0.01")

#: A notification as budget-sync keys it: (NotificationType, threshold text).
Key = tuple[str, str]
#: A subscriber: (SubscriptionType, Address).
Sub = tuple[str, str]


class Alerts(NamedTuple):
    """The alerts a budget should have (a NamedTuple: the script runs as an unnamed module)."""

    emails: tuple[str, ...]
    actual: tuple[str, ...]
    forecasted: str  # "" for none
    sns: str  # "" for none

    def notifications(self) -> dict[Key, set[Sub]]:
        subscribers = {("EMAIL", e) for e in self.emails} | ({("SNS", self.sns)} if self.sns else set())
        keys = [("ACTUAL", t) for t in self.actual] + (
            [("FORECASTED", self.forecasted)] if self.forecasted else []
        )
        return {key: set(subscribers) for key in keys}

    def summary(self) -> str:
        """What the budget now has, as compact JSON (the document's output Applied)."""
        body = {
            "emails": list(self.emails),
            "actual": list(self.actual),
            "forecasted": self.forecasted or NONE,
        }
        if self.sns:
            body["sns"] = self.sns
        return json.dumps(body, sort_keys=True, separators=(",", ":"))


def _split(value: Any) -> list[str]:
    if value is None:
        return []
    parts = value if isinstance(value, list) else str(value).split(",")
    return [str(p).strip() for p in parts if str(p).strip()]


def threshold_text(field: str, text: str) -> str:
    """The canonical text of a threshold (``80.00`` -> ``80``), or ValueError naming it."""
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{field} {text!r} is not a number") from None
    if not number.is_finite() or number < 0 or number > MAX_THRESHOLD:
        raise ValueError(f"{field} {text!r} must be from 0 to 1000000 (percent of the limit)")
    if number != number.quantize(_CENT):
        raise ValueError(f"{field} {text!r} has more than two decimals")
    canonical = f"{number.quantize(_CENT):f}"
    return canonical.rstrip("0").rstrip(".") if "." in canonical else canonical


def desired_alerts(settings: dict[str, Any], defaults: dict[str, Any]) -> Alerts:
    """The account's settings over the stack's defaults, validated (ValueError names field and value)."""
    emails = _split(settings["emails"]) if "emails" in settings else _split(defaults.get("emails"))
    for email in emails:
        if not email.isprintable():
            raise ValueError(f"AlertEmails {email!r} contains a control or format character")
        if len(email) > MAX_EMAIL_LENGTH or not _EMAIL.fullmatch(email):
            raise ValueError(f"AlertEmails {email!r} is not a well-formed email address")
    unique = sorted({e.lower(): e for e in reversed(emails)}.values(), key=str.lower)  # first spelling wins
    if len(unique) > MAX_EMAILS:
        raise ValueError(f"AlertEmails has {len(unique)} addresses; AWS Budgets takes at most {MAX_EMAILS}")
    actual_texts = _split(settings["actual"]) if "actual" in settings else _split(defaults.get("actual"))
    actual = sorted({threshold_text("AlertThresholds", t) for t in actual_texts}, key=Decimal)
    forecasted_texts = (
        _split(settings["forecasted"]) if "forecasted" in settings else _split(defaults.get("forecasted"))
    )
    if len(forecasted_texts) > 1:
        raise ValueError(f"ForecastedThreshold {','.join(forecasted_texts)!r} must be one threshold at most")
    forecasted = "" if not forecasted_texts or forecasted_texts[0].lower() == NONE else forecasted_texts[0]
    forecasted = threshold_text("ForecastedThreshold", forecasted) if forecasted else ""
    alerts = Alerts(tuple(unique), tuple(actual), forecasted, str(defaults.get("sns") or "").strip())
    size = len(settings_text(alerts))
    if size > MAX_SETTINGS_LENGTH:
        raise ValueError(
            f"AlertEmails make alert settings of {size} characters; at most {MAX_SETTINGS_LENGTH}"
        )
    if len(alerts.notifications()) > MAX_NOTIFICATIONS:
        raise ValueError(
            f"{len(alerts.notifications())} notifications; AWS Budgets takes at most {MAX_NOTIFICATIONS}"
        )
    if alerts.notifications() and not alerts.emails and not alerts.sns:
        raise ValueError(
            "AlertEmails is empty and the stack has no SNS topic: a notification needs a subscriber"
        )
    return alerts


def settings_text(alerts: Alerts) -> str:
    """The alerts as the management account writes them (AlertSettings.to_parameter's JSON)."""
    body = {
        "emails": list(alerts.emails),
        "actual": list(alerts.actual),
        "forecasted": alerts.forecasted or NONE,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


# --- The cost basis ---------------------------------------------------------------------

#: budget_sync.cost_basis.METRICS and EXCLUSIONS (a test keeps them equal).
METRICS = {
    "unblended": "UnblendedCost",
    "blended": "BlendedCost",
    "amortized": "AmortizedCost",
    "net-unblended": "NetUnblendedCost",
    "net-amortized": "NetAmortizedCost",
}
EXCLUSIONS = {
    "credits": "Credit",
    "refunds": "Refund",
    "tax": "Tax",
    "support": "Support",
    "upfront": "Upfront",
}
#: AWS Budgets: "FilterExpression nests at most 2 deep" (And, Or and Not are a level each).
MAX_EXPRESSION_DEPTH = 2
#: update_budget.KEPT: the members of a budget's definition, sent back as described.
DEFINITION = (
    "BudgetName",
    "BudgetLimit",
    "PlannedBudgetLimits",
    "CostFilters",
    "CostTypes",
    "TimeUnit",
    "TimePeriod",
    "BudgetType",
    "AutoAdjustData",
    "FilterExpression",
    "Metrics",
    "BillingViewArn",
)
#: A CostTypes flag that excludes a record type when false (docs/cost-basis.md: AWS's sources).
LEGACY_EXCLUSIONS = {
    "IncludeCredit": "Credit",
    "IncludeRefund": "Refund",
    "IncludeTax": "Tax",
    "IncludeSupport": "Support",
    "IncludeUpfront": "Upfront",
}
#: CostTypes flags that budget-sync cannot express faithfully when false.
LEGACY_UNMAPPED = ("IncludeRecurring", "IncludeOtherSubscription", "IncludeSubscription", "IncludeDiscount")


class CostBasis(NamedTuple):
    """What the budget should count: an AWS Metric ("" to keep the budget's) and the RECORD_TYPE
    values to exclude (None to keep the budget's own exclusion)."""

    metric: str
    exclude: tuple[str, ...] | None


def desired_cost_basis(settings: dict[str, Any], defaults: dict[str, Any]) -> CostBasis | None:
    """The account's cost basis over the stack's, validated (ValueError names field and value);
    None when neither sets one: the budget's definition stays as it is."""
    metric_texts = _split(settings["metric"]) if "metric" in settings else _split(defaults.get("metric"))
    # the account's "exclude" is a list, [] for none; the stack's default is text, "" for no default
    exclude_texts = (
        _split(settings["exclude"]) or [NONE] if "exclude" in settings else _split(defaults.get("exclude"))
    )
    if len(metric_texts) > 1 or (metric_texts and metric_texts[0].lower() not in METRICS):
        raise ValueError(f"CostMetric {','.join(metric_texts)!r} is not one of {', '.join(METRICS)}")
    metric = METRICS[metric_texts[0].lower()] if metric_texts else ""
    exclude: tuple[str, ...] | None = None
    if exclude_texts:
        words = [t.lower() for t in exclude_texts]
        if words != [NONE]:
            for word in words:
                if word not in EXCLUSIONS:
                    raise ValueError(
                        f"CostExclusions {word!r} is not one of {', '.join(EXCLUSIONS)}, or {NONE} alone"
                    )
        exclude = tuple(sorted({EXCLUSIONS[w] for w in words if w != NONE}))
    if not metric and exclude is None:
        return None
    return CostBasis(metric, exclude)


def expression_depth(expression: Any) -> int:
    """How many levels of And, Or and Not an expression nests."""
    if not isinstance(expression, dict):
        return 0
    nested = [*(expression.get("And") or []), *(expression.get("Or") or [])]
    if expression.get("Not") is not None:
        nested.append(expression["Not"])
    if not nested:
        return 0
    return 1 + max(expression_depth(e) for e in nested)


def _is_exclusion(expression: Any) -> bool:
    """Whether an expression is a record-type exclusion (``Not`` of a ``RECORD_TYPE`` dimension)."""
    if not isinstance(expression, dict) or set(expression) != {"Not"}:
        return False
    inner = expression["Not"]
    return (
        isinstance(inner, dict)
        and set(inner) == {"Dimensions"}
        and inner["Dimensions"].get("Key") == "RECORD_TYPE"
    )


def own_filter(expression: Any) -> Any:
    """The budget's filter without its record-type exclusion (None when nothing is left)."""
    if expression is None or _is_exclusion(expression):
        return None
    if set(expression) == {"And"}:
        kept = [e for e in expression["And"] if not _is_exclusion(e)]
        if not kept:
            return None
        return kept[0] if len(kept) == 1 else {"And": kept}
    return expression


def _excluded(expression: Any) -> tuple[str, ...]:
    """The record types a filter's exclusion leaves out (its top, or a top-level And's member)."""
    members = expression.get("And", [expression]) if isinstance(expression, dict) else []
    return tuple(
        sorted(
            {str(v) for e in members if _is_exclusion(e) for v in e["Not"]["Dimensions"].get("Values", [])}
        )
    )


def combined_filter(own: Any, exclude: tuple[str, ...]) -> Any:
    """``own`` and one exclusion of ``exclude`` (None for no filter); ValueError when the two
    cannot be combined within MAX_EXPRESSION_DEPTH levels."""
    if not exclude:
        return own
    exclusion = {"Not": {"Dimensions": {"Key": "RECORD_TYPE", "Values": list(exclude)}}}
    if own is None:
        return exclusion
    combined = {"And": [*own["And"], exclusion]} if set(own) == {"And"} else {"And": [own, exclusion]}
    depth = expression_depth(combined)
    if depth > MAX_EXPRESSION_DEPTH:
        raise ValueError(
            f"the budget's own FilterExpression nests {expression_depth(own)} deep; with the exclusion of "
            f"{','.join(exclude)} it would nest {depth} deep and AWS Budgets takes at most "
            f"{MAX_EXPRESSION_DEPTH}: the budget was not changed (simplify its filter, or exclude nothing)"
        )
    return combined


def legacy_basis(budget: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    """The Metric and excluded record types a budget on CostTypes counts (docs/cost-basis.md),
    or ValueError naming what has no faithful equivalent."""
    cost_filters = budget.get("CostFilters") or {}
    if cost_filters:
        raise ValueError(
            f"the budget filters with the deprecated CostFilters {json.dumps(cost_filters, sort_keys=True)}, "
            "which budget-sync does not convert: the budget was not changed (define the filter as a "
            "FilterExpression first)"
        )
    cost_types = budget.get("CostTypes") or {}
    unmapped = [flag for flag in LEGACY_UNMAPPED if cost_types.get(flag) is False]
    if unmapped:
        raise ValueError(
            f"the budget's CostTypes set {', '.join(f'{f}=false' for f in unmapped)}, which has no "
            "RECORD_TYPE equivalent budget-sync vouches for: the budget was not changed"
        )
    if cost_types.get("UseBlended") and cost_types.get("UseAmortized"):
        raise ValueError(
            "the budget's CostTypes set both UseBlended and UseAmortized: the budget was not changed"
        )
    metric = (
        "BlendedCost"
        if cost_types.get("UseBlended")
        else "AmortizedCost"
        if cost_types.get("UseAmortized")
        else "UnblendedCost"
    )
    excluded = tuple(sorted(v for flag, v in LEGACY_EXCLUSIONS.items() if cost_types.get(flag) is False))
    return metric, excluded


def apply_cost_basis(
    budgets: BudgetsClient, account_id: str, budget_name: str, basis: CostBasis
) -> tuple[int, str]:
    """Give the budget ``basis`` (read-modify-write); return (changing calls, the CostBasis JSON)."""
    budget = dict(
        budgets.describe_budget(AccountId=account_id, BudgetName=budget_name, ShowFilterExpression=True)[
            "Budget"
        ]
    )
    definition: dict[str, Any] = {key: value for key, value in budget.items() if key in DEFINITION}
    if definition.get("PlannedBudgetLimits") is not None:
        definition.pop("BudgetLimit", None)  # one of the two, as UpdateBudget takes it
    current_filter = definition.get("FilterExpression")
    if definition.get("Metrics") or current_filter is not None:
        metric = basis.metric or (definition.get("Metrics") or ["UnblendedCost"])[0]
        own, excluded = own_filter(current_filter), _excluded(current_filter)
    else:  # still on CostTypes: moves once
        legacy_metric, excluded = legacy_basis(definition)
        metric, own = basis.metric or legacy_metric, None
    exclude = excluded if basis.exclude is None else basis.exclude
    new_filter = combined_filter(own, exclude)
    applied = json.dumps({"metric": metric, "exclude": list(exclude)}, sort_keys=True, separators=(",", ":"))
    new_budget = {
        k: v for k, v in definition.items() if k not in ("CostTypes", "CostFilters", "FilterExpression")
    }
    new_budget["Metrics"] = [metric]
    if new_filter is not None:
        new_budget["FilterExpression"] = new_filter
    unchanged = (
        definition.get("Metrics") == [metric]
        and current_filter == new_filter
        and not definition.get("CostFilters")
    )
    if unchanged:
        return 0, applied
    budgets.update_budget(AccountId=account_id, NewBudget=new_budget)  # type: ignore[arg-type]
    return 1, applied


def _notification(key: Key) -> NotificationTypeDef:
    kind, threshold = key
    return {
        "NotificationType": "ACTUAL" if kind == "ACTUAL" else "FORECASTED",
        "ComparisonOperator": "GREATER_THAN",
        "Threshold": float(threshold),
        "ThresholdType": "PERCENTAGE",
    }


def _subscriber(sub: Sub) -> SubscriberTypeDef:
    return {"SubscriptionType": "SNS" if sub[0] == "SNS" else "EMAIL", "Address": sub[1]}


def _key(notification: NotificationTypeDef) -> Key | None:
    """budget-sync's key of a notification, None if it is not one budget-sync would create."""
    if notification.get("ComparisonOperator") != "GREATER_THAN":
        return None
    if notification.get("ThresholdType", "PERCENTAGE") != "PERCENTAGE":
        return None
    try:
        threshold = threshold_text("Threshold", str(notification["Threshold"]))
    except ValueError:
        return None
    return (notification["NotificationType"], threshold)


def current_alerts(
    budgets: BudgetsClient, account_id: str, budget_name: str
) -> list[tuple[NotificationTypeDef, set[Sub]]]:
    """The budget's notifications, each with its subscribers."""
    found: list[tuple[NotificationTypeDef, set[Sub]]] = []
    pages = budgets.get_paginator("describe_notifications_for_budget")
    for page in pages.paginate(AccountId=account_id, BudgetName=budget_name):
        for notification in page.get("Notifications", []):
            subscribers: set[Sub] = set()
            sub_pages = budgets.get_paginator("describe_subscribers_for_notification")
            for sub_page in sub_pages.paginate(
                AccountId=account_id, BudgetName=budget_name, Notification=notification
            ):
                subscribers |= {
                    (s["SubscriptionType"], s["Address"]) for s in sub_page.get("Subscribers", [])
                }
            found.append((notification, subscribers))
    return found


def reconcile(budgets: BudgetsClient, account_id: str, budget_name: str, alerts: Alerts) -> int:
    """Make the budget's notifications and subscribers ``alerts``; return the number of changing calls."""
    want = alerts.notifications()
    current = current_alerts(budgets, account_id, budget_name)
    keep: list[tuple[NotificationTypeDef, Key, set[Sub]]] = []
    stale: list[tuple[NotificationTypeDef, set[Sub]]] = []
    for notification, subscribers in current:
        key = _key(notification)
        if key in want and key not in {k for _, k, _ in keep}:
            keep.append((notification, key, subscribers))
        else:
            stale.append((notification, subscribers))
    missing = sorted(
        (k for k in want if k not in {k for _, k, _ in keep}), key=lambda k: (k[0], Decimal(k[1]))
    )
    calls = 0
    # a stale notification becomes a missing one in place: same type first, then any
    stale.sort(key=lambda item: (item[0]["NotificationType"], float(item[0]["Threshold"])))
    for same_type in (True, False):
        for key in list(missing):
            match = next((s for s in stale if not same_type or s[0]["NotificationType"] == key[0]), None)
            if match is None:
                continue
            stale.remove(match)
            missing.remove(key)
            budgets.update_notification(
                AccountId=account_id,
                BudgetName=budget_name,
                OldNotification=match[0],
                NewNotification=_notification(key),
            )
            calls += 1
            keep.append((_notification(key), key, match[1]))
    for notification, _ in stale:  # deleted before any is created: at most 10 per budget
        with contextlib.suppress(budgets.exceptions.NotFoundException):  # an overlapping run deleted it
            budgets.delete_notification(
                AccountId=account_id, BudgetName=budget_name, Notification=notification
            )
        calls += 1
    for key in missing:
        try:
            budgets.create_notification(
                AccountId=account_id,
                BudgetName=budget_name,
                Notification=_notification(key),
                Subscribers=[_subscriber(s) for s in sorted(want[key])],
            )
        except budgets.exceptions.DuplicateRecordException:
            keep.append((_notification(key), key, set()))  # an overlapping run created it
        calls += 1
    for notification, key, has in keep:
        calls += _reconcile_subscribers(budgets, account_id, budget_name, notification, has, want[key])
    return calls


def _reconcile_subscribers(
    budgets: BudgetsClient,
    account_id: str,
    budget_name: str,
    notification: NotificationTypeDef,
    has: set[Sub],
    want: set[Sub],
) -> int:
    """Updates first (an address changed), then creates, then deletes: never zero subscribers."""
    extra = sorted(has - want)
    missing = sorted(want - has)
    calls = 0
    for kind in ("EMAIL", "SNS"):
        old = [s for s in extra if s[0] == kind]
        new = [s for s in missing if s[0] == kind]
        for before, after in zip(old, new, strict=False):
            budgets.update_subscriber(
                AccountId=account_id,
                BudgetName=budget_name,
                Notification=notification,
                OldSubscriber=_subscriber(before),
                NewSubscriber=_subscriber(after),
            )
            extra.remove(before)
            missing.remove(after)
            calls += 1
    for sub in missing:
        # an overlapping run created it
        with contextlib.suppress(budgets.exceptions.DuplicateRecordException):
            budgets.create_subscriber(
                AccountId=account_id,
                BudgetName=budget_name,
                Notification=notification,
                Subscriber=_subscriber(sub),
            )
        calls += 1
    for sub in extra:
        with contextlib.suppress(budgets.exceptions.NotFoundException):  # an overlapping run deleted it
            budgets.delete_subscriber(
                AccountId=account_id,
                BudgetName=budget_name,
                Notification=notification,
                Subscriber=_subscriber(sub),
            )
        calls += 1
    return calls


def _read_settings(ssm: SSMClient, names: tuple[str, ...]) -> tuple[list[dict[str, Any]], list[int]]:
    """The JSON object parameters ``names``, in one GetParameters call, and their versions;
    a missing parameter reads as {} (no settings: the defaults), version 0."""
    parameters = {p["Name"]: p for p in ssm.get_parameters(Names=list(names))["Parameters"]}
    settings = [_json_object(name, parameters[name]["Value"]) if name in parameters else {} for name in names]
    return settings, [int(parameters[name]["Version"]) if name in parameters else 0 for name in names]


def _json_object(name: str, text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        raise ValueError(f"parameter {name} holds {text!r}, not JSON") from None
    if not isinstance(value, dict):
        raise ValueError(f"parameter {name} holds {text!r}, not a JSON object")
    return value


def report(events_client: Any, detail: dict[str, Any]) -> None:
    """Put the outcome on this account's default bus; raise if EventBridge refused it."""
    answer = events_client.put_events(
        Entries=[{"Source": REPORT_SOURCE, "DetailType": REPORT_DETAIL_TYPE, "Detail": json.dumps(detail)}]
    )
    if answer.get("FailedEntryCount"):
        raise RuntimeError(f"the result could not be reported: {answer['Entries']}")


def handler(events: dict[str, Any], context: Any) -> dict[str, str]:
    """aws:executeScript entry point; ``events`` is the step's InputPayload."""
    detail: dict[str, Any] = {
        "Step": STEP,
        "AccountId": events["AccountId"],
        "BudgetName": events["BudgetName"],
        "ParameterName": events.get("ParameterName", ""),
        "ExecutionId": events.get("ExecutionId", ""),
        "ParameterVersion": int(events["ParameterVersion"]),
    }
    seen: dict[str, Any] = {}  # the versions of the settings last read (AlertsVersions)
    try:
        result = _reconcile_newest(events, seen)
    except Exception as exc:
        failed = {**detail, **seen, "Outcome": "FAILED", "Reason": str(exc)}
        report(boto3.client("events", config=RETRIES), failed)
        raise
    report(boto3.client("events", config=RETRIES), {**detail, **seen, "Outcome": "APPLIED", **result})
    return result


def _reconcile_newest(events: dict[str, Any], seen: dict[str, Any]) -> dict[str, str]:
    """Reconcile until the settings read before and after a pass are the same (step 4).
    ``seen["AlertsVersions"]``: the versions of the settings being applied (the report's order)."""
    ssm: SSMClient = boto3.client("ssm", config=RETRIES)
    budgets: BudgetsClient = boto3.client("budgets", config=RETRIES)
    names = (events["AlertParameterName"], events["AlertDefaultsParameterName"])
    read, versions = _read_settings(ssm, names)
    calls = 0
    conflicts = (budgets.exceptions.NotFoundException, budgets.exceptions.DuplicateRecordException)
    cost_basis = ""
    for attempt in range(MAX_PASSES):
        seen["AlertsVersions"] = versions
        alerts = desired_alerts(*read)
        basis = desired_cost_basis(*read)  # both validated before any call
        try:
            calls += reconcile(budgets, events["AccountId"], events["BudgetName"], alerts)
            if basis is not None:
                changed, cost_basis = apply_cost_basis(
                    budgets, events["AccountId"], events["BudgetName"], basis
                )
                calls += changed
            else:
                cost_basis = ""
        except conflicts:
            if attempt == MAX_PASSES - 1:
                raise
            read, versions = _read_settings(ssm, names)
            continue  # an overlapping run changed the budget under this one: read it again
        again, versions = _read_settings(ssm, names)
        if again == read:
            seen["AlertsVersions"] = versions  # the same settings, perhaps rewritten: the newest
            break
        read = again  # written while this run reconciled: end at the newest settings
    health = budget_health(budgets, events["AccountId"], events["BudgetName"])
    return {
        "Action": "Reconciled" if calls else "Unchanged",
        "Calls": str(calls),
        "Applied": alerts.summary(),
        "CostBasis": cost_basis,
        "HealthStatus": health[0],
        "HealthReason": health[1],
    }


def budget_health(budgets: BudgetsClient, account_id: str, budget_name: str) -> tuple[str, str]:
    """The budget's HealthStatus: (Status, StatusReason), "" for what AWS does not give."""
    budget: dict[str, Any] = dict(
        budgets.describe_budget(AccountId=account_id, BudgetName=budget_name)["Budget"]
    )
    health = budget.get("HealthStatus") or {}
    return str(health.get("Status") or ""), str(health.get("StatusReason") or "")
