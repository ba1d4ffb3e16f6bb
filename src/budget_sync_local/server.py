"""``make local``: the local organisation behind an AWS endpoint on 127.0.0.1.

moto's server runs in the same process as the organisation, so it serves the very
accounts, tables and stacks that were provisioned, and the pipeline thread sees every
write that arrives through it. The port opens only once the organisation is provisioned
and the pipeline runs, so a client that can connect can also expect its write to travel.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Sequence
from typing import TextIO

from moto.server import ThreadedMotoServer

from budget_sync_local.organisation import DEFAULT_REGION, LocalOrganisation
from budget_sync_local.pipeline import Observer


def serve(
    accounts: Sequence[str],
    port: int,
    host: str = "127.0.0.1",
    *,
    ready: Callable[[LocalOrganisation, str], None] | None = None,
    stop: threading.Event | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    function_output: TextIO | None = None,
    observer: Observer | None = None,
) -> None:
    """Provision, start the pipeline, open the port; run until ``stop`` is set, Ctrl-C or
    SIGTERM. The function's JSON logs go to ``function_output`` (a file, say)."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, lambda *_: stop.set())
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    with LocalOrganisation(
        accounts, DEFAULT_REGION, progress=progress, function_output=function_output, observer=observer
    ) as org:
        org.pipeline.start()
        server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
        server.start()
        try:
            if ready is not None:
                ready(org, f"http://{host}:{port}")
            while not stop.wait(0.5):
                pass
        finally:
            server.stop()
            org.pipeline.stop()
