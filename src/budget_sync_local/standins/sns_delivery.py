"""SNS to an SQS queue in another account, as AWS delivers it; ``AWS::SNS::Subscription`` in
moto's CloudFormation.

moto 5.2's CloudFormation skips ``AWS::SNS::Subscription`` ("not supported"): while the
stand-ins are installed it is created as CloudFormation creates it (``SubscriptionResource``:
``Subscribe`` of ``Endpoint`` with ``Protocol`` to ``TopicArn``, its physical id the
subscription's ARN; deleting the resource unsubscribes).

moto 5.2 looks the queue of an ``sqs`` subscription up in the *topic's* account
(``Subscription.publish``: ``sqs_backends[self.account_id]``), so a spoke's alert topic could
never reach the management account's incident queue. AWS delivers to the queue the
subscription's endpoint ARN names, if that queue's policy admits ``sns.amazonaws.com`` for the
topic (Amazon SNS Developer Guide, "Sending Amazon SNS messages to an Amazon SQS queue in a
different account"; the conditions ``aws:SourceArn``, ``aws:SourceAccount``,
``aws:SourceOrgID``). While the stand-ins are installed, a delivery across accounts is
authorised with ``authorisation.service_sends`` (the queue's policy, as the template set it)
and then made to the endpoint's account. A refusal raises AccessDenied: on AWS the delivery
fails quietly (SNS counts ``NumberOfNotificationsFailed``); locally it is loud. A delivery
within one account is moto's own. moto confirms every subscription at once; AWS sends a queue
of another account a ``SubscriptionConfirmation`` first, which is not modelled.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.sns.models import sns_backends

from budget_sync_local.standins import authorisation


def cross_account_publish(original: Callable[..., None]) -> Callable[..., None]:
    def publish(self: Any, message: str, message_id: str, *args: Any, **kwargs: Any) -> None:
        parts = str(self.endpoint).split(":")
        if self.protocol != "sqs" or len(parts) < 6 or parts[4] == self.account_id:
            original(self, message, message_id, *args, **kwargs)
            return
        authorisation.service_sends(
            "sns.amazonaws.com", "sqs:SendMessage", self.endpoint, self.account_id, self.topic.arn
        )
        topic_account = self.account_id
        self.account_id = parts[4]  # moto looks the queue up in this account
        try:
            original(self, message, message_id, *args, **kwargs)
        finally:
            self.account_id = topic_account

    return publish


class SubscriptionResource:
    """``AWS::SNS::Subscription`` as CloudFormation creates it (the topic in the stack's account)."""

    kind = "AWS::SNS::Subscription"

    def __init__(self, arn: str, topic_arn: str) -> None:
        self.physical_resource_id = arn
        self.topic_arn = topic_arn

    @classmethod
    def cloudformation_type(cls) -> str:
        return cls.kind

    @classmethod
    def cloudformation_name_type(cls) -> str:
        return ""

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return False

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **_: Any
    ) -> SubscriptionResource:
        properties = cloudformation_json["Properties"]
        topic_arn = str(properties["TopicArn"])
        backend = sns_backends[topic_arn.split(":")[4]][topic_arn.split(":")[3]]
        subscription = backend.subscribe(topic_arn, str(properties["Endpoint"]), str(properties["Protocol"]))
        if properties.get("RawMessageDelivery") in (True, "true"):
            subscription.attributes["RawMessageDelivery"] = "true"
        return cls(subscription.arn, topic_arn)

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: SubscriptionResource,
        new_resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
    ) -> SubscriptionResource:
        original_resource.delete(account_id, region_name)
        return cls.create_from_cloudformation_json(
            new_resource_name, cloudformation_json, account_id, region_name
        )

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> None:
        topic_arn = str(cloudformation_json.get("Properties", {}).get("TopicArn", ""))
        if topic_arn.count(":") >= 5:
            sns_backends[topic_arn.split(":")[4]][topic_arn.split(":")[3]].unsubscribe(resource_name)

    def delete(self, account_id: str, region_name: str) -> None:
        parts = self.topic_arn.split(":")
        sns_backends[parts[4]][parts[3]].unsubscribe(self.physical_resource_id)

    def is_created(self) -> bool:
        return True

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        raise NotImplementedError(attribute_name)


__all__ = ["SubscriptionResource", "cross_account_publish"]
