"""EventBridge: pattern matching with moto's own matcher, and PutEvents handed to the pipeline."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, cast

from moto.events.exceptions import ValidationException
from moto.events.models import EventPattern, EventsBackend

from budget_sync_local.standins.bus import StandIns


def pattern_matches(pattern: Mapping[str, Any] | str, event: Mapping[str, Any]) -> bool:
    """Does an EventBridge event pattern match the event? (moto's EventPattern matcher)."""
    raw = pattern if isinstance(pattern, str) else json.dumps(pattern)
    matched: bool = EventPattern.load(raw).matches_event(cast(Any, dict(event)))
    return matched


def _put_events(stand_ins: StandIns) -> Callable[..., Any]:
    """PutEvents: each valid entry becomes the event EventBridge would route, handed to the
    subscribers (the local pipeline matches the rules of the templates and delivers it).

    moto's own delivery is not used: it rewrites a forwarded event's ``account`` to the
    receiving bus's account (AWS keeps the sender's) and cannot invoke a Lambda target.
    """

    def put_events(self: EventsBackend, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if len(events) > 10:
            raise ValidationException(
                "1 validation error detected: Value at 'entries' failed to satisfy constraint: "
                "Member must have length less than or equal to 10"
            )
        entries: list[dict[str, Any]] = []
        for entry in events:
            missing = next((f for f in ("Source", "DetailType", "Detail") if not entry.get(f)), None)
            if missing is not None:
                entries.append(
                    {
                        "ErrorCode": "InvalidArgument",
                        "ErrorMessage": f"Parameter {missing} is not valid. Reason: {missing} is a required argument.",
                    }
                )
                continue
            try:
                detail = json.loads(entry["Detail"])
            except ValueError:
                entries.append({"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."})
                continue
            event_id = str(uuid.uuid4())
            entries.append({"EventId": event_id})
            stand_ins.publish(
                {
                    "version": "0",
                    "id": event_id,
                    "detail-type": entry["DetailType"],
                    "source": entry["Source"],
                    "account": self.account_id,
                    "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "region": self.region_name,
                    "resources": list(entry.get("Resources", [])),
                    "detail": detail,
                }
            )
        return entries

    return put_events
