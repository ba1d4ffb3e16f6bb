"""The template's handler on real stream records from moto, reaching spoke accounts by
cross-account assume_role; every value is checked inside the spoke account."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from typing import Any

import pytest
from moto.ssm.models import SimpleSystemManagerBackend as SSMBackend
from moto.sts.models import sts_backends

from budget_sync import spoke
from budget_sync.handlers import update as update_handler
from budget_sync_local.lambda_runtime import invoke
from budget_sync_local.streams import lambda_event
from tests.support.moto_org import MANAGEMENT, REGION, SPOKES, Org, add_spoke

# every test: moto or the local organisation (make unit does not import this module)
pytestmark = pytest.mark.aws

A, B, C = SPOKES


@pytest.fixture
def org(enforced_org: Org) -> Org:
    """Under IAM: the handler as the template's FunctionRole, the spokes' SpokeRole as the
    template defines it (tests/support/moto_org.py, enforced_org)."""
    return enforced_org


def failures(response: dict[str, Any]) -> list[str]:
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


def test_given_new_items_when_the_stream_is_handled_then_each_spoke_parameter_holds_its_value(org: Org):
    org.put(A, Decimal("1250.50"))
    org.put(B, 2000)

    response = org.invoke()

    assert response == {"batchItemFailures": []}
    assert org.parameter(A) == "1250.5"
    assert org.parameter(B) == "2000"
    assert org.parameter(C) == "1000"  # untouched
    status = org.status(A)
    assert status is not None
    assert (status["Status"], status["AppliedValue"], status["DesiredValue"]) == (
        "SENT",  # the parameter holds it; APPLIED only when the spoke confirms (tests/e2e)
        Decimal("1250.5"),
        Decimal("1250.5"),
    )
    assert status["Source"] == "stream"


def test_given_a_change_then_the_newest_value_wins_across_batches(org: Org):
    org.put(A, 100)
    org.invoke()
    org.put(A, 200)
    org.put(A, 300)

    org.invoke()

    assert org.parameter(A) == "300"
    assert org.status(A)["AppliedValue"] == Decimal("300")  # type: ignore[index]


def test_given_an_unchanged_value_then_no_spoke_call_is_made(org: Org):
    org.put(A, 100, Note="first")
    org.invoke()
    version_before = org.spokes[A].client("ssm").get_parameter(Name="/BlogBudgets/CostThreshold")["Parameter"]
    org.put(A, 100, Note="someone edited a note")

    update_handler.build_service.cache_clear()  # a cold function: an apply would need AssumeRole
    assumed_before = len(sts_backends[A]["aws"].assumed_roles)

    response = org.invoke()

    after = org.spokes[A].client("ssm").get_parameter(Name="/BlogBudgets/CostThreshold")["Parameter"]
    assert response == {"batchItemFailures": []}
    assert after["Version"] == version_before["Version"]
    assert len(sts_backends[A]["aws"].assumed_roles) == assumed_before


def test_given_an_item_is_deleted_then_the_account_is_unmanaged_and_keeps_its_budget(org: Org):
    org.put(A, 700)
    org.invoke()
    org.delete(A)

    response = org.invoke()

    assert response == {"batchItemFailures": []}
    assert org.parameter(A) == "700"
    assert org.status(A)["Status"] == "UNMANAGED"  # type: ignore[index]


BAD_ITEMS = [
    pytest.param(
        {"BudgetValue": {"S": "abc"}},
        "must be a DynamoDB number (type N), got a string ('abc')",
        id="non-numeric",
    ),
    pytest.param({"BudgetValue": {"N": "-5"}}, "must be greater than 0", id="negative"),
    pytest.param({"BudgetValue": {"N": "0"}}, "must be greater than 0", id="zero"),
    pytest.param({"BudgetValue": {"N": "10.505"}}, "has more than two decimals", id="three-decimals"),
    pytest.param({"BudgetValue": {"N": "1000000000000"}}, "exceeds the maximum", id="absurdly-large"),
    pytest.param({}, "BudgetValue None is missing", id="missing-value"),
    pytest.param({"BudgetValue": {"S": "1000"}}, "got a string ('1000')", id="value-as-string"),
]


@pytest.mark.parametrize(("attributes", "reason"), BAD_ITEMS)
def test_given_a_bad_item_then_failed_with_the_reason_and_the_spoke_keeps_its_value(
    org: Org, attributes, reason
):
    org.put(A, 500)
    org.invoke()
    org.put_raw({"AccountId": {"S": A}, **attributes})

    response = org.invoke()

    assert response == {"batchItemFailures": []}  # permanent: not retried, the shard moves on
    assert org.parameter(A) == "500"
    status = org.status(A)
    assert status is not None
    assert status["Status"] == "FAILED"
    assert reason in status["Reason"]
    assert status["AppliedValue"] == Decimal("500")  # what the spoke still has
    assert "DesiredValue" not in status


def test_given_a_malformed_account_id_then_the_status_is_recorded_under_the_raw_key(org: Org):
    org.put_raw({"AccountId": {"S": "12345"}, "BudgetValue": {"N": "100"}})

    assert org.invoke() == {"batchItemFailures": []}

    status = org.status("12345")
    assert status is not None
    assert status["Status"] == "FAILED"
    assert "AccountId '12345' must be exactly 12 digits" in status["Reason"]


def test_given_an_event_of_another_schema_then_nothing_is_retried_or_written(org: Org):
    # What `sam local generate-event dynamodb update` produces: keyed on Id (N), no AccountId.
    record = {
        "eventID": "1",
        "eventName": "MODIFY",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "Keys": {"Id": {"N": "101"}},
            "NewImage": {"Message": {"S": "This item has changed"}, "Id": {"N": "101"}},
            "OldImage": {"Message": {"S": "New item!"}, "Id": {"N": "101"}},
            "SequenceNumber": "222",
            "SizeBytes": 59,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
        "eventSourceARN": org.stream_arn,
    }

    assert org.invoke([record]) == {"batchItemFailures": []}
    assert org.management.client("dynamodb").scan(TableName=org.status_table)["Count"] == 0


def test_given_a_spoke_without_the_role_then_failed_says_the_spoke_stack_is_missing(org: Org):
    lonely = "444444444444"
    add_spoke(org, lonely, role=False)
    org.put(lonely, 100)

    assert org.invoke() == {"batchItemFailures": []}

    status = org.status(lonely)
    assert status is not None
    assert status["Status"] == "FAILED"
    assert f"cannot assume arn:aws:iam::{lonely}:role/BlogBudgetsSpokeRole" in status["Reason"]
    assert "is the spoke stack deployed" in status["Reason"]


def test_given_a_spoke_without_the_role_then_each_batch_tries_assume_role_once_and_fails_with_its_newest_value(
    org: Org, monkeypatch: pytest.MonkeyPatch
):
    # GIVEN an account whose role cannot be assumed, and the gateway's AssumeRole calls counted
    lonely = "444444444444"
    add_spoke(org, lonely, role=False)
    attempts: list[str] = []
    original = spoke.SsmSpokeGateway._assume

    def counted(self: spoke.SsmSpokeGateway, account_id: str) -> Any:
        attempts.append(account_id)
        return original(self, account_id)

    monkeypatch.setattr(spoke.SsmSpokeGateway, "_assume", counted)

    # WHEN one batch carries three values for it, then a second batch one more
    for value in (100, 200, 300):
        org.put(lonely, value)
    assert org.invoke() == {"batchItemFailures": []}
    first = org.status(lonely)
    org.put(lonely, 400)
    assert org.invoke() == {"batchItemFailures": []}

    # THEN each batch tried the role once (its records are one plan), and each status is FAILED
    # with the batch's newest value and the reason that names the role
    assert attempts == [lonely, lonely]
    second = org.status(lonely)
    for status, value in ((first, 300), (second, 400)):
        assert status is not None
        assert (status["Status"], status["DesiredValue"]) == ("FAILED", Decimal(value))
        assert f"cannot assume arn:aws:iam::{lonely}:role/BlogBudgetsSpokeRole" in status["Reason"]


def test_given_a_parameter_that_rejects_the_value_then_failed_with_the_parameter_reason(org: Org):
    strict = "555555555555"
    add_spoke(org, strict, pattern="^[0-9]{1,3}$", initial="900")
    org.put(strict, 5000)

    assert org.invoke() == {"batchItemFailures": []}

    status = org.status(strict)
    assert status["Status"] == "FAILED"  # type: ignore[index]
    assert "rejected the value '5000'" in status["Reason"]  # type: ignore[index]
    assert org.parameter(strict) == "900"


def test_given_put_parameter_is_throttled_then_the_accounts_earliest_record_is_retried(
    org: Org, monkeypatch: pytest.MonkeyPatch
):
    from moto.core.exceptions import ServiceException

    original = SSMBackend.put_parameter
    throttled = {"on": True}

    def put_parameter(self: SSMBackend, *args: Any, **kwargs: Any) -> Any:
        if throttled["on"] and self.account_id == B:
            raise ServiceException("ThrottlingException", "Rate exceeded")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SSMBackend, "put_parameter", put_parameter)
    monkeypatch.setattr(spoke.CLIENT_CONFIG, "retries", {"mode": "standard", "max_attempts": 1})
    org.put(A, 10)
    org.put(B, 20)
    org.put(B, 21)
    org.put(C, 30)
    records = org.new_records()

    response = org.invoke(records)

    b_first = next(r for r in records if r["dynamodb"]["Keys"]["AccountId"]["S"] == B)
    assert failures(response) == [b_first["dynamodb"]["SequenceNumber"]]
    assert (org.parameter(A), org.parameter(B), org.parameter(C)) == ("10", "1000", "30")
    assert org.status(B) is None

    # WHEN Lambda retries from the checkpoint (the failed record and everything after it)
    throttled["on"] = False
    retry = records[records.index(b_first) :]
    assert org.invoke(retry) == {"batchItemFailures": []}
    assert org.parameter(B) == "21"


def test_given_the_status_write_fails_then_the_record_is_retried(org: Org):
    org.management.client("dynamodb").delete_table(TableName=org.status_table)
    org.put(A, 42)
    records = org.new_records()

    response = org.invoke(records)

    assert failures(response) == [records[0]["dynamodb"]["SequenceNumber"]]


def test_the_handler_logs_one_structured_line_per_account_outcome_and_emits_metrics(
    org: Org, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
):
    org.put(A, 10)
    org.put_raw({"AccountId": {"S": B}, "BudgetValue": {"N": "-1"}})

    org.invoke()

    applied = [r for r in caplog.records if r.getMessage() == "budget sent"]
    rejected = [r for r in caplog.records if r.getMessage() == "item rejected"]
    assert [(r.account_id, r.amount, r.levelname) for r in applied] == [(A, "10", "INFO")]  # type: ignore[attr-defined]
    assert [(r.account_id, r.field, r.levelname) for r in rejected] == [(B, "BudgetValue", "ERROR")]  # type: ignore[attr-defined]
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert emitted, "no CloudWatch EMF metrics were printed"
    assert emitted[-1]["BudgetApplied"] == [1.0]
    assert emitted[-1]["InvalidItem"] == [1.0]
    assert emitted[-1]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "BudgetSync"


def test_given_an_invocation_whose_time_is_short_then_no_account_is_started_and_all_are_retried(org: Org):
    # GIVEN two new items, and an invocation with less time left than the function keeps back
    org.put(A, 4321)
    org.put(B, 1234)
    records = org.new_records()
    short = dataclasses.replace(org.spec(), timeout_s=10)  # the context counts down from 10 s

    # WHEN the template's handler runs with that context
    response = invoke(short, lambda_event(records), REGION, MANAGEMENT)

    # THEN nothing was sent and every record goes back to Lambda for the next invocation
    assert sorted(failures(response)) == sorted(r["dynamodb"]["SequenceNumber"] for r in records)
    assert org.parameter(A) == "1000"
    assert org.status(A) is None
