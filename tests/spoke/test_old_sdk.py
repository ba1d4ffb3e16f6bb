"""The Automation script under the oldest boto3 the aws:executeScript runtime may have.

AWS does not publish which boto3 the Automation runtime (python3.11) brings. The script
depends on the Budget members FilterExpression, Metrics and BillingViewArn and on
DescribeBudget's ShowFilterExpression: botocore 1.37.38 (April 2025) added FilterExpression,
Metrics and ShowFilterExpression to the Budgets model, BillingViewArn came later. So the
newest release without any of them is boto3 1.37.37 with botocore 1.37.37 (checked in the
wheels' budgets service-2.json), the SDK of a runtime that has not been updated since
before those members existed. Under it the script's SDK check must fail before any call to
Budgets, with a reason, and leave the budget as it was.

The SDK is installed with ``uv`` in a throwaway virtual environment under the pytest cache
(``.pytest_cache/d/old-boto3-1.37.37``), so a second run reuses it. It needs PyPI (CI has
it); without ``uv`` the test is skipped, except in CI, where it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from budget_sync_local import standins
from budget_sync_local.templates import SPOKE_TEMPLATE, load

pytestmark = [pytest.mark.aws, pytest.mark.process]

OLD_BOTO3 = "1.37.37"  # boto3 1.37.37 allows botocore up to 1.37.38, which has the members: pinned
ACCOUNT = "123456789012"  # moto's account for the test credentials
REGION = "us-east-1"
PARAMETER = "/BlogBudgets/CostThreshold"
BUDGET = {
    "BudgetName": "SpokeAccountBudget",
    "BudgetType": "COST",
    "TimeUnit": "MONTHLY",
    "BudgetLimit": {"Amount": "100", "Unit": "USD"},
    "FilterExpression": {"Not": {"Dimensions": {"Key": "RECORD_TYPE", "Values": ["Credit", "Refund"]}}},
    "Metrics": ["UnblendedCost"],
}
#: Runs the template's script as aws:executeScript does: its handler with the step's payload.
RUNNER = """
import json, sys
import boto3
payload = json.load(sys.stdin)
namespace = {"__name__": "automation_script"}
exec(compile(open(sys.argv[1]).read(), "UpdateBudgetLimit", "exec"), namespace)
try:
    namespace["handler"](payload, None)
except Exception as exc:
    print(json.dumps({"boto3": boto3.__version__, "error": type(exc).__name__, "message": str(exc)}))
    sys.exit(1)
print(json.dumps({"boto3": boto3.__version__, "error": None}))
"""


@pytest.fixture(scope="module")
def old_python(request: pytest.FixtureRequest) -> Path:
    """The interpreter of a virtual environment with boto3/botocore 1.37.37 (built once)."""
    # on PATH, or the one make installs beside this interpreter (.venv/bin/uv: make test runs
    # .venv/bin/pytest without activating .venv)
    uv = shutil.which("uv") or shutil.which("uv", path=str(Path(sys.executable).parent))
    if uv is None:
        if os.environ.get("CI"):
            pytest.fail("uv is needed to build the old-SDK environment (pip install uv)")
        pytest.skip("uv is not installed: the old-SDK environment cannot be built")
    venv = Path(request.config.cache.mkdir(f"old-boto3-{OLD_BOTO3}"))
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import boto3, botocore; print(boto3.__version__, botocore.__version__)"]
    if not python.exists() or subprocess.run(probe, capture_output=True, text=True).stdout.split() != [
        OLD_BOTO3,
        OLD_BOTO3,
    ]:
        subprocess.run([uv, "venv", "--quiet", "--clear", "--python", sys.executable, str(venv)], check=True)
        subprocess.run(
            [
                uv,
                "pip",
                "install",
                "--quiet",
                "--python",
                str(python),
                f"boto3=={OLD_BOTO3}",
                f"botocore=={OLD_BOTO3}",
            ],
            check=True,
            env={k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"},
        )
    return python


@pytest.fixture
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _template_script() -> str:
    steps = load(SPOKE_TEMPLATE)["Resources"]["AutomationDocument"]["Properties"]["Content"]["mainSteps"]
    (step,) = [s for s in steps if s["name"] == "UpdateBudgetLimit"]
    script: str = step["inputs"]["Script"]
    return script


def test_given_the_runtime_s_boto3_predates_the_budget_members_then_the_script_fails_and_changes_nothing(
    old_python: Path, endpoint: str, tmp_path: Path
):
    script = tmp_path / "update_budget.py"
    script.write_text(_template_script())
    reports: list[dict[str, Any]] = []
    with standins.installed() as stand_ins:
        stand_ins.subscribe(reports.append)
        # GIVEN a filtered budget at 100 and its parameter at 250, behind make local's endpoint
        session = boto3.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        )
        budgets = session.client("budgets", endpoint_url=endpoint)
        budgets.create_budget(AccountId=ACCOUNT, Budget=BUDGET)
        session.client("ssm", endpoint_url=endpoint).put_parameter(Name=PARAMETER, Value="250", Type="String")
        reports.clear()

        # WHEN the template's script runs under boto3 1.37.37
        payload = {"AccountId": ACCOUNT, "ParameterName": PARAMETER, "BudgetName": BUDGET["BudgetName"]}
        run = subprocess.run(
            [str(old_python), "-c", RUNNER, str(script)],
            input=json.dumps(payload),
            capture_output=True,
            text=True,
            timeout=120,
            env={
                "PATH": os.environ.get("PATH", ""),
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": REGION,
            },
        )

        # THEN the SDK check refused it, with a reason that names what that SDK lacks
        assert run.returncode == 1, run.stderr
        outcome = json.loads(run.stdout.strip().splitlines()[-1])
        assert (outcome["boto3"], outcome["error"]) == (OLD_BOTO3, "SdkTooOld"), outcome
        for missing in (
            "FilterExpression",
            "Metrics",
            "BillingViewArn",
            "DescribeBudget.ShowFilterExpression",
        ):
            assert missing in outcome["message"]
        # and the failure was reported with that reason, as the management account records it
        (report,) = [e["detail"] for e in reports if e.get("source") == "budget-sync.spoke"]
        assert (report["Outcome"], report["Reason"]) == ("FAILED", outcome["message"])
        # and the budget is as it was: limit, filter and metric
        after = budgets.describe_budget(
            AccountId=ACCOUNT, BudgetName=BUDGET["BudgetName"], ShowFilterExpression=True
        )
        assert after["Budget"]["BudgetLimit"]["Amount"] == "100"
        assert (after["Budget"]["FilterExpression"], after["Budget"]["Metrics"]) == (
            BUDGET["FilterExpression"],
            BUDGET["Metrics"],
        )
