"""An in-memory alarm topic (notices.AlarmTopic): records every notice published, and can be
told to refuse or fail the notices of an account (``failures``: the project error a notice
whose subject names that account raises, as alarm_topic.SnsAlarmTopic would)."""

from __future__ import annotations


class FakeAlarmTopic:
    def __init__(self, failures: dict[str, Exception] | None = None) -> None:
        self.failures = failures or {}
        self.published: list[tuple[str, str]] = []  # (subject, message)
        self.attempts = 0

    def publish(self, subject: str, message: str) -> None:
        self.attempts += 1
        for account, error in self.failures.items():
            if account in subject:
                raise error
        self.published.append((subject, message))
