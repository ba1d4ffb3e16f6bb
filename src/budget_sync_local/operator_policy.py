"""The policy of an operator who may do everything, and that of an approver (docs/operate.md),
as the local organisation gives its operators' and approvers' roles: plain data, no moto, so
that the tests keeping them equal to the docs' blocks run in ``make unit``."""

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
    history = names.get("HistoryTableName", "BlogBudgetsHistory")
    requests = names.get("ApprovalRequestsTableName", "BlogBudgetsApprovalRequests")
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
                "Sid": "HistoryReadOnly",
                "Effect": "Allow",
                "Action": "dynamodb:Query",
                "Resource": [f"{table}/{history}", f"{table}/{history}/index/ByDay"],
            },
            {
                "Sid": "ApprovalRequestsRead",
                "Effect": "Allow",
                "Action": ["dynamodb:Scan", "dynamodb:GetItem"],
                "Resource": f"{table}/{requests}",
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


def approver_policy(names: Mapping[str, str], region: str, account: str) -> dict[str, Any]:
    """docs/operate.md's policy for an approver (``budgetctl requests``, ``approve``, ``reject``),
    for a management stack's ``names`` in ``region`` and ``account``. It writes approvals only
    under the caller's own ``aws:userid`` (``dynamodb:LeadingKeys``), and of the budgets table
    only an item's ``ApprovalId`` and ``ApprovedBy`` (``dynamodb:Attributes``): an approver can
    neither approve in someone else's name nor change a budget. No operator statement writes
    the approvals table."""
    where = f"{region}:{account}"
    budgets = names.get("BudgetsTableName", "BlogBudgetsDynamoDB")
    requests = names.get("ApprovalRequestsTableName", "BlogBudgetsApprovalRequests")
    approvals = names.get("ApprovalsTableName", "BlogBudgetsApprovals")
    table = f"arn:aws:dynamodb:{where}:table"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadAndDecideRequests",
                "Effect": "Allow",
                "Action": ["dynamodb:Scan", "dynamodb:GetItem", "dynamodb:UpdateItem"],
                "Resource": f"{table}/{requests}",
            },
            {
                "Sid": "ApprovalsUnderTheCallersOwnId",
                "Effect": "Allow",
                "Action": "dynamodb:PutItem",
                "Resource": f"{table}/{approvals}",
                "Condition": {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["${aws:userid}"]}},
            },
            {
                "Sid": "ReadTheItem",
                "Effect": "Allow",
                "Action": "dynamodb:GetItem",
                "Resource": f"{table}/{budgets}",
            },
            {
                "Sid": "MarkTheItemApproved",
                "Effect": "Allow",
                "Action": "dynamodb:UpdateItem",
                "Resource": f"{table}/{budgets}",
                "Condition": {
                    "ForAllValues:StringEquals": {
                        "dynamodb:Attributes": ["AccountId", "ApprovalId", "ApprovedBy"]
                    },
                    "StringEqualsIfExists": {"dynamodb:ReturnValues": ["NONE"]},
                },
            },
        ],
    }
