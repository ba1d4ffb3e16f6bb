"""Every request moto serves is authorised as AWS would (``budget_sync_local.iam``).

Hooked into moto's request dispatch (``BaseResponse._authenticate_and_authorize_normal_action``,
which every service but S3 calls before its action), while ``enforced()`` is active:

* The caller is the role session whose access key AssumeRole issued (``remember``), or,
  for any other key, the administrator of the account moto serves it from (the default
  credentials: the management account's own principal, whose identity policies allow
  everything, but who is still bound by trust and resource policies).
* The request becomes an IAM action and the resource ARN(s) it acts on (``_RESOURCES``:
  DynamoDB tables and streams, SSM parameters, budgets, event buses, queues, topics, roles,
  functions, stacks, keys, secrets; ``*`` for what names no resource).
* The identity policies are the role's inline and attached policies as moto holds them (as
  CloudFormation deployed them); the resource policy is the role's trust policy
  (``sts:AssumeRole``; ``OrganizationAccountAccessRole`` has the one AWS Organizations gives
  it), the event bus's policy, the queue's, the topic's or the key's.
* Context keys: ``aws:PrincipalArn``, ``aws:PrincipalAccount``, ``aws:PrincipalOrgID`` and
  ``aws:ResourceOrgID`` (from moto's Organizations), ``aws:ResourceAccount``,
  ``aws:SecureTransport`` (``true``: AWS's endpoints are HTTPS only), ``events:source``
  (each PutEvents entry's ``Source``), and for a service principal ``aws:SourceAccount`` and
  ``aws:SourceArn`` (and ``aws:SourceOrgID``, the organisation of the source account); for a
  key used through a service, ``kms:ViaService`` and
  ``kms:CallerAccount``; ``aws:userid`` of a role session (the role's id, ``:``, the session
  name, as STS GetCallerIdentity answers it); for a DynamoDB item call (``GetItem``,
  ``PutItem``, ``UpdateItem``, ``DeleteItem``) ``dynamodb:LeadingKeys`` (the partition key's
  value), ``dynamodb:Attributes`` (``PutItem``: the item's attribute names; ``UpdateItem``: the
  key's and those the update expression sets or removes) and ``dynamodb:ReturnValues`` (if
  given), as the DynamoDB Developer Guide's "Using IAM policy conditions for fine-grained access
  control" defines them.
* Queue and topic policies are the templates' own (``resource_policies`` applies them). A
  message to a topic or queue encrypted with a KMS key (``KmsMasterKeyId``) also needs
  ``kms:GenerateDataKey`` and ``kms:Decrypt`` on that key for the sender, through the
  service: the key's policy must allow it (``iam.Request.key_policy``). An AWS managed key
  (``alias/aws/sns``, ``alias/aws/sqs``) has AWS's policy: the account's principals through
  that service only, never a service principal. SQS-managed encryption
  (``SqsManagedSseEnabled``) needs no key permission.
* A service that publishes or sends for an account (CloudWatch's alarm actions, AWS Budgets'
  alerts, EventBridge's dead-letter queues) is authorised with ``service_sends``: the
  topic's or queue's policy and the key's policy must admit the service principal.

A refused call answers AWS's error: ``AccessDenied`` (query protocols: STS, SNS, IAM,
CloudFormation) or ``AccessDeniedException`` (JSON protocols), with AWS's message.
``STS GetCallerIdentity`` is never refused, as on AWS.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import unquote, urlparse

from moto.cloudformation.models import cloudformation_backends
from moto.core.exceptions import JsonRESTError, _RESTError
from moto.dynamodb.models import dynamodb_backends
from moto.events.models import events_backends
from moto.iam.models import iam_backends
from moto.kms.models import kms_backends
from moto.organizations.models import organizations_backends
from moto.sns.models import sns_backends
from moto.sqs.models import sqs_backends

from budget_sync_local.iam import AccessDenied, Policy, Principal, Request, context_keys, decide

#: Every member account that AWS Organizations creates has this role, trusted by the
#: management account's root and with AdministratorAccess.
ADMIN_ROLE = "OrganizationAccountAccessRole"
_ADMINISTRATOR = Policy.of({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})

_LOCK = threading.Lock()
_enforcing = 0
#: access key id -> the role session it belongs to (AssumeRole records it)
_SESSIONS: dict[str, Principal] = {}
#: account -> its organisation's id (only accounts found in one; membership is not revoked here)
_ORGS: dict[str, str] = {}


@contextlib.contextmanager
def enforced() -> Iterator[None]:
    """Authorise every request while the block runs (re-entrant)."""
    global _enforcing
    with _LOCK:
        _enforcing += 1
    try:
        yield
    finally:
        with _LOCK:
            _enforcing -= 1


def is_enforced() -> bool:
    return _enforcing > 0


def remember(access_key_id: str, role_arn: str, session_name: str) -> None:
    """The session AssumeRole issued this key for (its role's policies decide its calls)."""
    parts = role_arn.split(":")
    _SESSIONS[access_key_id] = Principal(
        account=parts[4], partition=parts[1], role_name=role_arn.rsplit("/", 1)[-1], session_name=session_name
    )


def clear() -> None:
    _SESSIONS.clear()
    _ORGS.clear()


def principal_of(access_key_id: str, account: str, partition: str = "aws") -> Principal:
    return _SESSIONS.get(access_key_id) or Principal(account=account, partition=partition)


# -- what the policies say ---------------------------------------------------------------------


def organisation_of(account: str, partition: str = "aws") -> str | None:
    """The id of the organisation an account belongs to, in moto's Organizations."""
    found = _ORGS.get(account)
    if found is not None:
        return found
    master = organizations_backends.master_accounts.get(account, (account, partition))[0]
    backend = organizations_backends[master][partition]
    org = backend.org if account == master or account in {a.id for a in backend.accounts} else None
    if org is None:
        return None
    _ORGS[account] = org.id
    return str(org.id)


def _role(account: str, partition: str, name: str) -> Any:
    backend = iam_backends[account][partition]
    return next((role for role in backend.roles.values() if role.name == name), None)


def identity_policies(principal: Principal) -> tuple[Policy, ...] | None:
    """The role's inline and attached policies (None: an administrator, allowed everything)."""
    if principal.role_name is None:
        return None
    role = _role(principal.account, principal.partition, principal.role_name)
    # AWS Organizations attaches AdministratorAccess to the role it creates.
    policies = [_ADMINISTRATOR] if principal.role_name == ADMIN_ROLE else []
    if role is None:
        return tuple(policies)
    policies += [Policy.of(document) for document in role.policies.values()]
    for managed in role.managed_policies.values():
        version = next(v for v in managed.versions if v.is_default)
        policies.append(Policy.of(version.document))
    return tuple(policies)


def trust_policy(role_arn: str) -> Policy | None:
    parts = role_arn.split(":")
    if len(parts) != 6 or "/" not in parts[5]:
        return None
    account, partition, name = parts[4], parts[1], role_arn.rsplit("/", 1)[-1]
    role = _role(account, partition, name)
    if role is not None:
        return Policy.of(role.assume_role_policy_document)
    if name == ADMIN_ROLE and organisation_of(account, partition) is not None:
        master = organizations_backends.master_accounts.get(account, (account, partition))[0]
        return Policy.of(
            {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:{partition}:iam::{master}:root"},
                        "Action": "sts:AssumeRole",
                    }
                ]
            }
        )
    return None


