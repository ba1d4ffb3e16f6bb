"""What each resolver function reads from its own source's event (budget_sync.handlers.resolve),
and what it rejects, without AWS: the parsing the five handlers do before any resolution."""

from __future__ import annotations

from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent, EventBridgeEvent

from budget_sync.errors import UnrecognisedEvent
from budget_sync.handlers.resolve import (
    is_schedule,
    organizations_targets,
    removed_accounts,
    stack_instance_ready,
    stream_keys,
)

A, B = "111111111111", "222222222222"


def record(name: str, keys: dict[str, Any]) -> dict[str, Any]:
    return {"eventSource": "aws:dynamodb", "eventName": name, "eventID": name, "dynamodb": {"Keys": keys}}


def organizations(name: str, **detail: Any) -> EventBridgeEvent:
    return EventBridgeEvent(
        {
            "source": "aws.organizations",
            "detail-type": "AWS API Call via CloudTrail",
            "detail": {"eventName": name, **detail},
        }
    )


def test_a_batch_of_the_budgets_table_names_its_removed_accounts_only():
    batch = DynamoDBStreamEvent(
        {
            "Records": [
                record("REMOVE", {"AccountId": {"S": A}}),
                record("INSERT", {"AccountId": {"S": B}}),
                record("REMOVE", {"AccountId": {"S": "not-an-account"}}),
            ]
        }
    )
    assert removed_accounts(batch) == {A}


@pytest.mark.parametrize(
    "event",
    [
        {"Records": []},
        {"Records": [record("REMOVE", {"TargetId": {"S": "ou-abcd-11111111"}})]},
        {"Records": [{"eventSource": "aws:sqs", "body": "{}"}]},
        {"source": "aws.events"},
    ],
)
def test_a_batch_without_the_tables_key_or_from_another_source_is_rejected(event: dict[str, Any]):
    with pytest.raises(UnrecognisedEvent, match="is not a batch of the budgets table's stream"):
        removed_accounts(DynamoDBStreamEvent(event))


def test_a_batch_of_the_defaults_table_names_its_targets():
    batch = DynamoDBStreamEvent({"Records": [record("MODIFY", {"TargetId": {"S": "r-abcd"}})]})
    assert stream_keys(batch, "TargetId", "the defaults") == ["r-abcd"]


def test_organizations_events_name_the_account_or_the_whole_organisation_for_a_handshake():
    created = {"createAccountStatus": {"state": "SUCCEEDED", "accountId": A}}
    assert organizations_targets(organizations("CreateAccountResult", serviceEventDetails=created)) == (
        {A},
        False,
    )
    failed = {"createAccountStatus": {"state": "FAILED"}}
    assert organizations_targets(organizations("CreateAccountResult", serviceEventDetails=failed)) == (
        set(),
        False,
    )
    assert organizations_targets(organizations("MoveAccount", requestParameters={"accountId": B})) == (
        {B},
        False,
    )
    assert organizations_targets(organizations("AcceptHandshake")) == (set(), True)


@pytest.mark.parametrize(
    "event",
    [
        organizations("CreatePolicy"),
        organizations("MoveAccount", requestParameters={"accountId": "12"}),
        EventBridgeEvent({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}),
    ],
)
def test_any_other_event_is_rejected_never_resolved_as_everything(event: EventBridgeEvent):
    with pytest.raises(UnrecognisedEvent):
        organizations_targets(event)


def test_only_the_schedules_event_is_a_schedule():
    assert is_schedule({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}})
    assert not is_schedule({})
    assert not is_schedule({"source": "aws.events"})


def test_a_stack_instance_event_names_the_account_of_its_own_stack_set_when_succeeded():
    detail = {
        "stack-set-arn": "arn:aws:cloudformation:eu-west-1:123456789012:stackset/spokes:1",
        "stack-id": f"arn:aws:cloudformation:eu-west-1:{A}:stack/StackSet-spokes-1/2",
        "status-details": {"detailed-status": "SUCCEEDED"},
    }
    assert stack_instance_ready({"detail": detail}, "spokes") == A
    assert stack_instance_ready({"detail": detail}, "other") is None
    failed = {**detail, "status-details": {"detailed-status": "FAILED"}}
    assert stack_instance_ready({"detail": failed}, "spokes") is None
