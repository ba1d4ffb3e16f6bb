"""Output: rich tables for people (``--output table``), JSON and CSV for scripts.

Results go to stdout; messages, errors and progress bars go to stderr, so that
``budgetctl status --output json | jq`` always reads clean JSON.

Values come from other accounts and other people (spoke parameters, reasons, table
attributes): they are shown as text, never interpreted. A table cell is a Rich ``Text``
(``[/]`` or ``[link=...]`` is printed as typed, not read as markup); a CSV cell that a
spreadsheet would read as a formula gets a leading apostrophe (``csv_cell``). Every control
or format character (ESC, NUL, a zero-width space, a bidirectional override) in a table or
CSV cell, a message or an error is shown as its escape (``\\x1b``, ``\\u200b``) by one
function, ``printable``: a terminal never receives an escape sequence from a spoke. JSON
escapes them itself.

A table is for a person at a terminal: a command may name the few columns its table shows
(``brief``), and ``--wide`` shows them all. A cell that is a word or a number (an account id,
an amount, a status, a drift) is never folded, so a status is never split across two lines;
only the long text columns (``LONG_TEXT``) are. In the brief table each of those is cut to
one line with an ellipsis, so that every account is one line. JSON and CSV always carry every
column, whatever the table shows.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TextIO

import jmespath
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

FORMATS = ("table", "json", "csv")
#: A spreadsheet reads a cell starting with one of these as a formula (OWASP, CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def output_format(given: str | None, environment: Mapping[str, str]) -> str:
    """--output, else AWS_DEFAULT_OUTPUT (as the AWS CLI), else table. A value of
    AWS_DEFAULT_OUTPUT budgetctl has no format for (text, yaml) falls back to table."""
    if given:
        return given
    wanted = environment.get("AWS_DEFAULT_OUTPUT", "").strip().lower()
    return wanted if wanted in FORMATS else "table"


def shaped(records: list[dict[str, Any]], single: bool, query: str | None) -> Any:
    """JSON data as the AWS CLI gives it: one object for one result, a list for many,
    then --query (JMESPath) applied to it."""
    data: Any = records[0] if single and len(records) == 1 else records
    return jmespath.search(query, data) if query else data


#: The widest a piped table may grow before its cells fold.
_PIPED_MAX_WIDTH = 1000
#: Columns of free text (names, reasons, ARNs, values written by hand, alert settings): the only
#: ones a table folds (``--wide``) or cuts with an ellipsis (the brief table).
LONG_TEXT = frozenset(
    {
        "Name",
        "Source",
        "Reason",
        "Parameter",
        "UpdatedBy",
        "AlertsSent",
        "SpokeAlerts",
        "Alerts",
        "AlertEmails",
        "Who",
        "Change",
        "Outcome",
    }
)
#: Summaries that are one line in every table (the whole text is in JSON and CSV).
ONE_LINE = frozenset({"Alerts"})


class Output:
    def __init__(
        self,
        fmt: str = "table",
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
        query: str | None = None,
        wide: bool = False,
    ) -> None:
        self.format = fmt
        self.query = query
        #: --wide: the table shows every column, long text folded instead of cut
        self.wide = wide
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self._err = Console(file=self.stderr, highlight=False, soft_wrap=True)

    def rows(
        self,
        rows: Sequence[dict[str, Any]],
        columns: Sequence[str],
        title: str = "",
        single: bool = False,
        *,
        brief: Sequence[str] | None = None,
        wide: Sequence[str] | None = None,
    ) -> None:
        """One record per row, with these columns, in the chosen format. ``single``: the
        command answers with one result (get, set), which JSON gives as one object.
        With --query, the JMESPath result is printed as JSON whatever the format.

        A table shows ``brief`` (default: ``columns``), or with --wide ``wide`` (default:
        ``columns``); a row may carry table-only cells (a one-line summary) under those names."""
        records = [{c: _json(row.get(c)) for c in columns} for row in rows]
        if self.format == "json" or self.query:
            json.dump(shaped(records, single, self.query), self.stdout, indent=2)
            self.stdout.write("\n")
        elif self.format == "csv":
            writer = csv.writer(self.stdout, lineterminator="\n")
            writer.writerow(columns)
            writer.writerows([[csv_cell(_text(row.get(c))) for c in columns] for row in rows])
        else:
            shown = (wide or columns) if self.wide else (brief or columns)
            cut = not self.wide and brief is not None
            table = Table(title=Text(title) if title else None, title_justify="left")
            one_line = {c for c in shown if c in ONE_LINE or (cut and c in LONG_TEXT)}
            for column in shown:
                # Long text gives way (rich narrows those columns first); a word never folds.
                header = Text(column, no_wrap=True, overflow="ellipsis")  # never Reaso / n
                table.add_column(header, no_wrap=column not in LONG_TEXT, overflow="fold")
            for row in rows:
                table.add_row(*(_cell(row.get(c), c in one_line) for c in shown))
            # On a terminal the table fits the window; piped or redirected, or with --wide, no cell
            # is folded at an arbitrary width (a value is read, grepped or copied whole), as `gh`
            # does (`budgetctl status --wide | less -S` scrolls sideways).
            fit = _tty(self.stdout) and not self.wide
            natural = Console(width=_PIPED_MAX_WIDTH).measure(table).maximum
            console = Console(file=self.stdout, highlight=False, width=None if fit else natural)
            if fit and single and len(rows) == 1 and natural > console.width:
                # one result (get, set) whose columns do not fit the terminal side by side: a
                # field per line, as the AWS CLI's table output shows one object
                table = self._fields(rows[0], shown, one_line, title)
            console.print(table)

    @staticmethod
    def _fields(row: dict[str, Any], shown: Sequence[str], one_line: set[str], title: str) -> Table:
        """One record as a table of two columns: each field's name and its value."""
        table = Table(title=Text(title) if title else None, title_justify="left")
        table.add_column(Text("Field", no_wrap=True), no_wrap=True)
        table.add_column(Text("Value", no_wrap=True), overflow="fold")
        for column in shown:
            table.add_row(Text(column), _cell(row.get(column), column in one_line))
        return table

    def info(self, message: str) -> None:
        self._err.print(_lines(message), markup=False)

    def error(self, message: str) -> None:
        self._err.print(f"budgetctl: error: {_lines(message)}", markup=False)

    @contextmanager
    def progress(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        """A progress bar on stderr (only on a terminal); yields advance(n)."""
        bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self._err,
            transient=True,
            disable=not self._err.is_terminal,
        )
        with bar:
            task = bar.add_task(description, total=total)

            def advance(count: int = 1) -> None:
                bar.advance(task, count)

            yield advance


