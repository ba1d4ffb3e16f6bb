"""``python -m budget_sync_local demo | invoke EVENT | serve``: the local organisation.

demo    writes budgets for the spoke accounts (one with cents, one invalid, one for a budget
        with planned limits that its spoke refuses), shows each of the six steps and the
        spoke's report back to the management account as they happen, and ends with a table
        per account; then one account's own alerts, and one account's budget without credits
        (CostExclusions); then, in a one-account organisation with the optional incidents and the
        ServiceNow stand-in, an over-budget account opening an incident, a second threshold
        updating it and the period's end resolving it. Exit status 1 if a valid budget was not
        confirmed, or an invalid one or the refused one was not reported FAILED with its
        reason, or the incident was not opened, updated and resolved.
invoke  runs the template's handler on a sample stream event (events/*.json), as
        ``sam local invoke -e`` would, then lets the spoke side react, and prints the
        batch response and each account's result.
serve   the organisation as an AWS endpoint on 127.0.0.1 (``make local``), with the optional
        incidents deployed and wired to the ServiceNow stand-in it serves (``--incidents off``,
        ``make local INCIDENTS=off``: deployed as the stacks' defaults are, without them); the
        reconciler's hourly schedule, and the incident function's, run every
        ``--reconcile-every`` seconds (default 30, a local time-scale; 0: only when asked).
spend   ACCOUNT ACTUAL FORECAST: give an account of the running organisation this month's
        actual and forecasted spend (AWS computes them; see budget_sync_local/spend.py); each
        budget notification the new figures put in alarm publishes its alert, as AWS Budgets
        does (with the incidents on, it opens or updates the account's incident).
health  ACCOUNT HEALTHY | ACCOUNT UNHEALTHY REASON: make an account's budget unhealthy by
        hand with one of AWS's reasons, or healthy again (see budget_sync_local/health.py).
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
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from budget_sync_local.port import ServerError, check_port
from budget_sync_local.seed import ORDERLY, SEED_ENV, seed_from_env

if TYPE_CHECKING:
    from rich.console import Console

    from budget_sync_local.organisation import AccountView, LocalOrganisation
    from budget_sync_local.pipeline import Step

# The organisation's modules (moto, boto3, rich: seconds to import on a busy machine) are
# imported inside the commands, after ``serve`` has checked its port: a port in use ends
# ``make local`` within a second, not after the imports.

LOG_DIR = Path(".local-org")
DEFAULT_PORT = 5000
#: ``make local``'s time-scale for the reconciler's hourly schedule (docs/local.md).
DEFAULT_RECONCILE_EVERY_S = 30.0
#: ``make local``'s incidents: on (deployed with the ServiceNow stand-in) or off (INCIDENTS=off).
INCIDENTS_CHOICES = ("on", "off")
#: The demo's fourth spoke: its budget has PlannedBudgetLimits, which budget-sync refuses to mix.
PLANNED_ACCOUNT = "444444444444"
#: The demo's organisation defaults and the account it creates while running.
DEFAULTS = {"Sandbox": Decimal("100"), "Production": Decimal("5000")}
NEW_ACCOUNT = "555555555555"
#: The account whose history the demo ends with (its refused value is the first step's).
HISTORY_ACCOUNT = "333333333333"
STACKSET_DELAY_S = 1.0


def _function_log() -> Any:
    LOG_DIR.mkdir(exist_ok=True)
    return (LOG_DIR / "function.log").open("w", encoding="utf-8")


#: The demo's account with alerts of its own (the others keep their spoke stack's defaults).
OWN_ALERTS = {
    "222222222222": (
        Decimal("2000"),
        {"AlertEmails": "owner-222@example.com,team-222@example.com", "AlertThresholds": "50,90"},
    )
}


#: The demo's account whose budget stops counting credits (budget_sync.cost_basis).
CREDITS_EXCLUDED = ("111111111111", Decimal("1250.50"), {"CostExclusions": "credits"})


def cost_basis_line(org: LocalOrganisation, account: str) -> tuple[str, bool]:
    """What the account's budget counts, read back from the spoke (DescribeBudget with
    ShowFilterExpression), and whether it is Metrics with a RECORD_TYPE exclusion of Credit."""
    budgets = org.session_in(account).client("budgets")
    budget = budgets.describe_budget(
        AccountId=account, BudgetName=org.spokes[account].budget_name, ShowFilterExpression=True
    )["Budget"]
    metrics, expression = budget.get("Metrics"), budget.get("FilterExpression")
    shown = f"Metrics {metrics}, FilterExpression {json.dumps(expression)}" + (
        ", CostTypes" if "CostTypes" in budget else ""
    )
    excluded = expression == {"Not": {"Dimensions": {"Key": "RECORD_TYPE", "Values": ["Credit"]}}}
    return shown, bool(metrics) and excluded and "CostTypes" not in budget


def _alert_problems(
    view: AccountView, attributes: dict[str, str], before: Sequence[AccountView]
) -> list[str]:
    """What is wrong if the account's own alerts did not arrive, or others changed."""
    want_recipients = set(attributes["AlertEmails"].split(","))
    want_actual = {Decimal(t) for t in attributes["AlertThresholds"].split(",")}
    actual = {a.threshold for a in view.alerts if a.notification_type == "ACTUAL"}
    recipients = {r for a in view.alerts for r in a.subscribers}
    problems = []
    if actual != want_actual or recipients != want_recipients:
        problems.append(
            f"{view.account_id}: its own alerts did not arrive (ACTUAL thresholds "
            f"{sorted(map(str, actual))}, recipients {sorted(recipients)})"
        )
    others = {r for v in before if v.account_id != view.account_id for a in v.alerts for r in a.subscribers}
    if others & want_recipients:
        problems.append("another account got the account's own recipients")
    return problems


