"""BlogBudgetsReconciler: on a schedule, repair every account whose spoke drifted from the table.

EventBridge Scheduler (or a schedule rule) calls ``handler`` with an event it ignores. The
function reads the budgets and status tables, inspects every account through the spoke role,
re-writes the parameter where the parameter or the budget's limit drifted (the alert parameter
where the budget's notifications drifted from the item's alert settings over the spoke stack's
defaults), records the outcome in the
status table (Source=reconciler) and publishes the metrics Drifted, Repaired and Failed.
``budgetctl reconcile --apply`` invokes it with the accounts and who asked
(budget_sync.requested): the same repair, by this function's role, recorded with RequestedBy
and a per-person spoke session name; the response then lists each account's outcome.

The handler builds the adapters (spoke.SsmSpokeGateway, budgets_table.BudgetsTable,
status.StatusStore) and injects them into the logic (budget_sync.reconcile.Reconciler).
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from budget_sync.budgets_table import BudgetsTable
from budget_sync.config import CLIENT_CONFIG, ReconcilerSettings
from budget_sync.observability import logger, metrics, traced_handler
from budget_sync.reconcile import Reconciler
from budget_sync.requested import RepairRequest, parse_request, report_fields
from budget_sync.spoke import SsmSpokeGateway
from budget_sync.status import StatusStore
from budget_sync.status_table import DynamoStatusTable, read_statuses

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


@cache
def build() -> tuple[Reconciler, DynamoDBClient, ReconcilerSettings]:
    """Built once per execution environment: settings validated, clients reused."""
    settings = ReconcilerSettings.from_env()
    common = settings.common
    session = boto3.Session()
    spokes = SsmSpokeGateway.from_settings(common, session)
    dynamodb: DynamoDBClient = session.client("dynamodb", config=CLIENT_CONFIG)
    reconciler = Reconciler(
        spokes,
        StatusStore(DynamoStatusTable(dynamodb, common.status_table_name)),
        desired=BudgetsTable(dynamodb, settings.budgets_table_name),
        budget_name=settings.budget_name,
        max_concurrency=common.max_concurrency,
    )
    return reconciler, dynamodb, settings


def requested_reconciler(request: RepairRequest) -> Reconciler:
    """The reconciler for one operator's request: the function's role, the person's session
    name on every spoke assume-role, and RequestedBy on every status it writes."""
    _, dynamodb, settings = build()
    common = replace(settings.common, session_name=request.session_name)
    return Reconciler(
        SsmSpokeGateway.from_settings(common, boto3.Session()),
        StatusStore(DynamoStatusTable(dynamodb, common.status_table_name)),
        desired=BudgetsTable(dynamodb, settings.budgets_table_name),
        budget_name=settings.budget_name,
        max_concurrency=common.max_concurrency,
        requested_by=request.requested_by,
    )


@logger.inject_lambda_context
@metrics.log_metrics
def _handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    reconciler, dynamodb, settings = build()
    request = parse_request(event)
    items = BudgetsTable(dynamodb, settings.budgets_table_name).items()
    statuses = read_statuses(dynamodb, settings.common.status_table_name)
    if request is not None:
        logger.append_keys(requested_by=request.requested_by)  # on every line of this run
        logger.info("repair requested", extra={"accounts": list(request.accounts) or "all"})
        reconciler = requested_reconciler(request)
        if request.accounts:
            items = [i for i in items if i.account_id in set(request.accounts)]
    try:
        summary = reconciler.run(items, statuses, apply=True)
    finally:
        logger.remove_keys(["requested_by"])  # a warm environment's next run is not this one
    metrics.add_metric(name="Drifted", unit="Count", value=summary.drifted)
    metrics.add_metric(name="Repaired", unit="Count", value=summary.repaired)
    metrics.add_metric(name="Failed", unit="Count", value=summary.failed)
    counts = dict(sorted(summary.counts.items()))
    result = {
        "accounts": len(summary.reports),
        "drifted": summary.drifted,
        "repaired": summary.repaired,
        "failed": summary.failed,
        "states": counts,
    }
    logger.info("reconciliation finished", extra=result)
    if request is not None:
        found = {r.account_id for r in summary.reports}
        result["reports"] = [report_fields(r) for r in summary.reports]
        result["missing"] = [a for a in request.accounts if a not in found]
    return result


handler = traced_handler(_handler)
