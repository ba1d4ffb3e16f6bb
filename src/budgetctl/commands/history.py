"""``history``: every change of an account's budget (or of a default), with who made it and
what came of it, newest first; or the organisation's changes since a time.

Read-only, from the history table (template-management.yaml, HistoryTable; the contract is
budget_sync/history.py and history_table.py): ``budgetctl history ACCOUNT`` is one Query,
``budgetctl history --org --since 7d`` one Query per day on the table's ``ByDay`` index.
Revisions are counted when read, 1 for the oldest record kept (retention: the stack's
HistoryRetentionDays). Every option is checked before anything is read.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from budget_sync.config import TABLE_NAME
from budget_sync.domain import parse_account_id
from budget_sync.effective_budget import parse_target_id
from budget_sync.errors import InvalidItemError, TransientError
from budget_sync.history import HistoryRecord, numbered
from budget_sync.history_table import DynamoHistoryTable
from budgetctl.commands import Command, add_wide
from budgetctl.context import Context
from budgetctl.errors import AwsError, ExitCode, UsageError

DEFAULT_HISTORY_TABLE = "BlogBudgetsHistory"
#: JSON and CSV: every field of a record.
COLUMNS = (
    "Revision",
    "Subject",
    "Time",
    "Kind",
    "Status",
    "From",
    "To",
    "By",
    "Via",
    "Reason",
    "Alerts",
    "Change",
    "Outcome",
)
#: The table for one subject (fits 100 columns); ``Who`` is the principal's short form.
BRIEF = ("Revision", "Time", "Who", "Change", "Outcome")
#: The table for the organisation.
ORG_BRIEF = ("Time", "Subject", "Who", "Change", "Outcome")
WIDE = ("Revision", "Subject", "Time", "Kind", "By", "Change", "Outcome")
#: --since: ``7d``, ``12h``, or a date (UTC) ``2026-11-01``.
_SINCE = re.compile(r"(?P<count>[0-9]{1,5})(?P<unit>[dh])|(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})")
MAX_SINCE = timedelta(days=3650)
_ASSUMED_ROLE = re.compile(r"arn:[a-z-]+:sts::[0-9]{12}:assumed-role/(?P<rest>.+)")
_IAM = re.compile(r"arn:[a-z-]+:iam::[0-9]{12}:(?P<rest>.+)")


def register(command: Command) -> None:
    history = command(
        "history", cmd_history, "every change of an account's budget (or a default), newest first"
    )
    history.add_argument(
        "subject",
        metavar="ACCOUNT",
        nargs="?",
        help="a member account's 12-digit id, or a default's target (ou-..., r-...)",
    )
    history.add_argument("--org", action="store_true", help="every account and default, since --since")
    history.add_argument(
        "--since",
        metavar="WHEN",
        help="only changes since WHEN: 7d, 12h or a date (UTC) 2026-11-01 (default with --org: 7d)",
    )
    history.add_argument(
        "--history-table",
        default=DEFAULT_HISTORY_TABLE,
        help=f"the history table ({DEFAULT_HISTORY_TABLE})",
    )
    add_wide(history)


def parse_since(text: str, now: datetime) -> datetime:
    """``--since`` as a UTC time; UsageError naming the value otherwise."""
    match = _SINCE.fullmatch(text.strip())
    if match is None:
        raise UsageError(f"--since {text!r} is not valid: give 7d, 12h or a date such as 2026-11-01")
    if match["date"]:
        try:
            since = datetime.fromisoformat(match["date"]).replace(tzinfo=UTC)
        except ValueError:
            raise UsageError(f"--since {text!r} is not a date") from None
    else:
        count = int(match["count"])
        since = now - (timedelta(days=count) if match["unit"] == "d" else timedelta(hours=count))
    if since > now or now - since > MAX_SINCE:
        raise UsageError(f"--since {text!r} must be in the past, at most 3650 days ago")
    return since


def check_subject(text: str) -> str:
    """An account id or a default's target; UsageError naming the value otherwise."""
    try:
        return parse_account_id(text)
    except InvalidItemError:
        pass
    try:
        return parse_target_id(text)
    except InvalidItemError:
        raise UsageError(
            f"ACCOUNT {text!r} is not valid: give a 12-digit account id, an OU id (ou-...) or a root id (r-...)"
        ) from None


def cmd_history(ctx: Context) -> int:
    args = ctx.args
    now = datetime.now(UTC)
    if not TABLE_NAME.fullmatch(args.history_table):
        raise UsageError(f"--history-table {args.history_table!r} is not valid")
    if args.org == (args.subject is not None):
        raise UsageError("give either ACCOUNT or --org")
    subject = None if args.org else check_subject(args.subject)
    since = parse_since(args.since or "7d", now) if args.org or args.since else None
    table = DynamoHistoryTable(ctx.dynamodb, args.history_table, retention_days=0)
    revisions: list[tuple[int | None, HistoryRecord]]
    try:
        if subject is not None:
            revisions = list(numbered(table.of_subject(subject)))
        else:
            assert since is not None
            revisions = [(None, r) for r in table.since(since.date(), now.date())]
    except TransientError as exc:
        raise AwsError(f"{exc}; check --history-table and the dynamodb:Query permission") from exc
    cutoff = since.isoformat(timespec="seconds") if since else ""
    rows = [row(revision, record) for revision, record in revisions if record.at >= cutoff]
    if subject is not None and not revisions:
        ctx.out.error(f"no history for {subject} in {args.history_table}")
        return ExitCode.PROBLEM
    title = f"history of {subject}" if subject else f"changes since {cutoff}"
    ctx.out.rows(rows, COLUMNS, title=title, brief=BRIEF if subject else ORG_BRIEF, wide=WIDE)
    return ExitCode.OK


def row(revision: int | None, record: HistoryRecord) -> dict[str, Any]:
    """One record as a row (``Who``: the table's short form of ``By``)."""
    return {
        "Revision": revision,
        "Subject": record.subject,
        "Time": record.at,
        "Kind": record.kind.value,
        "Status": record.status,
        "From": record.previous,
        "To": record.value,
        "By": record.who(),
        "Via": record.via,
        "Reason": record.reason,
        "Alerts": record.alerts,
        "Change": record.change(),
        "Outcome": record.outcome(),
        "Who": short_principal(record.who()),
    }


def short_principal(text: str) -> str:
    """``arn:aws:sts::123456789012:assumed-role/Ops/alice`` -> ``Ops/alice``; an IAM user's or
    role's ARN -> ``user/alice``; anything else as it is."""
    for pattern in (_ASSUMED_ROLE, _IAM):
        match = pattern.fullmatch(text)
        if match:
            return match["rest"]
    return text
