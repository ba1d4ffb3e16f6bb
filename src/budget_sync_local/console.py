"""What the local organisation shows on the console: each step as it happens, a progress
bar for long set-up, and the table of accounts at the end."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from budget_sync.history import numbered
from budget_sync_local.organisation import AccountView
from budget_sync_local.pipeline import Step
from budgetctl.commands.history import short_principal

#: Where each step of the pipeline is shown: its number in the README's diagram.
CIRCLED = "①②③④⑤⑥⑦"
Show = Callable[[Console, Step], None]


def _batch(console: Console, step: Step) -> None:
    d = step.detail
    outcome = (
        "nothing to retry" if d.get("failed_from") is None else f"retry from record {d['failed_from'] + 1}"
    )
    if d.get("error"):
        outcome = f"function error: {d['error']}"
    console.print(f"  {CIRCLED[1]} stream → update function: {d['records']} record(s), {outcome}")


def _automation(console: Console, step: Step) -> None:
    """One Automation run, one line: the parameter whose change started it (④) and what its
    steps did to the budget and its alerts (⑤)."""
    d = step.detail
    line = Text(f"  {CIRCLED[3]} {step.account}: rule matched → Automation document")
    if d.get("parameter"):
        line.append(f" ({d['parameter']})")
    if d.get("status") != "Success":
        line.append(f": {CIRCLED[4]} ")
        line.append(f"automation {d.get('status')}", style="red")
        line.append(f": {d.get('failure') or d.get('error')}")
        console.print(line, soft_wrap=True)  # one line per event, however long
        return
    outputs = d.get("outputs", {})
    old = _first(outputs.get("UpdateBudgetLimit.OldLimit"))
    new = _first(outputs.get("UpdateBudgetLimit.NewLimit"))
    action = str(_first(outputs.get("UpdateBudgetLimit.Action")) or "done").lower()
    line.append(f": {CIRCLED[4]} budget {action}: limit {old or '—'} → {new}")
    if _first(outputs.get("ReconcileAlerts.Action")) == "Reconciled":
        line.append(
            f"; alerts reconciled in {_first(outputs.get('ReconcileAlerts.Calls'))} call(s): "
            f"{_alerts_text(_first(outputs.get('ReconcileAlerts.Applied')))}"
        )
    console.print(line, soft_wrap=True)


def _result(console: Console, step: Step) -> None:
    """One spoke report, one line: which step of the document reported (UpdateBudgetLimit,
    ReconcileAlerts), which parameter's change started the run, and the status after it."""
    d = step.detail
    if d.get("error"):
        console.print(f"  {CIRCLED[6]} {step.account}: [red]{escape(str(d['error']))}[/]")
        return
    about = f"{d.get('step') or d.get('kind')}" + (
        f" (run for {d['started_by']})" if d.get("started_by") else ""
    )
    console.print(
        Text(
            f"  {CIRCLED[6]} {step.account} → management result bus: {about} ({d.get('outcome')}); "
            f"status {d.get('recorded') or 'unchanged'}"
        ),
        soft_wrap=True,
    )


def _resolver_actions(result: Any) -> str:
    return ", ".join(f"{k} {v}" for k, v in ((result or {}).get("actions") or {}).items()) or "nothing to do"


def _resolver(console: Console, step: Step) -> None:
    d = step.detail
    console.print(
        f"  ◆ {d['rule']} → resolver: {_resolver_actions(d.get('result'))} "
        f"({(d.get('result') or {}).get('organizations_calls', 0)} Organizations calls)"
    )


def _resolver_batch(console: Console, step: Step) -> None:
    d = step.detail
    console.print(
        f"  ◆ {d['mapping']} ({d['records']} record(s)) → resolver: {_resolver_actions(d.get('result'))} "
        f"({(d.get('result') or {}).get('organizations_calls', 0)} Organizations calls)"
    )


def _line(template: str) -> Show:
    """A step shown as one line: ``template`` formatted with the account and the step's detail."""

    def show(console: Console, step: Step) -> None:
        console.print(
            template.format(account=step.account, **{k: escape(str(v)) for k, v in step.detail.items()})
        )

    return show


