"""The one place where the local organisation adds what moto 5.2 leaves out.

Each stand-in is the smallest faithful copy of the AWS behaviour that budget-sync relies
on, patched into moto's backends (so it works for ``mock_aws()`` in-process and for a
``moto.server.ThreadedMotoServer`` in the same process alike) while ``installed()`` is
active. One module per service (``sts``, ``ssm``, ``budgets``, ``events``, ``automation``;
``speed`` holds the speed-ups, ``bus`` the event subscribers); this package installs them:

* STS ``AssumeRole`` of a role that does not exist in the target account is refused with
  ``AccessDenied`` (moto lets any ARN be assumed). ``OrganizationAccountAccessRole`` is
  always there: AWS Organizations creates it in every member account.
* IAM (``authorisation``): while ``authorisation.enforced()`` is active (the local
  organisation enters it), every request is authorised against the caller's identity
  policies and the trust or resource policy it crosses (``budget_sync_local.iam``), with
  AWS's ``AccessDenied`` / ``AccessDeniedException``. ``service_credentials`` is a service
  (Lambda, EventBridge, SSM) assuming a role for an account: its trust policy decides.
* CloudFormation's ``AWS::SQS::QueuePolicy`` and ``AWS::SNS::TopicPolicy`` (moto 5.2 skips
  both): the template's policy becomes the queue's or topic's ``Policy``
  (``resource_policies``), so that ``authorisation`` evaluates it.
* SSM ``PutParameter`` enforces the ``AllowedPattern`` the call brings or the parameter
  has (``ParameterPatternMismatchException``), on create and overwrite, as AWS does; moto
  stores the pattern only.
* Every Budgets request, moto's own operations included, is validated on the server side
  against botocore's service model (``model_validation``: required members, types, enums,
  ranges, lengths, patterns, nested shapes) and the API reference's rules across members
  (one of ``BudgetLimit`` / ``PlannedBudgetLimits``; FilterExpression and Metrics or
  CostFilters and CostTypes, not both; FilterExpression at most 2 deep), answering
  ``InvalidParameterException`` naming the member and the value, whatever the client
  checked itself.
* Budgets ``UpdateBudget`` (missing in moto 5.2): ``NewBudget`` replaces the whole
  definition except the name; the calculated spend reads zero afterwards (until
  ``set_calculated_spend``); ``NotFoundException`` if the budget does not exist.
  Reachable through ``boto3.client("budgets").update_budget``.
* Budgets ``DescribeBudgets``, ``DescribeNotificationsForBudget`` and
  ``DescribeSubscribersForNotification`` page (``MaxResults``/``NextToken``); a missing
  budget's notifications are ``NotFoundException``; ``DeleteSubscriber`` of a
  notification's last subscriber deletes the notification; moto's default ``CostTypes``
  are not returned for a budget defined with ``FilterExpression`` or ``Metrics``.
* Budgets notifications and subscribers (moto 5.2 has no subscriber APIs and no
  ``UpdateNotification``, and checks nothing on ``CreateNotification``):
  ``CreateSubscriber``, ``DeleteSubscriber``, ``UpdateSubscriber``,
  ``DescribeSubscribersForNotification``, ``UpdateNotification``, and checked
  ``CreateBudget`` / ``CreateNotification`` / ``DeleteNotification``, with AWS's limits
  (10 notifications per budget, one SNS and 10 email subscribers per notification) and
  errors (``NotFoundException``, ``DuplicateRecordException``,
  ``CreationLimitExceededException``, ``InvalidParameterException``).
* Every successful SSM ``PutParameter`` / ``DeleteParameter(s)`` produces the
  ``Parameter Store Change`` event that AWS puts on the account's default event bus, and
  hands it to the subscribers (``StandIns.subscribe``). moto emits no such event.
* Budgets ``DescribeNotificationsForBudget`` answers each notification's
  ``NotificationState`` (``ALARM`` or ``OK``) from the budget's simulated spend
  (``budgets.notification_state``); moto stores none.
* SNS delivers a topic's message to an SQS queue in another account (moto looks the queue
  up in the topic's account) once the queue's policy admits ``sns.amazonaws.com`` for the
  topic (``sns_delivery``).
* Budgets ``DescribeBudget`` returns ``FilterExpression`` only with
  ``ShowFilterExpression=true``, as AWS documents (moto returns it always).
* EventBridge ``PutEvents`` hands each event, as EventBridge would route it (``account`` and
  ``region`` of the sender), to the subscribers instead of moto's own delivery: the local
  pipeline matches the templates' rules (the spoke's forwarding rules, the management
  account's result rule) and delivers it, keeping the sender's ``account`` as AWS does
  across accounts.
* ``automation_status_event`` is the ``EC2 Automation Execution Status-change Notification``
  that AWS puts on the account's default bus when an execution ends; the local pipeline
  emits it after each run.
* ``run_automation`` executes an Automation document's steps against moto (moto has no
  ``StartAutomationExecution``): parameters with defaults and ``allowedPattern``,
  ``{{ }}`` substitution, ``aws:executeScript`` (the inline script's handler, its
  ``boto3`` bound to the automation's credentials) and ``aws:executeAwsApi``, step
  outputs, ``onFailure``.
* Lambda ``Invoke`` of a budget-sync function (handler in ``budget_sync.``) runs it
  in-process through the project's own runtime (``lambda_runtime``), with the environment
  moto stored for it; moto would need Docker. ``budgetctl reconcile --apply`` uses it.
* CloudFormation ``ListStackSetOperationResults`` per instance: ``fail_stack_instance``
  declares an account's instance FAILED with a reason inside an operation that SUCCEEDED
  (moto reports every instance with the operation's status).
* (speed only) moto's CloudFormation parses a JSON template body with the json module; an
  account's existing backend is found without moto's process-wide lock; the keys moto's
  serialiser tries on a dict are computed once per shape and key; an UpdateExpression text is
  parsed once (its AST is only read; moto's validator copies it), and moto's validation
  traversals build their node-class map once per traversal, not at every node.
* Organizations ``CreateAccount`` and ``MoveAccount`` produce the CloudTrail events AWS
  delivers in us-east-1 (``CreateAccountResult``, ``MoveAccount``), for the management
  account's subscribers (``subscribe_management``); see ``organizations``.
* A service-managed StackSet's instances are the spoke stacks the local organisation
  deployed (``ListStackInstances``), each with its ``CloudFormation StackSet StackInstance
  Status Change`` event; see ``stacksets``.
* DynamoDB Streams numbers each record of a shard once, in order, whichever threads write
  the table (``dynamodb_streams``: moto numbers by the shard's length before appending, so
  two concurrent writes could share a number and a reader be handed the last one for ever).
* ``pattern_matches`` is EventBridge's pattern matching, with moto's own matcher
  (moto's ``TestEventPattern`` answers without a result).

Not emulated: what docs/local.md ("IAM") lists as not evaluated, EventBridge delivery
latency and retries, the budget's real spend (``set_calculated_spend`` sets it by hand).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any, cast

from botocore import xform_name
from moto.awslambda.models import LambdaFunction
from moto.budgets.models import Budget, BudgetsBackend
from moto.budgets.responses import BudgetsResponse
from moto.cloudformation import parsing as cfn_parsing
from moto.cloudformation.models import Stack as CloudFormationStack
from moto.cloudformation.responses import CloudFormationResponse
from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.base_backend import BackendDict
from moto.core.serialize import XFormedAttributePicker
from moto.dynamodb.comparisons import ConditionExpressionParser
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import StreamShard
from moto.dynamodb.parsing import validators as dynamodb_validators
from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser  # type: ignore[attr-defined]
from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]
from moto.dynamodb.parsing.validators import UpdateExpressionValidator
from moto.dynamodbstreams.responses import DynamoDBStreamsHandler
from moto.events.models import EventsBackend
from moto.iam import models as iam_models
from moto.organizations.models import OrganizationsBackend
from moto.sns.models import Subscription as SnsSubscription
from moto.ssm.models import SimpleSystemManagerBackend
from moto.ssm.responses import SimpleSystemManagerResponse
from moto.sts.models import STSBackend

from budget_sync_local.standins import authorisation, dynamodb_streams, resource_policies, sns_delivery
from budget_sync_local.standins import organizations as _organizations
from budget_sync_local.standins import stacksets as _stacksets
from budget_sync_local.standins.automation import (
    AutomationParameterError,
    AutomationResult,
    _response_stop_automation_execution,
    automation_status_event,
    run_automation,
)
from budget_sync_local.standins.awslambda import _invoke_in_process
from budget_sync_local.standins.budgets import (
    RESPONSE_METHODS,
    _backend_create_budget,
    _backend_create_notification,
    _backend_delete_notification,
    _backend_update_budget,
    _budget_to_dict,
    _response_describe_budget,
    _response_method,
    _response_update_budget,
    notifications_with_subscribers,
    service_model,
    set_calculated_spend,
    set_health,
    validated,
)
from budget_sync_local.standins.bus import EventCallback, StandIns
from budget_sync_local.standins.cloudformation import (
    _list_operation_results,
    _update_or_skip_absent,
    clear_failed_instances,
    fail_stack_instance,
)
from budget_sync_local.standins.events import _put_events, pattern_matches
from budget_sync_local.standins.organizations import publish_management, subscribe_management
from budget_sync_local.standins.resource_policies import publish_to_topic
from budget_sync_local.standins.speed import (
    _CONDITION_TOKENS,
    _KEY_ACCOUNTS,
    _STRUCTURE_CHECKED,
    _account_backend_without_lock,
    _ast_copy,
    _condition_lexed_once,
    _json_first,
    _node_types_once_per_traversal,
    _possible_keys_remembered,
    _remembered_account_lookup,
    _snapshot_each_table_once,
    _stream_records_written_directly,
    _structure_checked_once,
    _update_expression_parsed_once,
)
from budget_sync_local.standins.ssm import (
    _delete_parameter,
    _delete_parameters,
    _put_parameter,
    parameter_arn,
    parameter_store_change_event,
)
from budget_sync_local.standins.sts import ADMIN_ROLE, _assume_existing_role_only, service_credentials

_INSTALL_LOCK = threading.RLock()
_active: StandIns | None = None


@contextlib.contextmanager
def installed() -> Iterator[StandIns]:
    """Patch moto with the stand-ins until the block exits.

    Re-entrant: inside an active installation this yields the same ``StandIns`` and
    patches nothing twice (one write, one event).
    """
    global _active
    with _INSTALL_LOCK:
        if _active is not None:
            outer: StandIns | None = _active
        else:
            outer = None
            stand_ins = StandIns()
            patches = contextlib.ExitStack()
            _patch(patches, stand_ins)
            _active = stand_ins
    if outer is not None:
        yield outer
        return
    try:
        yield stand_ins
    finally:
        with _INSTALL_LOCK:
            patches.close()
            _active = None


def _patch(stack: contextlib.ExitStack, stand_ins: StandIns) -> None:
    def replace(owner: type, name: str, value: Any) -> None:
        original = owner.__dict__.get(name)
        setattr(owner, name, value)
        if original is None:
            stack.callback(delattr, owner, name)
        else:
            stack.callback(setattr, owner, name, original)

    replace(STSBackend, "assume_role", _assume_existing_role_only(STSBackend.assume_role))
    replace(SnsSubscription, "publish", sns_delivery.cross_account_publish(SnsSubscription.publish))
    replace(
        ActionAuthenticatorMixin,
        "_authenticate_and_authorize_normal_action",
        authorisation._authorise_request(ActionAuthenticatorMixin._authenticate_and_authorize_normal_action),
    )
    stack.callback(authorisation.clear)
    replace(
        SimpleSystemManagerBackend,
        "put_parameter",
        _put_parameter(SimpleSystemManagerBackend.put_parameter, stand_ins),
    )
    replace(
        SimpleSystemManagerBackend,
        "delete_parameter",
        _delete_parameter(SimpleSystemManagerBackend.delete_parameter, stand_ins),
    )
    replace(
        SimpleSystemManagerBackend,
        "delete_parameters",
        _delete_parameters(SimpleSystemManagerBackend.delete_parameters, stand_ins),
    )
    replace(EventsBackend, "put_events", _put_events(stand_ins))
    replace(SimpleSystemManagerResponse, "stop_automation_execution", _response_stop_automation_execution)
    replace(BudgetsBackend, "update_budget", _backend_update_budget)
    replace(LambdaFunction, "invoke", _invoke_in_process(LambdaFunction.invoke))
    replace(CloudFormationResponse, "list_stack_set_operation_results", _list_operation_results)
    replace(
        cast(type, cfn_parsing),
        "resource_class_from_type",
        resource_policies.resource_class_from_type(cfn_parsing.resource_class_from_type),
    )
    replace(
        cast(type, cfn_parsing),
        "parse_and_update_resource",
        _update_or_skip_absent(cfn_parsing.parse_and_update_resource),
    )
    stack.callback(clear_failed_instances)
    replace(BudgetsResponse, "update_budget", _response_update_budget)
    replace(BudgetsBackend, "create_budget", _backend_create_budget(BudgetsBackend.create_budget))
    replace(BudgetsBackend, "create_notification", _backend_create_notification)
    replace(BudgetsBackend, "delete_notification", _backend_delete_notification)
    for name in RESPONSE_METHODS:
        replace(BudgetsResponse, name, _response_method(name))
    replace(BudgetsResponse, "describe_budget", _response_describe_budget)
    replace(Budget, "to_dict", _budget_to_dict(Budget.to_dict))
    for operation in service_model().operation_names:  # last: moto's actions and the stand-ins'
        action = xform_name(operation)
        if hasattr(BudgetsResponse, action):
            replace(BudgetsResponse, action, validated(operation, getattr(BudgetsResponse, action)))
    replace(
        CloudFormationStack, "parse_template", staticmethod(_json_first(CloudFormationStack.parse_template))
    )
    replace(
        XFormedAttributePicker,
        "get_possible_keys",
        _possible_keys_remembered(XFormedAttributePicker.get_possible_keys),
    )
    replace(
        BackendDict,
        "_create_account_specific_backend",
        _account_backend_without_lock(BackendDict._create_account_specific_backend),
    )
    replace(
        DynamoDBBackend,
        "transact_write_items",
        _snapshot_each_table_once(DynamoDBBackend.transact_write_items),
    )
    replace(StreamShard, "add", dynamodb_streams.one_record_at_a_time(StreamShard.add))
    replace(
        DynamoDBStreamsHandler,
        "get_records",
        _stream_records_written_directly(DynamoDBStreamsHandler.get_records),
    )
    replace(
        UpdateExpressionParser,
        "make",
        classmethod(_update_expression_parsed_once(UpdateExpressionParser.make)),
    )
    replace(
        DepthFirstTraverser,
        "traverse",
        _node_types_once_per_traversal(DepthFirstTraverser.traverse),
    )
    checked_init, checked_validate = _structure_checked_once(
        UpdateExpressionValidator.__init__, UpdateExpressionValidator.validate
    )
    replace(UpdateExpressionValidator, "__init__", checked_init)
    replace(UpdateExpressionValidator, "validate", checked_validate)
    stack.callback(_STRUCTURE_CHECKED.clear)
    replace(
        ConditionExpressionParser,
        "_lex_condition_expression",
        _condition_lexed_once(ConditionExpressionParser._lex_condition_expression),
    )
    stack.callback(_CONDITION_TOKENS.clear)
    original_deepcopy = dynamodb_validators.deepcopy  # type: ignore[attr-defined]
    setattr(dynamodb_validators, "deepcopy", _ast_copy)  # noqa: B010
    stack.callback(setattr, dynamodb_validators, "deepcopy", original_deepcopy)
    replace(
        OrganizationsBackend,
        "create_account",
        _organizations._create_account(OrganizationsBackend.create_account),
    )
    replace(
        OrganizationsBackend, "move_account", _organizations._move_account(OrganizationsBackend.move_account)
    )
    replace(
        CloudFormationResponse,
        "list_stack_instances",
        _stacksets._list_stack_instances(CloudFormationResponse.list_stack_instances),
    )
    stack.callback(_stacksets.clear)
    stack.callback(_organizations._subscribers.clear)
    original_lookup = iam_models.get_account_id_from
    setattr(iam_models, "get_account_id_from", _remembered_account_lookup(original_lookup))  # noqa: B010
    stack.callback(setattr, iam_models, "get_account_id_from", original_lookup)
    stack.callback(_KEY_ACCOUNTS.clear)


__all__ = [
    "ADMIN_ROLE",
    "AutomationParameterError",
    "AutomationResult",
    "EventCallback",
    "StandIns",
    "authorisation",
    "automation_status_event",
    "fail_stack_instance",
    "installed",
    "notifications_with_subscribers",
    "parameter_arn",
    "parameter_store_change_event",
    "pattern_matches",
    "publish_management",
    "publish_to_topic",
    "run_automation",
    "service_credentials",
    "set_calculated_spend",
    "set_health",
    "subscribe_management",
]
