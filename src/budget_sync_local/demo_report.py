"""The demo's last step: ``budgetctl report --file`` for the local organisation's spokes.

The spend is simulated so that the page has something to show: one account over its limit,
one near it, and (from the demo's own items) one whose item was refused (FAILED). The
command is budgetctl's own, run in-process against the organisation's moto as the operators'
role (``BudgetSyncOperator``: the spokes' read role trusts only it), as an operator would run
it against AWS with ``--endpoint-url`` or credentials.
"""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

from rich.console import Console

from budget_sync_local.organisation import LocalOrganisation
from budgetctl.cli import main as budgetctl

#: account -> (actual, forecasted): over its limit of 1250.50, and near its limit of 2000.
SPEND = {
    "111111111111": (Decimal("1100"), Decimal("1400")),
    "222222222222": (Decimal("1500"), Decimal("1850")),
}


def write_report(console: Console, org: LocalOrganisation, target: Path) -> bool:
    """Simulate spend, write the report to ``target``, say where it is. False if not written."""
    for account, (actual, forecasted) in SPEND.items():
        if account in org.accounts:
            org.set_spend(account, actual, forecasted)
            console.print(f"  report: simulated spend of {account}: actual {actual}, forecasted {forecasted}")
    role_name = next(iter(org.spokes.values())).spoke_role_arn.rpartition("/")[2]
    stack = next(iter(org.spokes.values()))
    out, err = io.StringIO(), io.StringIO()
    code = budgetctl(
        [
            "report",
            "--file",
            str(target),
            "--region",
            org.region,
            "--table",
            org.stack.budgets_table,
            "--status-table",
            org.stack.status_table,
            "--role-name",
            role_name,
            "--parameter-name",
            stack.parameter_name,
            "--budget-name",
            stack.budget_name,
        ],
        stdout=out,
        stderr=err,
        session=org.operator_session(),  # as the operators' role, as docs/operate.md tells operators
    )
    for line in err.getvalue().splitlines():
        console.print(f"  report: {line}", markup=False, highlight=False)
    if not target.is_file():
        console.print(f"[red]✗ budgetctl report exited {code} without writing {target}[/]")
        return False
    console.print(f"Report: {target.resolve()}   (open it in a browser; it needs no network)")
    return True
