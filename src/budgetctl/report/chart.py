"""The report's chart: matplotlib's SVG backend, inlined in the page (nothing fetched to view it).

One bar per account whose budget could be read, sorted by forecast as a share of the limit,
coloured by level (over, near, within), hatched when the account drifted; the actual spend
as a tick on each bar; the 100 % line and the near line, both in the legend. A bar above
``CAP_PERCENT`` is cut at the top and labelled with its value (1,400 %), so that an account at
1,400 % does not look like one at 300 %. Every bar carries an SVG id
(``account-<id>-<level>``, matplotlib's ``gid``) so that a browser test can count the marks.

The only text from outside in the SVG is account ids (12 digits, validated by the item
contract); matplotlib escapes text it writes. Names and reasons stay in the HTML, where
Jinja2 escapes them.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from budgetctl.report.model import AccountLine, Level

#: Bars above this share are cut at the top (the caption says so): one runaway account must
#: not flatten the others.
CAP_PERCENT = 300
COLOURS = {Level.OVER: "#c62828", Level.NEAR: "#ef8f00", Level.OK: "#2e7d32"}
LABELLED_ACCOUNTS = 40  # up to this many bars, each is labelled with its account id
_STYLE: dict[str, Any] = {
    "svg.fonttype": "none",  # text as <text>, not paths: smaller, selectable, searchable
    "svg.hashsalt": "budget-sync-report",  # stable ids: the same data gives the same file
    "font.family": "DejaVu Sans",
    "font.size": 9,
}


def chart_svg(lines: Sequence[AccountLine], near_percent: Decimal) -> str:
    """The ``<svg>`` element for ``lines`` (already sorted), or "" when there is nothing to draw."""
    charted = [line for line in lines if line.level is not Level.NO_DATA]
    if not charted:
        return ""
    # Imported here: only `budgetctl report` pays matplotlib's import time.
    from matplotlib import rc_context
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    forecast = [float(line.forecast_percent or 0) for line in charted]
    actual = [float(line.actual_percent or 0) for line in charted]
    top = min(CAP_PERCENT, max(120.0, max(forecast + actual) * 1.08))
    positions = range(len(charted))
    with rc_context(_STYLE):  # type: ignore[arg-type]
        figure = Figure(figsize=(11, 4.4), layout="constrained")
        axes = figure.add_subplot()
        bars = axes.bar(
            positions,
            [min(value, top) for value in forecast],
            width=0.8 if len(charted) <= 200 else 1.0,
            color=[COLOURS[line.level] for line in charted],
            linewidth=0,
        )
        for bar, line in zip(bars, charted, strict=True):
            bar.set_gid(f"account-{line.account_id}-{line.level.value.lower()}")
            if line.drifted:
                bar.set_hatch("///")
                bar.set_edgecolor("#212121")
        for position, value, line in zip(positions, forecast, charted, strict=True):
            if value > top:  # cut at the top: the bar says how high it really goes
                axes.annotate(
                    f"{value:,.0f} %",
                    (position, top),
                    xytext=(0, 2),
                    textcoords="offset points",
                    ha="center",
                    va="bottom",
                    rotation=90 if len(charted) > LABELLED_ACCOUNTS else 0,
                    fontsize=7,
                    annotation_clip=False,
                    gid=f"cut-{line.account_id}",
                )
        ticks = axes.scatter(
            positions,
            [min(value, top) for value in actual],
            marker="_",
            s=60 if len(charted) <= 200 else 8,
            color="#212121",
            zorder=3,
        )
        ticks.set_gid("actual-spend")
        axes.axhline(100, color="#c62828", linestyle="--", linewidth=1.2, gid="limit-line")
        axes.axhline(float(near_percent), color="#ef8f00", linestyle=":", linewidth=1, gid="near-line")
        axes.set_ylim(0, top)
        axes.set_xlim(-0.6, len(charted) - 0.4)
        axes.set_ylabel("% of the account's limit")
        axes.set_xlabel(f"{len(charted)} accounts, highest forecast share first")
        if len(charted) <= LABELLED_ACCOUNTS:
            axes.set_xticks(list(positions), [line.account_id for line in charted], rotation=60, ha="right")
        else:
            axes.set_xticks([])
        axes.spines[["top", "right"]].set_visible(False)
        axes.grid(axis="y", color="#e0e0e0", linewidth=0.6)
        axes.set_axisbelow(True)
        axes.legend(
            handles=[
                Patch(color=COLOURS[Level.OVER], label="over: spend or forecast above the limit"),
                Patch(color=COLOURS[Level.NEAR], label=f"near: forecast ≥ {near_percent:f} %"),
                Patch(color=COLOURS[Level.OK], label="within the limit"),
                Patch(facecolor="white", edgecolor="#212121", hatch="///", label="drifted"),
                Line2D([], [], color="#212121", marker="_", linestyle="", label="actual spend"),
                Line2D([], [], color="#c62828", linestyle="--", label="100 % of the limit"),
                Line2D(
                    [], [], color="#ef8f00", linestyle=":", label=f"{near_percent:f} % of the limit (near)"
                ),
                Patch(
                    facecolor="white",
                    edgecolor="white",
                    label=f"bar above {CAP_PERCENT} %: cut, value on top",
                ),
            ],
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),  # beside the axes, never over a bar
            fontsize=8,
            frameon=True,
        )
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]
