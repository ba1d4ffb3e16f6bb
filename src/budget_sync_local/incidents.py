"""The optional incidents (docs/itsm.md) on the local organisation: ``LocalOrganisation(servicenow=StandIn())``.

What is deployed and run is the templates' own: the management stack with
``ServiceNowSecretArn`` (a secret created in the management account's Secrets Manager, holding
the stand-in's integration user) and ``ServiceNowInstanceUrl`` (the stand-in, served by
werkzeug on 127.0.0.1 on a port of its own); the spoke stacks with ``IncidentQueueArn`` (the
stack's output) and an alert topic (``SnsTopicMode=Create``), so each spoke gets its incident
read role and the topic's subscription to the management account's incident queue.

``make local`` (``LocalOrganisation(servicenow=..., servicenow_url=...)``) serves the stand-in
on its own port under ``/_local/servicenow`` and gives that URL instead: no second server.

``LocalOrganisation.send_budget_alerts`` publishes as AWS Budgets does; SNS delivers to the
queue through its policy (``standins.sns_delivery``). What Lambda's SQS event source does is
``deliver``: receive a batch as the function's execution role (``BatchSize`` from the
template), invoke the function, delete what it did not report as failed; a failed message
stays in the queue and is received again by the next ``deliver`` (on AWS: after the queue's
visibility timeout; ``visibility_timeout_s``). ``schedule`` is the function's hourly run. The
function runs as its role: every call it makes (the secret, the spoke's read role,
Organizations, the tables) is authorised against the templates' policies. Tests call
``deliver`` and ``schedule`` themselves (deterministic); ``make local`` polls the queue in the
pipeline's background loop (``QueuePoller``, a work source of the pipeline) and runs the
schedule on its local time-scale (``Pipeline.every``). Each incident that a delivery or a run
of the schedule opened, updated or resolved in the stand-in is reported to the organisation's
observer (step ``incident``: the console of ``make local`` shows it).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from werkzeug.serving import WSGIRequestHandler, make_server

from budget_sync_local.lambda_runtime import (
    FunctionSpec,
    function_spec,
    load_handler,
    new_execution_environment,
)
from budget_sync_local.lambda_runtime import lambda_environment as _lambda_environment
from budget_sync_local.management_stack import STACK_NAME
from budget_sync_local.pipeline import Step
from budget_sync_local.servicenow import RESOLVED, StandIn
from budget_sync_local.templates import MANAGEMENT_TEMPLATE, load

if TYPE_CHECKING:
    from budget_sync_local.organisation import LocalOrganisation

FUNCTION = "IncidentFunction"
SECRET_NAME = "budget-sync/servicenow"  # noqa: S105 - the secret's name, not a secret
#: Rounds of ``deliver`` at most: each receives one batch.
_MAX_ROUNDS = 100


class _Quiet(WSGIRequestHandler):
    """No line per request on the console (the function's log says what it did)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class LocalIncidents:
    def __init__(self, instance: StandIn, url: str | None = None) -> None:
        """``url``: where the stand-in is already served (``make local``'s own port); without it,
        the stand-in gets a werkzeug server of its own on 127.0.0.1."""
        self.instance = instance
        self._server: Any = None
        self._thread: threading.Thread | None = None
        if url is None:
            self._server = make_server("127.0.0.1", 0, instance.wsgi(), threaded=True, request_handler=_Quiet)
            self._thread = threading.Thread(
                target=self._server.serve_forever, name="servicenow-standin", daemon=True
            )
            self._thread.start()
            url = f"http://127.0.0.1:{self._server.server_port}"
        self.url = url
        self.queue_url = ""
        self.queue_arn = ""
        self._spec: FunctionSpec | None = None
        self._org: LocalOrganisation | None = None
        self._sqs: Any = None

    def close(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)

    def management_parameters(self, org: LocalOrganisation) -> dict[str, str]:
        """The secret with the stand-in's integration user, and the stack's parameters for it."""
        secret = org.management.client("secretsmanager").create_secret(
            Name=SECRET_NAME,
            SecretString=json.dumps({"username": self.instance.user, "password": self.instance.password}),
        )
        return {"ServiceNowSecretArn": str(secret["ARN"]), "ServiceNowInstanceUrl": self.url}

    def spoke_parameters(self, org: LocalOrganisation) -> dict[str, str]:
        """The deployed management stack's queue, for the spoke stacks (and their alert topic)."""
        cloudformation = org.management.client("cloudformation")
        outputs = cloudformation.describe_stacks(StackName=STACK_NAME)["Stacks"][0].get("Outputs", [])
        queue_arn = self.queue_arn = next(
            o["OutputValue"] for o in outputs if o["OutputKey"] == "IncidentQueueArn"
        )
        _, _, _, region, account, name = queue_arn.split(":")
        self.queue_url = org.management.client("sqs", region_name=region).get_queue_url(
            QueueName=name, QueueOwnerAWSAccountId=account
        )["QueueUrl"]
        return {"IncidentQueueArn": queue_arn, "SnsTopicMode": "Create"}

    def start(self, org: LocalOrganisation) -> None:
        """The function as Lambda runs it: its template's settings, as its role."""
        self._org = org
        spec = function_spec(
            FUNCTION,
            org.management_parameters,
            org.region,
            org.stack.account_id,
            physical_ids=org.stack.physical_ids,
        )
        self._spec = org._as_its_role(spec)
        with _lambda_environment(self._spec, org.region):
            load_handler(self._spec)
        new_execution_environment(self._spec)

    def deliver(self, visibility_timeout_s: int = 0) -> list[Any]:
        """The SQS event source: batches received as the function's role until the queue has
        none that the function accepts. The function's answers, one per batch.
        ``visibility_timeout_s``: how long a message the function failed stays invisible (0: it
        is there again for the next call; the queue's own is 30 minutes on AWS)."""
        org, spec = self._org, self._spec
        assert org is not None
        assert spec is not None
        if self._sqs is None:  # one client, as the event source's (moto's credentials do not expire)
            self._sqs = org._role_session(spec).client("sqs")
        sqs = self._sqs
        events = load(MANAGEMENT_TEMPLATE)["Resources"][FUNCTION]["Properties"]["Events"]
        batch_size = int(events["Alerts"]["Properties"].get("BatchSize", 10))
        answers = []
        before = self._seen()
        for _ in range(_MAX_ROUNDS):
            received = sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=batch_size,
                VisibilityTimeout=visibility_timeout_s,
            ).get("Messages", [])
            if not received:
                break
            event = {"Records": [_record(m, self.queue_arn, org.region) for m in received]}
            answer = org._invoke(spec, event)
            answers.append(answer)
            failed = {f["itemIdentifier"] for f in (answer or {}).get("batchItemFailures", [])}
            for message in received:
                if message["MessageId"] not in failed:
                    sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            if failed:
                break  # the rest waits for the visibility timeout (the next call)
        if answers:
            self._report(before, "an alert from its queue")
        return answers

    def schedule(self, time: str | None = None) -> Any:
        """The function's schedule (IncidentSchedule): every account looked at. ``time``: when
        it fires (ISO 8601, the event's ``time``; default now), e.g. the first of next month."""
        org, spec = self._org, self._spec
        assert org is not None
        assert spec is not None
        event: dict[str, Any] = {
            "source": "aws.events",
            "detail-type": "Scheduled Event",
            "account": org.stack.account_id,
            "detail": {},
        }
        if time is not None:
            event["time"] = time
        before = self._seen()
        answer = org._invoke(spec, event)
        self._report(before, "its hourly schedule")
        return answer

    def waiting(self) -> int:
        """Messages in the incident queue (visible or not)."""
        org = self._org
        assert org is not None
        attributes = org.management.client("sqs").get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    def _seen(self) -> dict[str, tuple[str, str, int]]:
        """Each incident of the stand-in: its state, urgency and number of journal entries."""
        journal = self.instance.journal
        return {
            sys_id: (record.get("state", ""), record.get("urgency", ""), len(journal.get(sys_id, ())))
            for sys_id, record in list(self.instance.incidents.items())  # list(): one atomic copy
        }

    def _report(self, before: Mapping[str, tuple[str, str, int]], via: str) -> None:
        """An ``incident`` step for each incident opened, updated or resolved since ``before``."""
        org = self._org
        assert org is not None
        for sys_id, now in self._seen().items():
            was = before.get(sys_id)
            if was == now:
                continue
            if was is None:
                change = "opened"
            elif now[0] == RESOLVED != was[0]:
                change = "resolved"
            else:
                change = "updated"
            record = self.instance.incidents.get(sys_id, {})
            org._observer(
                Step(
                    "incident",
                    str(record.get("correlation_id", "")).split("/", 1)[0],
                    {
                        "number": record.get("number", ""),
                        "change": change,
                        "state": now[0],
                        "urgency": now[1],
                        "via": via,
                        "short_description": record.get("short_description", ""),
                    },
                )
            )


class QueuePoller:
    """Lambda's SQS event source for ``make local``: a work source of the pipeline's background
    loop (``Pipeline.add_source``) that delivers the incident queue's messages at most every
    ``every_s`` seconds; a message the function fails comes back after ``retry_after_s`` (the
    queue's 30-minute visibility timeout on a local time-scale)."""

    def __init__(self, incidents: LocalIncidents, every_s: float = 1.0, retry_after_s: int = 15) -> None:
        self._incidents = incidents
        self._every_s = every_s
        self._retry_after_s = retry_after_s
        self._due = 0.0

    def step(self) -> int:
        if time.monotonic() < self._due:
            return 0
        self._due = time.monotonic() + self._every_s
        return len(self._incidents.deliver(self._retry_after_s))

    def idle(self) -> bool:
        return True  # a message waits in the queue, as on AWS; nothing is held in process


def _record(message: Mapping[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """An SQS message as Lambda's event source hands it to the function."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


__all__ = ["LocalIncidents", "QueuePoller"]
