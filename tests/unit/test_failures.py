"""New failures read from the status table's stream records (budget_sync.failures)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from budget_sync.errors import TransientError
from budget_sync.failures import FailureNotifier, new_failures


def record(sequence: str, new: str | None, old: str | None, **attributes: str) -> dict[str, Any]:
    def image(status: str) -> dict[str, Any]:
        body = {"AccountId": {"S": "111111111111"}, "Status": {"S": status}}
        body.update({k: {"S": v} for k, v in attributes.items()})
        body["DesiredValue"] = {"N": "500"}
        return body

    data: dict[str, Any] = {"SequenceNumber": sequence}
    if new is not None:
        data["NewImage"] = image(new)
    if old is not None:
        data["OldImage"] = image(old)
    return {"eventName": "MODIFY" if old and new else "INSERT" if new else "REMOVE", "dynamodb": data}


@pytest.mark.parametrize(
    ("old", "new", "found"),
    [
        (None, "FAILED", True),  # the account's first status is a failure
        ("SENT", "FAILED", True),
        ("APPLIED", "FAILED", True),
        ("UNMANAGED", "FAILED", True),
        ("FAILED", "FAILED", False),  # still failing: not new
        ("FAILED", "SENT", False),
        ("SENT", "APPLIED", False),
        ("FAILED", None, False),  # removed
    ],
)
def test_a_record_is_a_new_failure_only_when_it_turns_the_account_failed(
    old: str | None, new: str | None, found: bool
):
    assert bool(new_failures([record("1", new, old, Reason="why", Source="stream")])) is found


def test_new_failures_keep_the_stream_order_and_carry_the_writers_reason():
    records = [
        record("7", "FAILED", "SENT", Reason="spoke: no", Source="spoke"),
        record("8", "FAILED", "FAILED", Reason="again", Source="spoke"),
        record("9", "FAILED", None, Reason="BudgetValue -5 is negative", Source="stream"),
    ]
    found = new_failures(records)
    assert [(f.sequence_number, f.reason, f.source, f.previous) for f in found] == [
        ("7", "spoke: no", "spoke", "SENT"),
        ("9", "BudgetValue -5 is negative", "stream", "none"),
    ]
    assert found[0].desired == "500"


def test_the_notice_names_the_account_its_reason_and_the_step_and_a_refused_publish_is_retried():
    published: list[dict[str, str]] = []
    (failure,) = new_failures([record("1", "FAILED", "SENT", Reason="spoke: planned limits", Source="spoke")])
    topic = "arn:aws:sns:us-east-1:123456789012:t"
    assert FailureNotifier(lambda **kwargs: published.append(kwargs), topic).notify(failure)
    (message,) = published
    assert message["Subject"] == "budget-sync: budget not applied in account 111111111111"
    assert "spoke: planned limits" in message["Message"]
    assert "spoke step" in message["Message"]

    def refuse(**_: str) -> None:
        raise EndpointConnectionError(endpoint_url="https://sns")

    with pytest.raises(TransientError, match="111111111111"):
        FailureNotifier(refuse, topic).notify(failure)
    # without a topic (ALARM_TOPIC_ARN empty) nothing is published, and it says so
    assert not FailureNotifier.for_topic(None, "").notify(failure)