def _bus_policy(arn: str) -> Policy | None:
    parts = arn.split(":")
    bus = events_backends[parts[4]][parts[3]].event_buses.get(parts[5].split("/", 1)[-1])
    policy = bus.policy if bus is not None else None
    return Policy.of(policy) if policy else None


def _queue_policy(arn: str) -> Policy | None:
    parts = arn.split(":")
    queue = sqs_backends[parts[4]][parts[3]].queues.get(parts[5])
    policy = getattr(queue, "policy", None)
    return Policy.of(policy) if policy else None


def _topic_policy(arn: str) -> Policy | None:
    parts = arn.split(":")
    topic = sns_backends[parts[4]][parts[3]].topics.get(arn)
    policy = getattr(topic, "policy", None) if topic is not None else None
    return Policy.of(policy) if policy else None


#: AWS managed keys' aliases: their policies are AWS's own (``_managed_key_policy``).
_MANAGED_KEYS = ("alias/aws/sns", "alias/aws/sqs")


def _managed_key_policy(alias: str, account: str, region: str) -> Policy:
    """An AWS managed key's policy (AWS KMS Developer Guide, "AWS managed keys": each
    allows the account's principals through its service only, kms:CallerAccount and
    kms:ViaService): no service principal (CloudWatch, AWS Budgets) may use it."""
    service = alias.rsplit("/", 1)[-1]
    return Policy.of(
        {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*"],
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": {
                            "kms:CallerAccount": account,
                            "kms:ViaService": f"{service}.{region}.amazonaws.com",
                        }
                    },
                }
            ]
        }
    )