#: The demo's account for the optional incidents (docs/itsm.md), in an organisation of its own.
INCIDENT_ACCOUNT = "111111111111"


def _incidents_demo(console: Console) -> list[str]:
    """The optional incidents (docs/itsm.md) on a one-account organisation with the ServiceNow
    stand-in: an over-budget account opens an incident, a second threshold updates it, the
    period's end resolves it. What is wrong, if anything."""
    from rich.text import Text

    from budget_sync.incidents.budget_alarms import current_period
    from budget_sync_local.organisation import LocalOrganisation
    from budget_sync_local.servicenow import StandIn

    console.rule("incidents in ServiceNow (optional, docs/itsm.md): one per account, budget and period")
    account, instance = INCIDENT_ACCOUNT, StandIn()
    with (
        (LOG_DIR / "function.log").open("a", encoding="utf-8") as log,
        LocalOrganisation((account,), function_output=log, servicenow=instance) as org,
    ):
        assert org.incidents is not None
        org.put(account, 1000)  # the spoke's budget already has 1000 (InitialBudgetAmount)

        def alarm(actual: int, forecasted: int, times: int = 1) -> dict[str, str] | None:
            org.set_spend(account, Decimal(actual), Decimal(forecasted))
            for _ in range(times):
                org.send_budget_alerts(account)
            org.incidents.deliver()  # type: ignore[union-attr]
            found = list(instance.incidents.values())
            return found[0] if len(found) == 1 else None

        first = alarm(850, 900, times=2)
        if first is None:
            return [f"{account}: no single incident after its 80 % alert ({len(instance.incidents)})"]
        console.print(
            Text(
                f"  {account}: spend 850 of 1000 USD, AWS Budgets alerts its topic (twice) → queue → "
                f"{first['number']} opened ({first['short_description']}; urgency {first['urgency']})"
            ),
            soft_wrap=True,
        )
        second = alarm(1100, 1200)
        notes = len(instance.journal.get(first["sys_id"], []))
        if second is None or second["number"] != first["number"]:
            return [f"{account}: its 100 % alert did not update {first['number']}"]
        console.print(
            Text(
                f"  {account}: spend 1100 → {second['number']} updated ({notes} work note; urgency {second['urgency']})"
            )
        )
        org.set_spend(account, Decimal(0), Decimal(0))
        next_month = current_period("MONTHLY", datetime.now(UTC).date())[1]
        org.incidents.schedule(f"{next_month.isoformat()}T00:00:00Z")
        resolved = instance.incidents[first["sys_id"]]
        console.print(
            Text(
                f"  the hourly schedule on {next_month.isoformat()} (a new period) → {resolved['number']} "
                f"state {resolved['state']} (Resolved, {resolved['close_code']}: {resolved['close_notes']})"
            ),
            soft_wrap=True,
        )
        if resolved["state"] != "6" or len(instance.incidents) != 1:
            return [f"{account}: {first['number']} was not resolved at the period's end"]
    return []


