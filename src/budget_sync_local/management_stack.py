"""Deploy template-management.yaml into the local organisation's management account.

The SAM template is translated with ``aws-sam-translator`` (what ``sam deploy`` asks
CloudFormation to do) and created with moto's CloudFormation, with two changes:

* each function's ``CodeUri`` points at a zip of ``src/function`` uploaded to moto's S3;
* the stream's event source mapping is left out: moto would invoke the function through
  Docker on every write and empty the stream's buffer. The local pipeline
  (``budget_sync_local.pipeline``) is the stream's only consumer and reads its settings
  (batch size, retries, on-failure queue) from the same template.

Resources that moto's CloudFormation skips (alarms, the event source mappings) are listed in
``ManagementStack.skipped``; the queue and topic policies are applied by
``standins.resource_policies`` and evaluated on every call that crosses them, the bus policy
here (``bus_policy``); an alarm's actions run with ``LocalOrganisation.fire_alarm``.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import logging
import os
import warnings
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3

from budget_sync_local.templates import MANAGEMENT_TEMPLATE, ROOT, Resolver, load

STACK_NAME = "budget-sync"
CODE_BUCKET = "budget-sync-local-artifacts"
CODE_KEY = "function.zip"


@dataclass(frozen=True)
class StreamSettings:
    """The event source mapping's settings, as the template sets them."""

    batch_size: int
    maximum_retry_attempts: int
    maximum_record_age_s: int
    bisect_on_error: bool
    report_item_failures: bool
    starting_position: str

    @classmethod
    def of(cls, source: Mapping[str, Any]) -> StreamSettings:
        """The settings of a function's DynamoDB event (its ``Properties``), with Lambda's defaults."""
        return cls(
            batch_size=int(source.get("BatchSize", 100)),
            maximum_retry_attempts=int(source.get("MaximumRetryAttempts", -1)),
            maximum_record_age_s=int(source.get("MaximumRecordAgeInSeconds", -1)),
            bisect_on_error=bool(source.get("BisectBatchOnFunctionError", False)),
            report_item_failures="ReportBatchItemFailures" in source.get("FunctionResponseTypes", []),
            starting_position=str(source["StartingPosition"]),
        )


@dataclass(frozen=True)
class ManagementStack:
    account_id: str
    region: str
    budgets_table: str
    status_table: str
    defaults_table: str
    stream_arn: str
    on_failure_queue_url: str
    function_logical_id: str
    stream: StreamSettings
    parameters: Mapping[str, str]
    skipped: tuple[str, ...]
    #: The result bus, and the pattern of its rule that invokes the result function.
    result_bus_arn: str = ""
    #: The approval requests table (template-management.yaml, ApprovalRequestsTable).
    approval_requests_table: str = ""
    approvals_table: str = ""
    result_pattern: Mapping[str, Any] | None = None
    result_function_logical_id: str = "ResultFunction"
    #: The schedule's function (values never confirmed) and the status stream's (new failures).
    unconfirmed_function_logical_id: str = "UnconfirmedCheckFunction"
    notice_function_logical_id: str = "FailureNoticeFunction"
    #: Where the result rule and the status stream's mapping park what they cannot deliver.
    result_dead_letter_queue_url: str = ""
    #: Physical ids of the created resources (the alarm topic's ARN, ...).
    physical_ids: Mapping[str, str] = field(default_factory=dict)
    #: Each function's execution role (its template ``Role``), by the function's logical id.
    role_arns: Mapping[str, str] = field(default_factory=dict)
    #: Every change and outcome (HistoryFunction appends, budgetctl history reads).
    history_table: str = "BlogBudgetsHistory"
    history_failure_queue_url: str = ""


class StackRefused(RuntimeError):
    """CloudFormation refuses the parameters (a template rule's assertion fails)."""


def check_rules(resolver: Resolver) -> None:
    """The template's ``Rules``, as CloudFormation checks them before it creates anything:
    the first assertion that fails refuses the stack with its ``AssertDescription``."""
    for name, rule in resolver.template.get("Rules", {}).items():
        condition = rule.get("RuleCondition")
        if condition is not None and not _rule_value(resolver, condition):
            continue
        for assertion in rule.get("Assertions", []):
            if not _rule_value(resolver, assertion["Assert"]):
                raise StackRefused(f"Template rule {name} failed: {assertion.get('AssertDescription', '')}")


