"""The local endpoint's port, checked with nothing but the standard library: ``make local``
checks it before importing the organisation (moto, boto3), so that a port in use ends the
command within a second, with exit status 1, instead of after seconds of imports."""

from __future__ import annotations

import socket


class ServerError(Exception):
    """The local endpoint could not start or stopped serving; the message says why."""


def check_port(host: str, port: int) -> None:
    """ServerError at once if ``host:port`` cannot be listened on (in use, not allowed)."""
    try:
        with socket.create_server((host, port)):  # SO_REUSEADDR, as werkzeug's server
            pass
    except OSError as exc:
        raise ServerError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
