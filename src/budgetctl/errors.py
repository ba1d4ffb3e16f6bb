"""budgetctl's exit codes and the errors that map to them (docs/operate.md, "Exit codes")."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    PROBLEM = 1  # an account needing attention (status, reconcile, report), no such item (get, delete)
    USAGE = 2  # bad arguments or input (or an account outside the organisation): nothing written
    CONFLICT = 3  # the item changed since it was read: nothing (or not all) was written
    AWS = 4  # credentials, permissions, throttling, endpoint: the AWS call failed
    INTERNAL = 5  # an unexpected error (a bug): one line; the traceback with --debug
    REFUSED = 6  # approve/reject of a request the caller made: another principal must decide it
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it): one line; an import lists what it wrote


class CliError(Exception):
    """An error the command reports in one line and exits with ``code``."""

    code = ExitCode.USAGE


class UsageError(CliError):
    code = ExitCode.USAGE


class ConflictError(CliError):
    code = ExitCode.CONFLICT


class AwsError(CliError):
    code = ExitCode.AWS


class RefusedError(CliError):
    code = ExitCode.REFUSED
