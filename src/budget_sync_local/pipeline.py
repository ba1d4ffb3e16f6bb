"""The local pipeline: what Lambda's stream poller and EventBridge do in AWS.

``StreamPoller`` reads the budgets table's stream through the DynamoDB Streams API, from
TRIM_HORIZON, shard by shard and in order, and calls the function the template names with
Lambda's event shape and the template's batch size. It honours the batch response as
Lambda does with ``ReportBatchItemFailures``: it checkpoints at the lowest failed sequence
number and retries from there; a function error bisects the batch (if the template asks
for it); once ``MaximumRetryAttempts`` is exhausted the batch's description goes to the
on-failure queue and the shard moves on. (``MaximumRecordAgeInSeconds`` is not emulated:
local runs are minutes long.)

``Pipeline`` adds the spoke side: each ``Parameter Store Change`` event that a spoke
parameter write produced is matched against the rule's pattern from template-spoke.yaml
and, on a match, the Automation document runs with the automation role's credentials.
When the run ends, AWS's ``EC2 Automation Execution Status-change Notification`` is put on
the spoke's bus. Every other event on a spoke's bus (the script's ``Budget Update Result``,
that notification) is matched against the spoke's forwarding rules; a match is delivered to
the management account's result bus, matched against its rule and handed to the result
function (``ResultBus``), with the sender's ``account`` as EventBridge keeps it.

``Delivery`` is how EventBridge delivers, by default as AWS promises and no better: at least
once and in no order. Seeded (``BUDGET_SYNC_LOCAL_SEED``), each round's deliveries are
shuffled, some are delivered twice (the copy one to three rounds later) and some are held
back one to three rounds; nothing is ever dropped. While the stream function is in its batch,
an event published then (the ``Parameter Store Change`` of its own parameter write, the
reports of the run that started) is delivered at once half of the time, so a spoke's run
and its report can come before the function records SENT. The same seed gives the same
deliveries (the functions' own timing aside). Seed ``off`` delivers each event once, in
order, after the batch (for debugging only: AWS promises no such thing).
"""

from __future__ import annotations

import contextvars
import copy
import json
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from budget_sync_local.iam import AccessDenied
from budget_sync_local.management_stack import StreamSettings
from budget_sync_local.streams import lambda_event, lambda_record

#: The spoke document's report (budget_sync_spoke): its alerts step names itself ("Step":
#: "ReconcileAlerts"), its budget step sends no "Step".
REPORT_DETAIL_TYPE = "Budget Update Result"
_BUDGET_STEP = "UpdateBudgetLimit"
_STARTED_BY_KEPT = 1000

if TYPE_CHECKING:
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient
    from mypy_boto3_sqs import SQSClient


@dataclass(frozen=True)
class Step:
    """One thing the pipeline did, for whoever watches (the demo prints them)."""

    # batch | retry | on-failure | parameter-change | ignored-event | automation | error | delivery
    # (and, from the local organisation, refused; from `make invoke`, batch-response)
    kind: str
    account: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


Observer = Callable[[Step], None]


def _ignore(_: Step) -> None:
    return None


@dataclass
class _Shard:
    shard_id: str
    iterator: str | None
    pending: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0
    batch_limit: int = 0
    not_before: float = 0.0


