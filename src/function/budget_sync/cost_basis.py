"""An account's cost basis on its budgets-table item: what AWS Budgets counts as spend. Pure Python.

Optional attributes of the item (each one absent: the spoke stack's default for it, and with
no default anywhere the budget's own definition is left exactly as it is):

  CostMetric      S  one of METRICS' words: the budget's ``Metrics`` (AWS Budgets takes at
                     most one, botocore's Budgets model: ``Metrics`` max 1), e.g. ``amortized``
  CostExclusions  S  "credits,refunds" (comma separated), SS or L of S: the record types the
                     budget leaves out, each one of EXCLUSIONS' words, as one ``Not`` of a
                     ``RECORD_TYPE`` dimension in the budget's ``FilterExpression``; ``none``:
                     exclude nothing (overrides a default that excludes something)

An empty value counts as absent. The words are the operator's; what each means for AWS is in
docs/cost-basis.md, with AWS's source.

A default of an OU or the root (the defaults table's item) may carry the same two attributes,
validated by this same module. The resolver (budget_sync.resolve) copies what an account
inherits from them onto its budgets-table item as ``InheritedCostMetric`` and
``InheritedCostExclusions`` (canonical text, only the resolver writes them), field by field
from the nearest default that sets the field; the account's own attribute wins over them
(``parse_cost_basis``), and the spoke stack's default is used only for a field that neither
sets. So an account with its own ``BudgetValue`` but no own cost basis still gets its OU's.

Delivery: the cost basis travels inside the account's alert settings (``AlertSettings``, the
JSON the update function writes to ``/BlogBudgets/AlertSettings``, fields ``metric`` and
``exclude``), and the organisation-wide default inside the stack's ``/BlogBudgets/AlertDefaults``
(the spoke stack's ``DefaultCostMetric`` and ``DefaultCostExclusions``). One parameter rather
than a new one beside it, because everything the alert settings already have is what the cost
basis needs: one write per change, the parameter version that makes a status APPLIED only once
the spoke's ReconcileAlerts step reported applying it (budget_sync.results), the rule that
starts the Automation document, the read permissions of the spoke, read and Automation roles,
and the 4,096-character limit already checked over the whole JSON. A new parameter would need
all of those twice. The Automation script (src/budget_sync_spoke/alerts.py) repeats these rules;
a test keeps the words equal.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from budget_sync.errors import InvalidItemError

COST_METRIC_FIELD = "CostMetric"
COST_EXCLUSIONS_FIELD = "CostExclusions"
COST_FIELDS = (COST_METRIC_FIELD, COST_EXCLUSIONS_FIELD)
#: What an account inherits from the defaults of its OUs and root (only the resolver writes them).
INHERITED_COST_METRIC_FIELD = "InheritedCostMetric"
INHERITED_COST_EXCLUSIONS_FIELD = "InheritedCostExclusions"
INHERITED_COST_FIELDS = (INHERITED_COST_METRIC_FIELD, INHERITED_COST_EXCLUSIONS_FIELD)
NONE = "none"

#: The operator's word -> AWS Budgets' ``Metric`` (botocore's Budgets model, enum ``Metric``;
#: the cost ones: UsageQuantity, NormalizedUsageAmount and Hours measure usage, not spend).
METRICS = {
    "unblended": "UnblendedCost",
    "blended": "BlendedCost",
    "amortized": "AmortizedCost",
    "net-unblended": "NetUnblendedCost",
    "net-amortized": "NetAmortizedCost",
}
#: The operator's word -> a value of the Cost Explorer dimension ``RECORD_TYPE`` (the
#: "charge type" of the Billing console) that the budget's filter leaves out.
EXCLUSIONS = {
    "credits": "Credit",
    "refunds": "Refund",
    "tax": "Tax",
    "support": "Support",
    "upfront": "Upfront",
}


@dataclass(frozen=True, slots=True)
class CostBasis:
    """What an item says about its cost basis; None for a field means "the stack's default".

    ``exclude`` is a sorted tuple of EXCLUSIONS' words; an empty tuple is ``none``.
    """

    metric: str | None = None
    exclude: tuple[str, ...] | None = None

    @property
    def is_default(self) -> bool:
        return self.metric is None and self.exclude is None

    def over(self, below: CostBasis) -> CostBasis:
        """This cost basis, each field it leaves to the default taken from ``below``."""
        return CostBasis(
            metric=self.metric if self.metric is not None else below.metric,
            exclude=self.exclude if self.exclude is not None else below.exclude,
        )

    def inherited_columns(self) -> dict[str, str | None]:
        """The columns as the resolver writes them on an item: InheritedCostMetric, ...Exclusions."""
        columns = self.columns()
        return {
            INHERITED_COST_METRIC_FIELD: columns[COST_METRIC_FIELD],
            INHERITED_COST_EXCLUSIONS_FIELD: columns[COST_EXCLUSIONS_FIELD],
        }

    def parameter_fields(self) -> dict[str, object]:
        """The fields of the alert settings' JSON: ``metric`` and ``exclude`` (a list)."""
        body: dict[str, object] = {}
        if self.metric is not None:
            body["metric"] = self.metric
        if self.exclude is not None:
            body["exclude"] = list(self.exclude)
        return body

    def columns(self) -> dict[str, str | None]:
        """The two attributes as text (budgetctl, CSV): ``amortized``, ``credits,refunds``."""
        return {
            COST_METRIC_FIELD: self.metric,
            COST_EXCLUSIONS_FIELD: None if self.exclude is None else (",".join(self.exclude) or NONE),
        }


