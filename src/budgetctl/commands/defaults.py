"""``default``: budgets per OU or root (the defaults table), with conditional writes.

    budgetctl default set ou-abcd-11111111 100     # UpdatedBy/UpdatedAt recorded
    budgetctl default set ou-abcd-11111111 --exclude credits,refunds   # its cost basis only
    budgetctl default set ou-abcd-11111111 --metric ''                 # '' removes the attribute
    budgetctl default get ou-abcd-11111111
    budgetctl default list                          # every default, with its OU's name; exit 1
                                                    # if one is invalid or its OU is gone
    budgetctl default delete ou-abcd-11111111       # accounts keep their last budget
    budgetctl default export --file defaults.csv
    budgetctl default import defaults.csv --dry-run

Each target is checked twice before anything is written: its form (``r-...``/``ou-...``),
then that it is a root or OU of this organisation (Organizations ``ListRoots`` /
``DescribeOrganizationalUnit``). The amount follows the item contract; ``--metric`` and
``--exclude`` (the default's ``CostMetric``/``CostExclusions``, docs/cost-basis.md) are
validated by budget_sync.cost_basis, as an account's, before any AWS call. Without an AMOUNT,
``set`` changes an existing default's cost basis and keeps its amount. ``export`` and
``import`` carry the cost basis too (columns ``CostMetric``, ``CostExclusions``; an empty cell:
the attribute absent; a file without the column leaves it as it is), each cell validated by
budget_sync.cost_basis before anything is written. A CSV export guards
every cell a spreadsheet would read as a formula (``budgetctl.output.csv_cell``), and import
takes that guard off again (``csv_text``).
"""

from __future__ import annotations

import csv
import io
import json
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from budget_sync.cost_basis import (
    COST_EXCLUSIONS_FIELD,
    COST_FIELDS,
    COST_METRIC_FIELD,
    cost_basis_attributes,
)
from budget_sync.domain import BUDGET_VALUE_FIELD, amount_text, format_amount
from budget_sync.effective_budget import TARGET_ID_FIELD, parse_default_value, parse_target_id
from budget_sync.errors import InvalidItemError, PermanentError, TransientError
from budget_sync.organizations import NotInOrganization, OrganizationsReader
from budgetctl.budgets_table import BudgetsTable, InterruptedWriteError, Write
from budgetctl.commands import Command, add_wide
from budgetctl.context import Context
from budgetctl.errors import AwsError, ExitCode, UsageError
from budgetctl.output import csv_cell, csv_text

DEFAULT_DEFAULTS_TABLE = "BlogBudgetsDefaults"
DEFAULT_COLUMNS = ("TargetId", "Name", "BudgetValue", *COST_FIELDS, "UpdatedBy", "UpdatedAt")
#: The table without --wide: within 100 columns (who wrote it and when: --wide, or JSON)
BRIEF_COLUMNS = ("TargetId", "Name", "BudgetValue", *COST_FIELDS)
ACTIONS = ("set", "get", "list", "delete", "import", "export")


def register(command: Command) -> None:
    sub = command("default", cmd_default, "defaults per OU or root: set, get, list, delete, import, export")
    sub.add_argument("action", choices=ACTIONS, metavar="ACTION", help=" | ".join(ACTIONS))
    sub.add_argument("operands", nargs="*", metavar="ARG", help="TARGET [AMOUNT] or FILE")
    sub.add_argument(
        "--metric",
        metavar="M",
        help="set: what its accounts' budgets count: unblended, blended, amortized, net-unblended, "
        "net-amortized; '' = remove (docs/cost-basis.md)",
    )
    sub.add_argument(
        "--exclude",
        metavar="R,S",
        help="set: record types its accounts' budgets leave out: credits, refunds, tax, support, upfront, "
        "or 'none'; '' = remove",
    )
    sub.add_argument(
        "--defaults-table", default=DEFAULT_DEFAULTS_TABLE, help=f"defaults table ({DEFAULT_DEFAULTS_TABLE})"
    )
    sub.add_argument(
        "--dry-run", action="store_true", help="set, delete, import: show what would change, write nothing"
    )
    sub.add_argument("--file", metavar="PATH", help="export: write here instead of stdout")
    sub.add_argument("--format", choices=("csv", "json"), help="export: csv (default) or json")
    add_wide(sub)
    group = sub.add_mutually_exclusive_group()
    group.add_argument(
        "--expect",
        metavar="VALUE",
        help="set, delete: write only if the default now holds VALUE ('none': only if absent)",
    )
    group.add_argument("--force", action="store_true", help="set, delete: write without any condition")


