"""``budgetctl``: set, read and reconcile budget-sync's budgets from the command line.

    budgetctl set 111111111111 1250.50
    budgetctl get 111111111111 --output json
    budgetctl import budgets.csv --dry-run
    budgetctl export --file budgets.csv
    budgetctl status --org
    budgetctl reconcile --apply
    budgetctl requests                      # raises held above the approval rule
    budgetctl approve REQ-0123456789ab      # by another principal than the requester
    budgetctl --endpoint-url http://127.0.0.1:5000 status   # the local organisation

Every argument and every row of an import is validated (by the pipeline's own item
contract) before the first AWS call. Exit codes: see budgetctl.errors.ExitCode and
docs/operate.md.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib import metadata
from typing import NoReturn, TextIO

import boto3
import jmespath
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from budget_sync.config import DEFAULT_BUDGET_NAME
from budget_sync.errors import InvalidItemError
from budget_sync.observability import logger
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
from budgetctl.errors import CliError, ExitCode, UsageError
from budgetctl.output import FORMATS, Output, output_format

#: Printed after the usage of a command: its own options come first, the global ones are listed
#: after them in the command's --help (and in ``budgetctl --help``).
GLOBAL_USAGE = "[global options]"


#: The global "names" options that each command uses: another one given to it is a usage error
#: (exit 2), never silently ignored. (--role-name names the spoke write role for reference only:
#: no command uses it, every command accepts it.)
_SPOKE_READS = frozenset(
    {
        "table",
        "status_table",
        "read_role_name",
        "parameter_name",
        "budget_name",
        "spoke_region",
        "concurrency",
    }
)
NAMES_USED: dict[str, frozenset[str]] = {
    "get": frozenset({"table"}),
    "set": frozenset({"table", "status_table"}),
    "delete": frozenset({"table", "status_table"}),
    "import": frozenset({"table", "status_table"}),
    "export": frozenset({"table"}),
    "status": _SPOKE_READS,
    "reconcile": _SPOKE_READS | {"reconciler_function"},
    "report": _SPOKE_READS,
    "default": frozenset(),
    "parked": frozenset({"reconciler_function"}),
    "history": frozenset(),
    "requests": frozenset(),
    "approve": frozenset({"table"}),
    "reject": frozenset(),
}
_CHECKED_NAMES = frozenset().union(*NAMES_USED.values())


def _unused_names_error(args: argparse.Namespace) -> UsageError | None:
    """Read before the defaults are filled in: an option given has its attribute (SUPPRESS)."""
    used = NAMES_USED.get(args.command, _CHECKED_NAMES)
    unused = sorted(name for name in _CHECKED_NAMES - used if hasattr(args, name))
    if not unused:
        return None
    shown = ", ".join("--" + name.replace("_", "-") for name in unused)
    return UsageError(f"{args.command} does not use {shown}; nothing done")


class Parser(argparse.ArgumentParser):
    """argparse with suggestions: a mistyped option or command names the closest one (argparse
    in Python 3.11 has no ``suggest_on_error``). The subcommands' parsers are of this class too."""

    typed: Sequence[str] = ()

    def parse_args(self, args: Sequence[str] | None = None, namespace: None = None) -> argparse.Namespace:  # type: ignore[override]
        self.typed = list(args) if args is not None else sys.argv[1:]
        return super().parse_args(self.typed, namespace)

    def error(self, message: str) -> NoReturn:
        hint = _suggestion(self, message)
        super().error(message + (f" (did you mean {hint}?)" if hint else ""))


def _suggestion(parser: Parser, message: str) -> str:
    """The closest known option to each unknown one in ``message`` (those of the command typed and
    the global ones), or the closest command to a mistyped one."""
    words: list[str] = []
    if message.startswith("unrecognized arguments: "):
        words = [w.split("=", 1)[0] for w in message.split(": ", 1)[1].split() if w.startswith("-")]
    elif message.startswith("argument COMMAND: invalid choice: "):
        words = [message.split("'")[1]] if message.count("'") >= 2 else []
    if not words:
        return ""
    known = _known_words(parser, parser.typed, words[0].startswith("-"))
    hints = [m[0] for w in words if (m := difflib.get_close_matches(w, known, n=1, cutoff=0.6))]
    return ", ".join(hints)


