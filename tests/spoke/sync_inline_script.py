"""Copy src/budget_sync_spoke/update_budget.py into template-spoke.yaml's inline Script.

    .venv/bin/python -m tests.spoke.sync_inline_script

The template holds the Automation step's script verbatim (a block scalar, indented).
test_the_templates_inline_script_is_the_file fails until this has been run after an edit.
"""

from __future__ import annotations

import re

from budget_sync_local.templates import ROOT, SPOKE_TEMPLATE

SCRIPT = ROOT / "src" / "budget_sync_spoke" / "update_budget.py"
_BLOCK = re.compile(r"(?m)^(?P<key>(?P<indent> *)Script: \|\n)(?P<body>(?:(?P=indent)  .*\n|\n)+)")


def synced_template(template: str, script: str) -> str:
    match = _BLOCK.search(template)
    if match is None:
        raise SystemExit("template-spoke.yaml has no 'Script: |' block")
    indent = match.group("indent") + "  "
    body = "".join(f"{indent}{line}\n" if line else "\n" for line in script.splitlines())
    return template[: match.start("body")] + body + template[match.end("body") :]


def main() -> None:
    text = SPOKE_TEMPLATE.read_text()
    # the block ends at the first line indented less than the script (its 'outputs:')
    SPOKE_TEMPLATE.write_text(synced_template(text, SCRIPT.read_text()))
    print(f"{SPOKE_TEMPLATE.name}: inline Script = {SCRIPT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