def delivery_line(seed: int | None) -> str:
    """How this run's events are delivered, and how to have the same deliveries again."""
    if seed is None:
        return f"events delivered once, in order ({SEED_ENV}={ORDERLY}: not what AWS promises)"
    return (
        f"events delivered as EventBridge may: shuffled, some twice, some late ({SEED_ENV}={seed} "
        "gives this run's deliveries again)"
    )


def demo(console: Console) -> int:
    from budget_sync_local.console import CIRCLED, account_table, history_table, progress_bar, step_printer
    from budget_sync_local.demo_report import write_report
    from budget_sync_local.organisation import DEFAULT_ACCOUNTS, MANAGEMENT_ACCOUNT, LocalOrganisation

    started = time.monotonic()
    valid = {"111111111111": Decimal("1250.50"), "222222222222": Decimal("2000")}
    invalid = {"333333333333": Decimal("12.345")}
    refused = {PLANNED_ACCOUNT: Decimal("555")}
    spend = (Decimal("1100"), Decimal("1400"))
    console.rule("budget-sync on the local organisation")
    progress, update = progress_bar(console)
    with ExitStack() as resources:
        log = resources.enter_context(_function_log())
        with progress:
            org = resources.enter_context(
                LocalOrganisation(
                    (*DEFAULT_ACCOUNTS, PLANNED_ACCOUNT),
                    observer=step_printer(console),
                    function_output=log,
                    progress=update,
                    stackset_delay_s=STACKSET_DELAY_S,
                )
            )
        console.print(
            f"Provisioned management account {MANAGEMENT_ACCOUNT} (template-management.yaml) and "
            f"{len(org.accounts)} spoke accounts (template-spoke.yaml) in {time.monotonic() - started:.1f} s"
        )
        console.print(f"  {delivery_line(org.seed)}")
        org.give_planned_limits(PLANNED_ACCOUNT)
        console.print(f"  {PLANNED_ACCOUNT}'s budget was changed by hand to use PlannedBudgetLimits")
        for account, value in {**valid, **invalid, **refused}.items():
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
        console.print(account_table(views, "Result per account"))
        reported = write_report(console, org, LOG_DIR / "report.html")  # budgetctl report, last

        # Alerts as data: one account's own recipients and thresholds, no stack update.
        console.rule("alerts as data: one account's own recipients and a changed threshold")
        account, (value, attributes) = next(iter(OWN_ALERTS.items()))
        shown = ", ".join(f"{k}: {v}" for k, v in attributes.items())
        console.print(
            f"  {CIRCLED[0]} put {{AccountId: {account}, BudgetValue: {value}, {shown}}}", markup=False
        )
        org.put(account, value, **attributes)
        org.pipeline.run_until_idle()
        own_view = org.view(account)
        console.print(
            account_table([own_view], f"Account {account} after the change (its spoke stack was not updated)")
        )
        # The cost basis as data: one account's budget stops counting credits.
        console.rule("cost basis as data: one account's budget without credits")
        basis_account, basis_value, basis = CREDITS_EXCLUDED
        console.print(
            f"  {CIRCLED[0]} put {{AccountId: {basis_account}, BudgetValue: {basis_value}, "
            f"CostExclusions: {basis['CostExclusions']}}}",
            markup=False,
        )
        org.put(basis_account, basis_value, **basis)
        org.pipeline.run_until_idle()
        basis_shown, basis_ok = cost_basis_line(org, basis_account)
        basis_status = (org.status(basis_account) or {}).get("Status")
        console.print(f"  {basis_account}'s budget now counts:", markup=False)
        console.print(f"    {basis_shown}", markup=False)
        console.print(f"  {basis_account}'s status: {basis_status}", markup=False)

        history = _history_story(console, org)
        console.print(history_table(history, f"budgetctl history {HISTORY_ACCOUNT} (newest first)"))

    problems = _alert_problems(own_view, OWN_ALERTS[own_view.account_id][1], views)
    if not (basis_ok and basis_status == "APPLIED"):
        problems.append(f"{CREDITS_EXCLUDED[0]}: credits were not excluded from its budget ({basis_shown})")
    problems += _incidents_demo(console)
    problems += [
        f"{v.account_id}: {valid[v.account_id]} did not arrive"
        for v in views
        if v.account_id in valid and not (v.arrived and v.desired == valid[v.account_id])
    ]
    problems += [
        f"{v.account_id}: {valid[v.account_id]} arrived but its spoke did not confirm it (status {v.status})"
        for v in views
        if v.account_id in valid and v.arrived and v.status != "APPLIED"
    ]
    problems += [
        f"{v.account_id}: the spoke's refusal of {refused[v.account_id]} did not come back (status {v.status})"
        for v in views
        if v.account_id in refused and (v.status != "FAILED" or "PlannedBudgetLimits" not in v.reason)
    ]
    problems += [
        f"{v.account_id}: the invalid value {invalid[v.account_id]} was not refused"
        for v in views
        if v.account_id in invalid and (v.status != "FAILED" or v.budget_limit == invalid[v.account_id])
    ]
    new = next(v for v in views if v.account_id == NEW_ACCOUNT)
    if not (new.arrived and new.desired == DEFAULTS["Sandbox"] and new.source.startswith("default")):
        problems.append(f"{NEW_ACCOUNT}: Sandbox's default {DEFAULTS['Sandbox']} did not arrive")
    problems += [] if reported else ["the report was not written"]
    problems += _history_problems(history)
    console.print(f"Function logs: {LOG_DIR / 'function.log'}   ({time.monotonic() - started:.1f} s in all)")
    if problems:
        for problem in problems:
            console.print(f"[red]✗ {problem}[/]")
        return 1
    console.print(
        "[green]✓ the valid budgets arrived and their spokes confirmed them (APPLIED); the invalid "
        "one was refused with its reason, the spoke that could not apply 555 said why (FAILED); "
        "the new account got Sandbox's default once its spoke stack existed, the accounts' own "
        "items won over the defaults, one account's own recipients and thresholds arrived "
        "with no stack update, one account's budget no longer counts credits, one account's "
        "history shows each change with who made it, and an over-budget account's ServiceNow "
        "incident was opened once, updated and resolved[/]"
    )
    return 0