#: The options each action uses (besides --defaults-table and the global ones): any other is a
#: usage error, never silently ignored.
OPTIONS_OF = {
    "set": {"dry_run", "expect", "force", "metric", "exclude"},
    "delete": {"dry_run", "expect", "force"},
    "import": {"dry_run"},
    "export": {"file", "format"},
    "get": set(),
    "list": set(),
}


def _refuse_unused(args: Any) -> None:
    """An option this action does not use is a usage error (exit 2), before any AWS call."""
    given = {
        "dry_run": bool(args.dry_run),
        "file": args.file is not None,
        "format": args.format is not None,
        # validate() turned --expect into its value: "read" when absent, "force" with --force
        "expect": args.expect not in ("read", "force"),
        "force": bool(args.force),
        "metric": args.metric is not None,
        "exclude": args.exclude is not None,
    }
    unused = [name for name, present in given.items() if present and name not in OPTIONS_OF[args.action]]
    if unused:
        shown = ", ".join("--" + name.replace("_", "-") for name in unused)
        raise UsageError(f"default {args.action} does not take {shown}; nothing done")


@dataclass(frozen=True, slots=True)
class _Row:
    line: int
    target_id: str
    amount: Decimal
    #: The cost columns the file has, canonical text (None: remove the attribute)
    cost: dict[str, object]


def cmd_default(ctx: Context) -> int:
    args = ctx.args
    wanted = {"set": 2, "get": 1, "delete": 1, "list": 0, "export": 0, "import": 1}[args.action]
    if (
        args.action == "set"
        and len(args.operands) == 1
        and (args.metric is not None or args.exclude is not None)
    ):
        wanted = 1  # the cost basis of an existing default, its amount kept
    if len(args.operands) != wanted:
        shapes = {2: "TARGET AMOUNT", 1: "FILE" if args.action == "import" else "TARGET", 0: "no argument"}
        raise UsageError(
            f"default {args.action} takes {shapes[wanted]}, got {len(args.operands)} argument(s)"
        )
    _refuse_unused(args)
    table = BudgetsTable(
        ctx.dynamodb, args.defaults_table, lambda: ctx.caller_arn, key_field=TARGET_ID_FIELD, noun="default"
    )
    run = {
        "set": _set,
        "get": _get,
        "list": _list,
        "delete": _delete,
        "export": _export,
        "import": _import,
    }[args.action]
    return run(ctx, table)


def _target(ctx: Context, text: str, check: bool = True) -> str:
    target = parse_target_id(text)  # InvalidItemError: exit 2, before any AWS call
    if check:
        _in_organisation(ctx, target)
    return target


def _reader(ctx: Context) -> OrganizationsReader:
    return OrganizationsReader(ctx.client("organizations"), max_rps=0)


def _in_organisation(ctx: Context, target: str) -> str:
    try:
        return _reader(ctx).describe_target(target).name
    except NotInOrganization:
        raise UsageError(
            f"{TARGET_ID_FIELD} {target!r} is no OU or root of this organisation; nothing written"
        ) from None
    except (PermanentError, TransientError) as exc:
        raise AwsError(f"cannot check {TARGET_ID_FIELD} {target!r} against the organisation: {exc}") from exc