def parse_cost_basis(item: Mapping[str, object], account_id: str | None = None) -> CostBasis:
    """The item's cost basis, or InvalidItemError naming the field and the value: its own
    attributes, each absent one taken from what it inherits from a default
    (``InheritedCostMetric``/``InheritedCostExclusions``, written by the resolver)."""
    own = CostBasis(
        metric=_metric(item.get(COST_METRIC_FIELD), account_id),
        exclude=_exclusions(item.get(COST_EXCLUSIONS_FIELD), account_id),
    )
    return own.over(inherited_cost_basis(item, account_id))


def own_attributes(item: Mapping[str, object]) -> dict[str, object]:
    """The item without what it inherits (what ``get`` and ``export`` show as the account's own)."""
    return {k: v for k, v in item.items() if k not in INHERITED_COST_FIELDS}


def inherited_cost_basis(item: Mapping[str, object], account_id: str | None = None) -> CostBasis:
    """What an account's item holds as inherited from the defaults (the resolver's attributes)."""
    return CostBasis(
        metric=_metric(item.get(INHERITED_COST_METRIC_FIELD), account_id, INHERITED_COST_METRIC_FIELD),
        exclude=_exclusions(
            item.get(INHERITED_COST_EXCLUSIONS_FIELD), account_id, INHERITED_COST_EXCLUSIONS_FIELD
        ),
    )


def _metric(value: object, account_id: str | None, field: str = COST_METRIC_FIELD) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    word = value.strip().lower() if isinstance(value, str) else None
    if word not in METRICS:
        raise InvalidItemError(field, value, f"is not a cost metric; one of {', '.join(METRICS)}", account_id)
    return word


def _exclusions(
    value: object, account_id: str | None, field: str = COST_EXCLUSIONS_FIELD
) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        parts: list[object] = [p.strip() for p in value.split(",") if p.strip()]
    elif isinstance(value, (set, frozenset, list, tuple)):
        parts = [p.strip() if isinstance(p, str) else p for p in value]
        parts = [p for p in parts if p != ""]
    else:
        parts = [value]
    if not parts:
        return None
    words = [p.lower() if isinstance(p, str) else p for p in parts]
    if words == [NONE]:
        return ()
    for part, word in zip(parts, words, strict=True):
        if word not in EXCLUSIONS:
            raise InvalidItemError(
                field,
                part,
                f"is not a record type budget-sync excludes; one of {', '.join(EXCLUSIONS)}, or {NONE} alone",
                account_id,
            )
    unique = sorted({str(w) for w in words})
    if len(unique) != len(words):
        raise InvalidItemError(
            field, ",".join(str(p) for p in parts), "names a record type twice", account_id
        )
    return tuple(unique)


def unconfirmed(sent_settings: str | None, confirmed: str | None) -> str:
    """Why the spoke's report does not confirm the cost basis in the alert settings sent ('' if
    it does, or if none was sent). ``sent_settings`` is the status item's AlertSettings (the JSON
    written to the spoke), ``confirmed`` the report's CostBasis (``{"metric": "AmortizedCost",
    "exclude": ["Credit"]}``; None: a spoke script older than cost bases, which does not apply
    one). Pure."""
    try:
        sent = json.loads(sent_settings or "{}")
    except ValueError:
        return ""
    if not isinstance(sent, dict) or ("metric" not in sent and "exclude" not in sent):
        return ""
    if not confirmed:
        return (
            "cost basis not applied: the spoke stack's Automation document does not apply a cost basis "
            "(update the spoke stack to the current template-spoke.yaml)"
        )
    try:
        applied = json.loads(confirmed)
    except ValueError:
        return f"cost basis not applied: the spoke reported {confirmed!r}"
    differences = []
    if "metric" in sent and applied.get("metric") != METRICS.get(str(sent["metric"])):
        differences.append(f"metric {applied.get('metric')} instead of {METRICS.get(str(sent['metric']))}")
    if "exclude" in sent:
        wanted = sorted(EXCLUSIONS.get(str(w), str(w)) for w in sent["exclude"])
        if sorted(applied.get("exclude") or []) != wanted:
            differences.append(
                f"excludes {applied.get('exclude') or 'nothing'} instead of {wanted or 'nothing'}"
            )
    return f"cost basis not applied: the budget counts {'; '.join(differences)}" if differences else ""


