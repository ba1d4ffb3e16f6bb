"""The ``Incident`` column of ``status``: each account's open ServiceNow incident number(s), from
the incidents table (docs/itsm.md; one Scan, ``dynamodb:Scan`` on the table, docs/operate.md).

Empty when the account has no open incident, or when the incidents are not deployed (no such
table: they are optional and off by default). ``unreadable`` when the table could not be read
(an operator policy from before the incidents, for example); the reason is on stderr once.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from budgetctl.context import Context

DEFAULT_INCIDENTS_TABLE = "BudgetSyncIncidents"
_ABSENT = "ResourceNotFoundException"


def open_incidents(ctx: Context, table: str) -> dict[str, list[str]] | str:
    """Account -> its open incidents' numbers; or why they could not be read."""
    found: dict[str, list[str]] = {}
    try:
        pages = ctx.dynamodb.get_paginator("scan").paginate(
            TableName=table,
            FilterExpression="IncidentState = :open",
            ExpressionAttributeValues={":open": {"S": "OPEN"}},
            ProjectionExpression="AccountId, #n",
            ExpressionAttributeNames={"#n": "Number"},
        )
        for page in pages:
            for item in page.get("Items", []):
                account = item.get("AccountId", {}).get("S")
                number = item.get("Number", {}).get("S")
                if account and number:
                    found.setdefault(account, []).append(number)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == _ABSENT:
            return {}
        return f"{exc.response.get('Error', {}).get('Code', 'error')}: {exc}"
    except BotoCoreError as exc:
        return str(exc)
    return {account: sorted(numbers) for account, numbers in found.items()}


def add_incidents_table_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--incidents-table",
        default=DEFAULT_INCIDENTS_TABLE,
        metavar="NAME",
        help=f"the optional incidents' table (docs/itsm.md; default {DEFAULT_INCIDENTS_TABLE})",
    )


def incident_numbers(ctx: Context) -> tuple[dict[str, str], str]:
    """Account -> its open incidents' numbers as text; and a note if they could not be read."""
    found = open_incidents(ctx, ctx.args.incidents_table)
    if isinstance(found, str):
        return (
            {},
            f"Incident numbers are not shown: the incidents table {ctx.args.incidents_table} is unreadable ({found}).",
        )
    return {account: ", ".join(numbers) for account, numbers in found.items()}, ""


def add_incident_column(ctx: Context, rows: list[dict[str, Any]]) -> None:
    found = open_incidents(ctx, ctx.args.incidents_table)
    if isinstance(found, str):
        print(f"budgetctl: incidents table {ctx.args.incidents_table} unreadable: {found}", file=sys.stderr)
    for row in rows:
        if isinstance(found, str):
            row["Incident"] = "unreadable"
        else:
            row["Incident"] = ", ".join(found.get(str(row.get("AccountId")), [])) or None