#: step kind -> how it is shown (pipeline.Step, organisation, enrolment, mappings)
SHOW: dict[str, Show] = {
    "batch": _batch,
    "parameter-change": _line(f"  {CIRCLED[2]} {{account}}: parameter {{name}} written ({{operation}})"),
    "ignored-event": _line(f"  {CIRCLED[3]} {{account}}: event not routed: {{reason}}"),
    "automation": _automation,
    "refused": _line(f"  {CIRCLED[1]} {{account}}: [red]FAILED[/]: {{reason}}"),
    "result": _result,
    "notified": _line(
        f"  {CIRCLED[6]} {{account}}: [red]new failure[/] ({{source}}) published once to the alarm topic"
    ),
    "status": _line(f"  {CIRCLED[1]} {{account}} (not an account here): {{status}}: {{reason}}"),
    "batch-response": lambda console, step: console.print(
        f"  {CIRCLED[1]} batch response: {json.dumps(step.detail['response'])}"
    ),
    "delivery": _line("  ↻ {account}: {kind} delivered {delivery} (EventBridge: at least once, no order)"),
    "schedule": _line("  ◷ {schedule}: its schedule ran (local time-scale, docs/local.md)"),
    "incident": _line(
        "  ⚑ {account}: ServiceNow incident {number} {change} by IncidentFunction ({via}; state {state}, "
        "urgency {urgency}): {short_description}"
    ),
    "org-event": _line("  ◆ {account}: event {event} ({source})"),
    "resolver": _resolver,
    "resolver-batch": _resolver_batch,
    "stackset-deploy": _line("  ◆ {account}: StackSet {stack_set} deployed the spoke stack"),
    "error": lambda console, step: console.print(f"[red]{step.detail['error']}[/]"),
    "retry": lambda console, step: console.print(f"  {CIRCLED[1]} retry: {dict(step.detail)}"),
    "on-failure": lambda console, step: console.print(f"  {CIRCLED[1]} on-failure: {dict(step.detail)}"),
}


def step_printer(console: Console) -> Callable[[Step], None]:
    """The observer that shows each step as it happens (unknown kinds are not shown)."""

    def show(step: Step) -> None:
        shown = SHOW.get(step.kind)
        if shown is not None:
            shown(console, step)

    return show


def progress_bar(console: Console) -> tuple[Progress, Callable[[str, int, int], None]]:
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    tasks: dict[str, Any] = {}

    def update(what: str, done: int, total: int) -> None:
        if what not in tasks:
            tasks[what] = progress.add_task(what, total=total)
        progress.update(tasks[what], completed=done)

    return progress, update


def _alerts_text(applied: object) -> str:
    """The document's Applied output (JSON) as one line; text from the spoke stays text."""
    try:
        body = json.loads(str(applied))
    except ValueError:
        return str(applied)
    actual = ",".join(f"{t}%" for t in body.get("actual", [])) or "none"
    return (
        f"ACTUAL > {actual}, FORECASTED > {body.get('forecasted', 'none')}"
        + ("%" if body.get("forecasted", "none") != "none" else "")
        + f" → {', '.join(body.get('emails', []))}"
    )


def _first(value: Any) -> Any:
    """Automation outputs are lists of strings."""
    return value[0] if isinstance(value, list) and value else value


def _amount(value: Decimal | str | None) -> str:
    """As stored: 12.345 stays 12.345 (an invalid value must show as it was typed)."""
    return "—" if value is None else str(value)


def _percent(value: Decimal) -> str:
    return f"{value.normalize():f}"


def account_table(views: Sequence[AccountView], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in (
        "account",
        "desired",
        "source",
        "parameter",
        "budget limit",
        "status",
        "actual / forecast",
        "alerts that fire",
        "notified",
        "alerts configured",
    ):
        table.add_column(column, overflow="fold")
    for view in views:
        firing = [a for a in view.alerts if a.fires]
        labels = [
            f"{a.notification_type} > {_percent(a.threshold)}{'%' if a.threshold_type == 'PERCENTAGE' else ' USD'}"
            for a in firing
        ]
        notified = sorted({address for a in firing for address in a.subscribers})
        status = view.status or "—"
        if view.reason:
            status += f"\n[dim]{view.reason}[/]"
        table.add_row(
            view.account_id,
            _amount(view.desired),
            view.source or "—",
            _amount(view.parameter),
            _amount(view.budget_limit),
            status,
            f"{_amount(view.actual_spend)} / {_amount(view.forecasted_spend)}",
            "\n".join(labels) or "none",
            "\n".join(notified) or "—",
            _configured(view),
        )
    return table


def _configured(view: AccountView) -> Text:
    """Every notification of the budget (type, threshold) and its recipients, as plain text."""
    by_type: dict[str, list[str]] = {}
    recipients: set[str] = set()
    for alert in view.alerts:
        unit = "%" if alert.threshold_type == "PERCENTAGE" else " USD"
        by_type.setdefault(alert.notification_type, []).append(f"{_percent(alert.threshold)}{unit}")
        recipients.update(alert.subscribers)
    lines = [f"{kind} > {', '.join(values)}" for kind, values in sorted(by_type.items())]
    lines += sorted(recipients)
    return Text("\n".join(lines) or "none")


def history_table(records: Sequence[Any], title: str) -> Table:
    """One account's history as ``budgetctl history ACCOUNT`` gives it (newest first: revision,
    time, who, change, outcome); ``records`` are budget_sync.history records. Text from outside
    (a reason, a principal) is shown as text, never markup."""
    table = Table(title=title, title_justify="left")
    for column in ("rev", "time (UTC)", "who", "change", "outcome"):
        table.add_column(column, overflow="fold")
    for revision, record in numbered(records):
        table.add_row(
            str(revision),
            record.at[:19].replace("T", " "),
            Text(short_principal(record.who())),
            Text(record.change() or "—"),
            Text(record.outcome()),
        )
    return table
