"""What the Lambda package carries: its dependencies, its bytecode, and tracing without the SDK."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from budget_sync import observability
from budget_sync_local.lambda_runtime import code_uri
from budget_sync_local.templates import MANAGEMENT_TEMPLATE, ROOT, load

FUNCTION_DIR = ROOT / "src" / "function"
RUNTIME_SDK = {"boto3", "botocore", "s3transfer"}  # what Lambda's python runtime already has


def _closure(requirements: list[Requirement]) -> set[str]:
    """Every distribution the requirements install, from the installed packages' metadata."""
    seen: set[str] = set()
    todo = [(r, frozenset(r.extras)) for r in requirements]
    while todo:
        requirement, extras = todo.pop()
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        if name in seen:
            continue
        seen.add(name)
        for raw in metadata.requires(requirement.name) or []:
            child = Requirement(raw)
            environments = [{"extra": e} for e in extras] or [{"extra": ""}]
            if child.marker is None or any(child.marker.evaluate(env) for env in environments):
                todo.append((child, frozenset(child.extras)))
    return seen


def test_given_the_function_requirements_then_they_bring_no_second_aws_sdk():
    lines = (FUNCTION_DIR / "requirements.txt").read_text(encoding="utf-8").splitlines()
    requirements = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]

    installed = _closure(requirements)

    assert "aws-lambda-powertools" in installed
    assert not installed & RUNTIME_SDK, f"the package would carry {sorted(installed & RUNTIME_SDK)}"


def test_given_tracing_on_and_no_xray_sdk_in_the_package_when_the_handler_is_wrapped_then_it_still_runs(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "false")
    monkeypatch.setitem(sys.modules, "aws_xray_sdk", None)  # import fails, as in the built package

    handler = observability.traced_handler(lambda event, context: {"batchItemFailures": []})

    assert handler({"Records": []}, None) == {"batchItemFailures": []}


def test_every_function_built_from_src_function_uses_the_package_makefile():
    functions = {
        logical_id: resource
        for logical_id, resource in load(MANAGEMENT_TEMPLATE)["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    assert functions
    for logical_id, resource in functions.items():
        assert code_uri(logical_id) == "src/function", logical_id  # its own, else the Globals'

        assert resource.get("Metadata", {}).get("BuildMethod") == "makefile", logical_id


def _python313() -> str | None:
    """As `make build` finds it: pyenv's 3.13 first, else python3.13 on PATH."""
    candidates = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.13*/bin/python3.13")))
    return candidates[-1] if candidates else shutil.which("python3.13")


@pytest.mark.process
def test_given_the_build_target_then_every_module_ships_bytecode_the_runtime_uses_unchecked(tmp_path: Path):
    python = _python313()
    if python is None:
        pytest.skip("no python3.13 here (make build needs it too)")
    no_dependencies = tmp_path / "requirements.txt"  # the package's own code only: no network
    no_dependencies.write_text("", encoding="utf-8")
    artifact = tmp_path / "artifact"

    built = subprocess.run(
        [
            "make",
            "-s",
            "-C",
            str(FUNCTION_DIR),
            "build-AnyFunction",
            f"ARTIFACTS_DIR={artifact}",
            f"PYTHON={python}",
            f"REQUIREMENTS={no_dependencies}",
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    magic = subprocess.run(
        [python, "-c", "import importlib.util; print(importlib.util.MAGIC_NUMBER.hex())"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()

    assert sorted(p.name for p in artifact.iterdir()) == ["budget_sync"]  # no Makefile, no CLI
    sources = sorted(artifact.glob("budget_sync/**/*.py"))
    shipped = {p.relative_to(artifact).as_posix() for p in sources}
    in_repo = {p.relative_to(FUNCTION_DIR).as_posix() for p in FUNCTION_DIR.glob("budget_sync/**/*.py")}
    assert shipped == in_repo  # every module, subpackages too (budget_sync/incidents/)
    assert "budget_sync/incidents/lifecycle.py" in shipped
    tag = "cpython-313"
    for source in sources:
        compiled = source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc"
        assert compiled.exists(), compiled
        header = compiled.read_bytes()[:16]
        assert header[:4].hex() == magic, f"{compiled}: not Python 3.13 bytecode"
        flags = int.from_bytes(header[4:8], "little")
        assert flags == 0b01, f"{compiled}: flags {flags:#b} (want hash-based, source not checked)"