def _set(ctx: Context, table: BudgetsTable) -> int:
    args = ctx.args
    target = parse_target_id(args.operands[0])
    given = parse_default_value(args.operands[1], target) if len(args.operands) > 1 else None
    # validated as an account's cost basis, before any AWS call (InvalidItemError: exit 2)
    cost = cost_basis_attributes(args.metric, args.exclude, target)
    names = {target: _in_organisation(ctx, target)}
    previous = table.get(target) if args.expect == "read" or args.dry_run or given is None else None
    if given is None and previous is None:
        raise UsageError(
            f"default {target} does not exist: set it with an AMOUNT (default set {target} AMOUNT "
            "--metric/--exclude ...); nothing written"
        )
    amount = given if given is not None else (previous or {})[BUDGET_VALUE_FIELD]
    wanted = {**(previous or {}), BUDGET_VALUE_FIELD: amount, **cost}
    wanted = {k: v for k, v in wanted.items() if v is not None}
    if previous is not None and all(
        previous.get(f) == wanted.get(f) for f in (BUDGET_VALUE_FIELD, *COST_FIELDS)
    ):
        ctx.out.info(f"default {target} already is {_summary(previous)}; nothing written")
        ctx.out.rows([_row(previous, names)], DEFAULT_COLUMNS, single=True)
        return ExitCode.OK
    if args.dry_run:
        before = _summary(previous) if previous else "no default"
        ctx.out.rows([_row({**wanted, TARGET_ID_FIELD: target}, names)], DEFAULT_COLUMNS, single=True)
        ctx.out.info(f"default {target}: {before} -> {_summary(wanted)}; nothing written (dry run)")
        return ExitCode.OK
    table.write(Write(target, amount, previous, args.expect, alerts=cost or None))
    ctx.out.rows([_row(table.get(target) or {}, names)], DEFAULT_COLUMNS, single=True)
    return ExitCode.OK


def _summary(item: dict[str, Any]) -> str:
    """``100 (metric amortized, excludes credits,refunds)``: a default in one phrase."""
    parts = [
        f"{label} {item[f]}"
        for label, f in (("metric", COST_METRIC_FIELD), ("excludes", COST_EXCLUSIONS_FIELD))
        if item.get(f)
    ]
    amount = amount_text(item.get(BUDGET_VALUE_FIELD)) or "?"
    return amount + (f" ({', '.join(parts)})" if parts else "")


def _get(ctx: Context, table: BudgetsTable) -> int:
    target = _target(ctx, ctx.args.operands[0], check=False)
    item = table.get(target)
    if item is None:
        ctx.out.error(f"no default for {target} in {ctx.args.defaults_table}")
        return ExitCode.PROBLEM
    ctx.out.rows([_row(item)], DEFAULT_COLUMNS, single=True)
    return ExitCode.OK


def _list(ctx: Context, table: BudgetsTable) -> int:
    items = table.scan()
    names = _names(ctx) if items else {}
    rows = [_row(item, names) for item in items]
    # The table: one line per default (a long UpdatedBy ARN cut with an ellipsis; --wide: whole).
    ctx.out.rows(rows, DEFAULT_COLUMNS, title="budget-sync defaults", brief=BRIEF_COLUMNS)
    gone = [r["TargetId"] for r in rows if names and r["TargetId"] not in names]
    for target in gone:
        ctx.out.error(
            f"default {target}: no such OU or root in the organisation any more (it applies to nobody)"
        )
    invalid = []
    for item in items:
        target = str(item.get(TARGET_ID_FIELD, ""))
        try:
            parse_default_value(item.get(BUDGET_VALUE_FIELD), target)
            cost_basis_attributes(
                _text(item.get(COST_METRIC_FIELD)), _text(item.get(COST_EXCLUSIONS_FIELD)), target
            )
        except InvalidItemError as exc:
            invalid.append(target)
            ctx.out.error(
                f"default {target}: {exc}; it applies to nobody until it is fixed (its accounts take "
                "the next default up; the resolver records it as FAILED)"
            )
    return ExitCode.PROBLEM if gone or invalid else ExitCode.OK


def _delete(ctx: Context, table: BudgetsTable) -> int:
    args = ctx.args
    target = _target(ctx, args.operands[0], check=False)  # a default of a deleted OU must be removable
    previous = table.get(target) if args.expect == "read" else None
    if args.expect == "read" and previous is None:
        ctx.out.error(f"no default for {target} in {args.defaults_table}")
        return ExitCode.PROBLEM
    if args.dry_run:
        shown = amount_text((previous or table.get(target) or {}).get(BUDGET_VALUE_FIELD)) or "no default"
        ctx.out.info(f"default {target} ({shown}) would be deleted; nothing written (dry run)")
        return ExitCode.OK
    table.write(Write(target, None, previous, args.expect))
    ctx.out.info(
        f"deleted the default of {target}; accounts that inherited it take the next default up, "
        "or keep their last budget (status UNMANAGED)"
    )
    return ExitCode.OK


