"""The policy of an operator who may do everything (docs/operate.md), as the local
organisation gives its operators' role: plain data, no moto, so that the test keeping it equal
to the docs' block runs in ``make unit``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def operator_policy(names: Mapping[str, str], region: str, account: str) -> dict[str, Any]:
    """docs/operate.md's policy for an operator who may do everything (a test keeps the two
    equal), for a management stack's ``names`` (its parameters; the templates' defaults where
    one is not given) in ``region`` and ``account``."""
    where = f"{region}:{account}"
    reconciler = names.get("ReconcilerFunctionName", "BlogBudgetsReconciler")
    resolver = names.get("ResolverFunctionName", "BlogBudgetsOrgResolver")
    budgets = names.get("BudgetsTableName", "BlogBudgetsDynamoDB")
    status = names.get("StatusTableName", "BlogBudgetsStatus")
    defaults = names.get("DefaultsTableName", "BlogBudgetsDefaults")
    incidents = names.get("IncidentsTableName", "BudgetSyncIncidents")
    table = f"arn:aws:dynamodb:{where}:table"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "BudgetsAndDefaultsTables",
                "Effect": "Allow",
                "Action": [
                    "dynamodb:GetItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                    "dynamodb:Scan",
                ],
                "Resource": [f"{table}/{budgets}", f"{table}/{defaults}"],
            },
            {
                "Sid": "StatusTable",
                "Effect": "Allow",
                "Action": ["dynamodb:Scan", "dynamodb:GetItem", "dynamodb:DeleteItem"],
                "Resource": f"{table}/{status}",
            },
            {
                "Sid": "IncidentsTable",
                "Effect": "Allow",
                "Action": "dynamodb:Scan",
                "Resource": f"{table}/{incidents}",
            },
            {
                "Sid": "ParkedBatches",
                "Effect": "Allow",
                "Action": ["dynamodb:DescribeStream", "dynamodb:GetShardIterator", "dynamodb:GetRecords"],
                "Resource": [f"{table}/{budgets}/stream/*", f"{table}/{defaults}/stream/*"],
            },
            {
                "Sid": "ParkedQueue",
                "Effect": "Allow",
                "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "cloudformation:DescribeStacks"],
                "Resource": [f"arn:aws:sqs:{where}:*", f"arn:aws:cloudformation:{where}:stack/*"],
            },
            {
                "Sid": "SpokeReadRole",
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Resource": "arn:aws:iam::*:role/BlogBudgetsSpokeReadRole",
                "Condition": {"StringEquals": {"aws:ResourceOrgID": "${aws:PrincipalOrgID}"}},
            },
            {
                "Sid": "AskTheReconcilerAndResolver",
                "Effect": "Allow",
                "Action": "lambda:InvokeFunction",
                "Resource": [
                    f"arn:aws:lambda:{where}:function:{reconciler}",
                    f"arn:aws:lambda:{where}:function:{resolver}",
                ],
            },
            {
                "Sid": "OrganizationView",
                "Effect": "Allow",
                "Action": [
                    "organizations:ListAccounts",
                    "organizations:DescribeAccount",
                    "organizations:DescribeOrganization",
                    "organizations:DescribeOrganizationalUnit",
                    "organizations:ListRoots",
                    "organizations:ListParents",
                    "organizations:ListOrganizationalUnitsForParent",
                    "organizations:ListAccountsForParent",
                ],
                "Resource": "*",
            },
        ],
    }
