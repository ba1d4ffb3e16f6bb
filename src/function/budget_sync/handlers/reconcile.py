"""BlogBudgetsReconciler: on a schedule, repair every account whose spoke drifted from the table.

EventBridge Scheduler (or a schedule rule) calls ``handler`` with an event it ignores. The
function reads the budgets and status tables, inspects every account through the spoke role,
re-writes the parameter where the parameter or the budget drifted, records the outcome in the
status table (Source=reconciler) and publishes the metrics Drifted, Repaired and Failed.
It is the same code as ``budgetctl reconcile --apply``.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from budget_sync.observability import logger, metrics, traced_handler
from budget_sync.reconcile import (
    Reconciler,
    ReconcilerSettings,
    read_desired,
    read_desired_value,
    read_statuses,
)
from budget_sync.spoke import CLIENT_CONFIG, SsmSpokeGateway
from budget_sync.status import StatusStore

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
    status = StatusStore(dynamodb, common.status_table_name)
    reconciler = Reconciler(
        spokes,
        status,
        budget_name=settings.budget_name,
        max_concurrency=common.max_concurrency,
        reread=lambda account: read_desired_value(dynamodb, settings.budgets_table_name, account),
    )
    return reconciler, dynamodb, settings


@logger.inject_lambda_context
@metrics.log_metrics
def _handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    reconciler, dynamodb, settings = build()
    items = read_desired(dynamodb, settings.budgets_table_name)
    statuses = read_statuses(dynamodb, settings.common.status_table_name)
    summary = reconciler.run(items, statuses, apply=True)
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
    return result


handler = traced_handler(_handler)
