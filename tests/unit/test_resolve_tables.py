"""The resolver's DynamoDB adapter (budget_sync.resolve_tables) on botocore's Stubber: the
requests it makes and how it translates DynamoDB's answers (a refused condition is an answer,
every other error a retryable TransientError naming what failed). No AWS, no moto: the same
adapter runs against moto's DynamoDB in tests/resolve."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import botocore.session
import pytest
from botocore.stub import Stubber

from budget_sync.effective_budget import TableItem
from budget_sync.errors import TransientError
from budget_sync.resolve_tables import DynamoDBResolverTables, WriteOutcome, as_read_condition
from budget_sync.status import Status

A = "111111111111"
SANDBOX = "ou-abcd-11111111"


@pytest.fixture(scope="module")
def client() -> Any:
    """Built once: loading botocore's DynamoDB model is most of a client's cost."""
    return botocore.session.get_session().create_client(
        "dynamodb", region_name="eu-west-1", aws_access_key_id="k", aws_secret_access_key="s"
    )


@pytest.fixture
def stubbed(client: Any) -> Iterator[tuple[DynamoDBResolverTables, Stubber]]:
    with Stubber(client) as stubber:
        yield DynamoDBResolverTables(client, "Budgets", "Defaults", "Status"), stubber
        stubber.assert_no_pending_responses()


def cancelled(stubber: Stubber, *codes: str) -> None:
    stubber.add_client_error(
        "transact_write_items",
        service_error_code="TransactionCanceledException",
        http_status_code=400,
        response_meta={},
        modeled_fields={"CancellationReasons": [{"Code": code} for code in codes]},
    )


def test_the_write_request_names_the_default_check_first_then_the_item_as_read(stubbed):
    tables, stubber = stubbed
    previous = TableItem(Decimal(100), SANDBOX)
    condition, names, read = as_read_condition(previous)
    expected: dict[str, Any] = {
        "TransactItems": [
            {
                "ConditionCheck": {
                    "TableName": "Defaults",
                    "Key": {"TargetId": {"S": SANDBOX}},
                    "ConditionExpression": "#dv = :dv",
                    "ExpressionAttributeNames": {"#dv": "BudgetValue"},
                    "ExpressionAttributeValues": {":dv": {"N": "150"}},
                }
            },
            {
                "Update": {
                    "TableName": "Budgets",
                    "Key": {"AccountId": {"S": A}},
                    "UpdateExpression": "SET #v = :v, #inh = :src, #marker = :v, UpdatedBy = :by, UpdatedAt = :at",
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": {
                        **names,
                        "#v": "BudgetValue",
                        "#inh": "InheritedFrom",
                        "#marker": "InheritedValue",
                    },
                    "ExpressionAttributeValues": {
                        ":v": {"N": "150"},
                        ":src": {"S": SANDBOX},
                        ":by": {"S": "me"},
                        ":at": {"S": "now"},
                        **read,
                    },
                }
            },
        ]
    }
    stubber.add_response("transact_write_items", {}, expected)

    assert (
        tables.write_inherited(A, Decimal(150), SANDBOX, "me", "now", previous, Decimal(150))
        is WriteOutcome.DONE
    )
    assert condition == "#inh = :read_src AND #v = :read_v"


@pytest.mark.parametrize(
    ("codes", "outcome"),
    [
        (("ConditionalCheckFailed", "None"), WriteOutcome.STALE),
        (("None", "ConditionalCheckFailed"), WriteOutcome.CONFLICT),
        (("ConditionalCheckFailed", "ConditionalCheckFailed"), WriteOutcome.STALE),
    ],
)
def test_a_refused_default_check_is_stale_and_a_refused_item_condition_a_conflict(stubbed, codes, outcome):
    tables, stubber = stubbed
    cancelled(stubber, *codes)

    assert tables.write_inherited(A, Decimal(1), SANDBOX, "me", "now", None, Decimal(1)) is outcome


def test_a_delete_without_a_default_check_refused_is_a_conflict(stubbed):
    tables, stubber = stubbed
    cancelled(stubber, "ConditionalCheckFailed")

    assert tables.delete_inherited(A, TableItem(Decimal(1), SANDBOX), None) is WriteOutcome.CONFLICT


@pytest.mark.parametrize("codes", [("None", "TransactionConflict"), ("ThrottlingError", "None")])
def test_a_transaction_cancelled_for_another_reason_is_retried(stubbed, codes):
    tables, stubber = stubbed
    cancelled(stubber, *codes)

    with pytest.raises(TransientError, match=f"account {A}: inherited delete failed"):
        tables.delete_inherited(A, TableItem(Decimal(1), SANDBOX), SANDBOX)


def test_throttling_on_a_write_is_retried_naming_the_account(stubbed):
    tables, stubber = stubbed
    stubber.add_client_error("transact_write_items", "ProvisionedThroughputExceededException")

    with pytest.raises(TransientError, match=f"account {A}: inherited write failed") as raised:
        tables.write_inherited(A, Decimal(1), SANDBOX, "me", "now", None, Decimal(1))
    assert raised.value.retryable is True


@pytest.mark.parametrize(
    ("call", "operation"),
    [
        (lambda t: t.make_explicit(A, SANDBOX, Decimal(9)), "update_item"),
        (lambda t: t.record_default_failure(SANDBOX, "why", "now"), "update_item"),
        (lambda t: t.clear_default_failure(SANDBOX), "delete_item"),
        (lambda t: t.record_status(A, Status.WAITING, "why", Decimal(1), "now"), "update_item"),
    ],
)
def test_a_refused_condition_is_an_answer_and_another_error_is_retried(stubbed, call, operation):
    tables, stubber = stubbed
    stubber.add_client_error(operation, "ConditionalCheckFailedException")
    stubber.add_client_error(operation, "InternalServerError", http_status_code=500)

    assert call(tables) is False
    with pytest.raises(TransientError):
        call(tables)


def test_waiting_is_conditional_on_not_applied_and_skipped_is_not(stubbed):
    tables, stubber = stubbed
    waiting = {
        "TableName": "Status",
        "Key": {"AccountId": {"S": A}},
        "UpdateExpression": "SET #st = :st, Reason = :reason, UpdatedAt = :at, #src = :source, DesiredValue = :desired",
        "ExpressionAttributeNames": {"#st": "Status", "#src": "Source"},
        "ExpressionAttributeValues": {
            ":st": {"S": "WAITING"},
            ":reason": {"S": "why"},
            ":at": {"S": "now"},
            ":source": {"S": "resolver"},
            ":desired": {"N": "100"},
            ":applied": {"S": "APPLIED"},
        },
        "ConditionExpression": "attribute_not_exists(#st) OR #st <> :applied",
    }
    skipped = {
        "TableName": "Status",
        "Key": {"AccountId": {"S": A}},
        "UpdateExpression": "SET #st = :st, Reason = :reason, UpdatedAt = :at, #src = :source",
        "ExpressionAttributeNames": {"#st": "Status", "#src": "Source"},
        "ExpressionAttributeValues": {
            ":st": {"S": "SKIPPED"},
            ":reason": {"S": "why"},
            ":at": {"S": "now"},
            ":source": {"S": "resolver"},
        },
    }
    stubber.add_response("update_item", {}, waiting)
    stubber.add_response("update_item", {}, skipped)

    assert tables.record_status(A, Status.WAITING, "why", Decimal(100), "now") is True
    assert tables.record_status(A, Status.SKIPPED, "why", None, "now") is True


def test_reads_are_consistent_and_a_failed_read_is_retried_naming_the_table(stubbed):
    tables, stubber = stubbed
    stubber.add_response(
        "get_item",
        {"Item": {"AccountId": {"S": A}, "BudgetValue": {"N": "5"}}},
        {"TableName": "Budgets", "Key": {"AccountId": {"S": A}}, "ConsistentRead": True},
    )
    stubber.add_response(
        "scan",
        {"Items": [{"TargetId": {"S": SANDBOX}, "BudgetValue": {"N": "100.50"}}]},
        {"TableName": "Defaults", "ConsistentRead": True},
    )
    stubber.add_client_error("scan", "ProvisionedThroughputExceededException")

    assert tables.item(A) == {"AccountId": A, "BudgetValue": Decimal(5)}
    assert tables.defaults() == [{"TargetId": SANDBOX, "BudgetValue": Decimal("100.50")}]
    with pytest.raises(TransientError, match="scan of Budgets failed"):
        tables.items()
