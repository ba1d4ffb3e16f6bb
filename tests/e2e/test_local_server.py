"""`make local`: any AWS client talks to the local organisation through its endpoint and
sees a write in the management table reach the budget of a spoke account."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from budget_sync_local import server
from tests.support.operators import budgetctl

pytestmark = [pytest.mark.e2e, pytest.mark.aws, pytest.mark.process]

SPOKE = "111111111111"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def client(endpoint: str, service: str, **credentials: Any) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", **credentials)


def wait_for_port(
    port: int, process: subprocess.Popen[str], console: Callable[[], str], timeout_s: float = 90
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode}: {console()}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError("the port never opened")


@dataclass
class LocalServer:
    """`make local` in a subprocess; ``output`` is its console once it has stopped, ``lines``
    what it has printed so far (read as it prints)."""

    port: int
    process: subprocess.Popen[str]
    output: str = ""
    lines: list[str] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_for_console(self, printed: Callable[[str], bool], timeout_s: float = 60) -> None:
        """Until ``printed`` holds for the console so far: a report EventBridge delivers late
        may be printed after the budget already shows its value."""
        wait_for(lambda: printed("".join(self.lines)), timeout_s)


@contextmanager
def make_local(
    stop: signal.Signals = signal.SIGINT,
    cwd: Path | None = None,
    reconcile_every: str = "0",
    incidents: str | None = None,
) -> Iterator[LocalServer]:
    """Start `make local` with one spoke account, wait for its port, stop it with ``stop``
    (Ctrl-C by default) however the test ends. ``cwd``: where it writes .local-org/.
    ``reconcile_every``: its --reconcile-every (here 0 unless a test asks: no scheduled
    reconciler repairing what a test changed by hand, and no scheduled incident run).
    ``incidents``: its --incidents (``make local INCIDENTS=...``; not given: its default, on)."""
    port = free_port()
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "budget_sync_local", "serve", "--port", str(port), "--accounts", "1"),
            *("--reconcile-every", reconcile_every),
            *(("--incidents", incidents) if incidents is not None else ()),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=cwd,
    )
    running = LocalServer(port, process)
    stdout = process.stdout
    assert stdout is not None

    def read() -> None:
        for line in stdout:
            running.lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    def console() -> str:
        reader.join(timeout=30)
        return "".join(running.lines)

    try:
        wait_for_port(port, process, console)
        yield running
    finally:
        process.send_signal(stop)
        process.wait(timeout=30)
        running.output = console()


def spend_cli(port: int, *argv: str) -> subprocess.CompletedProcess[str]:
    """``python -m budget_sync_local spend ...`` as docs/local.md and docs/itsm.md type it."""
    command = [sys.executable, "-m", "budget_sync_local", "spend", *argv, "--port", str(port)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def wait_for(condition: Any, timeout_s: float) -> Any:
    """``condition()`` until it answers something true, or its last answer after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    answer = condition()
    while not answer and time.monotonic() < deadline:
        time.sleep(0.3)
        answer = condition()
    return answer


def as_local_administrator(monkeypatch: pytest.MonkeyPatch) -> None:
    """This test's AWS clients and commands as the local management account's administrator
    (any keys; no session token, no profile), as docs/local.md's walk-throughs start."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def in_account(endpoint: str, account: str, service: str) -> Any:
    """A client in ``account`` with its administrator role's credentials (assumed at the endpoint)."""
    assumed = client(endpoint, "sts").assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole", RoleSessionName="me"
    )["Credentials"]
    return client(
        endpoint,
        service,
        aws_access_key_id=assumed["AccessKeyId"],
        aws_secret_access_key=assumed["SecretAccessKey"],
        aws_session_token=assumed["SessionToken"],
    )