def _export(ctx: Context, table: BudgetsTable) -> int:
    items = table.scan()
    rows = [
        {
            TARGET_ID_FIELD: str(item.get(TARGET_ID_FIELD, "")),
            BUDGET_VALUE_FIELD: amount_text(item.get(BUDGET_VALUE_FIELD)) or "",
            **{field: _text(item.get(field)) or "" for field in COST_FIELDS},
            "UpdatedBy": str(item.get("UpdatedBy", "")),
            "UpdatedAt": str(item.get("UpdatedAt", "")),
        }
        for item in items
    ]
    if ctx.args.format == "json":
        text = json.dumps(rows, indent=2) + "\n"
    else:
        buffer = io.StringIO()
        writer = csv.DictWriter(
            buffer, fieldnames=list(rows[0]) if rows else [TARGET_ID_FIELD, BUDGET_VALUE_FIELD, *COST_FIELDS]
        )
        writer.writeheader()
        writer.writerows([{k: csv_cell(v) for k, v in row.items()} for row in rows])
        text = buffer.getvalue()
    if ctx.args.file:
        Path(ctx.args.file).write_text(text, encoding="utf-8")
        ctx.out.info(f"exported {len(rows)} default(s) to {ctx.args.file}")
    else:
        ctx.out.stdout.write(text)
    return ExitCode.OK


def _checked_rows(ctx: Context, name: str) -> list[_Row]:
    """The file's rows, each target an OU or root of the organisation; else every bad row
    printed and UsageError (nothing written)."""
    rows, errors = _parse(name)
    if not errors:
        organisation = _names(ctx)
        for row in rows:
            if row.target_id not in organisation:
                errors.append(
                    f"{name}:{row.line}: {TARGET_ID_FIELD} {row.target_id!r} is no OU or root of this organisation"
                )
    for error in errors:
        ctx.out.error(error)
    if errors:
        raise UsageError(f"{len(errors)} bad row(s) in {name}; nothing written")
    return rows


def _import(ctx: Context, table: BudgetsTable) -> int:
    rows = _checked_rows(ctx, ctx.args.operands[0])
    current = {str(i.get(TARGET_ID_FIELD)): i for i in table.scan()}
    writes = [
        Write(row.target_id, row.amount, current.get(row.target_id), alerts=row.cost or None)
        for row in rows
        if (current.get(row.target_id) or {}).get(BUDGET_VALUE_FIELD) != row.amount
        or _cost_changes(current.get(row.target_id), row.cost)
    ]
    diff = [
        {
            "TargetId": w.account_id,
            "Change": "CHANGE" if w.previous else "ADD",
            "From": amount_text((w.previous or {}).get(BUDGET_VALUE_FIELD)),
            "To": format_amount(w.amount) if w.amount is not None else None,
            "Attributes": _cost_changes(w.previous, w.alerts or {}),
        }
        for w in writes
    ]
    ctx.out.rows(
        diff,
        ("TargetId", "Change", "From", "To", "Attributes"),
        title="default import" + (" (dry run)" if ctx.args.dry_run else ""),
    )
    if ctx.args.dry_run or not writes:
        ctx.out.info(
            f"{len(writes)} to write, {len(rows) - len(writes)} unchanged; nothing written"
            + (" (dry run)" if ctx.args.dry_run else "")
        )
        return ExitCode.OK
    try:
        conflicts = table.write_many(writes)
    except InterruptedWriteError as stopped:  # Ctrl-C: what was written, then exit 130 (cli)
        for label, done in (
            ("written", stopped.written),
            ("in flight", stopped.in_flight),
            ("NOT written", stopped.unsent),
        ):
            if done:
                ctx.out.info(f"{label}: {' '.join(w.account_id for w in done)}")
        raise
    for _, message in conflicts:
        ctx.out.error(message)
    ctx.out.info(f"written {len(writes) - len(conflicts)}, conflicts {len(conflicts)}")
    return ExitCode.CONFLICT if conflicts else ExitCode.OK


