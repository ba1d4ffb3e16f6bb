"""The incidents' fakes: an in-memory incidents table (incidents.IncidentStore, with the
conditional write of the DynamoDB adapter) and a transport that sends the ServiceNow desk's
requests to the local stand-in in-process (werkzeug's test client: no socket)."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping

from werkzeug.test import Client

from budget_sync.incidents.lifecycle import RESOLVED, IncidentRecord
from budget_sync.incidents.servicenow import HttpResponse
from budget_sync_local.servicenow import StandIn


class FakeIncidentStore:
    """``gate``: each thread's ``gate_at``-th read (the first by default) waits there after
    reading, so that concurrent deliveries all read the same record before any of them writes
    (the race made certain)."""

    def __init__(self, gate: threading.Barrier | None = None, gate_at: int = 1) -> None:
        self.records: dict[str, IncidentRecord] = {}
        self.conflicts = 0
        self._lock = threading.Lock()
        self._gate = gate
        self._gate_at = gate_at
        self._reads: dict[int, int] = {}

    def get(self, correlation_id: str) -> IncidentRecord | None:
        with self._lock:
            record = self.records.get(correlation_id)
            reads = self._reads[threading.get_ident()] = self._reads.get(threading.get_ident(), 0) + 1
        if self._gate is not None and reads == self._gate_at:
            self._gate.wait()
        return record

    def put(self, record: IncidentRecord, expected_version: int | None) -> bool:
        with self._lock:
            stored = self.records.get(record.correlation_id)
            if (stored.version if stored else None) != expected_version:
                self.conflicts += 1
                return False
            self.records[record.correlation_id] = record
            return True

    def unresolved(self) -> Iterable[IncidentRecord]:
        with self._lock:
            return [r for r in self.records.values() if r.state != RESOLVED]


class StandInTransport:
    """``ServiceNowDesk``'s transport to ``StandIn`` at http://servicenow.test (in-process)."""

    BASE = "http://servicenow.test"

    def __init__(self, instance: StandIn) -> None:
        self._client = Client(instance.wsgi())
        self.calls: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None) -> HttpResponse:
        path = url.removeprefix(self.BASE)
        with self._lock:
            self.calls.append((method, path))
            response = self._client.open(path, method=method, headers=dict(headers), data=body)
        return HttpResponse(response.status_code, dict(response.headers), response.get_data())
