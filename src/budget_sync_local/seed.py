"""The local organisation's delivery seed, read from the environment (no heavy imports:
``make local`` checks it before loading moto). budget_sync_local.pipeline.Delivery uses it."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping

SEED_ENV = "BUDGET_SYNC_LOCAL_SEED"
#: The seed value that turns the adversarial delivery off (in order, once).
ORDERLY = "off"


def seed_from_env(env: Mapping[str, str] | None = None) -> int | None:
    """The delivery seed: ``BUDGET_SYNC_LOCAL_SEED`` (a whole number, or ``off``), else a new one.

    Raises ValueError naming the variable and its value if it is neither.
    """
    env = os.environ if env is None else env
    value = env.get(SEED_ENV, "").strip()
    if not value:
        return secrets.randbelow(1_000_000)
    if value.lower() == ORDERLY:
        return None
    if not value.isdigit():
        raise ValueError(f"environment variable {SEED_ENV} {value!r} must be a whole number or {ORDERLY!r}")
    return int(value)
