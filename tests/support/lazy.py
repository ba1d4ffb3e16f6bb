"""Modules a test module names at its top but imports only when a test first uses them.

``make unit`` collects every test module; a module that imports moto (the stand-ins, the local
organisation) at its top would cost seconds of that collection even when none of its selected
tests touches moto. ``lazy("budget_sync_local.standins")`` stands for the module and imports it
on the first use of one of its names; give mypy the real import under ``TYPE_CHECKING``::

    if TYPE_CHECKING:
        from budget_sync_local import standins
    else:
        standins = lazy("budget_sync_local.standins")
"""

from __future__ import annotations

import importlib
from typing import Any


class lazy:
    """The module ``name``, imported when one of its public names is first asked for.

    Names starting with ``_`` are not looked up: pytest's collection probes every object a test
    module holds for ``__wrapped__`` and its own markers, and must not import moto by it."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("_"):
            raise AttributeError(attribute)
        return getattr(importlib.import_module(self._name), attribute)

    def __repr__(self) -> str:
        return f"<lazy {self._name}>"