def test_given_make_local_when_a_client_writes_a_budget_then_the_spoke_budget_shows_it():
    with make_local() as local:
        endpoint = local.endpoint
        client(endpoint, "dynamodb").put_item(
            TableName="BlogBudgetsDynamoDB",
            Item={
                "AccountId": {"S": SPOKE},
                "BudgetValue": {"N": "1234.56"},
                "AlertEmails": {"S": "local-owner@example.com"},
            },
        )
        budgets = in_account(endpoint, SPOKE, "budgets")
        deadline, amount = time.monotonic() + 30, None
        while time.monotonic() < deadline:
            budget = budgets.describe_budget(AccountId=SPOKE, BudgetName="SpokeAccountBudget")["Budget"]
            amount = Decimal(budget["BudgetLimit"]["Amount"])
            if amount == Decimal("1234.56"):
                break
            time.sleep(0.2)
        assert amount == Decimal("1234.56")
        # the subscriber stand-ins answer the endpoint too (aws budgets describe-subscribers-for-notification)
        notification = {"NotificationType": "ACTUAL", "ComparisonOperator": "GREATER_THAN", "Threshold": 80.0}
        deadline, emails, topics = time.monotonic() + 30, [""], [""]
        while time.monotonic() < deadline:
            subscribers = budgets.describe_subscribers_for_notification(
                AccountId=SPOKE, BudgetName="SpokeAccountBudget", Notification=notification
            )["Subscribers"]
            emails = [s["Address"] for s in subscribers if s["SubscriptionType"] == "EMAIL"]
            topics = [s["Address"] for s in subscribers if s["SubscriptionType"] == "SNS"]
            if emails == ["local-owner@example.com"]:
                break
            time.sleep(0.2)
        assert emails == ["local-owner@example.com"]
        # and the spoke's own alert topic (make local's incidents: SnsTopicMode=Create)
        assert [t.split(":")[:5] for t in topics] == [["arn", "aws", "sns", "us-east-1", SPOKE]]
        # IAM is evaluated at the endpoint: the management account's own principal (any key
        # AssumeRole did not issue) may not assume the spoke write role, whose trust admits
        # only the two function roles
        with pytest.raises(ClientError) as refused:
            client(endpoint, "sts").assume_role(
                RoleArn=f"arn:aws:iam::{SPOKE}:role/BlogBudgetsSpokeRole", RoleSessionName="me"
            )
        assert refused.value.response["Error"]["Code"] == "AccessDenied"
        assert "sts:AssumeRole" in refused.value.response["Error"]["Message"]
    assert local.process.returncode == 0, local.output
    assert "ready at" in local.output
    assert f"{SPOKE}: rule matched" in local.output  # the pipeline's steps are shown as they happen
    # and it says how to act as the operators' role (budgetctl status needs it)
    assert "BudgetSyncOperator" in local.output
    assert "export AWS_ACCESS_KEY_ID=" in local.output
    assert "AWS_SESSION_TOKEN=" in local.output
    assert "AWS_DEFAULT_REGION=us-east-1" in local.output  # the region boto3 (budgetctl) reads


