"""``status``: per account, the desired value, the spoke's parameter and budget, spend, drift,
alerts (budgetctl.inspection) and the open ServiceNow incident, if any (budgetctl.incidents_view:
the ``Incident`` column, in JSON, CSV and ``--wide``), read-only; exit 1 when an account needs
attention."""

from __future__ import annotations

from budgetctl.alerts_view import add_alert_columns
from budgetctl.commands import Command, add_wide
from budgetctl.context import Context
from budgetctl.errors import ExitCode
from budgetctl.incidents_view import add_incident_column, add_incidents_table_option
from budgetctl.inspection import (
    NO_SPOKE,
    account_names,
    add_account_options,
    inspect,
    missing_accounts,
    needs_attention,
    summary,
    value_sources,
)
from budgetctl.rows import ALERT_STATUS_COLUMNS, STATUS_BRIEF, STATUS_COLUMNS, STATUS_WIDE, status_row


def register(command: Command) -> None:
    status = command("status", cmd_status, "per account: desired, parameter, budget, spend, drift")
    add_account_options(status)
    add_wide(status)
    add_incidents_table_option(status)


def cmd_status(ctx: Context) -> int:
    # With --org the organisation must be read (an error if it cannot); without, only for names.
    names = ctx.organisation_accounts() if ctx.args.org else account_names(ctx)
    reports = inspect(ctx, names)
    sources = value_sources(ctx, reports)
    rows = [status_row(r, sources.get(r.account_id), names.get(r.account_id)) for r in reports]
    add_alert_columns(ctx, rows, {r.account_id for r in reports if r.drift not in NO_SPOKE})
    add_incident_column(ctx, rows)
    ctx.out.rows(
        rows,
        (*STATUS_COLUMNS, *ALERT_STATUS_COLUMNS, "Incident"),
        title="budget-sync status",
        brief=STATUS_BRIEF,
        wide=(*STATUS_WIDE, "Incident"),
    )
    summary(ctx, reports)
    missing = missing_accounts(ctx, reports)
    return ExitCode.PROBLEM if missing or any(needs_attention(r) for r in reports) else ExitCode.OK
