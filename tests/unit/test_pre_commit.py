"""The pre-commit hooks run what `make lint` runs, with the project's own tools (no download);
ruff's complexity gate is on for every file."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def hooks() -> list[dict[str, Any]]:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    assert [repo["repo"] for repo in config["repos"]] == ["local"]
    return [hook for repo in config["repos"] for hook in repo["hooks"]]


def recipe(makefile: str, target: str) -> tuple[list[str], list[str]]:
    """A target's prerequisites and its recipe's commands."""
    found = re.search(rf"^{re.escape(target)}:([^#\n]*).*\n((?:\t.*\n)*)", makefile, re.M)
    assert found, target
    prerequisites = [word for word in found.group(1).split() if not word.startswith(("$", "|"))]
    return prerequisites, [line.strip() for line in found.group(2).splitlines()]


def test_every_check_of_make_lint_is_a_hook():
    makefile = (ROOT / "Makefile").read_text()
    entries = {hook["entry"] for hook in hooks()}
    parts, _ = recipe(makefile, "lint")

    # GIVEN make lint's parts: lint-python's own commands, and a make target for the others
    assert "lint-python" in parts
    _, python_commands = recipe(makefile, "lint-python")
    tools = {" ".join(command.split()[:2]).removeprefix("$(BIN)/") for command in python_commands}
    assert tools == {"ruff check", "ruff format", "mypy"}
    for tool in tools:
        assert any(entry.startswith(f".venv/bin/{tool}") for entry in entries), tool
    for part in parts:
        if part != "lint-python":
            assert f"make -s {part}" in entries, part


def test_the_hooks_call_only_the_projects_tools_and_make():
    for hook in hooks():
        assert hook["language"] == "system"
        assert hook["entry"].split()[0] in {".venv/bin/ruff", ".venv/bin/mypy", "make"}


def test_ruff_gates_complexity_at_10_in_the_hook_and_make_lint_alike():
    ruff = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]

    assert "C90" in ruff["select"]
    assert ruff["mccabe"]["max-complexity"] == 10
    assert "C901" not in ruff.get("ignore", [])
    assert all("C90" not in rules for rules in ruff.get("per-file-ignores", {}).values())