class StreamPoller:
    """Lambda's event source mapping for one DynamoDB stream, polled on demand."""

    def __init__(
        self,
        streams: DynamoDBStreamsClient,
        stream_arn: str,
        settings: StreamSettings,
        invoke: Callable[[dict[str, Any]], Any],
        on_failure: Callable[[dict[str, Any]], None],
        observer: Observer = _ignore,
        retry_delay_s: float = 0.05,
    ) -> None:
        self._streams = streams
        self._stream_arn = stream_arn
        self._settings = settings
        self._invoke = invoke
        self._on_failure = on_failure
        self._observe = observer
        self._retry_delay_s = retry_delay_s
        self._shards: dict[str, _Shard] = {}
        #: Batches given to the function so far, retries included (``run_until_idle`` names them
        #: when it gives up, so that a run that never settles says which stream kept it busy).
        self.batches = 0

    @property
    def table(self) -> str:
        """The table whose stream this is (``arn:...:table/<name>/stream/<label>``)."""
        parts = self._stream_arn.split("/")
        return parts[1] if len(parts) >= 4 else self._stream_arn

    def backlog(self) -> str:
        """What is left on this stream, as ``run_until_idle`` reports it when it gives up: its
        batches so far and, if any, the records waiting and the retry attempt they are at."""
        waiting = sum(len(shard.pending) for shard in self._shards.values())
        described = f"{self.table}: {self.batches} batches"
        if waiting:
            attempts = max(shard.attempts for shard in self._shards.values())
            described += f", {waiting} records waiting (retry attempt {attempts})"
        return described

    def attach(self) -> StreamPoller:
        """Take each shard's iterator now, as Lambda does when the mapping is created (with
        LATEST, records written before this are not the mapping's)."""
        self._refresh_shards()
        return self

    def _refresh_shards(self) -> None:
        description = self._streams.describe_stream(StreamArn=self._stream_arn)["StreamDescription"]
        for shard in description.get("Shards", []):
            shard_id = shard["ShardId"]
            if shard_id not in self._shards:
                iterator = self._streams.get_shard_iterator(
                    StreamArn=self._stream_arn,
                    ShardId=shard_id,
                    ShardIteratorType=self._settings.starting_position,  # type: ignore[arg-type]
                )["ShardIterator"]
                self._shards[shard_id] = _Shard(shard_id, iterator, batch_limit=self._settings.batch_size)

    def _fetch(self, shard: _Shard) -> None:
        while shard.iterator and len(shard.pending) < shard.batch_limit:
            page = self._streams.get_records(ShardIterator=shard.iterator, Limit=1000)
            records = page.get("Records", [])
            shard.pending.extend(lambda_record(dict(r), self._stream_arn) for r in records)
            shard.iterator = page.get("NextShardIterator")
            if not records:
                break

    def poll(self) -> int:
        """Deliver at most one batch per shard; the number of records the function was given."""
        self._refresh_shards()
        delivered = 0
        for shard in self._shards.values():
            if time.monotonic() < shard.not_before:
                continue
            self._fetch(shard)
            if shard.pending:
                delivered += self._deliver(shard)
        return delivered

    def idle(self) -> bool:
        return all(not shard.pending for shard in self._shards.values())

    def _deliver(self, shard: _Shard) -> int:
        batch = shard.pending[: shard.batch_limit]
        self.batches += 1
        try:
            response = self._invoke(lambda_event(batch))
            failed = self._failed_index(batch, response)
            error = None
        except Exception as exc:
            failed, error = 0, f"{type(exc).__name__}: {exc}"
        self._observe(
            Step(
                "batch",
                detail={
                    "records": len(batch),
                    "failed_from": failed,
                    "error": error,
                    "attempt": shard.attempts + 1,
                },
            )
        )
        if failed is None:
            del shard.pending[: len(batch)]
            shard.attempts, shard.batch_limit = 0, self._settings.batch_size
            return len(batch)

        del shard.pending[:failed]  # checkpoint at the lowest failed sequence number
        shard.attempts += 1
        if error and self._settings.bisect_on_error and len(batch) > 1:
            shard.batch_limit = max(1, len(batch) // 2)
        limit = self._settings.maximum_retry_attempts
        if limit != -1 and shard.attempts > limit:
            exhausted = shard.pending[: len(batch) - failed]
            self._on_failure(self._batch_info(shard, exhausted, error))
            self._observe(Step("on-failure", detail={"records": len(exhausted), "shard": shard.shard_id}))
            del shard.pending[: len(exhausted)]
            shard.attempts, shard.batch_limit = 0, self._settings.batch_size
        else:
            shard.not_before = time.monotonic() + self._retry_delay_s * 2 ** min(shard.attempts, 5)
            self._observe(Step("retry", detail={"attempt": shard.attempts, "records": len(batch) - failed}))
        return len(batch)

    @staticmethod
    def _failed_index(batch: list[dict[str, Any]], response: Any) -> int | None:
        """Index of the first record to retry, or None when the whole batch succeeded."""
        if not isinstance(response, Mapping) or "batchItemFailures" not in response:
            return None  # Lambda treats any other answer as success
        failed = {str(item.get("itemIdentifier")) for item in response["batchItemFailures"]}
        if not failed:
            return None
        numbers = [r["dynamodb"]["SequenceNumber"] for r in batch]
        if failed - set(numbers):
            return 0  # an identifier that is not in the batch: Lambda retries the whole batch
        return min(numbers.index(n) for n in failed)

    def _batch_info(self, shard: _Shard, records: list[dict[str, Any]], error: str | None) -> dict[str, Any]:
        """The message Lambda sends to an OnFailure destination for a stream batch."""

        def arrival(record: dict[str, Any]) -> str:
            created = record["dynamodb"].get("ApproximateCreationDateTime", 0)
            return datetime.fromtimestamp(float(created), UTC).isoformat()

        return {
            "requestContext": {
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": shard.attempts,
            },
            "responseContext": {"functionError": error or "ReportedBatchItemFailures"},
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(),
            "DDBStreamBatchInfo": {
                "shardId": shard.shard_id,
                "startSequenceNumber": records[0]["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": records[-1]["dynamodb"]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": arrival(records[0]),
                "approximateArrivalOfLastRecord": arrival(records[-1]),
                "batchSize": len(records),
                "streamArn": self._stream_arn,
            },
        }


#: Set in a delivery made during the stream function's batch (and in the Automation steps
#: it starts, which copy the context): the events they publish are delivered under it.
_DELIVERING: contextvars.ContextVar[bool] = contextvars.ContextVar("delivering_during_batch", default=False)


@dataclass
class _Held:
    event: dict[str, Any]
    rounds: int
    duplicate: bool


class Delivery:
    """EventBridge's delivery to a rule's targets: at least once, in no promised order.

    ``seed`` None: each event once, in the order it was put (not what AWS promises).
    """

    #: Of the events that arrive in a round: how many are held back, how many delivered twice.
    DELAYED = 0.2
    DUPLICATED = 0.2
    #: While the stream function is in its batch: how many events are delivered at once.
    AT_ONCE = 0.5
    MAX_ROUNDS = 3

    def __init__(self, seed: int | None) -> None:
        self.seed = seed
        self._rng = random.Random(seed) if seed is not None else None  # noqa: S311 - a test schedule, not a secret
        self._held: list[_Held] = []
        self._lock = threading.Lock()

    def at_once(self) -> bool:
        """Is an event published during the stream function's batch delivered right away?"""
        with self._lock:
            return self._rng is not None and self._rng.random() < self.AT_ONCE

    def round(self, arrived: list[dict[str, Any]], tick: bool = True) -> list[tuple[dict[str, Any], bool]]:
        """This round's deliveries, each with whether it is a duplicate: what ``arrived`` and is
        not held back, and (``tick``) what was held back from earlier rounds and is due now."""
        with self._lock:
            if self._rng is None:
                return [(event, False) for event in arrived]
            ready: list[tuple[dict[str, Any], bool]] = []
            if tick:
                for held in self._held:
                    held.rounds -= 1
                ready = [(h.event, h.duplicate) for h in self._held if h.rounds <= 0]
                self._held = [h for h in self._held if h.rounds > 0]
            for event in arrived:
                draw = self._rng.random()
                if draw < self.DELAYED:
                    self._held.append(_Held(event, self._rng.randint(1, self.MAX_ROUNDS), False))
                    continue
                ready.append((event, False))
                if draw < self.DELAYED + self.DUPLICATED:
                    copied = copy.deepcopy(event)  # the same event (same id) again, as AWS may
                    self._held.append(_Held(copied, self._rng.randint(1, self.MAX_ROUNDS), True))
            self._rng.shuffle(ready)
            return ready

    def idle(self) -> bool:
        with self._lock:
            return not self._held

    def held(self) -> int:
        """How many deliveries are held back (delayed events and the copies still to come)."""
        with self._lock:
            return len(self._held)


def drained(events: queue.Queue[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every event waiting on a local bus, oldest first, until none is left."""
    while True:
        try:
            yield events.get_nowait()
        except queue.Empty:
            return


class SpokeHandler(Protocol):
    """What the pipeline needs of a deployed spoke stack (budget_sync_local.spoke_stack)."""

    def handle(self, event: dict[str, Any], session_for_role: Callable[[str], Any]) -> Any: ...


@dataclass(frozen=True)
class ResultBus:
    """The management account's result bus: its ARN, its rule's pattern and the rule's target."""

    arn: str
    pattern: Mapping[str, Any]
    invoke: Callable[[dict[str, Any]], Any]
    #: The unconfirmed-check function's schedule (values not confirmed in time become FAILED).
    check: Callable[[], Any] | None = None


class WorkSource(Protocol):
    def step(self) -> int: ...

    def idle(self) -> bool: ...


class Pipeline:
    """Stream -> function -> spoke parameter -> rule -> Automation -> result bus -> result function."""

    def __init__(
        self,
        poller: StreamPoller,
        spokes: Mapping[str, SpokeHandler],
        session_for_role: Callable[[str], Any],
        observer: Observer = _ignore,
        results: ResultBus | None = None,
        delivery: Delivery | None = None,
    ) -> None:
        self.poller = poller
        self.delivery = delivery or Delivery(None)
        self.spokes = spokes
        self.results = results
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._session_for_role = session_for_role
        self._observe = observer
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []
        self._sources: list[WorkSource] = []
        #: Automation execution id -> the parameter whose change started it (for the console)
        self._started_by: dict[str, str] = {}
        #: The stream function's batch is running (its events may be delivered at once).
        self._batch_running = False
        self._during_batch = threading.Lock()
        #: The template's schedules on a local time-scale (``every``): [name, interval, job, next run]
        self._schedules: list[list[Any]] = []

    def every(self, name: str, interval_s: float, job: Callable[[], Any]) -> None:
        """A schedule of the template on a local time-scale (``make local``): ``job`` runs every
        ``interval_s`` seconds in the background loop (``start``) only, first after one interval;
        never in ``step`` or ``run_until_idle``, so an in-process organisation stays
        deterministic. A failure is reported like the pipeline's and the schedule goes on."""
        self._schedules.append([name, interval_s, job, time.monotonic() + interval_s])

    def _run_schedules(self) -> None:
        for schedule in self._schedules:
            name, interval_s, job, due = schedule
            if time.monotonic() < due:
                continue
            schedule[3] = time.monotonic() + interval_s
            self._observe(Step("schedule", detail={"schedule": name}))
            try:
                with self._lock:
                    job()
            except Exception as exc:  # keep serving; report it
                message = f"{name}: {type(exc).__name__}: {exc}"
                self.errors.append(message)
                self._observe(Step("error", detail={"error": message}))

    def add_source(self, source: WorkSource) -> None:
        """More work for each round (the management account's enrolment, enrolment.py)."""
        self._sources.append(source)

    def publish(self, event: dict[str, Any]) -> None:
        """EventBridge's default bus in each spoke account (the stand-ins call this).

        During the stream function's batch (from any of its threads), the event may be delivered at once
        (``Delivery.at_once``): its Automation run starts, or its report reaches the result
        function, before the batch has recorded SENT, as on AWS."""
        if not (self._batch_running and self.delivery.at_once()):
            self.events.put(event)
        elif _DELIVERING.get():
            self._route(event, during_batch=True)  # published by a delivery made during the batch
        else:
            # The function writes its accounts' parameters from several threads: one delivery
            # at a time (made so when the local functions shared one os.environ; each
            # invocation now has its own, execution_env, and this lock is kept as it was).
            with self._during_batch:
                delivering = _DELIVERING.set(True)
                try:
                    self._route(event, during_batch=True)
                finally:
                    _DELIVERING.reset(delivering)

    def step(self) -> int:
        """One round: a batch per shard, then every event waiting. Work done (0 = idle)."""
        with self._lock:
            self._batch_running = True
            try:
                work = self.poller.poll()
            finally:
                self._batch_running = False
            for source in self._sources:
                work += source.step()
            tick = True
            while True:
                arrived = list(drained(self.events))
                deliveries = self.delivery.round(arrived, tick=tick)
                tick = False
                if not deliveries:
                    break
                for event, duplicate in deliveries:
                    work += 1
                    self._route(event, duplicate=duplicate)
            return work + (0 if self.delivery.idle() else 1)

    def _route(self, event: dict[str, Any], duplicate: bool = False, during_batch: bool = False) -> None:
        if duplicate or during_batch:
            self._observe(
                Step(
                    "delivery",
                    str(event.get("account")),
                    {
                        "kind": event.get("detail-type"),
                        "delivery": "a second time" if duplicate else "during the stream batch",
                    },
                )
            )
        if event.get("detail-type") != "Parameter Store Change":
            self._forward(event)
            return
        account = str(event.get("account"))
        detail = event.get("detail", {})
        self._observe(
            Step(
                "parameter-change",
                account,
                {"name": detail.get("name"), "operation": detail.get("operation")},
            )
        )
        spoke = self.spokes.get(account)
        if spoke is None:
            self._observe(Step("ignored-event", account, {"reason": "no spoke stack in this account"}))
            return
        started = datetime.now(UTC)
        try:
            result = spoke.handle(event, self._session_for_role)
        except Exception as exc:
            message = f"{account}: automation could not start: {type(exc).__name__}: {exc}"
            self.errors.append(message)
            self._observe(Step("automation", account, {"status": "Error", "error": message}))
            return
        if result is None:
            self._observe(Step("ignored-event", account, {"reason": "the rule's pattern does not match"}))
            return
        self._started_by[result.execution_id] = str(event.get("detail", {}).get("name", ""))
        if len(self._started_by) > _STARTED_BY_KEPT:  # the oldest runs reported long ago
            self._started_by.pop(next(iter(self._started_by)))
        self._observe(
            Step(
                "automation",
                account,
                {
                    "status": result.status,
                    "outputs": dict(result.outputs),
                    "failure": result.failure_message,
                    "execution_id": result.execution_id,
                    "parameter": event.get("detail", {}).get("name"),
                },
            )
        )
        from budget_sync_local.standins import automation_status_event  # moto: see _forward

        document = getattr(spoke, "document_name", "")
        region = str(event.get("region"))
        self.events.put(
            automation_status_event(account, region, document, result, started, datetime.now(UTC))
        )

    def _forward(self, event: dict[str, Any]) -> None:
        """A spoke's forwarding rules -> the management account's result bus -> its rule's target."""
        # The stand-ins import moto (seconds): imported where the pipeline runs on it, so that
        # Delivery and the other plain parts import no moto (make unit).
        from budget_sync_local.standins import authorisation, pattern_matches

        account = str(event.get("account"))
        spoke = self.spokes.get(account)
        forward = getattr(spoke, "forward", None)
        targets = forward(event) if forward is not None else []
        if self.results is None or self.results.arn not in targets:
            return  # no rule sends it to the result bus (a success notification, another source)
        role = getattr(spoke, "forward_roles", {}).get(self.results.arn)
        if role is not None:
            try:
                authorisation.forwarded(role, self.results.arn, event)
            except AccessDenied as denied:
                # On AWS the target's invocation fails and the event goes to the rule's DLQ.
                self.errors.append(f"{account}: {denied}")
                self._observe(Step("ignored-event", account, {"reason": f"forwarding refused: {denied}"}))
                return
        if not pattern_matches(dict(self.results.pattern), event):
            self._observe(Step("ignored-event", account, {"reason": "the result bus's rule does not match"}))
            return
        try:
            answer = self.results.invoke(event)
        except Exception as exc:
            message = f"{account}: result function failed: {type(exc).__name__}: {exc}"
            self.errors.append(message)
            self._observe(Step("result", account, {"error": message}))
            return
        self._observe(
            Step(
                "result",
                account,
                {
                    "kind": event.get("detail-type"),
                    "outcome": event.get("detail", {}).get("Outcome")
                    or event.get("detail", {}).get("Status"),
                    "recorded": answer.get("status") if isinstance(answer, Mapping) else None,
                    "reason": event.get("detail", {}).get("Reason", ""),
                    # the document's step that reported: its budget step sends no "Step"
                    "step": (event.get("detail", {}).get("Step") or _BUDGET_STEP)
                    if event.get("detail-type") == REPORT_DETAIL_TYPE
                    else None,
                    "started_by": self._started_by.get(str(event.get("detail", {}).get("ExecutionId"))),
                },
            )
        )

    def run_until_idle(self, timeout_s: float = 60.0, pause_s: float = 0.01) -> None:
        """Step until a round finds nothing to do and no retry is waiting. If that takes more
        than ``timeout_s``, TimeoutError says what kept it busy (``backlog``)."""
        deadline = time.monotonic() + timeout_s
        rounds = 0
        while True:
            rounds += 1
            if (
                self.step() == 0
                and self.poller.idle()
                and self.events.empty()
                and self.delivery.idle()
                and all(source.idle() for source in self._sources)
            ):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the pipeline still had work after {timeout_s:g} s ({rounds} rounds): {self.backlog()}"
                )
            time.sleep(pause_s)

    def backlog(self) -> str:
        """What the pipeline has done and has left: each stream's batches (retries included)
        and records waiting, the events on the buses and the deliveries held back."""
        streams = [self.poller, *(p for s in self._sources for p in getattr(s, "pollers", ()))]
        parts = [poller.backlog() for poller in streams]
        parts.append(f"{self.events.qsize()} events on the bus, {self.delivery.held()} deliveries held back")
        parts.extend(f"{type(s).__name__} not idle" for s in self._sources if not s.idle())
        return "; ".join(parts)

    def start(self, interval_s: float = 0.25, check_every_s: float = 60.0) -> None:
        """Run in a background thread (``make local``) until ``stop``; the unconfirmed check's
        schedule every ``check_every_s``."""
        next_check = time.monotonic() + check_every_s

        def loop() -> None:
            nonlocal next_check
            while not self._stop.is_set():
                if self.results is not None and self.results.check and time.monotonic() >= next_check:
                    next_check = time.monotonic() + check_every_s
                    try:
                        with self._lock:
                            self.results.check()
                    except Exception as exc:
                        self.errors.append(f"unconfirmed check: {type(exc).__name__}: {exc}")
                self._run_schedules()
                try:
                    busy = self.step()
                except Exception as exc:  # keep serving; report it
                    message = f"pipeline: {type(exc).__name__}: {exc}"
                    self.errors.append(message)
                    self._observe(Step("error", detail={"error": message}))
                    busy = 0
                if not busy:
                    self._stop.wait(interval_s)

        self._thread = threading.Thread(target=loop, name="budget-sync-pipeline", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


def on_failure_sender(sqs: SQSClient, queue_url: str) -> Callable[[dict[str, Any]], None]:
    def send(message: dict[str, Any]) -> None:
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(message))

    return send