def _history_story(console: Console, org: LocalOrganisation) -> list[Any]:
    """The demo's last part: one account's every change, with who made it (the history table).
    Its refused value is already there; budgetctl, as the operators' role, removes its item
    (Sandbox's default then reaches it), sets its own value, and asks for a repair after its
    budget's limit is changed by hand."""
    import io

    from budgetctl.cli import main as budgetctl

    console.rule(f"history: every change of {HISTORY_ACCOUNT}'s budget, who made it, what came of it")
    operator = org.operator_session()
    steps = (
        (("delete", HISTORY_ACCOUNT), f"Sandbox's default {DEFAULTS['Sandbox']} applies"),
        (("set", HISTORY_ACCOUNT, "900"), "its own item again"),
        (("reconcile", "--apply", "--account", HISTORY_ACCOUNT), "after its limit was set to 5000 by hand"),
    )
    for argv, why in steps:
        if argv[0] == "reconcile":
            _edit_limit(org, HISTORY_ACCOUNT, "5000")
        console.print(f"  budgetctl {' '.join(argv)}   (as the operators' role: {why})", markup=False)
        budgetctl(list(argv), stdout=io.StringIO(), stderr=io.StringIO(), session=operator)
        org.pipeline.run_until_idle()
    return org.history(HISTORY_ACCOUNT)