def _known_words(parser: argparse.ArgumentParser, typed: Sequence[str], options: bool) -> list[str]:
    """The command names, or the long options of the parser and of the command typed."""
    known: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            if not options:
                return list(action.choices)
            for name, sub in action.choices.items():
                if name in typed:
                    known += _known_words(sub, (), options)
        elif options:
            known += [o for o in action.option_strings if o.startswith("--")]
    return sorted(set(known))


def _own_usage(sub: argparse.ArgumentParser, global_dests: set[str]) -> str:
    """The command's usage line with its own options and arguments only (the global ones are
    summed up as ``[global options]``)."""
    own = [a for a in sub._actions if a.dest not in global_dests]
    formatter = sub._get_formatter()
    formatter.add_usage(None, own, sub._mutually_exclusive_groups, prefix="")
    return formatter.format_help().strip() + f" {GLOBAL_USAGE}"


def build_parser() -> argparse.ArgumentParser:
    # Global options are accepted before and after the command, as the AWS CLI does.
    common = Parser(add_help=False)
    aws = common.add_argument_group("global options: AWS")
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
    names = common.add_argument_group("global options: names (defaults: the templates' defaults)")
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

    parser = Parser(
        prog="budgetctl",
        usage=f"budgetctl [-h] [--version] {GLOBAL_USAGE} COMMAND ...",
        parents=[common],
        description="Operate budget-sync: the budgets table, per-account status, drift repair.",
        epilog="Exit codes: 0 ok; 1 drift or problem found / no such item; 2 usage or validation "
        "error (nothing written); 3 conflict (the item changed since it was read); 4 AWS error "
        "(or the organisation cannot be read); 5 unexpected error (the traceback with --debug); "
        "6 refused (approve or reject of your own request); 130 interrupted (Ctrl-C).",
    )
    parser.add_argument("--version", action="version", version=f"budgetctl {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", prog="budgetctl")
    subs: list[argparse.ArgumentParser] = []

    def command(name: str, run: Callable[[Context], int], help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[common], help=help_text, description=help_text)
        sub.set_defaults(run=run)
        subs.append(sub)
        return sub

    for name in MODULES:
        importlib.import_module(f"budgetctl.commands.{name}").register(command)
    global_dests = {a.dest for a in common._actions}
    for sub in subs:
        sub.usage = _own_usage(sub, global_dests)
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
    unused_names = _unused_names_error(args)
    for key, value in DEFAULTS.items():
        if not hasattr(args, key):
            setattr(args, key, value)
    out = Output(
        args.output,
        stdout,
        stderr,
        query=getattr(args, "query", None),
        wide=bool(getattr(args, "wide", False)),
    )
    return _run(args, out, session, unused_names)


def _run(
    args: argparse.Namespace, out: Output, session: boto3.Session | None, unused_names: UsageError | None
) -> int:
    """The parsed command, run: each failure one line on stderr and its exit code."""
    try:
        if unused_names is not None:
            raise unused_names
        validate(args)
        _validate_query(getattr(args, "query", None))
        with _logs_to(out.stderr, args.debug):
            return int(args.run(Context(args, out, session)))
    except KeyboardInterrupt:
        # One line; a command that wrote has printed what it wrote and what not (e.g. import).
        out.error("interrupted (Ctrl-C); nothing more was sent")
        return ExitCode.INTERRUPTED
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


def _validate_query(query: str | None) -> None:
    """--query is compiled before any AWS call: a bad expression is a usage error (exit 2)."""
    if query is None:
        return
    try:
        jmespath.compile(query)
    except ValueError as exc:  # jmespath's ParseError, LexerError, ...
        detail = " ".join(str(exc).split())
        raise UsageError(f"--query {query!r} is not a valid JMESPath expression: {detail}") from None


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
