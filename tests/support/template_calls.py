"""A function's AWS calls set against its role: record every call a test makes (by whose
credentials signed it, or as DynamoDB (action, table) pairs) and the statements' actions, and
ask budget_sync_local.iam which calls the statements do not allow (the template tests)."""

from __future__ import annotations

import os
from typing import Any

from botocore.client import BaseClient

from budget_sync_local.iam import AccessDenied, Policy, Principal, Request, decide


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    found: set[str] = set()
    for statement in statements:
        actions = statement["Action"]
        found.update([actions] if isinstance(actions, str) else actions)
    return found


def iam_actions(prefix: str, operation: str, params: dict[str, Any]) -> set[str]:
    """The IAM actions a call needs. TransactWriteItems is authorised per contained action."""
    if operation == "TransactWriteItems":
        return {f"dynamodb:{kind}Item" for item in params["TransactItems"] for kind in item}
    return {f"{prefix}:{operation}"}


class _CallRecorder:
    """Every AWS call made while recording, split by whose credentials signed it (a call's own
    signing credentials when it has them, as the spoke gateway's calls do, else its client's)."""

    def __init__(self) -> None:
        self.management: set[str] = set()
        self.spoke: set[str] = set()

    def __call__(self, original: Any) -> Any:
        recorder = self

        def _make_api_call(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
            signed: list[Any] = []

            def before_sign(request: Any, **_: Any) -> None:
                signed.append(request.context.get("signing", {}).get("request_credentials"))

            client.meta.events.register("before-sign", before_sign)
            try:
                return original(client, operation, params)
            finally:
                client.meta.events.unregister("before-sign", before_sign)
                credentials = (signed[0] if signed else None) or client._request_signer._credentials
                key = credentials.get_frozen_credentials().access_key
                whose = recorder.management if key == os.environ["AWS_ACCESS_KEY_ID"] else recorder.spoke
                whose.update(iam_actions(client.meta.service_model.signing_name, operation, params))

        return _make_api_call


class TableCalls:
    """Every DynamoDB call while recording, as (IAM action, table name): a transaction's items
    each with their own action, as IAM authorises them."""

    def __init__(self) -> None:
        self.calls: set[tuple[str, str]] = set()

    def __call__(self, original: Any) -> Any:
        calls = self.calls

        def _make_api_call(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
            try:
                return original(client, operation, params)
            finally:
                if client.meta.service_model.signing_name == "dynamodb":
                    if "TableName" in params:
                        calls.add((f"dynamodb:{operation}", params["TableName"]))
                    for item in params.get("TransactItems", []):
                        for kind, call in item.items():
                            calls.add((f"dynamodb:{kind}Item", call["TableName"]))

        return _make_api_call


def not_allowed(
    role: str, statements: list[dict[str, Any]], calls: set[tuple[str, str]]
) -> set[tuple[str, str]]:
    """The recorded calls the role's statements (as the template resolves them, in moto's
    default account and region) do not allow, by budget_sync_local.iam's evaluation."""
    account = "123456789012"
    policy = Policy.of({"Version": "2012-10-17", "Statement": statements})
    refused = set()
    for action, table in calls:
        arn = f"arn:aws:dynamodb:us-east-1:{account}:table/{table}"
        try:
            decide(
                Request(
                    Principal(account, role_name=role, session_name="t"),
                    action,
                    arn,
                    account,
                    {},
                    None,
                    [policy],
                )
            )
        except AccessDenied:
            refused.add((action, table))
    return refused
