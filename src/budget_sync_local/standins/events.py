"""EventBridge: pattern matching with moto's own matcher."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, cast

from moto.events.models import EventPattern


def pattern_matches(pattern: Mapping[str, Any] | str, event: Mapping[str, Any]) -> bool:
    """Does an EventBridge event pattern match the event? (moto's EventPattern matcher)."""
    raw = pattern if isinstance(pattern, str) else json.dumps(pattern)
    matched: bool = EventPattern.load(raw).matches_event(cast(Any, dict(event)))
    return matched
