"""budgetctl's commands: one module per concern, each with a ``register(command)`` that adds
its subcommands to the parser. A new command is a new module listed in ``MODULES``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from budgetctl.context import Context

#: command(name, run, help) -> the subcommand's parser
Command = Callable[[str, Callable[["Context"], int], str], argparse.ArgumentParser]

#: The command modules, in the order ``budgetctl --help`` lists them.
MODULES = ("items", "transfer", "status", "history", "reconcile", "defaults", "parked", "report", "approvals")


def add_wide(parser: argparse.ArgumentParser) -> None:
    """--wide: the table shows every column (JSON and CSV always do)."""
    parser.add_argument(
        "--wide",
        action="store_true",
        help="table: every column, long text folded (default: the columns that fit 100 characters)",
    )
