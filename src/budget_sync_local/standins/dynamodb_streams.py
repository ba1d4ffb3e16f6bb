"""DynamoDB Streams: one sequence number per stream record, whichever threads write the table.

moto's ``StreamShard.add`` numbers a record by the shard's length before it appends it. Two
threads that write the same table at once (the update function settles its accounts in
threads: two held raises create their approval requests side by side) can both read the same
length: two records then share a sequence number, the later one's number is its
predecessor's, and a reader that reaches it (``GetRecords`` answers ``NextShardIterator``
after the highest number it returned) is handed that last record again on every read until
the table is written once more. The local pipeline's poller then fills batch after batch with
copies of it and never goes idle. DynamoDB gives every record of a shard its own, increasing
sequence number; here each ``add`` runs alone (one lock for every shard: the writes it
serialises are microseconds long).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

#: Held while moto numbers and appends one stream record (any table's).
_ADDING = threading.Lock()


def one_record_at_a_time(original: Callable[..., None]) -> Callable[..., None]:
    """moto's ``StreamShard.add``, numbering and appending under ``_ADDING``."""

    def add(self: Any, old: Any, new: Any) -> None:
        with _ADDING:
            original(self, old, new)

    return add