def _cost_changes(previous: dict[str, Any] | None, cost: dict[str, object]) -> str | None:
    """Each cost attribute the row changes, ``CostExclusions credits -> credits,refunds``
    (``(none)``: absent); None when it changes none. A stored value is compared as its canonical
    text, so ``refunds,credits`` written by hand equals the file's ``credits,refunds``."""
    changes = []
    for field, text in cost.items():
        stored = _canonical(field, (previous or {}).get(field))
        if stored != text:
            changes.append(f"{field} {stored or '(none)'} -> {text or '(none)'}")
    return "; ".join(changes) or None


def _canonical(field: str, value: object) -> object:
    """A stored cost attribute as ``cost_basis_attributes`` would write it; as stored if invalid."""
    text = _text(value)
    if text is None:
        return None
    try:
        metric, exclude = (text, None) if field == COST_METRIC_FIELD else (None, text)
        return cost_basis_attributes(metric, exclude).get(field)
    except InvalidItemError:
        return text


def _parse(name: str) -> tuple[list[_Row], list[str]]:
    if name == "-":
        return _parse_stream(sys.stdin, "stdin")
    try:
        with Path(name).open(newline="", encoding="utf-8-sig") as stream:
            return _parse_stream(stream, name)
    except OSError as exc:
        raise UsageError(f"cannot read {name!r}: {exc.strerror}") from exc


def _parse_stream(stream: TextIO, name: str) -> tuple[list[_Row], list[str]]:
    rows: list[_Row] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    reader = csv.DictReader(stream)
    cost_columns = [c for c in COST_FIELDS if c in (reader.fieldnames or [])]
    missing = [c for c in (TARGET_ID_FIELD, BUDGET_VALUE_FIELD) if c not in (reader.fieldnames or [])]
    if missing:
        return [], [
            f"{name}:1: the header must name {TARGET_ID_FIELD} and {BUDGET_VALUE_FIELD}; missing {', '.join(missing)}"
        ]
    for record in reader:
        line = reader.line_num
        try:
            target = parse_target_id(csv_text(record.get(TARGET_ID_FIELD) or ""))
            amount = parse_default_value(csv_text(record.get(BUDGET_VALUE_FIELD) or ""), target)
            # the same validator as ``default set --metric/--exclude``; an empty cell removes
            cells = {c: csv_text(record.get(c) or "") for c in cost_columns}
            cost = cost_basis_attributes(
                cells.get(COST_METRIC_FIELD), cells.get(COST_EXCLUSIONS_FIELD), target
            )
        except InvalidItemError as exc:
            errors.append(f"{name}:{line}: {exc}")
            continue
        if target in seen:
            errors.append(f"{name}:{line}: {TARGET_ID_FIELD} {target} already on line {seen[target]}")
            continue
        seen[target] = line
        rows.append(_Row(line, target, amount, cost))
    return rows, errors


def _names(ctx: Context) -> dict[str, str]:
    """Every root and OU of the organisation: id -> name (one walk of the tree)."""
    try:
        tree = _reader(ctx).full()
    except (PermanentError, TransientError) as exc:
        raise AwsError(f"cannot read the organisation: {exc}") from exc
    return {target: unit.name for target, unit in tree.units.items()}


def _text(value: object) -> str | None:
    """A stored cost attribute as text for validation (a set or list joined with commas)."""
    if value is None:
        return None
    if isinstance(value, (set, frozenset, list, tuple)):
        return ",".join(sorted(str(v) for v in value))
    return str(value)


def _row(item: dict[str, Any], names: dict[str, str] | None = None) -> dict[str, Any]:
    target = str(item.get(TARGET_ID_FIELD, ""))
    return {
        "TargetId": target,
        "Name": (names or {}).get(target),
        "BudgetValue": amount_text(item.get(BUDGET_VALUE_FIELD)),
        COST_METRIC_FIELD: _text(item.get(COST_METRIC_FIELD)),
        COST_EXCLUSIONS_FIELD: _text(item.get(COST_EXCLUSIONS_FIELD)),
        "UpdatedBy": item.get("UpdatedBy"),
        "UpdatedAt": item.get("UpdatedAt"),
    }
