"""The alert columns of ``status``: what was sent (status table) and what the spoke budget has.

``AlertsSent`` is the status table's ``AlertSettings`` (the JSON the update function last wrote
to the spoke's /BlogBudgets/AlertSettings; ``defaults`` for ``{}``). ``SpokeAlerts`` is read
from the spoke budget through the spoke role (DescribeNotificationsForBudget and
DescribeSubscribersForNotification, which budgets:ViewBudget allows): one line per
notification, ``ACTUAL>80%: a@example.com,b@example.com``. Both are shown as text.

``CostBasis`` is what the spoke confirmed its budget counts (the status table's
``ConfirmedCostBasis``, budget_sync.cost_basis): ``AmortizedCost excl. Credit,Refund``,
``UnblendedCost`` (nothing excluded), ``budget's own`` (no cost basis set anywhere), or none
before a spoke confirmed one.

A table shows neither whole: its ``Alerts`` column is one line per account, the spoke
budget's notifications and how many recipients they have (``ACTUAL>80%, ACTUAL>100%,
FORECASTED>100% → 2 recipients``). JSON and CSV carry both columns whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from budget_sync.cost_basis import confirmed_text
from budget_sync.errors import BudgetSyncError
from budget_sync.status_table import read_statuses
from budgetctl.context import Context


def add_alert_columns(ctx: Context, rows: list[dict[str, Any]], spoke_accounts: Iterable[str]) -> None:
    statuses = read_statuses(ctx.dynamodb, ctx.args.status_table)
    wanted = sorted(set(spoke_accounts))

    def read(account: str) -> tuple[str, list[str] | str | None]:
        try:
            lines = ctx.spokes.read_alerts(account, ctx.args.budget_name)
        except BudgetSyncError as exc:
            return account, f"unreadable: {exc}"
        return account, lines

    with ThreadPoolExecutor(max_workers=min(ctx.args.concurrency, max(len(wanted), 1))) as pool:
        spoke = dict(pool.map(read, wanted))
    for row in rows:
        account = str(row.get("AccountId"))
        row["AlertsSent"] = sent_text((statuses.get(account) or {}).get("AlertSettings"))
        found = spoke.get(account)
        row["SpokeAlerts"] = ("; ".join(found) or "none") if isinstance(found, list) else found
        row["Alerts"] = alerts_summary(found)
        row["CostBasis"] = confirmed_text((statuses.get(account) or {}).get("ConfirmedCostBasis"))


def alerts_summary(found: list[str] | str | None) -> str | None:
    """The spoke budget's notifications in one line: ``ACTUAL>80%, FORECASTED>100% → 2
    recipients``; ``none``; or ``unreadable`` (the reason is in the JSON's SpokeAlerts)."""
    if found is None or isinstance(found, str):
        return None if found is None else "unreadable"
    if not found:
        return "none"
    kinds = [line.partition(": ")[0] for line in found]
    recipients = {a for line in found for a in line.partition(": ")[2].split(",") if a}
    return f"{', '.join(kinds)} → {len(recipients)} recipient(s)"


def sent_text(settings: object) -> str | None:
    """``{"emails":[...],"actual":[...]}`` -> ``emails=a@x.com,b@x.com actual=80,100``."""
    if not isinstance(settings, str):
        return None
    try:
        body = json.loads(settings)
    except ValueError:
        return settings
    if not isinstance(body, dict):
        return settings
    if not body:
        return "defaults"
    parts = []
    for key in ("emails", "actual", "forecasted", "metric", "exclude"):
        if key in body:
            value = body[key]
            parts.append(f"{key}={','.join(map(str, value)) if isinstance(value, list) else value}")
    return " ".join(parts)