def _key(key_id: str, account: str, region: str) -> Any:
    parts = key_id.split(":")
    if len(parts) > 5:
        account, region = parts[4], parts[3]
    backend = kms_backends[account][region]
    try:
        return backend.describe_key(key_id)
    except (KeyError, TypeError):
        return None


def _key_policy(arn: str) -> Policy | None:
    parts = arn.split(":")
    resource = parts[5]
    if resource.startswith("alias/aws/"):
        return _managed_key_policy(resource, parts[4], parts[3])
    key = _key(arn, parts[4], parts[3])
    policy = getattr(key, "policy", None)
    return Policy.of(policy) if policy else None


def encryption_key(resource: str) -> str | None:
    """The ARN of the KMS key a topic or queue is encrypted with (``KmsMasterKeyId``; an AWS
    managed key as its alias ARN), or None (not encrypted, or SQS-managed keys)."""
    parts = resource.split(":")
    if len(parts) != 6:
        return None
    service, region, account = parts[2], parts[3], parts[4]
    if service == "sns":
        topic = sns_backends[account][region].topics.get(resource)
        key_id = str(getattr(topic, "kms_master_key_id", "") or "")
    elif service == "sqs":
        queue = sqs_backends[account][region].queues.get(parts[5])
        key_id = str(getattr(queue, "kms_master_key_id", "") or "")
    else:
        return None
    if not key_id:
        return None
    if key_id.startswith("arn:"):
        key_parts = key_id.split(":")
        account, region, key_id = key_parts[4], key_parts[3], key_parts[5]
    if key_id in _MANAGED_KEYS:
        return f"arn:{parts[1]}:kms:{region}:{account}:{key_id}"
    key = _key(key_id, account, region)
    return str(key.arn) if key is not None else f"arn:{parts[1]}:kms:{region}:{account}:key/{key_id}"


def _uses_key(
    principal: Principal, resource: str, region: str, extra: Mapping[str, str | Sequence[str] | None]
) -> None:
    """A message to an encrypted topic or queue: the service uses its KMS key for the caller
    (kms:GenerateDataKey and kms:Decrypt, through the service: kms:ViaService). Amazon SNS
    Developer Guide, "Setting up topic encryption" / Amazon SQS Developer Guide, "Key
    management": the publisher needs both on the key."""
    key = encryption_key(resource)
    if key is None:
        return
    service = resource.split(":")[2]
    context: dict[str, str | Sequence[str] | None] = {
        **extra,
        "kms:ViaService": f"{service}.{region or resource.split(':')[3]}.amazonaws.com",
        "kms:CallerAccount": principal.account if principal.service is None else None,
    }
    for action in ("kms:GenerateDataKey", "kms:Decrypt"):
        authorise(principal, action, key, region=region, extra=context)


