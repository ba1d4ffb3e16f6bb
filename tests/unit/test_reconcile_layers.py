"""The reconciler's logic sees no AWS SDK: boto3, botocore and their types stay in the adapters
(spoke.py, budgets_table.py, status_table.py, status.py) and the handler, which injects them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import budget_sync

PACKAGE = Path(budget_sync.__file__).parent
SDK = ("boto3", "botocore", "mypy_boto3")


def imported(module: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", ["reconcile.py", "requested.py"])
def test_the_reconcilers_logic_imports_no_aws_sdk(module: str):
    assert {name for name in imported(PACKAGE / module) if name.split(".")[0] in SDK} == set()


@pytest.mark.parametrize("module", ["budgets_table.py", "status_table.py"])
def test_the_adapters_are_where_the_sdk_is(module: str):
    assert {name.split(".")[0] for name in imported(PACKAGE / module)} & set(SDK)
