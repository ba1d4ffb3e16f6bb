"""The optional incidents (docs/itsm.md) on the local organisation: ``LocalOrganisation(servicenow=StandIn())``.

What is deployed and run is the templates' own: the management stack with
``ServiceNowSecretArn`` (a secret created in the management account's Secrets Manager, holding
the stand-in's integration user) and ``ServiceNowInstanceUrl`` (the stand-in, served by
werkzeug on 127.0.0.1 on a port of its own); the spoke stacks with ``IncidentQueueArn`` (the
stack's output) and an alert topic (``SnsTopicMode=Create``), so each spoke gets its incident
read role and the topic's subscription to the management account's incident queue.

``LocalOrganisation.send_budget_alerts`` publishes as AWS Budgets does; SNS delivers to the
queue through its policy (``standins.sns_delivery``). What Lambda's SQS event source does is
``deliver``: receive a batch as the function's execution role (``BatchSize`` from the
template), invoke the function, delete what it did not report as failed; a failed message
stays in the queue and is received again by the next ``deliver`` (on AWS: after the queue's
visibility timeout). ``schedule`` is the function's hourly run. The function runs as its role:
every call it makes (the secret, the spoke's read role, Organizations, the tables) is
authorised against the templates' policies.
"""

from __future__ import annotations

import json
import threading
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
from budget_sync_local.servicenow import StandIn
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
    def __init__(self, instance: StandIn) -> None:
        self.instance = instance
        self._server = make_server("127.0.0.1", 0, instance.wsgi(), threaded=True, request_handler=_Quiet)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="servicenow-standin", daemon=True
        )
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self.queue_url = ""
        self.queue_arn = ""
        self._spec: FunctionSpec | None = None
        self._org: LocalOrganisation | None = None

    def close(self) -> None:
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

    def deliver(self) -> list[Any]:
        """The SQS event source: batches received as the function's role until the queue has
        none that the function accepts. The function's answers, one per batch."""
        org, spec = self._org, self._spec
        assert org is not None
        assert spec is not None
        sqs = org._role_session(spec).client("sqs")
        events = load(MANAGEMENT_TEMPLATE)["Resources"][FUNCTION]["Properties"]["Events"]
        batch_size = int(events["Alerts"]["Properties"].get("BatchSize", 10))
        answers = []
        for _ in range(_MAX_ROUNDS):
            # VisibilityTimeout 0: a message the function fails is there again for the next call
            received = sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=batch_size, VisibilityTimeout=0
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
        return org._invoke(spec, event)

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


__all__ = ["LocalIncidents"]