def _rule_value(resolver: Resolver, value: Any) -> Any:
    """Rule functions (the Conditions' ones, plus Fn::EachMemberEquals)."""
    if isinstance(value, dict) and len(value) == 1:
        ((key, argument),) = value.items()
        if key == "Fn::EachMemberEquals":
            members, wanted = argument
            return all(m == _rule_value(resolver, wanted) for m in _members(resolver, members))
        if key == "Fn::Not":
            return not _rule_value(resolver, argument[0])
        if key in ("Fn::And", "Fn::Or"):
            results = [_rule_value(resolver, v) for v in argument]
            return all(results) if key == "Fn::And" else any(results)
    return resolver.resolve(value)


def _members(resolver: Resolver, value: Any) -> list[str]:
    if isinstance(value, dict) and set(value) == {"Ref"}:
        spec = resolver.template.get("Parameters", {}).get(value["Ref"], {})
        if spec.get("Type") == "CommaDelimitedList":
            return resolver.parameter(value["Ref"]).split(",")
    resolved = resolver.resolve(value)
    return list(resolved) if isinstance(resolved, list) else [str(resolved)]


def bus_policy(resolver: Resolver) -> dict[str, Any] | None:
    """The result bus's policy as its ``AWS::Events::EventBusPolicy`` resources make it (moto's
    CloudFormation skips the type): one statement per resource whose condition holds."""
    statements = []
    for logical_id, resource in resolver.template["Resources"].items():
        if resource["Type"] != "AWS::Events::EventBusPolicy":
            continue
        if "Condition" in resource and not resolver.condition(resource["Condition"]):
            continue
        properties = resolver.properties(logical_id)
        statement = {"Sid": properties["StatementId"], **properties["Statement"]}
        principal = statement.get("Principal")
        if isinstance(principal, dict) and isinstance(principal.get("AWS"), str):
            principal["AWS"] = principal["AWS"].split(",")
        statements.append(statement)
    return {"Version": "2012-10-17", "Statement": statements} if statements else None


class _NoManagedPolicies:
    """The translator looks up AWS managed policy ARNs only for ``Policies`` shorthands,
    which the template does not use; offline there is nothing to look up."""

    def load(self) -> dict[str, str]:
        return {}


#: Translations already made, by the template's content, the parameters and the region: the
#: translator takes about half a second, and every local organisation translates twice.
_TRANSLATIONS: dict[tuple[str, tuple[tuple[str, str], ...], str], dict[str, Any]] = {}


def translate(parameters: Mapping[str, str], region: str) -> dict[str, Any]:
    """template-management.yaml as plain CloudFormation, as the SAM transform makes it (a copy
    of the translation of this content with these parameters, made once per process)."""
    source = load(MANAGEMENT_TEMPLATE)
    key = (
        hashlib.sha256(json.dumps(source, sort_keys=True, default=str).encode()).hexdigest(),
        tuple(sorted(parameters.items())),
        region,
    )
    if key not in _TRANSLATIONS:
        _TRANSLATIONS[key] = _translate(source, parameters, region)
    return copy.deepcopy(_TRANSLATIONS[key])


def _translate(source: dict[str, Any], parameters: Mapping[str, str], region: str) -> dict[str, Any]:
    from samtranslator.translator.transform import transform  # the translator: only when translating

    # The translator records usage metrics it never publishes here and, when they are
    # garbage-collected, warns "There are unpublished metrics" on the console.
    logging.getLogger("samtranslator.metrics.metrics").setLevel(logging.ERROR)
    template = copy.deepcopy(source)
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = f"s3://{CODE_BUCKET}/{CODE_KEY}"
    saved = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = region  # the translator asks boto3 for the region
    try:
        translated: dict[str, Any] = transform(template, dict(parameters), _NoManagedPolicies())
    finally:
        if saved is None:
            os.environ.pop("AWS_DEFAULT_REGION", None)
        else:
            os.environ["AWS_DEFAULT_REGION"] = saved
    return translated


@contextmanager
def moto_cloudformation_quiet() -> Iterator[None]:
    """moto's CloudFormation logs and warns once per resource type it skips; the stack
    description (``ManagementStack.skipped``) says the same thing once."""
    parsing = logging.getLogger("moto")  # moto.cloudformation.parsing logs through it
    level = parsing.level
    parsing.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Tried to parse", category=UserWarning)
            yield
    finally:
        parsing.setLevel(level)


def _function_zip() -> bytes:
    buffer = io.BytesIO()
    root = ROOT / "src" / "function"
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*.py")):
            archive.write(path, path.relative_to(root).as_posix())
    return buffer.getvalue()


