"""``python -m budget_sync_local demo | invoke EVENT | serve``: the local organisation.

demo    writes budgets for the spoke accounts (one with cents, one invalid), shows each of
        the six steps as it happens, and ends with a table per account. Exit status 1 if a
        valid budget did not arrive or an invalid one did.
invoke  runs the template's handler on a sample stream event (events/*.json), as
        ``sam local invoke -e`` would, then lets the spoke side react, and prints the
        batch response and each account's result.
serve   the organisation as an AWS endpoint on 127.0.0.1 (``make local``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from budget_sync_local.organisation import (
    DEFAULT_ACCOUNTS,
    MANAGEMENT_ACCOUNT,
    AccountView,
    LocalOrganisation,
)
from budget_sync_local.pipeline import Step

LOG_DIR = Path(".local-org")
#: The demo's organisation defaults and the account it creates while running.
DEFAULTS = {"Sandbox": Decimal("100"), "Production": Decimal("5000")}
NEW_ACCOUNT = "444444444444"
STACKSET_DELAY_S = 1.0
CIRCLED = "①②③④⑤⑥"


def _progress_bar(console: Console) -> tuple[Progress, Callable[[str, int, int], None]]:
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


def _step_printer(console: Console) -> Callable[[Step], None]:
    def show(step: Step) -> None:
        d = step.detail
        if step.kind == "batch":
            outcome = (
                "nothing to retry"
                if d.get("failed_from") is None
                else f"retry from record {d['failed_from'] + 1}"
            )
            if d.get("error"):
                outcome = f"function error: {d['error']}"
            console.print(f"  {CIRCLED[1]} stream → update function: {d['records']} record(s), {outcome}")
        elif step.kind == "parameter-change":
            console.print(f"  {CIRCLED[2]} {step.account}: parameter {d['name']} written ({d['operation']})")
        elif step.kind == "ignored-event":
            console.print(f"  {CIRCLED[3]} {step.account}: event not routed: {d['reason']}")
        elif step.kind == "automation":
            console.print(f"  {CIRCLED[3]} {step.account}: rule matched → Automation document")
            if d.get("status") == "Success":
                outputs = {k.rpartition(".")[2]: v for k, v in d.get("outputs", {}).items()}
                old, new = _first(outputs.get("OldLimit")), _first(outputs.get("NewLimit"))
                action = str(_first(outputs.get("Action")) or "done").lower()
                console.print(f"  {CIRCLED[4]} {step.account}: budget {action}: limit {old or '—'} → {new}")
            else:
                console.print(
                    f"  {CIRCLED[4]} {step.account}: [red]automation {d.get('status')}[/]: "
                    f"{d.get('failure') or d.get('error')}"
                )
        elif step.kind == "status":
            console.print(
                f"  {CIRCLED[1]} {step.account} (not an account here): {d['status']}: {d['reason']}"
            )
        elif step.kind == "batch-response":
            console.print(f"  {CIRCLED[1]} batch response: {json.dumps(d['response'])}")
        elif step.kind == "org-event":
            console.print(f"  ◆ {step.account}: event {d['event']} ({d['source']})")
        elif step.kind == "resolver":
            result = d.get("result") or {}
            actions = (
                ", ".join(f"{k} {v}" for k, v in (result.get("actions") or {}).items()) or "nothing to do"
            )
            console.print(
                f"  ◆ {d['rule']} → resolver: {actions} "
                f"({result.get('organizations_calls', 0)} Organizations calls)"
            )
        elif step.kind == "resolver-batch":
            result = d.get("result") or {}
            actions = (
                ", ".join(f"{k} {v}" for k, v in (result.get("actions") or {}).items()) or "nothing to do"
            )
            console.print(
                f"  ◆ {d['mapping']} ({d['records']} record(s)) → resolver: {actions} "
                f"({result.get('organizations_calls', 0)} Organizations calls)"
            )
        elif step.kind == "stackset-deploy":
            console.print(f"  ◆ {step.account}: StackSet {d['stack_set']} deployed the spoke stack")
        elif step.kind == "error":
            console.print(f"[red]{d['error']}[/]")
        elif step.kind in ("retry", "on-failure"):
            console.print(f"  {CIRCLED[1]} {step.kind}: {dict(d)}")

    return show


def _first(value: Any) -> Any:
    """Automation outputs are lists of strings."""
    return value[0] if isinstance(value, list) and value else value


def _amount(value: Decimal | str | None) -> str:
    """As stored: 12.345 stays 12.345 (an invalid value must show as it was typed)."""
    return "—" if value is None else str(value)


def _percent(value: Decimal) -> str:
    return f"{value.normalize():f}"


def _table(views: Sequence[AccountView], title: str) -> Table:
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
        )
    return table


def _function_log() -> Any:
    LOG_DIR.mkdir(exist_ok=True)
    return (LOG_DIR / "function.log").open("w", encoding="utf-8")


def demo(console: Console) -> int:
    started = time.monotonic()
    valid = {"111111111111": Decimal("1250.50"), "222222222222": Decimal("2000")}
    invalid = {"333333333333": Decimal("12.345")}
    spend = (Decimal("1100"), Decimal("1400"))
    console.rule("budget-sync on the local organisation")
    progress, update = _progress_bar(console)
    with ExitStack() as resources:
        log = resources.enter_context(_function_log())
        with progress:
            org = resources.enter_context(
                LocalOrganisation(
                    DEFAULT_ACCOUNTS,
                    observer=_step_printer(console),
                    function_output=log,
                    progress=update,
                    stackset_delay_s=STACKSET_DELAY_S,
                )
            )
        console.print(
            f"Provisioned management account {MANAGEMENT_ACCOUNT} (template-management.yaml) and "
            f"{len(org.accounts)} spoke accounts (template-spoke.yaml) in {time.monotonic() - started:.1f} s"
        )
        for account, value in {**valid, **invalid}.items():
            console.print(f"  {CIRCLED[0]} put {{AccountId: {account}, BudgetValue: {value}}}")
            org.put(account, value)
        org.pipeline.run_until_idle()

        console.rule("Organisation defaults and a new account")
        placed = {name: [a for a in org.accounts if org.parent_of(a) == ou] for name, ou in org.ous.items()}
        for name, ou in org.ous.items():
            console.print(f"  OU {name} {ou}: {', '.join(placed[name]) or 'no accounts'}")
        for name, value in DEFAULTS.items():
            console.print(f"  {CIRCLED[0]} default {name} {org.ous[name]} = {value} (defaults table)")
            org.set_default(name, value)
        org.pipeline.run_until_idle()
        console.print(
            f"  create account {NEW_ACCOUNT} and move it to Sandbox (its spoke stack follows "
            f"{STACKSET_DELAY_S:.0f} s later, as the StackSet would)"
        )
        org.create_account(NEW_ACCOUNT, "Sandbox")
        org.pipeline.run_until_idle()
        accounts = (*org.accounts, NEW_ACCOUNT)
        for account in accounts:
            org.set_spend(account, *spend)
        views = [org.view(account) for account in accounts]
        console.print(f"  {CIRCLED[5]} simulated spend this month: actual {spend[0]}, forecasted {spend[1]}")
        console.print(_table(views, "Result per account"))

    problems = [
        f"{v.account_id}: {valid[v.account_id]} did not arrive"
        for v in views
        if v.account_id in valid and not (v.arrived and v.desired == valid[v.account_id])
    ]
    problems += [
        f"{v.account_id}: the invalid value {invalid[v.account_id]} was not refused"
        for v in views
        if v.account_id in invalid and (v.status != "FAILED" or v.budget_limit == invalid[v.account_id])
    ]
    new = next(v for v in views if v.account_id == NEW_ACCOUNT)
    if not (new.arrived and new.desired == DEFAULTS["Sandbox"] and new.source.startswith("default")):
        problems.append(f"{NEW_ACCOUNT}: Sandbox's default {DEFAULTS['Sandbox']} did not arrive")
    console.print(f"Function logs: {LOG_DIR / 'function.log'}   ({time.monotonic() - started:.1f} s in all)")
    if problems:
        for problem in problems:
            console.print(f"[red]✗ {problem}[/]")
        return 1
    console.print(
        "[green]✓ the valid budgets arrived in their spoke accounts; the invalid one was refused "
        "with its reason; the new account got Sandbox's default once its spoke stack existed, "
        "and the accounts' own items won over the defaults[/]"
    )
    return 0


def load_event(path: Path) -> dict[str, Any]:
    """A DynamoDB stream event file, or ValueError naming the file and what is wrong."""
    try:
        event = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"EVENT={path}: {exc}") from None
    if not isinstance(event, dict) or not isinstance(event.get("Records"), list):
        raise ValueError(f"EVENT={path}: not a DynamoDB stream event (no Records list)")
    return event


def run_event(
    event: dict[str, Any], observer: Callable[[Step], None] | None = None, function_output: Any = None
) -> tuple[Any, list[AccountView]]:
    """The template's handler on ``event`` in a fresh local organisation, then the spoke
    side; the batch response and the view of each account the event names.

    The event does not come from the budgets table, so an account's desired value is the
    one the function recorded in the status table."""
    named = {
        str(r.get("dynamodb", {}).get("Keys", {}).get("AccountId", {}).get("S", "")) for r in event["Records"]
    }
    accounts = sorted(named & set(DEFAULT_ACCOUNTS)) or list(DEFAULT_ACCOUNTS)
    observe = observer or (lambda _step: None)
    with LocalOrganisation(DEFAULT_ACCOUNTS, observer=observer, function_output=function_output) as org:
        response = org.invoke_function(event)
        observe(Step("batch-response", detail={"response": response}))
        org.pipeline.run_until_idle()
        for other in sorted(named - set(DEFAULT_ACCOUNTS)):
            status = org.status(other) or {}
            observe(
                Step("status", other, {"status": status.get("Status"), "reason": status.get("Reason", "")})
            )
        views = []
        for account in accounts:
            recorded = (org.status(account) or {}).get("DesiredValue")
            views.append(dataclasses.replace(org.view(account), desired=recorded))
        return response, views


def invoke_event(console: Console, path: Path) -> int:
    try:
        event = load_event(path)
    except ValueError as exc:
        console.print(f"[red]{exc}[/]")
        return 2
    console.rule(f"{path}: {len(event['Records'])} record(s) → the template's handler")
    with _function_log() as log:
        response, views = run_event(event, _step_printer(console), log)
    console.print(_table(views, "Result per account"))
    console.print(f"Function logs: {LOG_DIR / 'function.log'}")
    return 0 if isinstance(response, dict) and "batchItemFailures" in response else 1


def serve(console: Console, port: int, accounts: Sequence[str]) -> int:
    from budget_sync_local import server

    progress, update = _progress_bar(console)

    def ready(org: LocalOrganisation, endpoint: str) -> None:
        progress.stop()
        console.print(f"[green]Local organisation ready at {endpoint}[/] (Ctrl-C stops it)")
        console.print(
            f"  management {MANAGEMENT_ACCOUNT}: table {org.stack.budgets_table}, "
            f"status table {org.stack.status_table}"
        )
        console.print(f"  spoke accounts: {', '.join(org.accounts)} (region {org.region})")
        console.print(
            f"  see docs/local.md for the commands to try; function logs: {LOG_DIR / 'function.log'}"
        )

    with progress, _function_log() as log:
        server.serve(
            accounts, port, ready=ready, progress=update, function_output=log, observer=_step_printer(console)
        )
    console.print("Stopped.")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m budget_sync_local",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="the whole pipeline on the local organisation")
    invoke_parser = commands.add_parser("invoke", help="the template's handler on a sample event")
    invoke_parser.add_argument("event", type=Path)
    serve_parser = commands.add_parser("serve", help="the local organisation as a server")
    serve_parser.add_argument("--port", type=int, default=5000)
    serve_parser.add_argument(
        "--accounts", type=int, default=len(DEFAULT_ACCOUNTS), help="number of spoke accounts (default 3)"
    )
    args = parser.parse_args(argv)

    for name, value in {
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        os.environ.setdefault(name, value)  # moto's accounts, never real credentials
    console = Console(width=None if sys.stdout.isatty() else 160)
    if args.command == "demo":
        return demo(console)
    if args.command == "invoke":
        return invoke_event(console, args.event)
    accounts = [
        str(111111111111 * (i + 1)) if i < 9 else f"{100000000000 + i:012d}" for i in range(args.accounts)
    ]
    return serve(console, args.port, accounts)


if __name__ == "__main__":
    sys.exit(main())
