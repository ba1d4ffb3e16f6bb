"""Java regular expressions (botocore's service models write their ``pattern`` constraints in
Java's syntax) as Python ones: plain, no moto, so that its test runs in ``make unit``; the
stand-ins' model validation (``budget_sync_local.standins.model_validation``) uses it."""

from __future__ import annotations

import re

#: An inline flag group such as (?i) that does not open the pattern: Java scopes it to the
#: end of the enclosing group, Python accepts global flags only at the start.
_INLINE_FLAGS = re.compile(r"\(\?([a-zA-Z]+)\)")


def python_pattern(java: str) -> str:
    """A Java regular expression of a model, as a Python one (inline flags scoped)."""
    out: list[str] = []
    closers: list[int] = []  # per open group, how many scoped-flag groups to close with it
    opened_flags = 0
    i, in_class = 0, False
    while i < len(java):
        char = java[i]
        if char == "\\":
            out.append(java[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = char != "]"
            out.append(char)
        elif char == "[":
            in_class = True
            out.append(char)
        elif (match := _INLINE_FLAGS.match(java, i)) and i > 0:
            out.append(f"(?{match.group(1)}:")
            opened_flags += 1
            i = match.end()
            continue
        elif char == "(":
            closers.append(opened_flags)
            opened_flags = 0
            out.append(char)
        elif char == ")":
            out.append(")" * opened_flags + ")")
            opened_flags = closers.pop() if closers else 0
        else:
            out.append(char)
        i += 1
    out.append(")" * opened_flags)
    return "".join(out)