def authorise(
    principal: Principal,
    action: str,
    resource: str,
    *,
    region: str = "",
    extra: Mapping[str, str | Sequence[str] | None] | None = None,
) -> None:
    """Raise AccessDenied where AWS would refuse ``principal`` the ``action`` on ``resource``
    (an ARN; ``*`` for none), with the identity and resource policies moto holds."""
    parts = resource.split(":")
    resource_account = parts[4] if len(parts) > 5 and parts[4] else principal.account
    service = parts[2] if len(parts) > 5 else ""
    if action.lower() == "sts:assumerole":
        held = trust_policy(resource)
    elif service == "events" and ":event-bus/" in resource:
        held = _bus_policy(resource)
    elif service == "sqs":
        held = _queue_policy(resource)
    elif service == "sns":
        held = _topic_policy(resource)
    elif service == "kms":
        held = _key_policy(resource)
    else:
        held = None
    context = context_keys(
        aws_PrincipalArn=principal.arn if principal.service is None else None,
        aws_PrincipalAccount=principal.account if principal.service is None else None,
        aws_PrincipalOrgID=organisation_of(principal.account, principal.partition)
        if principal.service is None
        else None,
        aws_ResourceAccount=resource_account,
        aws_ResourceOrgID=organisation_of(resource_account, principal.partition),
        aws_SecureTransport="true",
        aws_RequestedRegion=region or None,
        aws_userid=_user_id(principal),
    )
    for key, value in (extra or {}).items():
        if value:
            context[key.lower()] = (value,) if isinstance(value, str) else tuple(value)
    decide(
        Request(
            principal=principal,
            action=action,
            resource=resource,
            resource_account=resource_account,
            context=context,
            resource_policy=held,
            identity=identity_policies(principal),
            key_policy=service == "kms",
        )
    )


def _user_id(principal: Principal) -> str | None:
    """``aws:userid`` of a role session: the role's unique id and the session name."""
    if principal.role_name is None or principal.service is not None:
        return None
    role = _role(principal.account, principal.partition, principal.role_name)
    return None if role is None else f"{role.id}:{principal.session_name}"


_ITEM_CALLS = {"GetItem", "PutItem", "UpdateItem", "DeleteItem"}


