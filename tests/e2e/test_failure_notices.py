"""Every new failure is published once, whichever step recorded it: an invalid item and an
unreachable spoke (the stream function's), as well as the spoke's own (test_closed_loop).
The notice travels the status table's stream to the result function, as on AWS."""

from __future__ import annotations

from decimal import Decimal

import pytest
from moto.sns.models import sns_backends

from budget_sync_local.organisation import MANAGEMENT_ACCOUNT, LocalOrganisation
from tests.support.local_org import Recorder, notifications

# every test: moto or the local organisation (make unit does not import this module)
pytestmark = [pytest.mark.e2e, pytest.mark.aws]

A = "111111111111"
NOWHERE = "999999999999"  # an account with no spoke stack: its role cannot be assumed


def test_given_an_invalid_item_then_its_failure_is_published_once_with_the_field_and_value(
    local_org: LocalOrganisation, recorder: Recorder
):
    # WHEN an operator writes a negative budget for A
    local_org.put(A, Decimal(-5))
    local_org.pipeline.run_until_idle()

    # THEN A is FAILED by the stream function, and one notice names A, the field and the value
    status = local_org.status(A)
    assert status is not None
    assert (status["Status"], status["Source"]) == ("FAILED", "stream")
    (sent,) = notifications(local_org)
    subject, message = sent
    assert A in subject
    assert "BudgetValue" in message
    assert "-5" in message
    assert "stream step" in message
    assert [s.account for s in recorder.steps if s.kind == "notified"] == [A]

    # WHEN a second invalid value follows while A is still FAILED: the same failure, no new notice
    local_org.put(A, "lots")
    local_org.pipeline.run_until_idle()
    assert local_org.status(A)["Status"] == "FAILED"  # type: ignore[index]
    assert len(notifications(local_org)) == 1

    # WHEN a valid value is applied, and then an invalid one again: a new failure, a new notice
    local_org.put(A, 700)
    local_org.pipeline.run_until_idle()
    assert local_org.status(A)["Status"] == "APPLIED"  # type: ignore[index]
    local_org.put(A, Decimal(-1))
    local_org.pipeline.run_until_idle()
    assert len(notifications(local_org)) == 2


def test_given_an_account_without_a_spoke_stack_then_its_failure_is_published_once(
    local_org: LocalOrganisation,
):
    # WHEN a budget is written for an account whose spoke role does not exist
    local_org.put(NOWHERE, 100)
    local_org.pipeline.run_until_idle()

    # THEN it is FAILED with the reason (the role could not be assumed), published once
    status = local_org.status(NOWHERE)
    assert status is not None
    assert status["Status"] == "FAILED"
    (sent,) = notifications(local_org)
    assert NOWHERE in sent[0]
    assert "BlogBudgetsSpokeRole" in sent[1]


def test_given_the_topic_refuses_a_publish_then_the_notice_is_retried_not_lost(
    local_org: LocalOrganisation, recorder: Recorder
):
    # GIVEN the alarm topic is gone for a while (publish fails)
    topic_arn = local_org.stack.physical_ids["AlarmTopic"]
    sns = local_org.management.client("sns")
    sns.delete_topic(TopicArn=topic_arn)

    # WHEN A fails while the topic is gone
    local_org.put(A, Decimal(-5))
    for _ in range(3):
        local_org.pipeline.step()
    assert local_org.status(A)["Status"] == "FAILED"  # type: ignore[index]
    assert topic_arn not in sns_backends[MANAGEMENT_ACCOUNT][local_org.region].topics
    assert any(s.kind == "retry" for s in recorder.steps), "the batch went back for retry"
    assert not [s for s in recorder.steps if s.kind == "notified"]

    # THEN once the topic is back, the stream's retry publishes it, once
    sns.create_topic(Name=topic_arn.rsplit(":", 1)[-1])
    local_org.pipeline.run_until_idle()
    (sent,) = notifications(local_org)
    assert A in sent[0]


def test_given_a_pasted_arn_as_item_key_then_its_notice_and_every_later_one_are_published(
    local_org: LocalOrganisation,
):
    # GIVEN an operator pasted a 64-character ARN as an item's key (a subject of 110 characters:
    # SNS refuses subjects of 100 or more), and then A gets an invalid value in the same batch
    pasted = "arn:aws:organizations::123456789012:account/o-abcdefghij/1111111"
    assert len(pasted) == 64
    local_org.put(pasted, 100)
    local_org.put(A, Decimal(-5))

    # WHEN the pipeline runs
    local_org.pipeline.run_until_idle()

    # THEN both failures are heard, once each, with subjects SNS takes
    sent = notifications(local_org)
    assert len(sent) == 2, sent
    assert all(len(subject) < 100 for subject, _ in sent)
    assert any(pasted in message for _, message in sent)
    assert any(A in subject for subject, _ in sent)


def test_given_the_result_function_fails_on_a_spoke_result_then_the_event_is_parked_not_lost(
    local_org: LocalOrganisation, monkeypatch: pytest.MonkeyPatch
):
    import json

    from budget_sync.errors import TransientError
    from budget_sync.results import ResultStore

    # GIVEN the status table cannot be written by the result function for a while
    calls: list[str] = []

    def unavailable(self: ResultStore, result: object) -> None:
        calls.append("record")
        raise TransientError("status table unavailable")

    monkeypatch.setattr(ResultStore, "record", unavailable)

    # WHEN a spoke reports its result
    local_org.put(A, 700)
    local_org.pipeline.run_until_idle()

    # THEN Lambda's retries were made, and then the event went to the on-failure destination
    # (ResultDeadLetterQueue, alarmed), with the error, instead of being dropped
    assert len(calls) >= 3
    sqs = local_org.management.client("sqs")
    messages = sqs.receive_message(
        QueueUrl=local_org.stack.result_dead_letter_queue_url, MaxNumberOfMessages=10
    ).get("Messages", [])
    parked = [json.loads(m["Body"]) for m in messages]
    reports = [p for p in parked if p.get("requestPayload", {}).get("detail-type") == "Budget Update Result"]
    assert reports, parked
    assert reports[0]["requestContext"]["condition"] == "RetriesExhausted"
    assert reports[0]["requestPayload"]["account"] == A
    assert "status table unavailable" in reports[0]["responsePayload"]["errorMessage"]