def _tty(stream: TextIO) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)())


def _cell(value: Any, one_line: bool = False) -> Text:
    """One table cell: the value as plain text (never markup); ``one_line``: cut to the
    column's width with an ellipsis. The one place a table cell is made, so that a sanitising
    of outside text (control characters) applies to every table."""
    text = _text(value)
    if one_line:
        return Text(" ".join(text.split()), no_wrap=True, overflow="ellipsis")
    return Text(text)


def _text(value: Any) -> str:
    return "" if value is None else printable(str(value))


def printable(text: str) -> str:
    """``text`` as text, whatever it holds: each control or format character (``str.isprintable``
    is False: ESC, NUL, BEL, a line break, a zero-width space, a bidirectional override) is
    replaced by its Python escape, ``\\x1b[31m`` for ``ESC [31m``. The one place budgetctl
    makes text from outside safe for a terminal (tables, CSV, messages)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _lines(message: str) -> str:
    """A message of budgetctl's own, which may span lines: each line ``printable``."""
    return "\n".join(printable(line) for line in message.split("\n"))


def csv_cell(text: str) -> str:
    """A CSV cell a spreadsheet shows as text: ``=HYPERLINK(...)`` -> ``'=HYPERLINK(...)``.

    Every cell starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a leading
    apostrophe, negative numbers included: budget-sync's amounts are never negative, so a
    leading ``-`` is text from elsewhere (a reason, a parameter someone wrote by hand). A cell
    that itself starts with an apostrophe gets one more, so that ``csv_text`` (import) gives
    back exactly what was exported.
    """
    return "'" + text if text.startswith((*FORMULA_STARTS, "'")) else text


def csv_text(cell: str) -> str:
    """The inverse of ``csv_cell``, for import: ``'+ops@example.com`` -> ``+ops@example.com``.

    Only the guard ``csv_cell`` adds is taken off (an apostrophe before a formula start or
    another apostrophe); any other leading apostrophe is part of the text.
    """
    return cell[1:] if cell.startswith("'") and cell[1:].startswith((*FORMULA_STARTS, "'")) else cell


def _json(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)