def stream_settings(resolver: Resolver, function_logical_id: str = "UpdateFunction") -> StreamSettings:
    events = resolver.properties(function_logical_id).get("Events", {})
    source = next(e["Properties"] for e in events.values() if e["Type"] == "DynamoDB")
    return StreamSettings.of(source)


def deploy(
    session: boto3.Session, account_id: str, region: str, parameters: Mapping[str, str] | None = None
) -> ManagementStack:
    """Create the management stack in the account of ``session`` (moto) and describe it."""
    parameters = dict(parameters or {})
    check_rules(Resolver(load(MANAGEMENT_TEMPLATE), parameters, account_id=account_id, region=region))
    template = translate(parameters, region)
    mappings = [k for k, v in template["Resources"].items() if v["Type"] == "AWS::Lambda::EventSourceMapping"]
    for logical_id in mappings:
        del template["Resources"][logical_id]

    s3 = session.client("s3", region_name=region)
    if region == "us-east-1":  # S3 refuses a LocationConstraint of us-east-1, and requires one elsewhere
        s3.create_bucket(Bucket=CODE_BUCKET)
    else:
        s3.create_bucket(Bucket=CODE_BUCKET, CreateBucketConfiguration={"LocationConstraint": region})
    s3.put_object(Bucket=CODE_BUCKET, Key=CODE_KEY, Body=_function_zip())

    cloudformation = session.client("cloudformation")
    with moto_cloudformation_quiet():
        cloudformation.create_stack(
            StackName=STACK_NAME,
            TemplateBody=json.dumps(template),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            Capabilities=["CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
        stack = cloudformation.describe_stacks(StackName=STACK_NAME)["Stacks"][0]
        if stack["StackStatus"] != "CREATE_COMPLETE":
            raise RuntimeError(
                f"management stack: {stack['StackStatus']} {stack.get('StackStatusReason', '')}"
            )
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        physical = {
            r["LogicalResourceId"]: r.get("PhysicalResourceId", "")
            for r in cloudformation.list_stack_resources(StackName=STACK_NAME)["StackResourceSummaries"]
        }
        created = set(physical)
    skipped = tuple(sorted(set(template["Resources"]) - created))

    budgets_table = outputs["BudgetsTableName"]
    stream_arn = session.client("dynamodb").describe_table(TableName=budgets_table)["Table"][
        "LatestStreamArn"
    ]
    resolver = Resolver(load(MANAGEMENT_TEMPLATE), parameters, account_id=account_id, region=region)
    policy = bus_policy(resolver)
    if policy is not None:
        session.client("events").put_permission(
            EventBusName=outputs["ResultBusArn"].rsplit("/", 1)[-1], Policy=json.dumps(policy)
        )
    roles = {
        logical_id: f"arn:{resolver.partition}:iam::{account_id}:role/{physical[resource['Properties']['Role']['Fn::GetAtt'][0]]}"
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Function"
        and isinstance(resource["Properties"].get("Role"), dict)
        and "Fn::GetAtt" in resource["Properties"]["Role"]
        and resource["Properties"]["Role"]["Fn::GetAtt"][0] in physical  # its condition held
    }
    return ManagementStack(
        account_id=account_id,
        region=region,
        budgets_table=budgets_table,
        status_table=outputs["StatusTableName"],
        defaults_table=outputs["DefaultsTableName"],
        stream_arn=stream_arn,
        on_failure_queue_url=outputs["OnFailureQueueUrl"],
        function_logical_id="UpdateFunction",
        stream=stream_settings(resolver),
        parameters=parameters,
        skipped=skipped + tuple(mappings),
        result_bus_arn=outputs["ResultBusArn"],
        approval_requests_table=outputs.get("ApprovalRequestsTableName", ""),
        approvals_table=outputs.get("ApprovalsTableName", ""),
        result_pattern=result_pattern(resolver),
        physical_ids={k: v for k, v in physical.items() if k == "AlarmTopic"},
        role_arns=roles,
        result_dead_letter_queue_url=physical.get("ResultDeadLetterQueue", ""),
        history_table=outputs["HistoryTableName"],
        history_failure_queue_url=outputs["HistoryFailureQueueUrl"],
    )


def result_pattern(resolver: Resolver, function_logical_id: str = "ResultFunction") -> dict[str, Any]:
    """The event pattern of the result bus's rule that invokes the result function."""
    raw = resolver.resource(function_logical_id)["Properties"]["Events"]
    rule = next(resolver.resolve(e["Properties"]) for e in raw.values() if e["Type"] == "EventBridgeRule")
    pattern: dict[str, Any] = rule["Pattern"]
    return pattern