def _edit_limit(org: LocalOrganisation, account: str, amount: str) -> None:
    """What someone does in the Budgets console: change the limit, keep everything else."""
    budget = org.budget(account)
    if budget is None:
        return
    budget["BudgetLimit"] = {"Amount": amount, "Unit": "USD"}
    budget.pop("CalculatedSpend", None)
    budget.pop("LastUpdatedTime", None)
    org.session_in(account).client("budgets").update_budget(AccountId=account, NewBudget=budget)  # type: ignore[arg-type]


def _history_problems(history: Sequence[Any]) -> list[str]:
    """What the demo's history must show: the refused value, the default, the own item, the repair."""
    from budget_sync.history import Kind

    seen = {
        (r.kind, r.status if r.kind is Kind.CHANGED and r.status == "FAILED" else "", r.via) for r in history
    }
    wanted = {
        (Kind.CHANGED, "FAILED", "item"): "the refused value",
        (Kind.REPAIRED, "", "reconciler"): "the repair",
    }
    problems = [
        f"{HISTORY_ACCOUNT}'s history lacks {what}" for key, what in wanted.items() if key not in seen
    ]
    if not any(r.kind is Kind.CHANGED and r.via.startswith("ou-") for r in history):
        problems.append(f"{HISTORY_ACCOUNT}'s history lacks Sandbox's default")
    if not any(r.kind is Kind.CHANGED and r.via == "item" and ":assumed-role/" in r.by for r in history):
        problems.append(f"{HISTORY_ACCOUNT}'s history lacks its own item set by the operators' role")
    return problems


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
    from budget_sync_local.organisation import DEFAULT_ACCOUNTS, LocalOrganisation
    from budget_sync_local.pipeline import Step

    named = {
        str(r.get("dynamodb", {}).get("Keys", {}).get("AccountId", {}).get("S", "")) for r in event["Records"]
    }
    accounts = sorted(named & set(DEFAULT_ACCOUNTS)) or list(DEFAULT_ACCOUNTS)
    observe = observer or (lambda _step: None)
    with LocalOrganisation(DEFAULT_ACCOUNTS, observer=observer, function_output=function_output) as org:
        response = org.invoke_function(event)
        observe(Step("batch-response", detail={"response": response}))
        org.pipeline.run_until_idle()
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
    # The console's views come from the local organisation (moto): imported once the event is good.
    from budget_sync_local.console import account_table, step_printer

    console.rule(f"{path}: {len(event['Records'])} record(s) → the template's handler")
    with _function_log() as log:
        response, views = run_event(event, step_printer(console), log)
    console.print(account_table(views, "Result per account"))
    console.print(f"Function logs: {LOG_DIR / 'function.log'}")
    return 0 if isinstance(response, dict) and "batchItemFailures" in response else 1


