"""The alarm topic's adapter: SNS Publish for the failure notices (notices.AlarmTopic).

All boto3 and ClientError/BotoCoreError handling for the topic lives here; the notifier sees
the project's errors (errors.py). SNS refusing the message itself (InvalidParameter,
InvalidParameterValue or a validation error: publishing it again cannot help) is
PermanentError; anything else (throttling, a 5xx, a timeout, no permission yet) is
TransientError, and Lambda retries the record.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from budget_sync.errors import PermanentError, TransientError

#: SNS error codes that say the message itself is refused: publishing it again cannot help.
REFUSED_MESSAGE = frozenset(
    {"InvalidParameter", "InvalidParameterValue", "ValidationError", "ValidationException"}
)


class SnsAlarmTopic:
    """One SNS topic (``client``: a boto3 SNS client, built once by the handler)."""

    def __init__(self, client: Any, topic_arn: str) -> None:
        self._client = client
        self._topic_arn = topic_arn

    def publish(self, subject: str, message: str) -> None:
        try:
            self._client.publish(TopicArn=self._topic_arn, Subject=subject, Message=message)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in REFUSED_MESSAGE:
                raise PermanentError(f"refused by SNS ({exc})") from exc
            raise TransientError(f"not published ({exc})") from exc
        except BotoCoreError as exc:
            raise TransientError(f"not published ({exc})") from exc


__all__ = ["REFUSED_MESSAGE", "SnsAlarmTopic"]