def _dynamodb_keys(account: str, region: str, action: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The DynamoDB condition keys of an item call (fine-grained access control)."""
    if action not in _ITEM_CALLS or "TableName" not in params:
        return {}
    try:
        table = dynamodb_backends[account][region].get_table(str(params["TableName"]))
    except Exception:  # no such table: DynamoDB answers that itself
        return {}
    key = params.get("Item") if action == "PutItem" else params.get("Key")
    key = key if isinstance(key, Mapping) else {}
    leading = key.get(table.hash_key_attr)
    context: dict[str, Any] = {
        "dynamodb:LeadingKeys": [next(iter(leading.values()))]
        if isinstance(leading, Mapping) and leading
        else None,
        "dynamodb:ReturnValues": params.get("ReturnValues"),
    }
    if action == "PutItem":
        context["dynamodb:Attributes"] = sorted(key)
    elif action == "UpdateItem":
        names = params.get("ExpressionAttributeNames") or {}
        expression = str(params.get("UpdateExpression") or "")
        updated = {names.get(n, n) for n in _update_targets(expression)}
        context["dynamodb:Attributes"] = sorted(set(key) | updated)
    return context


def _update_targets(expression: str) -> list[str]:
    """The top-level attribute names an update expression writes: ``SET a = :v, #b = :w
    REMOVE c`` -> a, #b, c."""
    clauses = re.split(r"\b(?:SET|REMOVE|ADD|DELETE)\b", expression, flags=re.IGNORECASE)[1:]
    targets = []
    for clause in clauses:
        for part in _top_level_split(clause):
            name = re.split(r"[\s=.\[]", part.strip(), maxsplit=1)[0]
            if name:
                targets.append(name)
    return targets


def _top_level_split(text: str) -> list[str]:
    """``a = :v, b = list_append(b, :x)`` -> the assignments, split on commas outside brackets."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


def sends(
    principal: Principal,
    action: str,
    resource: str,
    *,
    region: str = "",
    extra: Mapping[str, str | Sequence[str] | None] | None = None,
) -> None:
    """``sns:Publish`` / ``sqs:SendMessage``: the topic's or queue's own policy and, if it is
    encrypted with a KMS key, that key's policy for the caller."""
    authorise(principal, action, resource, region=region, extra=extra)
    _uses_key(principal, resource, region, extra or {})


def service_sends(
    service: str, action: str, resource: str, source_account: str, source_arn: str = ""
) -> None:
    """A service (``cloudwatch.amazonaws.com`` for an alarm's action, ``budgets.amazonaws.com``
    for a budget's alert, ``events.amazonaws.com`` for a rule's dead-letter queue) publishing
    or sending for ``source_account``: the topic's or queue's policy must admit it, and the
    KMS key's policy too if there is one (no identity policy takes part). Raises AccessDenied."""
    if not is_enforced():
        return
    sends(
        Principal(account=source_account, service=service),
        action,
        resource,
        region=resource.split(":")[3],
        extra={
            "aws:SourceAccount": source_account,
            "aws:SourceArn": source_arn or None,
            # the organisation of the account whose resource makes the request
            "aws:SourceOrgID": organisation_of(source_account, resource.split(":")[1]),
        },
    )


def service_assumes(role_arn: str, service: str, source_account: str, source_arn: str = "") -> None:
    """A service (``lambda.amazonaws.com``, ``events.amazonaws.com``) assuming a role for an
    account: only the role's trust policy decides, with ``aws:SourceAccount``/``aws:SourceArn``."""
    authorise(
        Principal(account=source_account, service=service),
        "sts:AssumeRole",
        role_arn,
        extra={"aws:SourceAccount": source_account, "aws:SourceArn": source_arn or None},
    )


def forwarded(role_arn: str, bus_arn: str, event: Mapping[str, Any], rule_arn: str = "") -> None:
    """An EventBridge rule's target puts ``event`` on another bus with its role: EventBridge
    assumes the role (its trust policy, for the rule's account and ARN), and the role's
    PutEvents must be allowed by its own policy and by the bus's policy. Raises AccessDenied."""
    if not is_enforced():
        return
    rule_account = rule_arn.split(":")[4] if rule_arn.count(":") >= 5 else str(event.get("account"))
    service_assumes(role_arn, "events.amazonaws.com", rule_account, rule_arn)
    parts = role_arn.split(":")
    role = Principal(
        account=parts[4], partition=parts[1], role_name=role_arn.rsplit("/", 1)[-1], session_name="events"
    )
    authorise(
        role,
        "events:PutEvents",
        bus_arn,
        region=str(event.get("region", "")),
        extra={"events:source": event.get("source")},
    )


# -- requests -> actions and resources ---------------------------------------------------------

_PREFIX = {"dynamodbstreams": "dynamodb", "awslambda": "lambda"}
_BUDGET_READS = ("Describe", "View")
_QUERY_PROTOCOLS = {"sts", "sns", "iam", "cloudformation"}
#: Messages to a topic or queue: its KMS key is used for the caller, if it has one.
_SENDS = {"sns:Publish", "sns:PublishBatch", "sqs:SendMessage", "sqs:SendMessageBatch"}
_LAMBDA_ACTIONS = {"Invoke": "InvokeFunction", "InvokeAsync": "InvokeAsync"}


def _iam_action(prefix: str, action: str) -> str:
    if prefix == "budgets":
        return "budgets:ViewBudget" if action.startswith(_BUDGET_READS) else "budgets:ModifyBudget"
    if prefix == "lambda":
        action = _LAMBDA_ACTIONS.get(action, re.sub(r"20\d{6}$", "", action))
    return f"{prefix}:{action}"


def _dynamodb(arn: Callable[[str], str], action: str, params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """DynamoDB's actions on their tables; a transaction is authorised item by item, with
    each item's own action (``dynamodb:UpdateItem``, ``dynamodb:ConditionCheckItem``...), as
    the DynamoDB developer guide's "IAM policies for transactions" describes."""
    if action in ("TransactWriteItems", "TransactGetItems"):
        names = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "Get": "GetItem"}
        names["ConditionCheck"] = "ConditionCheckItem"
        wanted = {
            (f"dynamodb:{names[kind]}", arn(f"table/{operation['TableName']}"))
            for item in params.get("TransactItems", [])
            for kind, operation in item.items()
        }
        return sorted(wanted)
    iam_action = f"dynamodb:{action}"
    if "StreamArn" in params:
        return [(iam_action, str(params["StreamArn"]))]
    if "ShardIterator" in params:  # moto's iterators (as AWS's) begin with the stream's ARN
        return [(iam_action, str(params["ShardIterator"]).split("|", 1)[0])]
    if "TableName" in params:
        return [(iam_action, arn(f"table/{params['TableName']}"))]
    tables = sorted({arn(f"table/{name}") for name in params.get("RequestItems", {})}) or ["*"]
    return [(iam_action, table) for table in tables]


def _parameter(arn: Callable[[str], str], name: str) -> str:
    if name.startswith("arn:"):
        return name
    return arn(f"parameter{name}" if name.startswith("/") else f"parameter/{name}")


def _ssm(arn: Callable[[str], str], params: Mapping[str, Any]) -> list[str]:
    if "Name" in params:
        return [_parameter(arn, str(params["Name"]))]
    if "Names" in params:
        return sorted({_parameter(arn, str(n)) for n in params["Names"]}) or ["*"]
    if "Path" in params:
        return [_parameter(arn, str(params["Path"]))]
    return ["*"]


def _events(arn: Callable[[str], str], params: Mapping[str, Any]) -> list[str]:
    if "Entries" in params and isinstance(params["Entries"], list):
        buses = set()
        for entry in params["Entries"]:
            name = str(entry.get("EventBusName") or "default")
            buses.add(name if name.startswith("arn:") else arn(f"event-bus/{name}"))
        return sorted(buses) or ["*"]
    if "Rule" in params or ("Name" in params and "EventPattern" in params):
        bus = str(params.get("EventBusName") or "default")
        name = str(params.get("Rule") or params.get("Name"))
        return [arn(f"rule/{name}" if bus == "default" else f"rule/{bus}/{name}")]
    return ["*"]


def _sqs(region: str, partition: str, params: Mapping[str, Any]) -> list[str]:
    url = str(params.get("QueueUrl", ""))
    if not url:
        return ["*"]
    account, name = urlparse(url).path.strip("/").split("/")[-2:]
    return [f"arn:{partition}:sqs:{region}:{account}:{name}"]


def requests_of(response: Any, prefix: str, action: str, params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The IAM action(s) a request performs and the resource ARN each acts on."""
    if prefix == "dynamodb":
        return _dynamodb(
            lambda path: (
                f"arn:{response.partition}:dynamodb:{response.region}:{response.current_account}:{path}"
            ),
            action,
            params,
        )
    iam_action = _iam_action(prefix, action)
    return [(iam_action, arn) for arn in resources_of(response, prefix, params)]


def resources_of(response: Any, prefix: str, params: Mapping[str, Any]) -> list[str]:
    region, partition, account = response.region, response.partition, response.current_account

    def arn(path: str, service: str = prefix, in_region: str = region) -> str:
        return f"arn:{partition}:{service}:{in_region}:{account}:{path}"

    if prefix == "ssm":
        return _ssm(arn, params)
    if prefix == "budgets":
        return [_budget_arn(partition, account, params)]
    if prefix == "events":
        return _events(arn, params)
    if prefix == "sqs":
        return _sqs(region, partition, params)
    if prefix == "sns":
        return [str(params.get("TopicArn") or params.get("TargetArn") or "*")]
    if prefix == "lambda":
        return [_function_arn(arn, response.path or "")]
    if prefix == "organizations":
        return [_organizations_arn(partition, account, params)]
    if prefix == "cloudformation":
        return [_stack_arn(arn, region, account, params)]
    return [_named_resource(prefix, arn, params)]


def _budget_arn(partition: str, account: str, params: Mapping[str, Any]) -> str:
    budget = params.get("NewBudget") or params.get("Budget") or {}
    name = params.get("BudgetName") or (budget.get("BudgetName") if isinstance(budget, dict) else None)
    owner = params.get("AccountId", account)
    return (
        f"arn:{partition}:budgets::{owner}:budget/{name}"
        if name
        else f"arn:{partition}:budgets::{owner}:budget/*"
    )


def _function_arn(arn: Callable[[str], str], path: str) -> str:
    """The function a Lambda call names in its path; ``*`` for calls that name none."""
    match = re.search(r"/functions/([^/]+)", path)
    if not match:
        return "*"
    name = unquote(match.group(1))
    return name if name.startswith("arn:") else arn(f"function:{name}")


def _stack_arn(arn: Callable[[str], str], region: str, account: str, params: Mapping[str, Any]) -> str:
    """The StackSet or stack a CloudFormation call names; ``*`` for calls that name none."""
    if "StackSetName" in params:
        return _stack_set_arn(region, account, str(params["StackSetName"]))
    if "StackName" in params:
        name = str(params["StackName"])
        return name if name.startswith("arn:") else arn(f"stack/{name}/*")
    return "*"


def _named_resource(prefix: str, arn: Callable[[str], str], params: Mapping[str, Any]) -> str:
    """The role an STS call assumes, the key a KMS call names, the secret a Secrets Manager call
    names (its ARN, or ``secret:NAME`` for a name); ``*`` for any other call."""
    if prefix == "sts" and "RoleArn" in params:
        return str(params["RoleArn"])
    if prefix == "secretsmanager" and params.get("SecretId"):
        secret = str(params["SecretId"])
        return secret if secret.startswith("arn:") else arn(f"secret:{secret}")
    if prefix == "kms" and "KeyId" in params:
        key = str(params["KeyId"])
        return key if key.startswith("arn:") else arn(f"key/{key}")
    return "*"


def _organizations_arn(partition: str, account: str, params: Mapping[str, Any]) -> str:
    """The root, OU or account a call names, as Organizations' ARNs (organisation's
    management account, organisation id); ``*`` for calls that name none."""
    target = next(
        (str(params[k]) for k in ("ChildId", "AccountId", "OrganizationalUnitId", "ParentId") if k in params),
        "",
    )
    organisation = organisation_of(account, partition)
    if not target or organisation is None:
        return "*"
    master = organizations_backends.master_accounts.get(account, (account, partition))[0]
    kind = "root" if target.startswith("r-") else "ou" if target.startswith("ou-") else "account"
    return f"arn:{partition}:organizations::{master}:{kind}/{organisation}/{target}"


def _stack_set_arn(region: str, account: str, name: str) -> str:
    if name.startswith("arn:"):
        return name
    backend = cloudformation_backends[account][region]
    found = next((s for s in backend.stacksets.values() if s.name == name or s.id == name), None)
    return (
        str(found.arn)
        if found is not None
        else f"arn:aws:cloudformation:{region}:{account}:stackset/{name}:*"
    )


def _params(response: Any) -> dict[str, Any]:
    body = response.body
    if isinstance(body, dict):  # DynamoDB's handler has parsed it already
        return body
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    if isinstance(body, str) and body.lstrip().startswith("{"):
        with contextlib.suppress(ValueError):
            parsed = json.loads(body)
            if isinstance(parsed, dict):
                return parsed
    return {k: (v[0] if isinstance(v, list) and v else v) for k, v in (response.querystring or {}).items()}


def _refusal(service: str, denied: AccessDenied) -> Exception:
    if service in _QUERY_PROTOCOLS:
        error: Exception = _RESTError("AccessDenied", str(denied))
        error.code = 403  # type: ignore[attr-defined]
        return error
    return JsonRESTError("AccessDeniedException", str(denied))


def _authorise_request(original: Callable[..., Any]) -> Callable[..., Any]:
    def authenticate_and_authorize(self: Any, resource: str = "*") -> None:
        if not _enforcing:
            original(self, resource)
            return
        service = str(self.service_name or "")
        action = self._get_action()
        if not action or (service == "sts" and action == "GetCallerIdentity"):
            return
        prefix = _PREFIX.get(service, service)
        params = _params(self)
        principal = principal_of(self.access_key, self.current_account, self.partition)
        iam_action = _iam_action(prefix, action)
        try:
            if prefix == "events" and action == "PutEvents":
                for entry in params.get("Entries", []):
                    name = str(entry.get("EventBusName") or "default")
                    bus = (
                        name
                        if name.startswith("arn:")
                        else f"arn:{self.partition}:events:{self.region}:{self.current_account}:event-bus/{name}"
                    )
                    authorise(
                        principal,
                        iam_action,
                        bus,
                        region=self.region,
                        extra={"events:source": entry.get("Source")},
                    )
                return
            extra = (
                _dynamodb_keys(self.current_account, self.region, action, params)
                if prefix == "dynamodb"
                else {}
            )
            for wanted, arn in requests_of(self, prefix, action, params):
                if wanted in _SENDS:
                    sends(principal, wanted, arn, region=self.region)
                else:
                    authorise(principal, wanted, arn, region=self.region, extra=extra)
        except AccessDenied as denied:
            raise _refusal(service, denied) from None

    return authenticate_and_authorize