def cost_basis_attributes(
    metric: str | None, exclude: str | None, account_id: str | None = None
) -> dict[str, object]:
    """Validated item attributes from an operator's text (budgetctl options, CSV columns), as
    budget_sync.alerts.alert_attributes: a None argument is left out (not touched); an empty
    text means "remove the attribute" (None in the result)."""
    given = {COST_METRIC_FIELD: metric, COST_EXCLUSIONS_FIELD: exclude}
    columns = parse_cost_basis({k: v for k, v in given.items() if v is not None}, account_id).columns()
    return {field: columns[field] for field, text in given.items() if text is not None}


def confirmed_text(confirmed: object) -> str | None:
    """``{"metric":"AmortizedCost","exclude":["Credit"]}`` -> ``AmortizedCost excl. Credit``;
    ``""`` -> ``budget's own``; None (no report yet) -> None. What ``status`` and the report show. Pure."""
    if not isinstance(confirmed, str):
        return None
    if not confirmed:
        return "budget's own"
    try:
        body = json.loads(confirmed)
    except ValueError:
        return confirmed
    if not isinstance(body, dict):
        return confirmed
    excluded = ",".join(map(str, body.get("exclude") or []))
    return f"{body.get('metric', '?')}" + (f" excl. {excluded}" if excluded else "")


def expected_basis(settings: CostBasis, defaults: Mapping[str, object]) -> CostBasis | None:
    """The item's cost basis over the spoke stack's defaults (the AlertDefaults JSON's ``metric``
    and ``exclude``, text), field by field, as the spoke's ReconcileAlerts step merges them; None
    when neither sets one (the budget's definition is then its own). A default the spoke would
    refuse is InvalidItemError naming it."""
    stack = parse_cost_basis(
        {
            COST_METRIC_FIELD: defaults.get("metric") or None,
            COST_EXCLUSIONS_FIELD: defaults.get("exclude") or None,
        }
    )
    merged = CostBasis(
        metric=settings.metric if settings.metric is not None else stack.metric,
        exclude=settings.exclude if settings.exclude is not None else stack.exclude,
    )
    return None if merged.is_default else merged


def _record_types_excluded(expression: object) -> list[str] | None:
    """The RECORD_TYPE values a filter's exclusion leaves out (at its top, or a member of a
    top-level And, where the spoke puts it); None when it has none."""
    if not isinstance(expression, Mapping):
        return None
    members = expression.get("And") if set(expression) == {"And"} else [expression]
    found: list[str] | None = None
    for member in members if isinstance(members, list) else []:
        inner = member.get("Not") if isinstance(member, Mapping) and set(member) == {"Not"} else None
        dimension = (
            inner.get("Dimensions") if isinstance(inner, Mapping) and set(inner) == {"Dimensions"} else None
        )
        if isinstance(dimension, Mapping) and dimension.get("Key") == "RECORD_TYPE":
            found = sorted({*(found or []), *(str(v) for v in dimension.get("Values") or [])})
    return found


def basis_differs(
    expected: CostBasis, metrics: Sequence[str] | None, expression: object, on_cost_types: bool
) -> str:
    """Why a budget's definition (its Metrics, FilterExpression, and whether it is still on
    CostTypes) does not count what ``expected`` says ('' if it does). Pure."""
    differences = []
    if on_cost_types and not metrics:
        differences.append("the budget is still on CostTypes")
    if expected.metric is not None and list(metrics or []) != [METRICS[expected.metric]]:
        differences.append(f"Metrics {list(metrics or [])} instead of [{METRICS[expected.metric]!r}]")
    if expected.exclude is not None:
        wanted = sorted(EXCLUSIONS[w] for w in expected.exclude)
        excluded = _record_types_excluded(expression) or []
        if excluded != wanted:
            differences.append(f"excludes {excluded or 'nothing'} instead of {wanted or 'nothing'}")
    return "; ".join(differences)
