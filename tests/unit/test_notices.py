"""New failures read from the status table's stream records (budget_sync.notices), published
through the SNS adapter (alarm_topic.py) given a stand-in client: no moto, no AWS."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from budget_sync.alarm_topic import SnsAlarmTopic
from budget_sync.errors import PermanentError, TransientError
from budget_sync.notices import FailureNotifier, new_failures
from tests.fakes import FakeAlarmTopic

B = "222222222222"


def sns_notifier(publish: Any, topic: str = "arn:aws:sns:us-east-1:123456789012:t") -> FailureNotifier:
    """The notifier on the SNS adapter, whose client is ``publish`` only."""
    return FailureNotifier(SnsAlarmTopic(SimpleNamespace(publish=publish), topic))


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
    assert sns_notifier(lambda **kwargs: published.append(kwargs), topic).notify(failure)
    (message,) = published
    assert message["Subject"] == "budget-sync: budget not applied in account 111111111111"
    assert "spoke: planned limits" in message["Message"]
    assert "spoke step" in message["Message"]

    def refuse(**_: str) -> None:
        raise EndpointConnectionError(endpoint_url="https://sns")

    with pytest.raises(TransientError, match="111111111111"):
        sns_notifier(refuse, topic).notify(failure)
    # without a topic (ALARM_TOPIC_ARN empty) nothing is published, and it says so
    assert not FailureNotifier(None).notify(failure)


def test_the_subject_stays_under_snss_100_characters_and_the_notice_is_plain_text():
    from budget_sync.notices import MAX_NOTICE_REASON, message, subject

    long_key = "arn:aws:organizations::123456789012:account/o-abcdefghij/111111111111"
    (failure,) = new_failures(
        [
            {
                "dynamodb": {
                    "SequenceNumber": "1",
                    "NewImage": {
                        "AccountId": {"S": long_key + "\x1b[2J\u200b\n"},
                        "Status": {"S": "FAILED"},
                        "Reason": {"S": "spoke: " + "x" * 990 + "\x1b]8;;evil\x07"},
                        "Source": {"S": "spoke"},
                    },
                }
            }
        ]
    )
    assert len(subject(failure)) < 100
    assert subject(failure).isprintable()
    text = message(failure)
    assert not {"\x1b", "\u200b", "\x07"} & set(text)
    assert "x" * MAX_NOTICE_REASON not in text  # the reason is cut
    assert f"reason cut at {MAX_NOTICE_REASON} of {len(failure.reason)} characters" in text
    assert "status table" in text


def test_a_notice_sns_refuses_as_such_is_passed_over_and_the_next_is_published(monkeypatch: Any):
    from botocore.exceptions import ClientError

    from budget_sync.handlers import notices as notices_handler

    published: list[str] = []

    def publish(**kwargs: str) -> None:
        if "222222222222" in kwargs["Subject"]:
            raise ClientError({"Error": {"Code": "InvalidParameter", "Message": "no"}}, "Publish")
        published.append(kwargs["Subject"])

    records = [
        record("1", "FAILED", "SENT", Reason="one", Source="spoke"),
        record("2", "FAILED", "SENT", Reason="two", Source="spoke"),
    ]
    records[0]["dynamodb"]["NewImage"]["AccountId"] = {"S": "222222222222"}
    answer = notices_handler.notify(records, sns_notifier(publish))
    assert answer == {"batchItemFailures": []}
    assert published == ["budget-sync: budget not applied in account 111111111111"]

    # a refusal that may pass (the topic is gone, throttling) still goes back for retry
    def gone(**_: str) -> None:
        raise ClientError({"Error": {"Code": "NotFound", "Message": "no topic"}}, "Publish")

    answer = notices_handler.notify(records, sns_notifier(gone))
    assert answer == {"batchItemFailures": [{"itemIdentifier": "1"}]}


def test_a_failed_status_failing_again_for_a_newer_send_is_a_new_failure_and_the_same_send_is_not():
    # GIVEN an account FAILED at parameter version 3
    def record(old_version: int | None, new_version: int | None) -> dict[str, object]:
        def image(version: int | None) -> dict[str, object]:
            item: dict[str, object] = {"AccountId": {"S": "111111111111"}, "Status": {"S": "FAILED"}}
            if version is not None:
                item["ParameterVersion"] = {"N": str(version)}
            return item

        return {
            "eventName": "MODIFY",
            "dynamodb": {
                "SequenceNumber": "9",
                "OldImage": image(old_version),
                "NewImage": image(new_version),
            },
        }

    # WHEN version 4's failure is recorded before its SENT, or the same version fails again
    newer = new_failures([record(3, 4)])
    same = new_failures([record(3, 3)])
    invalid_again = new_failures([record(None, None)])

    # THEN only the newer send is a new failure
    assert [f.account_id for f in newer] == ["111111111111"]
    assert same == []
    assert invalid_again == []


# The notifier and the failure-notice function's batch on the in-memory topic (tests/fakes)


def failed_record(
    sequence: str, account: str, old: str = "SENT", reason: str = "spoke: no"
) -> dict[str, Any]:
    body = record(sequence, "FAILED", old, Reason=reason, Source="spoke")
    body["dynamodb"]["NewImage"]["AccountId"] = {"S": account}
    return body


def test_each_new_failure_of_a_batch_is_published_once_in_stream_order():
    from budget_sync.handlers.notices import notify

    topic = FakeAlarmTopic()
    records = [
        failed_record("1", "111111111111"),
        failed_record("2", "222222222222", old="FAILED"),  # stays FAILED: no notice
        failed_record("3", "333333333333"),
    ]

    assert notify(records, FailureNotifier(topic)) == {"batchItemFailures": []}

    assert [s for s, _ in topic.published] == [
        "budget-sync: budget not applied in account 111111111111",
        "budget-sync: budget not applied in account 333333333333",
    ]


def test_a_notice_that_may_pass_stops_the_batch_there_and_the_rest_is_retried_from_it():
    from budget_sync.handlers.notices import notify

    topic = FakeAlarmTopic({"222222222222": TransientError("not published (throttled)")})
    records = [
        failed_record("1", "111111111111"),
        failed_record("2", "222222222222"),
        failed_record("3", "333333333333"),
    ]

    assert notify(records, FailureNotifier(topic)) == {"batchItemFailures": [{"itemIdentifier": "2"}]}

    assert [s[-12:] for s, _ in topic.published] == ["111111111111"]  # the third waits for the retry
    assert topic.attempts == 2


def test_a_notice_the_topic_refuses_is_passed_over_and_the_others_are_published():
    from budget_sync.handlers.notices import notify

    topic = FakeAlarmTopic({"111111111111": PermanentError("refused by SNS (InvalidParameter)")})
    records = [failed_record("1", "111111111111"), failed_record("2", "222222222222")]

    assert notify(records, FailureNotifier(topic)) == {"batchItemFailures": []}

    assert [s[-12:] for s, _ in topic.published] == ["222222222222"]


def test_the_notifiers_errors_name_the_account_and_keep_their_retry_semantics():
    (failure,) = new_failures([failed_record("1", "111111111111")])

    with pytest.raises(PermanentError, match=r"account 111111111111: failure notice refused by SNS \(no\)"):
        FailureNotifier(FakeAlarmTopic({"1111": PermanentError("refused by SNS (no)")})).notify(failure)
    with pytest.raises(TransientError, match=r"account 111111111111: failure not published \(slow\)"):
        FailureNotifier(FakeAlarmTopic({"1111": TransientError("not published (slow)")})).notify(failure)


def test_without_a_topic_nothing_is_published_and_the_failure_is_still_settled():
    from budget_sync.handlers.notices import notify

    assert notify([failed_record("1", "111111111111")], FailureNotifier(None)) == {"batchItemFailures": []}


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("InvalidParameter", PermanentError),
        ("InvalidParameterValue", PermanentError),
        ("ValidationError", PermanentError),
        ("Throttling", TransientError),
        ("NotFound", TransientError),
        ("AuthorizationError", TransientError),
    ],
)
def test_the_sns_adapter_says_whether_publishing_again_can_help(code: str, error: type[Exception]):
    from botocore.exceptions import ClientError

    def publish(**_: str) -> None:
        raise ClientError({"Error": {"Code": code, "Message": "no"}}, "Publish")

    with pytest.raises(error) as raised:
        SnsAlarmTopic(SimpleNamespace(publish=publish), "arn:aws:sns:us-east-1:123456789012:t").publish(
            "s", "m"
        )
    assert type(raised.value) is error


def test_given_a_pasted_arn_as_item_key_then_its_notice_and_every_later_one_are_published():
    from budget_sync.handlers.notices import notify

    topic = FakeAlarmTopic()
    pasted = "arn:aws:organizations::123456789012:account/o-abcdefghij/111111111111\n\u202e"
    records = [
        failed_record("1", pasted, reason="AccountId is not a 12-digit account id"),
        failed_record("2", B),
    ]

    assert notify(records, FailureNotifier(topic)) == {"batchItemFailures": []}

    subjects = [s for s, _ in topic.published]
    assert len(subjects) == 2
    assert all(len(s) < 100 and s.isprintable() for s in subjects)
    assert subjects[1].endswith(B)
