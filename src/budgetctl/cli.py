"""``budgetctl``: set, read and reconcile budget-sync's budgets from the command line.

    budgetctl set 111111111111 1250.50
    budgetctl get 111111111111 --output json
    budgetctl import budgets.csv --dry-run
    budgetctl export --file budgets.csv
    budgetctl status --org
    budgetctl reconcile --apply
    budgetctl --endpoint-url http://127.0.0.1:5000 status   # the local organisation

Every argument and every row of an import is validated (by the pipeline's own item
contract) before the first AWS call. Exit codes: see budgetctl.errors.ExitCode and
docs/operate.md.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib import metadata
from typing import TextIO

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from budget_sync.errors import InvalidItemError
from budget_sync.observability import logger
from budget_sync.spoke import DEFAULT_BUDGET_NAME
from budgetctl.commands import MODULES
from budgetctl.context import (
    DEFAULT_CONCURRENCY,
    DEFAULT_PARAMETER,
    DEFAULT_READ_ROLE,
    DEFAULT_RECONCILER,
    DEFAULT_ROLE,
    DEFAULT_STATUS_TABLE,
    DEFAULT_TABLE,
    DEFAULTS,
    Context,
    validate,
)
from budgetctl.errors import CliError, ExitCode
from budgetctl.output import FORMATS, Output, output_format


def build_parser() -> argparse.ArgumentParser:
    # Global options are accepted before and after the command, as the AWS CLI does.
    common = argparse.ArgumentParser(add_help=False)
    aws = common.add_argument_group("AWS")
    aws.add_argument("--profile", default=argparse.SUPPRESS, help="named profile (~/.aws/config)")
    aws.add_argument("--region", default=argparse.SUPPRESS, help="the management region")
    aws.add_argument(
        "--endpoint-url", default=argparse.SUPPRESS, help="send every call here (e.g. http://127.0.0.1:5000)"
    )
    aws.add_argument(
        "--output", choices=FORMATS, default=argparse.SUPPRESS, help="table (default), json, csv"
    )
    aws.add_argument(
        "--query",
        default=argparse.SUPPRESS,
        help="JMESPath query applied to the JSON result (printed as JSON), as in the AWS CLI",
    )
    aws.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="structured logs of each account on stderr",
    )
    names = common.add_argument_group("names (defaults: the templates' defaults)")
    names.add_argument("--table", default=argparse.SUPPRESS, help=f"budgets table ({DEFAULT_TABLE})")
    names.add_argument(
        "--status-table", default=argparse.SUPPRESS, help=f"status table ({DEFAULT_STATUS_TABLE})"
    )
    names.add_argument(
        "--role-name", default=argparse.SUPPRESS, help=f"spoke write role, for reference ({DEFAULT_ROLE})"
    )
    names.add_argument(
        "--read-role-name",
        default=argparse.SUPPRESS,
        help=f"spoke read-only role that status and reconcile assume ({DEFAULT_READ_ROLE})",
    )
    names.add_argument(
        "--reconciler-function",
        default=argparse.SUPPRESS,
        help=f"the function that reconcile --apply invokes ({DEFAULT_RECONCILER})",
    )
    names.add_argument(
        "--parameter-name", default=argparse.SUPPRESS, help=f"spoke parameter ({DEFAULT_PARAMETER})"
    )
    names.add_argument(
        "--budget-name", default=argparse.SUPPRESS, help=f"spoke budget ({DEFAULT_BUDGET_NAME})"
    )
    names.add_argument(
        "--spoke-region", default=argparse.SUPPRESS, help="region of the spoke stacks (default: --region)"
    )
    names.add_argument(
        "--concurrency",
        type=int,
        default=argparse.SUPPRESS,
        help=f"spoke accounts read at once ({DEFAULT_CONCURRENCY})",
    )

    parser = argparse.ArgumentParser(
        prog="budgetctl",
        parents=[common],
        description="Operate budget-sync: the budgets table, per-account status, drift repair.",
        epilog="Exit codes: 0 ok; 1 drift or problem found / no such item; 2 usage or validation "
        "error (nothing sent to AWS); 3 conflict (the item changed since it was read); 4 AWS error; "
        "5 unexpected error (the traceback with --debug).",
    )
    parser.add_argument("--version", action="version", version=f"budgetctl {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, run: Callable[[Context], int], help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[common], help=help_text, description=help_text)
        sub.set_defaults(run=run)
        return sub

    for name in MODULES:
        importlib.import_module(f"budgetctl.commands.{name}").register(command)
    return parser


def _version() -> str:
    try:
        return metadata.version("budget-sync")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


@contextmanager
def _logs_to(stream: TextIO, debug: bool) -> Iterator[None]:
    """The shared code logs as the Lambda function does (JSON lines on stdout): here they go to
    stderr, and only with --debug, so that stdout carries nothing but the command's output.
    Restored afterwards (main() may run inside a longer process, e.g. the tests)."""
    handler = logger.registered_handler
    level = logger.log_level
    previous = handler.setStream(stream) if isinstance(handler, logging.StreamHandler) else None
    logger.setLevel("DEBUG" if debug else "CRITICAL")
    try:
        yield
    finally:
        logger.setLevel(level)
        if previous is not None and isinstance(handler, logging.StreamHandler):
            handler.setStream(previous)


def main(
    argv: Sequence[str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    session: boto3.Session | None = None,
) -> int:
    """The console script. Returns the exit code; ``session`` replaces --profile/--region."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code) if isinstance(exc.code, int) else ExitCode.USAGE
    args.output = output_format(getattr(args, "output", None), os.environ)
    for key, value in DEFAULTS.items():
        if not hasattr(args, key):
            setattr(args, key, value)
    out = Output(args.output, stdout, stderr, query=getattr(args, "query", None))
    try:
        validate(args)
        with _logs_to(out.stderr, args.debug):
            return int(args.run(Context(args, out, session)))
    except InvalidItemError as exc:
        out.error(str(exc))
        return ExitCode.USAGE
    except CliError as exc:
        out.error(str(exc))
        return exc.code
    except ClientError as exc:
        error = exc.response.get("Error", {})
        out.error(f"{exc.operation_name}: {error.get('Code', '?')}: {error.get('Message', '')}")
        return ExitCode.AWS
    except NoCredentialsError:
        out.error(NO_CREDENTIALS)
        return ExitCode.AWS
    except BotoCoreError as exc:
        out.error(str(exc))
        return ExitCode.AWS
    except Exception as exc:  # anything else is a bug: one clear line, the traceback on request
        return _unexpected(exc, out, bool(args.debug))


#: What to set when boto3 finds no credentials (make local prints the operators' role's).
NO_CREDENTIALS = (
    "no AWS credentials: pass --profile, or set AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and "
    "AWS_SESSION_TOKEN for a role); against make local, run the export line it prints (the "
    "operators' role BudgetSyncOperator)"
)


def _unexpected(exc: Exception, out: Output, debug: bool) -> int:
    """One line naming the error; with --debug the traceback follows on stderr."""
    first_line = (str(exc).strip().splitlines() or [""])[0]
    out.error(
        f"unexpected error: {type(exc).__name__}: {first_line}"
        + ("" if debug else " (run again with --debug for the traceback)")
    )
    if debug:
        traceback.print_exception(exc, file=out.stderr)
    return ExitCode.INTERNAL
