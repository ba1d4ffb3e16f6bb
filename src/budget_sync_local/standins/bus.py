"""The subscribers of the events the stand-ins emit."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

EventCallback = Callable[[dict[str, Any]], None]

logger = logging.getLogger(__name__)


class StandIns:
    """Handle on the installed stand-ins: subscribe to the Parameter Store Change events."""

    def __init__(self) -> None:
        self._subscribers: list[EventCallback] = []
        self._lock = threading.Lock()

    def subscribe(self, callback: EventCallback) -> None:
        """Call ``callback(event)`` for every Parameter Store Change event from now on.

        Callbacks run inside moto's request thread, after the write succeeded: keep them
        cheap (put the event on a queue). An exception in a callback is logged, never
        turned into an error of the SSM call.
        """
        with self._lock:
            self._subscribers.append(callback)

    def unsubscribe(self, callback: EventCallback) -> None:
        with self._lock:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

    def publish(self, event: dict[str, Any]) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(event)
            except Exception:
                logger.exception("a Parameter Store Change subscriber failed")


_INSTALL_LOCK = threading.RLock()
_active: StandIns | None = None
