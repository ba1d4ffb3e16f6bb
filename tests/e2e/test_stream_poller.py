"""The local stream poller honours the batch response the way Lambda does: checkpoint at
the lowest failed sequence number, retry, bisect on a function error, and after the
template's retry limit send the batch's description to the on-failure queue."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models import table as moto_table

from budget_sync_local import management_stack
from budget_sync_local.management_stack import ManagementStack
from budget_sync_local.pipeline import Pipeline, StreamPoller, on_failure_sender
from budget_sync_local.standins import installed

pytestmark = pytest.mark.aws


@pytest.fixture
def stack() -> Iterator[tuple[boto3.Session, ManagementStack]]:
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        # the result bus must admit someone (the template's rule): one named spoke account
        parameters = {"SpokeAccountIds": "111111111111"}
        yield session, management_stack.deploy(session, "123456789012", "us-east-1", parameters)


class ScriptedFunction:
    """A function whose answers a test decides; it remembers the sequence numbers it saw."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.calls: list[list[str]] = []

    def __call__(self, event: dict[str, Any]) -> Any:
        numbers = [r["dynamodb"]["SequenceNumber"] for r in event["Records"]]
        self.calls.append(numbers)
        return self.answer(numbers, len(self.calls))


def write(session: boto3.Session, stack: ManagementStack, count: int) -> None:
    table = session.resource("dynamodb").Table(stack.budgets_table)
    for i in range(count):
        table.put_item(Item={"AccountId": f"{100000000000 + i:012d}", "BudgetValue": Decimal(100 + i)})


def poller(session: boto3.Session, stack: ManagementStack, function: ScriptedFunction) -> StreamPoller:
    return StreamPoller(
        session.client("dynamodbstreams"),
        stack.stream_arn,
        stack.stream,
        function,
        on_failure_sender(session.client("sqs"), stack.on_failure_queue_url),
        retry_delay_s=0,
    )


def drain(p: StreamPoller, rounds: int = 50) -> None:
    for _ in range(rounds):
        p.poll()
        if p.idle():
            return
    raise AssertionError("the poller did not finish")


def test_the_settings_come_from_the_template(stack):
    _, deployed = stack
    assert deployed.stream.batch_size == 100
    assert deployed.stream.maximum_retry_attempts == 5
    assert deployed.stream.report_item_failures
    assert deployed.stream.bisect_on_error
    assert deployed.stream.starting_position == "TRIM_HORIZON"
    assert "UpdateFunctionBudgetsStream" in deployed.skipped  # the pipeline is the only consumer


def test_given_a_reported_failure_then_the_batch_is_retried_from_the_lowest_failed_record(stack):
    session, deployed = stack
    write(session, deployed, 5)
    function = ScriptedFunction(
        lambda numbers, call: {"batchItemFailures": [{"itemIdentifier": numbers[2]}] if call == 1 else []}
    )

    drain(poller(session, deployed, function))

    first, second = function.calls
    assert len(first) == 5
    assert second == first[2:]  # the first two records were checkpointed, never re-sent


