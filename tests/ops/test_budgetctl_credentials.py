"""budgetctl without credentials or region says what to set (make local's operator role)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.operators import budgetctl


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.mark.usefixtures("no_credentials")
def test_given_no_credentials_when_budgetctl_calls_aws_then_it_says_what_to_set():
    run = budgetctl("--endpoint-url", "http://127.0.0.1:9", "get", "111111111111")
    assert run.code != 0
    assert "no AWS credentials" in run.stderr
    assert "AWS_ACCESS_KEY_ID" in run.stderr
    assert "make local" in run.stderr


@pytest.mark.usefixtures("no_credentials")
def test_given_no_region_when_budgetctl_runs_then_it_says_what_to_set(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    run = budgetctl("get", "111111111111")
    assert run.code != 0
    assert "set AWS_REGION" in run.stderr
