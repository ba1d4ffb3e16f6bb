"""``make lint-iam``: parliament (an offline IAM policy linter) over every policy of both
templates: role trust and permission policies, managed policies, queue, topic and key
policies, event bus policies.

Each template is resolved twice, with its defaults and with every optional part switched
on (operators, SNS topic, Budget Action, tracing), so that every conditional statement is
linted with concrete ARNs. A finding is either fixed in the template or justified in place,
on the resource, as for checkov::

    Metadata:
      parliament:
        ignore:
          - issue: RESOURCE_STAR
            comment: X-Ray has no resource-level permissions.

    python -m tests.template.lint_iam      # exit 1 and one line per unjustified finding
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import parliament

from budget_sync_local.templates import (
    MANAGEMENT_TEMPLATE,
    ORG_EVENTS_TEMPLATE,
    SPOKE_TEMPLATE,
    Resolver,
    TemplateError,
    load,
)

#: Parameters that switch every optional policy on (the defaults are linted as well).
EVERYTHING_ON: dict[Path, dict[str, str]] = {
    MANAGEMENT_TEMPLATE: {
        "Tracing": "Active",
        "OrganizationId": "o-abcdefghij",
        # incidents (docs/itsm.md), with the secret encrypted by a customer managed key
        "ServiceNowSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:servicenow-AbCdEf",
        "ServiceNowSecretKmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "ServiceNowInstanceUrl": "https://example.service-now.com",
    },
    SPOKE_TEMPLATE: {
        "OrganizationId": "o-abcdefghij",
        "OperatorRoleNames": "FinanceOps,aws-reserved/sso.amazonaws.com/AWSReservedSSO_Readers_0123456789abcdef",
        "SnsTopicMode": "Create",
        "BudgetActionEnabled": "true",
        "BudgetActionRoleNames": "Developers",
        "IncidentQueueArn": "arn:aws:sqs:us-east-1:210987654321:budget-sync-IncidentQueue-AbC",
    },
    ORG_EVENTS_TEMPLATE: {"ManagementStackRegion": "eu-west-1"},
}
REQUIRED: dict[Path, dict[str, str]] = {
    MANAGEMENT_TEMPLATE: {},
    SPOKE_TEMPLATE: {"ManagementAccountId": "210987654321", "AlertEmail1": "finops@example.com"},
    ORG_EVENTS_TEMPLATE: {"ManagementStackRegion": "eu-west-1"},
}
#: Arn of resources whose physical id only CloudFormation knows: a plausible placeholder.
_ARNS = {
    "AWS::SNS::Topic": "arn:{p}:sns:{r}:{a}:{id}",
    "AWS::KMS::Key": "arn:{p}:kms:{r}:{a}:key/{id}",
    "AWS::IAM::ManagedPolicy": "arn:{p}:iam::{a}:policy/{id}",
    "AWS::Events::Rule": "arn:{p}:events:{r}:{a}:rule/{id}",
    "AWS::Events::EventBus": "arn:{p}:events:{r}:{a}:event-bus/{id}",
    "AWS::Lambda::Function": "arn:{p}:lambda:{r}:{a}:function:{id}",
    "AWS::Serverless::Function": "arn:{p}:lambda:{r}:{a}:function:{id}",
    "AWS::SQS::Queue": "https://sqs.{r}.amazonaws.com/{a}/{id}",
    "AWS::SSM::Document": "{id}",
    "AWS::IAM::Role": "arn:{p}:iam::{a}:role/{id}",
}


#: Resource types whose Ref is a name, not an ARN.
_REF_IS_NAME = {
    "AWS::IAM::Role",
    "AWS::Lambda::Function",
    "AWS::Serverless::Function",
    "AWS::Events::EventBus",
    "AWS::SSM::Document",
    "AWS::KMS::Key",
}


@dataclass(frozen=True)
class Finding:
    template: str
    resource: str
    where: str
    issue: str
    detail: str

    def __str__(self) -> str:
        return f"{self.template}: {self.resource} {self.where}: {self.issue} {self.detail}"


class _LintResolver(Resolver):
    """The templates' Resolver, with list parameters and placeholder physical ids."""

    def ref(self, name: str) -> Any:
        spec = self.template.get("Parameters", {}).get(name)
        if spec is not None and spec.get("Type") == "CommaDelimitedList":
            return self.parameter(name).split(",")
        try:
            return super().ref(name)
        except TemplateError:
            kind = self.resource(name)["Type"]
            return name if kind in _REF_IS_NAME else self._placeholder(name)

    @property
    def _generated(self) -> dict[str, str]:
        """Resources the SAM transform adds: a function's EventBridge and schedule events become
        rules named <function><event> (what a template may reference before the transform)."""
        generated: dict[str, str] = {}
        for name, resource in self.template.get("Resources", {}).items():
            if resource.get("Type") != "AWS::Serverless::Function":
                continue
            for event, spec in resource.get("Properties", {}).get("Events", {}).items():
                if spec.get("Type") in ("EventBridgeRule", "CloudWatchEvent", "Schedule"):
                    generated[f"{name}{event}"] = "AWS::Events::Rule"
        return generated

    def get_att(self, logical_id: str, attribute: str) -> Any:
        try:
            return super().get_att(logical_id, attribute)
        except TemplateError:
            return self._placeholder(logical_id)

    def _placeholder(self, logical_id: str) -> str:
        kind = self._generated.get(logical_id) or self.resource(logical_id)["Type"]
        pattern = _ARNS.get(kind)
        if pattern is None:
            raise TemplateError(f"{logical_id} ({kind}): no placeholder ARN for the IAM linter")
        return pattern.format(p=self.partition, r=self.region, a=self.account_id, id=logical_id)


