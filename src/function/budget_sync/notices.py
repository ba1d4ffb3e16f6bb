"""New failures, whoever recorded them, published once to the alarm topic: the logic of the
failure-notice function (its handler: handlers/notices.py; the topic behind the ``AlarmTopic``
Protocol declared here, whose SNS adapter is alarm_topic.py, which alone translates SNS's
errors into the project's).

Every writer of the status table can turn an account FAILED: the stream function (an invalid
item, a spoke it cannot reach, a value the spoke's parameter refuses), the result function
(the spoke's own failure, a value not confirmed in time), the reconciler (a repair that does
not hold). The status table's stream (NEW_AND_OLD_IMAGES) carries each of these writes to
the failure-notice function (``NewFailures`` in template-management.yaml, filtered to records whose
new image is FAILED), and a record whose old image was not FAILED is a new failure: it is
published once, with the writer's reason, whichever step failed.

An account that stays FAILED (a second invalid value, AWS's failure notice after the
script's own report) is not a new failure. An account that failed, was sent a new value and
failed again is, also when that value's failure was recorded before its SENT (FAILED -> FAILED
with a higher ParameterVersion). Delivery is at least once: a publish that fails makes Lambda retry from
that record, so a message may be sent twice, never not at all (after MaximumRetryAttempts
the batch is parked in the result dead-letter queue). A publish that can never succeed (SNS
answers InvalidParameter, InvalidParameterValue or a validation error: the message itself is
refused) is logged and counted (``NoticeNotPublished``), and the records after it are still
published: one bad notice does not park the others.

The notice is bounded by what SNS's Publish takes (botocore's model: a subject is "UTF-8 text
with no line breaks or control characters, and less than 100 characters long"): the subject
is cut to 99 characters, and every text from outside (the item key, the reason) has its
control and format characters replaced by ``?`` (``safe_text``). A reason (a spoke may send
up to 1,000 characters) is cut at ``MAX_NOTICE_REASON`` characters, and the notice says so
and where the whole reason is kept (the status table, ``budgetctl status``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from budget_sync.errors import PermanentError, TransientError
from budget_sync.status import Status, _deserialize

#: SNS Publish: "Subjects must be ... less than 100 characters long".
MAX_SUBJECT = 99
#: The longest reason a notice quotes; the status table keeps the whole of it.
MAX_NOTICE_REASON = 300


class AlarmTopic(Protocol):
    """Where a notice is published (the adapter: alarm_topic.SnsAlarmTopic)."""

    def publish(self, subject: str, message: str) -> None:
        """Publish one notice. TransientError if it was not published for a reason that may
        pass; PermanentError if the topic refused the message itself (publishing it again
        cannot succeed). Each error's text says what happened ("not published (...)",
        "refused by SNS (...)")."""
        ...


@dataclass(frozen=True, slots=True)
class NewFailure:
    """An account that became FAILED, from its status stream record."""

    sequence_number: str  # the stream record's (Lambda's batch item identifier)
    account_id: str
    reason: str
    source: str  # who recorded it: stream | spoke | timeout | reconciler
    desired: str  # the desired value, if the item had a valid one
    previous: str  # the status before (none: the account had no status)


def new_failures(records: Iterable[Mapping[str, Any]]) -> list[NewFailure]:
    """The records of a status stream batch that turn an account FAILED, in stream order."""
    found = []
    for record in records:
        data = record.get("dynamodb") or {}
        new = _image(data.get("NewImage"))
        old = _image(data.get("OldImage"))
        if new.get("Status") != Status.FAILED or (
            old.get("Status") == Status.FAILED and not _newer_send(old, new)
        ):
            continue
        found.append(
            NewFailure(
                sequence_number=str(data.get("SequenceNumber", "")),
                account_id=str(new.get("AccountId", "")),
                reason=str(new.get("Reason", "")) or "no reason recorded",
                source=str(new.get("Source", "")),
                desired="" if new.get("DesiredValue") is None else str(new["DesiredValue"]),
                previous=str(old.get("Status", "none")),
            )
        )
    return found


def _newer_send(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """A FAILED that follows a FAILED is new when it is about a newer send: a value written to
    the spoke (a higher ParameterVersion) whose failure arrived before its SENT was recorded, so
    the status went FAILED -> FAILED without passing through SENT. A second invalid value, or a
    reconciler's word on the same version, is the same failure going on."""
    try:
        return int(new.get("ParameterVersion", 0)) > int(old.get("ParameterVersion", 0))
    except (TypeError, ValueError):
        return False


def safe_text(text: str) -> str:
    """``text`` with every control or format character (NUL, ESC, a line break, a zero-width
    space, a bidirectional override) replaced by ``?``: text from outside stays one line of
    plain text in a subject or a message."""
    return "".join(c if c.isprintable() else "?" for c in text)


def bounded(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending in ``...`` when it was cut."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _image(raw: object) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        return {}
    return {str(k): _deserialize(v) for k, v in raw.items()}


class FailureNotifier:
    """Publishes one message per new failure to the alarm topic (None: no topic, log only)."""

    def __init__(self, topic: AlarmTopic | None) -> None:
        self._topic = topic

    def notify(self, failure: NewFailure) -> bool:
        """Publish it (False: there is no topic to publish to); TransientError if it was not
        published for a reason that may pass (Lambda retries the record), PermanentError if
        the topic refused the message itself (publishing it again cannot succeed)."""
        if self._topic is None:
            return False
        account = safe_text(failure.account_id)
        try:
            self._topic.publish(subject(failure), message(failure))
        except PermanentError as exc:
            raise PermanentError(f"account {account}: failure notice {exc}") from exc
        except TransientError as exc:
            raise TransientError(f"account {account}: failure {exc}") from exc
        return True


def subject(failure: NewFailure) -> str:
    """The notice's subject: one line, under SNS's 100 characters whatever the item key."""
    return bounded(f"budget-sync: budget not applied in account {safe_text(failure.account_id)}", MAX_SUBJECT)


def message(failure: NewFailure) -> str:
    """The notice's text: the account, the step, the reason (cut at MAX_NOTICE_REASON)."""
    account = safe_text(failure.account_id)
    wanted = f" (desired value {safe_text(failure.desired)})" if failure.desired else ""
    reason = safe_text(failure.reason)
    if len(reason) > MAX_NOTICE_REASON:
        reason = (
            f"{bounded(reason, MAX_NOTICE_REASON)}\n(reason cut at {MAX_NOTICE_REASON} of {len(reason)} "
            "characters; the whole reason is in the status table's Reason)"
        )
    return (
        f"budget-sync: the budget of account {account} was not applied{wanted}.\n"
        f"Reason (text recorded by the {safe_text(failure.source) or 'pipeline'} step): {reason}\n"
        f"Status before: {safe_text(failure.previous)}.\n"
        f"See `budgetctl status --account {account}` and the status table."
    )


__all__ = [
    "AlarmTopic",
    "FailureNotifier",
    "NewFailure",
    "bounded",
    "message",
    "new_failures",
    "safe_text",
    "subject",
]
