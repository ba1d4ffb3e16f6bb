"""Copy the Automation scripts into template-spoke.yaml's inline Script blocks.

    .venv/bin/python -m tests.spoke.sync_inline_script

The template holds each step's script verbatim (a block scalar, indented):
src/budget_sync_spoke/update_budget.py is step UpdateBudgetLimit, alerts.py is step
ReconcileAlerts. test_the_templates_inline_script_is_the_file (and its alerts twin) fails
until this has been run after an edit.
"""

from __future__ import annotations

import re

from budget_sync_local.templates import ROOT, SPOKE_TEMPLATE

SCRIPT = ROOT / "src" / "budget_sync_spoke" / "update_budget.py"
ALERTS_SCRIPT = ROOT / "src" / "budget_sync_spoke" / "alerts.py"
#: The document step whose inline Script each file is.
SCRIPTS = {"UpdateBudgetLimit": SCRIPT, "ReconcileAlerts": ALERTS_SCRIPT}
_BLOCK = re.compile(r"(?m)^(?P<key>(?P<indent> *)Script: \|\n)(?P<body>(?:(?P=indent)  .*\n|\n)+)")


def synced_template(template: str, script: str, step: str = "UpdateBudgetLimit") -> str:
    start = re.search(rf"(?m)^ *- name: {re.escape(step)}\n", template)
    if start is None:
        raise SystemExit(f"template-spoke.yaml has no step {step}")
    match = _BLOCK.search(template, start.end())
    if match is None:
        raise SystemExit(f"template-spoke.yaml's step {step} has no 'Script: |' block")
    indent = match.group("indent") + "  "
    body = "".join(f"{indent}{line}\n" if line else "\n" for line in script.splitlines())
    return template[: match.start("body")] + body + template[match.end("body") :]


def main() -> None:
    text = SPOKE_TEMPLATE.read_text()
    # a block ends at the first line indented less than the script (its 'outputs:')
    for step, script in SCRIPTS.items():
        text = synced_template(text, script.read_text(), step)
        print(f"{SPOKE_TEMPLATE.name}: step {step} inline Script = {script.relative_to(ROOT)}")
    SPOKE_TEMPLATE.write_text(text)


if __name__ == "__main__":
    main()
