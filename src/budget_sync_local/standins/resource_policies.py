"""``AWS::SQS::QueuePolicy`` and ``AWS::SNS::TopicPolicy`` in moto's CloudFormation.

moto 5.2's CloudFormation skips both types ("not supported"), so a queue kept moto's empty
policy and a topic moto's default one, and a template's queue and topic policies took no
part in the local organisation's authorisation. While the stand-ins are installed, both
types are created as CloudFormation creates them: the ``PolicyDocument`` (its intrinsic
functions resolved by moto, as for any resource) becomes the ``Policy`` attribute of each
queue in ``Queues`` (queue URLs) and each topic in ``Topics`` (topic ARNs), replacing the
one before (CloudFormation reference, "AWS::SQS::QueuePolicy": "the policy that is applied
to the queues"; "AWS::SNS::TopicPolicy": "the topic's access policy"). Deleting the
resource gives a topic moto's default policy back and a queue no policy.
``standins.authorisation`` then evaluates them on every call that crosses them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from moto.sns.models import sns_backends
from moto.sqs.models import sqs_backends

from budget_sync_local.standins.sns_delivery import SubscriptionResource


def _queue(url: str, account: str, region: str) -> Any:
    owner, name = urlparse(url).path.strip("/").split("/")[-2:]
    return sqs_backends[owner or account][region].get_queue(name)


def _topic(arn: str, region: str) -> Any:
    parts = arn.split(":")
    return sns_backends[parts[4]][parts[3] or region].get_topic(arn)


class _PolicyResource:
    """A queue or topic policy as CloudFormation holds it: what it was applied to."""

    kind = ""
    targets_property = ""

    def __init__(self, name: str, targets: list[str], account: str, region: str) -> None:
        self.physical_resource_id = name
        self.targets, self.account, self.region = targets, account, region

    @classmethod
    def apply(cls, target: str, document: str | None, account: str, region: str) -> None:
        raise NotImplementedError

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
    ) -> _PolicyResource:
        properties = cloudformation_json["Properties"]
        document = json.dumps(properties["PolicyDocument"])
        targets = [str(t) for t in properties[cls.targets_property]]
        for target in targets:
            cls.apply(target, document, account_id, region_name)
        return cls(resource_name, targets, account_id, region_name)

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: _PolicyResource,
        new_resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
    ) -> _PolicyResource:
        original_resource.delete(account_id, region_name)
        return cls.create_from_cloudformation_json(
            new_resource_name, cloudformation_json, account_id, region_name
        )

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> None:
        for target in cloudformation_json.get("Properties", {}).get(cls.targets_property, []):
            cls.apply(str(target), None, account_id, region_name)

    def delete(self, account_id: str, region_name: str) -> None:
        for target in self.targets:
            self.apply(target, None, account_id, region_name)

    def is_created(self) -> bool:
        return True

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        raise NotImplementedError(attribute_name)


class QueuePolicy(_PolicyResource):
    kind = "AWS::SQS::QueuePolicy"
    targets_property = "Queues"

    @classmethod
    def apply(cls, target: str, document: str | None, account: str, region: str) -> None:
        _queue(target, account, region).policy = document


class TopicPolicy(_PolicyResource):
    kind = "AWS::SNS::TopicPolicy"
    targets_property = "Topics"

    @classmethod
    def apply(cls, target: str, document: str | None, account: str, region: str) -> None:
        topic = _topic(target, region)
        if document is None:
            topic._policy_json = topic._create_default_topic_policy(region, topic.account_id, topic.name)
        else:
            topic.policy = document


def publish_to_topic(topic_arn: str, message: str, subject: str | None = None) -> str:
    """A service's message to a topic (an alarm's action, a budget's alert), once
    ``authorisation.service_sends`` has admitted it: moto's SNS delivers it to the topic's
    subscriptions. Its message id."""
    parts = topic_arn.split(":")
    return str(sns_backends[parts[4]][parts[3]].publish(message, arn=topic_arn, subject=subject))


_MODELS: dict[str, type[Any]] = {
    QueuePolicy.kind: QueuePolicy,
    TopicPolicy.kind: TopicPolicy,
    SubscriptionResource.kind: SubscriptionResource,  # sns_delivery: a topic's subscription
}


def resource_class_from_type(original: Callable[[str], Any]) -> Callable[[str], Any]:
    """moto's lookup of a resource type's model, knowing the two policy types."""

    def lookup(resource_type: str) -> Any:
        return _MODELS.get(resource_type) or original(resource_type)

    return lookup


__all__ = ["QueuePolicy", "TopicPolicy", "publish_to_topic", "resource_class_from_type"]