def act_as_operator(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Take the operators' role, as the export line ``make local`` prints does (AssumeRole of
    BudgetSyncOperator by the management account's administrator)."""
    credentials = client(endpoint, "sts").assume_role(
        RoleArn="arn:aws:iam::123456789012:role/BudgetSyncOperator", RoleSessionName="operator"
    )["Credentials"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", credentials["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", credentials["SecretAccessKey"])
    monkeypatch.setenv("AWS_SESSION_TOKEN", credentials["SessionToken"])


def test_given_a_port_in_use_when_make_local_starts_then_it_exits_at_once_with_the_message():
    port = free_port()
    with socket.create_server(("127.0.0.1", port)):  # the first server on that port
        started = time.monotonic()
        second = subprocess.run(
            [sys.executable, "-m", "budget_sync_local", "serve", "--port", str(port), "--accounts", "1"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert second.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in second.stdout
    assert "in use" in second.stdout
    assert "Traceback" not in second.stdout + second.stderr
    # checked before the organisation's imports (moto, boto3): 0.7 to 0.9 s on a busy 2-core
    # machine; the bound leaves room for a busier one, and is far below the imports' 10 s and more
    assert time.monotonic() - started < 5


def test_given_incidents_neither_on_nor_off_when_make_local_starts_then_it_exits_2_naming_the_value():
    refused = subprocess.run(
        [
            sys.executable,
            "-m",
            "budget_sync_local",
            "serve",
            "--port",
            str(free_port()),
            "--incidents",
            "maybe",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2
    assert "INCIDENTS / --incidents 'maybe' must be on or off" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_given_two_local_servers_on_one_port_when_the_second_binds_after_provisioning_then_it_ends():
    with make_local(stop=signal.SIGTERM) as first:
        with pytest.raises(server.ServerError, match=f"cannot listen on 127.0.0.1:{first.port}"):
            server._bind("127.0.0.1", first.port)  # the bind after provisioning, the port taken meanwhile
        stopped = threading.Event()
        with pytest.raises(server.ServerError, match="in use"):
            server.serve(["111111111111"], first.port, stop=stopped)
    assert first.process.returncode == 0, first.output


def test_given_make_local_when_invalid_and_unreachable_items_arrive_then_the_console_shows_each_reason():
    with make_local() as local:
        dynamodb = client(local.endpoint, "dynamodb")
        dynamodb.put_item(
            TableName="BlogBudgetsDynamoDB", Item={"AccountId": {"S": SPOKE}, "BudgetValue": {"N": "12.345"}}
        )
        dynamodb.put_item(
            TableName="BlogBudgetsDynamoDB",
            Item={"AccountId": {"S": "999999999999"}, "BudgetValue": {"N": "100"}},
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status = dynamodb.get_item(
                TableName="BlogBudgetsStatus", Key={"AccountId": {"S": "999999999999"}}
            )
            if status.get("Item"):
                break
            time.sleep(0.2)
        time.sleep(1)  # the console line follows the status write
    output = local.output
    lines = output.splitlines()
    assert any(f"{SPOKE}: FAILED" in line and "12.345" in line for line in lines), output
    assert any("999999999999: FAILED" in line for line in lines), output
    assert "UserWarning" not in output
    assert "No application metrics" not in output
    assert '"_aws"' not in output  # no EMF metric line


def test_given_make_local_when_a_planned_limits_budget_gets_555_then_the_status_says_failed_with_the_spokes_reason():
    # GIVEN `make local` running (a user's first try, as the issue describes it)
    with make_local() as local:
        endpoint = local.endpoint
        budgets = in_account(endpoint, SPOKE, "budgets")
        # AND account 111111111111's budget replaced by one with planned limits
        budgets.delete_budget(AccountId=SPOKE, BudgetName="SpokeAccountBudget")
        budgets.create_budget(
            AccountId=SPOKE,
            Budget={
                "BudgetName": "SpokeAccountBudget",
                "BudgetType": "COST",
                "TimeUnit": "MONTHLY",
                "PlannedBudgetLimits": {"1767225600": {"Amount": "100", "Unit": "USD"}},
            },
        )
        # WHEN BudgetValue 555 is written for it
        dynamodb = client(endpoint, "dynamodb")
        dynamodb.put_item(
            TableName="BlogBudgetsDynamoDB", Item={"AccountId": {"S": SPOKE}, "BudgetValue": {"N": "555"}}
        )
        # THEN within a minute the status table says FAILED, with the spoke's own reason
        deadline, status = time.monotonic() + 60, {}
        while time.monotonic() < deadline:
            status = dynamodb.get_item(TableName="BlogBudgetsStatus", Key={"AccountId": {"S": SPOKE}}).get(
                "Item", {}
            )
            if status.get("Status", {}).get("S") == "FAILED":
                break
            time.sleep(0.2)
        assert status["Status"]["S"] == "FAILED"
        assert status["Reason"]["S"].startswith("spoke: ")
        assert "PlannedBudgetLimits" in status["Reason"]["S"]
    assert local.process.returncode == 0, local.output
    assert "management result bus" in local.output


def every_run_reported(console: str, account: str) -> bool:
    """Each Automation run the console shows for ``account`` has both its steps' reports."""
    lines = console.splitlines()
    runs = [line for line in lines if f"④ {account}:" in line and "Automation document (" in line]
    reports = [line for line in lines if f"⑦ {account} " in line]
    started_by = {line.split("Automation document (", 1)[1].split(")", 1)[0] for line in runs}
    return bool(runs) and all(
        any(f"{step} (run for {parameter})" in line for line in reports)
        for parameter in started_by
        for step in ("UpdateBudgetLimit", "ReconcileAlerts")
    )


def test_given_make_local_when_a_client_creates_and_moves_an_account_then_it_is_enrolled_by_its_ous_default():
    with make_local() as local:
        endpoint = local.endpoint
        organizations = client(endpoint, "organizations")
        root = organizations.list_roots()["Roots"][0]["Id"]
        units = organizations.list_organizational_units_for_parent(ParentId=root)["OrganizationalUnits"]
        sandbox = next(u["Id"] for u in units if u["Name"] == "Sandbox")
        # GIVEN a Sandbox default written by any client
        client(endpoint, "dynamodb").put_item(
            TableName="BlogBudgetsDefaults", Item={"TargetId": {"S": sandbox}, "BudgetValue": {"N": "100"}}
        )
        # WHEN an administrator creates an account and moves it to Sandbox, as on AWS
        status = organizations.create_account(AccountName="newcomer", Email="newcomer@example.com")
        account = status["CreateAccountStatus"]["AccountId"]
        organizations.move_account(AccountId=account, SourceParentId=root, DestinationParentId=sandbox)

        # THEN its spoke stack appears and its budget becomes the default, with no operator
        deadline, amount = time.monotonic() + 60, None
        while time.monotonic() < deadline:
            try:
                budgets = in_account(endpoint, account, "budgets")
                budget = budgets.describe_budget(AccountId=account, BudgetName="SpokeAccountBudget")["Budget"]
                amount = Decimal(budget["BudgetLimit"]["Amount"])
            except ClientError:  # the spoke stack (its role, its budget) is not there yet
                amount = None
            if amount == Decimal("100"):
                break
            time.sleep(0.3)
        assert amount == Decimal("100")
        local.wait_for_console(lambda console: every_run_reported(console, account))
    assert local.process.returncode == 0, local.output
    assert f"{account}: event CreateAccountResult" in local.output
    assert f"{account}: StackSet budget-sync-spoke deployed the spoke stack" in local.output
    # one line per event: each Automation run is one line naming the parameter that started it
    # (④ and ⑤ together); each spoke report one line naming its step and that parameter
    runs = [line for line in local.output.splitlines() if f"④ {account}:" in line]
    reports = [line for line in local.output.splitlines() if f"⑦ {account} " in line]
    assert runs, local.output
    assert all("⑤ budget" in line and "(/BlogBudgets/" in line for line in runs), local.output
    # each run's reports, UpdateBudgetLimit and ReconcileAlerts, each line naming its step and
    # the parameter whose change started the run (a report EventBridge delivers twice prints twice)
    started_by = {line.split("Automation document (", 1)[1].split(")", 1)[0] for line in runs}
    for parameter in started_by:
        for step in ("UpdateBudgetLimit", "ReconcileAlerts"):
            assert any(f"{step} (run for {parameter})" in line for line in reports), local.output
    assert any("ReconcileAlerts (run for /BlogBudgets/AlertDefaults)" in line for line in reports)


def test_given_make_local_when_an_operator_gives_spend_and_repairs_then_report_shows_it_and_logs_stay_in_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    as_local_administrator(monkeypatch)

    with make_local(cwd=tmp_path) as local:
        act_as_operator(local.endpoint, monkeypatch)  # budgetctl as the operators' role
        # GIVEN a budget of 1000 for the spoke account, applied
        assert budgetctl("--endpoint-url", local.endpoint, "set", SPOKE, "1000").code == 0
        dynamodb = client(local.endpoint, "dynamodb")
        deadline, status = time.monotonic() + 60, ""
        while time.monotonic() < deadline and status != "APPLIED":
            item = dynamodb.get_item(TableName="BlogBudgetsStatus", Key={"AccountId": {"S": SPOKE}})
            status = item.get("Item", {}).get("Status", {}).get("S", "")
            time.sleep(0.2)
        assert status == "APPLIED"
        # WHEN an operator gives the spoke account spend, as docs/local.md says
        given = spend_cli(local.port, SPOKE, "1100", "1400")
        # THEN it is accepted, and a bad amount or an account without a spoke is refused by name
        assert given.returncode == 0, given.stderr
        assert f"{SPOKE}: budget SpokeAccountBudget now has actual spend 1100 USD" in given.stdout
        bad = spend_cli(local.port, SPOKE, "12.345", "1400")
        assert bad.returncode == 2
        assert "ActualSpend '12.345' has more than two decimals" in bad.stderr
        outside = spend_cli(local.port, "999999999999", "1", "1")
        assert outside.returncode == 2
        assert "AccountId '999999999999' has no spoke stack" in outside.stderr
        # AND a budget is made unhealthy by hand and healthy again, as docs/local.md says
        health = [sys.executable, "-m", "budget_sync_local", "health", SPOKE, "--port", str(local.port)]
        sick = subprocess.run(
            [*health, "UNHEALTHY", "BILLING_VIEW_NO_ACCESS"], capture_output=True, text=True
        )
        assert sick.returncode == 0, sick.stderr
        assert f"{SPOKE}: budget SpokeAccountBudget is now UNHEALTHY (BILLING_VIEW_NO_ACCESS)" in sick.stdout
        odd = subprocess.run([*health, "UNHEALTHY", "TIRED"], capture_output=True, text=True)
        assert (odd.returncode, "StatusReason 'TIRED' must be one of" in odd.stderr) == (2, True)
        well = subprocess.run([*health, "HEALTHY"], capture_output=True, text=True)
        assert (well.returncode, "is now HEALTHY" in well.stdout) == (0, True), well.stderr
        # AND budgetctl report shows the figures
        report = budgetctl("--endpoint-url", local.endpoint, "report", "--output", "json")
        row = next(r for r in report.json() if r["AccountId"] == SPOKE)
        assert (row["ActualSpend"], row["ForecastedSpend"], row["Level"]) == ("1,100.00", "1,400.00", "OVER")
        # AND reconcile --apply (the reconciler function, invoked through the endpoint) logs to the file
        applied = budgetctl("--endpoint-url", local.endpoint, "reconcile", "--apply")
        assert applied.code == 0, applied.stderr
    assert local.process.returncode == 0, local.output
    assert spend_cli(local.port, SPOKE, "1", "1").returncode == 1  # nothing answers any more
    log = (tmp_path / ".local-org" / "function.log").read_text(encoding="utf-8")
    assert '"message":"repair requested"' in log  # the reconciler function's own JSON log line
    for line in local.output.splitlines():
        assert not line.lstrip().startswith('{"'), local.output  # no JSON log or metric line


def test_given_make_local_with_incidents_off_when_a_client_posts_an_incident_then_its_printed_servicenow_url_answers():
    import base64
    import json
    import urllib.request

    # GIVEN make local INCIDENTS=off: the stand-in is served, the organisation deployed without incidents
    with make_local(incidents="off") as local:
        url = f"{local.endpoint}/_local/servicenow/api/now/table/incident"
        request = urllib.request.Request(  # noqa: S310 - the local stand-in's http URL
            url,
            data=json.dumps({"short_description": "budget exceeded"}).encode(),
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Authorization": "Basic " + base64.b64encode(b"budget-sync:local-password").decode(),
            },
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            assert response.status == 201
            assert json.load(response)["result"]["number"].startswith("INC")
        # the AWS endpoint on the same port still answers
        assert client(local.endpoint, "dynamodb").list_tables()["TableNames"]
        # no incident function was deployed, and an alert goes to the spoke's email subscribers only
        with pytest.raises(ClientError) as missing:
            client(local.endpoint, "lambda").get_function(FunctionName="BudgetSyncIncidents")
        assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
        alerted = spend_cli(local.port, SPOKE, "850", "900")
        assert alerted.returncode == 0, alerted.stderr
        assert "alert ACTUAL > 80%: to email subscribers only" in alerted.stdout
    assert f"local ServiceNow instance (docs/itsm.md): {local.endpoint}/_local/servicenow" in local.output
    assert "incidents off (INCIDENTS=off)" in local.output
    assert "⚑" not in local.output


def test_given_make_local_when_a_budget_is_made_unhealthy_then_the_scheduled_reconciler_fails_it_within_a_minute():
    from budget_sync_local.health import send

    with make_local(reconcile_every="2") as local:
        dynamodb = client(local.endpoint, "dynamodb")
        dynamodb.put_item(
            TableName="BlogBudgetsDynamoDB", Item={"AccountId": {"S": SPOKE}, "BudgetValue": {"N": "1000"}}
        )
        status: dict[str, Any] = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and status.get("Status", {}).get("S") != "APPLIED":
            status = dynamodb.get_item(TableName="BlogBudgetsStatus", Key={"AccountId": {"S": SPOKE}}).get(
                "Item", {}
            )
            time.sleep(0.2)
        assert status.get("Status", {}).get("S") == "APPLIED", status

        # WHEN AWS reports the budget UNHEALTHY (by hand: AWS computes it), and nobody asks for a run
        send(local.endpoint, SPOKE, "UNHEALTHY", "FILTER_INVALID")
        started = time.monotonic()
        while time.monotonic() < started + 60 and status.get("Status", {}).get("S") != "FAILED":
            status = dynamodb.get_item(TableName="BlogBudgetsStatus", Key={"AccountId": {"S": SPOKE}}).get(
                "Item", {}
            )
            time.sleep(0.2)

        # THEN the reconciler's schedule found it: FAILED with AWS's reason, within a minute
        assert status.get("Status", {}).get("S") == "FAILED", status
        assert status["Reason"]["S"].startswith("AWS Budgets reports the budget UNHEALTHY: FILTER_INVALID")
        assert time.monotonic() - started < 60
    assert local.process.returncode == 0, local.output
    assert (
        "the reconciler's and the incident function's schedules (hourly on AWS) run every 2 s here"
        in local.output
    )
    assert "ReconcilerFunction: its schedule ran" in local.output


def incidents_in_servicenow(endpoint: str) -> list[dict[str, str]]:
    """docs/itsm.md's curl on make local: the open incidents in the local ServiceNow instance."""
    import base64
    import json
    import urllib.request

    url = (
        f"{endpoint}/_local/servicenow/api/now/table/incident"
        "?sysparm_query=active=true&sysparm_fields=number,state,urgency,short_description"
    )
    request = urllib.request.Request(  # noqa: S310 - the local stand-in's http URL
        url, headers={"Authorization": "Basic " + base64.b64encode(b"budget-sync:local-password").decode()}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        found: list[dict[str, str]] = json.load(response)["result"]
    return found


def test_given_make_local_when_docs_itsm_walkthrough_is_followed_then_one_incident_opens_updates_and_resolves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import json

    as_local_administrator(monkeypatch)
    # GIVEN make local as it starts by default (incidents on), its schedules only when asked, so
    # that the incident can only come from the alert's delivery
    with make_local(cwd=tmp_path) as local:
        admin = client(local.endpoint, "lambda")  # the administrator's (step 5), before the operators' role
        # AND the account managed at 1,000 USD (docs/itsm.md, step 1: budgetctl as the operators' role)
        act_as_operator(local.endpoint, monkeypatch)
        managed = budgetctl("--endpoint-url", local.endpoint, "set", SPOKE, "1000")
        assert managed.code == 0, managed.stderr
        # WHEN AWS Budgets' data says 850 of the budget's 1,000 USD (step 2)
        given = spend_cli(local.port, SPOKE, "850", "900")
        assert given.returncode == 0, given.stderr
        assert "alert ACTUAL > 80%: published to arn:aws:sns:us-east-1:111111111111:" in given.stdout

        # THEN one incident opens in the local ServiceNow instance (step 3, its curl)
        opened = wait_for(lambda: incidents_in_servicenow(local.endpoint), 30)
        assert len(opened) == 1, opened
        [incident] = opened
        assert (incident["state"], incident["urgency"]) == ("1", "3")
        assert "ACTUAL 80% crossed" in incident["short_description"]
        assert incident["number"].startswith("INC")

        # AND budgetctl status, as the operators' role, shows its number (step 3)
        status = budgetctl("--endpoint-url", local.endpoint, "status", "--account", SPOKE, "--output", "json")
        assert status.code == 0, status.stderr
        assert [row["Incident"] for row in status.json()] == [incident["number"]]

        # WHEN the spend crosses 100 % (step 4), twice: the same figures again alert nothing
        over = spend_cli(local.port, SPOKE, "1100", "1200")
        again = spend_cli(local.port, SPOKE, "1100", "1200")
        assert "alert ACTUAL > 100%" in over.stdout
        assert "alert" not in again.stdout.split("this month", 1)[1], again.stdout
        # THEN the same incident, its urgency raised; never a second one
        raised = wait_for(
            lambda: [i for i in incidents_in_servicenow(local.endpoint) if i["urgency"] == "2"], 30
        )
        assert [i["number"] for i in raised] == [incident["number"]]
        assert len(incidents_in_servicenow(local.endpoint)) == 1

        # WHEN the spend falls back and the hourly schedule is run now (step 5, aws lambda invoke)
        assert spend_cli(local.port, SPOKE, "10", "10").returncode == 0
        answer = admin.invoke(
            FunctionName="BudgetSyncIncidents",
            Payload=json.dumps({"source": "aws.events", "detail-type": "Scheduled Event"}).encode(),
        )
        assert "FunctionError" not in answer
        assert json.loads(answer["Payload"].read())["actions"] == {"resolved": 1}
        # THEN it is resolved (state 6, still active until closed, as ServiceNow keeps it)
        [resolved] = incidents_in_servicenow(local.endpoint)
        assert (resolved["number"], resolved["state"]) == (incident["number"], "6")
    assert local.process.returncode == 0, local.output
    assert "incidents on: budget alerts (a spend over 80 %) open incidents there" in local.output
    opened_lines = [line for line in local.output.splitlines() if "⚑" in line]
    assert any(f"{incident['number']} opened by IncidentFunction (an alert" in line for line in opened_lines)
    assert any(f"{incident['number']} updated" in line for line in opened_lines), local.output


def test_given_make_local_when_a_budget_leaves_its_alarm_then_the_scheduled_incident_run_resolves_it():
    # GIVEN make local with its hourly schedules on a local time-scale of 2 s
    with make_local(reconcile_every="2") as local:
        # AND the account managed (the schedule looks at every account with an item)
        client(local.endpoint, "dynamodb").put_item(
            TableName="BlogBudgetsDynamoDB", Item={"AccountId": {"S": SPOKE}, "BudgetValue": {"N": "1000"}}
        )
        assert spend_cli(local.port, SPOKE, "850", "900").returncode == 0
        opened = wait_for(lambda: incidents_in_servicenow(local.endpoint), 30)
        assert [i["state"] for i in opened] == ["1"], opened
        # WHEN the spend falls back under every threshold, and nobody asks for a run
        assert spend_cli(local.port, SPOKE, "10", "10").returncode == 0
        # THEN the incident function's schedule resolves it within a minute
        resolved = wait_for(
            lambda: [i for i in incidents_in_servicenow(local.endpoint) if i["state"] == "6"], 60
        )
        assert [i["number"] for i in resolved] == [opened[0]["number"]]
    assert local.process.returncode == 0, local.output
    assert (
        "the reconciler's and the incident function's schedules (hourly on AWS) run every 2 s" in local.output
    )
    assert "◷ IncidentFunction: its schedule ran" in local.output
    assert f"{opened[0]['number']} resolved by IncidentFunction (its hourly schedule" in local.output