def test_given_retries_exhausted_then_the_batch_goes_to_the_on_failure_queue_and_the_shard_moves_on(stack):
    session, deployed = stack
    write(session, deployed, 3)
    stuck: list[str] = []

    def answer(numbers: list[str], call: int) -> Any:
        stuck.append(stuck[0] if stuck else numbers[1])  # the second record never succeeds
        return {"batchItemFailures": [{"itemIdentifier": stuck[0]}]}

    function = ScriptedFunction(answer)
    drain(poller(session, deployed, function))

    assert len(function.calls) == 1 + deployed.stream.maximum_retry_attempts
    messages = session.client("sqs").receive_message(QueueUrl=deployed.on_failure_queue_url)["Messages"]
    info = json.loads(messages[0]["Body"])
    assert info["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert info["DDBStreamBatchInfo"]["batchSize"] == 2
    assert info["DDBStreamBatchInfo"]["startSequenceNumber"] == function.calls[0][1]


def test_given_a_function_error_then_the_batch_is_bisected(stack):
    session, deployed = stack
    write(session, deployed, 4)

    def answer(numbers: list[str], call: int) -> Any:
        if call == 1:
            raise RuntimeError("boom")
        return {"batchItemFailures": []}

    function = ScriptedFunction(answer)
    drain(poller(session, deployed, function))

    assert [len(c) for c in function.calls] == [4, 2, 2]


def test_given_no_failures_then_every_record_is_delivered_once_in_order(stack):
    session, deployed = stack
    write(session, deployed, 7)
    function = ScriptedFunction(lambda numbers, call: {"batchItemFailures": []})

    drain(poller(session, deployed, function))

    delivered = [n for call in function.calls for n in call]
    assert delivered == sorted(delivered, key=int)
    assert len(delivered) == 7


def test_given_a_batch_that_never_succeeds_then_run_until_idle_gives_up_naming_the_stream_and_its_retries(
    stack,
):
    # GIVEN a mapping that retries for ever (MaximumRetryAttempts -1) and a function that
    # fails every batch: the pipeline can never be idle
    session, deployed = stack
    write(session, deployed, 3)
    function = ScriptedFunction(lambda numbers, call: {"batchItemFailures": [{"itemIdentifier": numbers[0]}]})
    endless = dataclasses.replace(deployed.stream, maximum_retry_attempts=-1)
    stuck = StreamPoller(
        session.client("dynamodbstreams"),
        deployed.stream_arn,
        endless,
        function,
        on_failure_sender(session.client("sqs"), deployed.on_failure_queue_url),
        retry_delay_s=0,
    )
    pipeline = Pipeline(stuck, {}, lambda role: None)

    # WHEN it is run until idle, THEN it gives up and says which stream kept it busy, how many
    # batches it was given and that its records wait for a retry (not only that it timed out)
    with pytest.raises(TimeoutError) as raised:
        pipeline.run_until_idle(timeout_s=0.2, pause_s=0)

    message = str(raised.value)
    calls = len(function.calls)
    assert calls > 1
    assert f"{deployed.budgets_table}: {calls} batches, 3 records waiting (retry attempt {calls})" in message
    assert "0 events on the bus, 0 deliveries held back" in message


def test_given_two_threads_writing_one_table_at_once_then_each_record_is_read_once(stack, monkeypatch):
    # GIVEN two writers of the budgets table (the update function settles accounts in threads)
    # that both reach moto's numbering of their stream record before either appends it: the
    # record's constructor, called in between, waits for the other writer (if the stand-in lets
    # only one add run, the first waits out the barrier's timeout and the second finds it broken)
    session, deployed = stack
    meeting = threading.Barrier(2, timeout=2)
    constructor = moto_table.StreamRecord.__init__

    def met(self: Any, *args: Any, **kwargs: Any) -> None:
        with contextlib.suppress(threading.BrokenBarrierError):
            meeting.wait()
        constructor(self, *args, **kwargs)

    monkeypatch.setattr(moto_table.StreamRecord, "__init__", met)
    clients = [session.client("dynamodb") for _ in range(2)]

    def put(index: int) -> None:
        clients[index].put_item(
            TableName=deployed.budgets_table,
            Item={"AccountId": {"S": f"{100000000000 + index:012d}"}, "BudgetValue": {"N": "100"}},
        )

    with installed():
        writers = [threading.Thread(target=put, args=(i,)) for i in range(2)]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join()
        monkeypatch.undo()

        # WHEN the stream is read to its end
        function = ScriptedFunction(lambda numbers, call: {"batchItemFailures": []})
        drain(poller(session, deployed, function))

    # THEN two records, each with its own sequence number, each delivered once
    delivered = [n for call in function.calls for n in call]
    assert len(delivered) == 2
    assert len(set(delivered)) == 2