def serve(
    console: Console, port: int, accounts: Sequence[str], reconcile_every_s: float = 0, incidents: bool = True
) -> int:
    from rich.markup import escape

    from budget_sync_local import server
    from budget_sync_local.console import progress_bar, step_printer
    from budget_sync_local.organisation import MANAGEMENT_ACCOUNT, OPERATOR_ROLE
    from budget_sync_local.servicenow import PREFIX, StandIn

    progress, update = progress_bar(console)
    servicenow = StandIn()

    def ready(org: LocalOrganisation, endpoint: str) -> None:
        progress.stop()
        console.print(f"[green]Local organisation ready at {endpoint}[/] (Ctrl-C stops it)")
        console.print(
            f"  management {MANAGEMENT_ACCOUNT}: table {org.stack.budgets_table}, "
            f"status table {org.stack.status_table}"
        )
        console.print(f"  spoke accounts: {', '.join(org.accounts)} (region {org.region})")
        console.print(f"  {delivery_line(org.seed)}")
        schedules, run = (
            ("the reconciler's and the incident function's schedules", "run")
            if incidents
            else ("the reconciler's schedule", "runs")
        )
        console.print(
            f"  {schedules} (hourly on AWS) {run} every {reconcile_every_s:g} s here"
            if reconcile_every_s
            else f"  {schedules} {run} only when asked (budgetctl reconcile --apply"
            + (", aws lambda invoke --function-name BudgetSyncIncidents)" if incidents else ")"),
            markup=False,
        )
        console.print(
            f"  OUs: {', '.join(f'{name} {ou}' for name, ou in org.ous.items())} (root {org.root_id})",
            markup=False,
        )
        console.print(
            "  spend for the report: python -m budget_sync_local spend ACCOUNT ACTUAL FORECAST"
            + ("" if port == DEFAULT_PORT else f" --port {port}"),
            markup=False,
        )
        console.print(
            f"  local ServiceNow instance (docs/itsm.md): {endpoint}{PREFIX}, basic auth "
            f"{servicenow.user}:{servicenow.password}",
            markup=False,
        )
        if incidents:
            console.print(
                "  incidents on: budget alerts (a spend over 80 %) open incidents there; "
                "INCIDENTS=off runs without (docs/itsm.md)",
                markup=False,
            )
        else:
            console.print("  incidents off (INCIDENTS=off): deployed without them", markup=False)
        console.print(
            f"  see docs/local.md for the commands to try; function logs: {LOG_DIR / 'function.log'}"
        )
        # IAM is evaluated: budgetctl acts as the operators' role, as the docs tell operators to.
        console.print(f"  to act as the operators' role {OPERATOR_ROLE} (budgetctl), in another terminal:")
        exports = " ".join(f"{k}={v}" for k, v in org.operator_credentials().items())
        # boto3 (budgetctl) reads AWS_DEFAULT_REGION; the AWS CLI v2 reads AWS_REGION first
        region = f"AWS_REGION={org.region} AWS_DEFAULT_REGION={org.region}"
        console.print(f"    export {exports} {region}", markup=False, soft_wrap=True)

    try:
        with progress, _function_log() as log:
            server.serve(
                accounts,
                port,
                ready=ready,
                progress=update,
                function_output=log,
                observer=step_printer(console),
                servicenow=servicenow,
                reconcile_every_s=reconcile_every_s or None,
                incidents=incidents,
            )
    except server.ServerError as exc:
        console.print(f"[red]make local: {escape(str(exc))}[/]")
        return 1
    console.print("Stopped.")
    return 0


def give_spend(endpoint: str, account: str, actual: str, forecast: str) -> int:
    """``spend``: exit 0 with the budget's new figures; 2 if refused (the message names the
    field and the value); 1 if no local organisation answers."""
    from budget_sync_local.spend import SpendError, send

    try:
        answer = send(endpoint, account, actual, forecast)
    except SpendError as exc:
        print(f"spend: {exc}", file=sys.stderr)
        return 2
    except ConnectionError as exc:
        print(f"spend: {exc}", file=sys.stderr)
        return 1
    print(
        f"{answer['AccountId']}: budget {answer['BudgetName']} now has actual spend "
        f"{answer['ActualSpend']} USD and forecasted spend {answer['ForecastedSpend']} USD this month"
    )
    for alert in answer.get("Alerts", []):
        percent = "%" if alert["ThresholdType"] == "PERCENTAGE" else " USD"
        sent = (
            f"published to {', '.join(alert['Topics'])}"
            if alert["Topics"]
            else "to email subscribers only (no email is sent locally)"
        )
        comparison = _COMPARISON.get(alert["ComparisonOperator"], alert["ComparisonOperator"])
        print(f"  alert {alert['NotificationType']} {comparison} {alert['Threshold']}{percent}: {sent}")
    return 0


_COMPARISON = {"GREATER_THAN": ">", "LESS_THAN": "<", "EQUAL_TO": "="}