def policies(resource: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """(where, unresolved policy document) of every policy a resource holds."""
    properties = resource.get("Properties", {})
    kind = resource["Type"]
    if kind == "AWS::IAM::Role":
        yield "AssumeRolePolicyDocument", properties["AssumeRolePolicyDocument"]
        for policy in properties.get("Policies", []):
            yield f"Policies[{policy.get('PolicyName')}]", policy["PolicyDocument"]
    elif kind in (
        "AWS::IAM::ManagedPolicy",
        "AWS::IAM::Policy",
        "AWS::SQS::QueuePolicy",
        "AWS::SNS::TopicPolicy",
    ):
        yield "PolicyDocument", properties["PolicyDocument"]
    elif kind == "AWS::KMS::Key":
        yield "KeyPolicy", properties["KeyPolicy"]
    elif kind == "AWS::Events::EventBusPolicy" and "Statement" in properties:
        yield "Statement", {"Version": "2012-10-17", "Statement": [properties["Statement"]]}
    elif kind == "AWS::Serverless::Function":
        for index, policy in enumerate(properties.get("Policies", []) or []):
            if isinstance(policy, Mapping) and "Statement" in policy:
                yield f"Policies[{index}]", policy


def lint(
    path: Path, parameter_sets: list[dict[str, str]] | None = None
) -> tuple[list[Finding], list[Finding]]:
    """(unjustified, justified) findings of every policy of one template."""
    template = load(path)
    if parameter_sets is None:
        parameter_sets = [REQUIRED[path], {**REQUIRED[path], **EVERYTHING_ON[path]}]
    unjustified: dict[tuple[str, str, str], Finding] = {}
    justified: dict[tuple[str, str, str], Finding] = {}
    for parameters in parameter_sets:
        resolver = _LintResolver(template, parameters)
        for logical_id, resource in template["Resources"].items():
            condition = resource.get("Condition")
            if condition and not resolver.condition(condition):
                continue
            ignored = {
                entry["issue"]: entry.get("comment", "")
                for entry in resource.get("Metadata", {}).get("parliament", {}).get("ignore", [])
            }
            for where, document in policies(resource):
                text = json.dumps(_as_linted(resolver.resolve(document), where, resolver, logical_id))
                for found in parliament.analyze_policy_string(text, ignore_private_auditors=True).findings:
                    finding = Finding(path.name, logical_id, where, found.issue, _detail(found))
                    key = (logical_id, where, found.issue)
                    if ignored.get(found.issue, "").strip():
                        justified[key] = finding
                    else:
                        unjustified[key] = finding
    return list(unjustified.values()), list(justified.values())


def _as_linted(document: Any, where: str, resolver: _LintResolver, logical_id: str) -> Any:
    """parliament reads every policy as an identity policy. A trust policy has no Resource: it
    governs its own role, which is given as the Resource so that the other checks apply."""
    if where != "AssumeRolePolicyDocument":
        return document
    arn = resolver.get_att(logical_id, "Arn")
    statements = document["Statement"] if isinstance(document["Statement"], list) else [document["Statement"]]
    for statement in statements:
        statement.setdefault("Resource", arn)
    return document


def _detail(found: Any) -> str:
    detail = found.detail if isinstance(found.detail, str) else json.dumps(found.detail, default=str)
    return detail[:300]


def main() -> int:
    failed = False
    for path in (MANAGEMENT_TEMPLATE, SPOKE_TEMPLATE, ORG_EVENTS_TEMPLATE):
        unjustified, justified = lint(path)
        for finding in unjustified:
            print(f"parliament: {finding}")
            failed = True
        print(f"parliament: {path.name}: {len(unjustified)} finding(s), {len(justified)} justified in place")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