def give_health(endpoint: str, account: str, status: str, reason: str | None) -> int:
    """``health``: exit 0 with the budget's new HealthStatus; 2 if refused (the message names
    the field and the value); 1 if no local organisation answers."""
    from budget_sync_local.health import HealthError, send

    try:
        answer = send(endpoint, account, status, reason)
    except HealthError as exc:
        print(f"health: {exc}", file=sys.stderr)
        return 2
    except ConnectionError as exc:
        print(f"health: {exc}", file=sys.stderr)
        return 1
    health = answer["HealthStatus"]
    shown = health["Status"] + (f" ({health['StatusReason']})" if health.get("StatusReason") else "")
    print(f"{answer['AccountId']}: budget {answer['BudgetName']} is now {shown}")
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
    serve_parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve_parser.add_argument("--accounts", type=int, default=3, help="number of spoke accounts (default 3)")
    serve_parser.add_argument(
        "--reconcile-every",
        type=float,
        default=DEFAULT_RECONCILE_EVERY_S,
        metavar="SECONDS",
        help="run the reconciler's schedule (hourly on AWS) every SECONDS, a local time-scale "
        f"(default {DEFAULT_RECONCILE_EVERY_S:g}; 0: only when asked, budgetctl reconcile --apply)",
    )
    serve_parser.add_argument(
        "--incidents",
        type=_incidents_choice,
        default="on",
        metavar="on|off",
        help="deploy the optional incidents wired to the ServiceNow stand-in it serves (default on; "
        "make local INCIDENTS=off)",
    )
    spend_parser = commands.add_parser(
        "spend", help="give an account of the running local organisation this month's spend (USD)"
    )
    spend_parser.add_argument("account", metavar="ACCOUNT", help="a spoke account (12 digits)")
    spend_parser.add_argument("actual", metavar="ACTUAL", help="actual spend this month, e.g. 1100")
    spend_parser.add_argument("forecast", metavar="FORECAST", help="forecasted spend this month, e.g. 1400")
    spend_parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"the local organisation's port ({DEFAULT_PORT})"
    )
    health_parser = commands.add_parser(
        "health", help="make an account's budget unhealthy by hand (one of AWS's reasons), or healthy again"
    )
    health_parser.add_argument("account", metavar="ACCOUNT", help="a spoke account (12 digits)")
    health_parser.add_argument("status", metavar="STATUS", help="HEALTHY or UNHEALTHY")
    health_parser.add_argument(
        "reason",
        metavar="REASON",
        nargs="?",
        help="with UNHEALTHY: e.g. BILLING_VIEW_NO_ACCESS, FILTER_INVALID",
    )
    health_parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"the local organisation's port ({DEFAULT_PORT})"
    )
    args = parser.parse_args(argv)
    if args.command == "health":
        return give_health(f"http://127.0.0.1:{args.port}", args.account, args.status, args.reason)
    if args.command == "spend":
        return give_spend(f"http://127.0.0.1:{args.port}", args.account, args.actual, args.forecast)
    if args.command == "serve":
        if not args.reconcile_every >= 0:  # also NaN
            parser.error(f"--reconcile-every {args.reconcile_every:g} must be 0 or more seconds")
        try:
            check_port("127.0.0.1", args.port)  # before the imports below: a busy port ends at once
        except ServerError as exc:
            print(f"make local: {exc}", flush=True)
            return 1
    from rich.console import Console

    from budget_sync_local.quiet import silence_library_warnings

    silence_library_warnings()

    for name, value in {
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        os.environ.setdefault(name, value)  # moto's accounts, never real credentials
    # The terminal's own stream: steps shown while a function runs (its output is lent to the
    # function log) still reach the terminal.
    console = Console(file=sys.stdout, width=None if sys.stdout.isatty() else 160)
    try:
        seed_from_env()
    except ValueError as exc:
        console.print(str(exc), style="red", markup=False)
        return 2
    if args.command == "demo":
        return demo(console)
    if args.command == "invoke":
        return invoke_event(console, args.event)
    accounts = [
        str(111111111111 * (i + 1)) if i < 9 else f"{100000000000 + i:012d}" for i in range(args.accounts)
    ]
    return serve(console, args.port, accounts, args.reconcile_every, args.incidents == "on")


def _incidents_choice(value: str) -> str:
    if value not in INCIDENTS_CHOICES:
        raise argparse.ArgumentTypeError(f"INCIDENTS / --incidents {value!r} must be on or off")
    return value


if __name__ == "__main__":
    sys.exit(main())
