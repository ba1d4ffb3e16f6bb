"""The local organisation: a management account and N spoke accounts on moto, built from
the two templates, with the pipeline that connects them.

    with LocalOrganisation(accounts=("111111111111", "222222222222")) as org:
        org.put("111111111111", Decimal("1250.50"))
        org.pipeline.run_until_idle()
        print(org.view("111111111111"))

* An AWS Organization whose management account is ``123456789012`` (moto's default
  account) and whose members have the ids asked for (moto draws random ids; the
  organisation fixes them), each with ``OrganizationAccountAccessRole``.
* The management stack from template-management.yaml (``management_stack``), the spoke
  stack from template-spoke.yaml in every member (``spoke_stack``), the moto gaps filled by
  ``standins``, and the pipeline (``pipeline``) as the stream's only consumer.
* Simulated spend per account, and the notifications that would fire at it.
* IAM evaluated as AWS evaluates it (``standins.authorisation``): each function runs as
  its template role, the Automation as the spoke's AutomationRole, the forwarding rules
  as ResultForwardRole; operators act as ``BudgetSyncOperator`` (``operator_credentials``).
  Both stacks are deployed with the organisation's ``OrganizationId``.

Everything runs in-process: either inside a ``mock_aws()`` this class starts, or inside
one the caller already started (tests), or behind ``server.serve`` (``make local``).

Deploying (``_deploy``: the organisation, the stacks, the StackSet, the operators' role) takes
seconds of CloudFormation on moto; connecting (``_connect``: the functions as their roles, the
pollers, the buses, the pipeline) takes milliseconds. Given ``deployments`` (a dict the caller
keeps: the test suite keeps one per process), an organisation whose arguments and templates were
deployed before starts from a fresh copy of the state that deployment left (``snapshot``) and
only connects; one that was not deploys and keeps its copy there.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import threading
from collections.abc import Callable, Hashable, Mapping, MutableMapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, TextIO
from unittest import mock

import boto3
import botocore.session
from botocore.credentials import Credentials
from botocore.loaders import create_loader
from moto import mock_aws

from budget_sync.handlers import history as history_handler
from budget_sync.notices import new_failures
from budget_sync_local import enrolment, management_stack, snapshot, standins, templates
from budget_sync_local import spoke_stack as spoke_stack
from budget_sync_local.incidents import LocalIncidents
from budget_sync_local.lambda_runtime import (
    FunctionSpec,
    function_spec,
    invoke_logging_to,
    lambda_environment,
    load_handler,
    new_execution_environment,
)
from budget_sync_local.mappings import Pollers, filtered, stream_mappings, without_batches
from budget_sync_local.operator_policy import approver_policy, operator_policy
from budget_sync_local.pipeline import (
    Delivery,
    Observer,
    Pipeline,
    ResultBus,
    Step,
    StreamPoller,
    on_failure_sender,
)
from budget_sync_local.seed import seed_from_env
from budget_sync_local.servicenow import StandIn
from budget_sync_local.standins.awslambda import function_output_to

if TYPE_CHECKING:
    from mypy_boto3_sts import STSClient

MANAGEMENT_ACCOUNT = "123456789012"
DEFAULT_ACCOUNTS = ("111111111111", "222222222222", "333333333333")
#: The local organisation's OUs; accounts are placed in them in turn (111 Sandbox, 222
#: Production, 333 Sandbox, ...). The spoke StackSet targets them all.
DEFAULT_OUS = ("Sandbox", "Production")
STACK_SET_NAME = "budget-sync-spoke"
DEFAULT_REGION = "us-east-1"
ADMIN_ROLE = "OrganizationAccountAccessRole"
#: The operators' role in the management account (the spoke stacks' OperatorRoleNames).
OPERATOR_ROLE = "BudgetSyncOperator"
#: The approvers' role (docs/operate.md, "Approvals": the approver policy), a role of its own.
APPROVER_ROLE = "BudgetSyncApprover"


@dataclass(frozen=True)
class Alert:
    """A notification of the spoke budget and whether it fires at the simulated spend."""

    notification_type: str  # ACTUAL | FORECASTED
    comparison: str
    threshold: Decimal
    threshold_type: str  # PERCENTAGE | ABSOLUTE_VALUE
    subscribers: tuple[str, ...]
    fires: bool

    @property
    def key(self) -> tuple[str, str, Decimal, str]:
        """What identifies the notification in its budget (Budgets' ``Notification``)."""
        return (self.notification_type, self.comparison, self.threshold, self.threshold_type)


@dataclass(frozen=True)
class AccountView:
    """One account end to end: what was asked, what arrived, what it would alert."""

    account_id: str
    desired: Decimal | None
    status: str | None
    reason: str
    parameter: str | None
    budget_limit: Decimal | None
    actual_spend: Decimal
    forecasted_spend: Decimal
    alerts: tuple[Alert, ...] = field(default_factory=tuple)
    #: where ``desired`` comes from: "item", or "default <ou id>" (an inherited item)
    source: str = ""

    @property
    def arrived(self) -> bool:
        """The desired value is the spoke's parameter and its budget's limit."""
        return (
            self.desired is not None
            and self.parameter is not None
            and self.budget_limit is not None
            and Decimal(self.parameter) == self.desired == self.budget_limit
        )


_LOADER = create_loader()


def _botocore_session() -> botocore.session.Session:
    """A botocore session that shares one loader of service models: a new session would
    parse every model's JSON again (50 ms a client; most of the time of 1,000 accounts)."""
    session = botocore.session.Session()
    session.register_component("data_loader", _LOADER)
    return session


_SHARED = boto3.Session(botocore_session=_botocore_session())


#: Builds an _AssumedSession's boto3.Session once (re-entrant: boto3.Session.__init__ reads
#: attributes of the session it is building).
_BUILD_LOCK = threading.RLock()


class _AssumedSession(boto3.Session):
    """A boto3 session for one set of assumed-role credentials whose clients are built by
    one shared session (a client from a warm session costs a third of a fresh one's).

    The boto3.Session underneath (a botocore session: its handler registrations cost about
    10 ms) is built only when something other than ``client``, ``resource``,
    ``get_credentials`` or ``region_name`` is asked of it: a thousand accounts' automation
    sessions need none of it."""

    def __init__(self, credentials: Mapping[str, Any], region: str) -> None:
        self._keys = {
            "aws_access_key_id": credentials["AccessKeyId"],
            "aws_secret_access_key": credentials["SecretAccessKey"],
            "aws_session_token": credentials["SessionToken"],
        }
        self._region = region

    def __getattr__(self, name: str) -> Any:
        # Only for attributes not found: those boto3.Session.__init__ would have set.
        if name.startswith("__"):
            raise AttributeError(name)
        with _BUILD_LOCK:  # once, whichever thread asks first
            if not self.__dict__.get("_built"):
                self.__dict__["_built"] = True
                boto3.Session.__init__(
                    self, region_name=self._region, botocore_session=_botocore_session(), **self._keys
                )
        return object.__getattribute__(self, name)

    @property
    def region_name(self) -> str:
        return self._region

    def get_credentials(self) -> Credentials:
        keys = self._keys
        return Credentials(
            keys["aws_access_key_id"], keys["aws_secret_access_key"], keys["aws_session_token"]
        )

    def client(self, service_name: str, region_name: str | None = None, **kwargs: Any) -> Any:  # type: ignore[override]
        arguments = {**self._keys, **kwargs}
        return _SHARED.client(service_name, region_name=region_name or self.region_name, **arguments)  # type: ignore[call-overload]

    def resource(self, service_name: str, region_name: str | None = None, **kwargs: Any) -> Any:  # type: ignore[override]
        arguments = {**self._keys, **kwargs}
        return _SHARED.resource(service_name, region_name=region_name or self.region_name, **arguments)  # type: ignore[call-overload]


@dataclass(frozen=True)
class Deployment:
    """What deploying an organisation left: its ids and stacks, and a copy of moto's and the
    stand-ins' state (``snapshot``), from which another organisation with the same arguments
    starts instead of deploying (``LocalOrganisation(deployments=...)``)."""

    organisation_id: str
    root_id: str
    ous: Mapping[str, str]
    management_parameters: Mapping[str, str]
    spoke_parameters: Mapping[str, str]
    stack: management_stack.ManagementStack
    spokes: Mapping[str, spoke_stack.SpokeStack]
    forwarders: tuple[enrolment.Forwarder, ...]
    state: snapshot.State


class LocalOrganisation:
    def __init__(
        self,
        accounts: Sequence[str] = DEFAULT_ACCOUNTS,
        region: str = DEFAULT_REGION,
        *,
        management_parameters: Mapping[str, str] | None = None,
        spoke_parameters: Mapping[str, str] | None = None,
        observer: Observer | None = None,
        function_output: TextIO | None = None,
        start_mock: bool = True,
        progress: Callable[[str, int, int], None] | None = None,
        spoke_template_text: str | None = None,
        ous: Sequence[str] = DEFAULT_OUS,
        stackset_delay_s: float = 0.0,
        forward_org_events: bool | None = None,
        seed: int | Literal["env"] | None = "env",
        deployments: MutableMapping[Hashable, Deployment] | None = None,
        servicenow: StandIn | None = None,
        servicenow_url: str | None = None,
    ) -> None:
        self.accounts = tuple(accounts)
        #: the optional incidents (docs/itsm.md), with this ServiceNow stand-in: budget_sync_local.incidents
        self.servicenow = servicenow
        #: where the stand-in is already served (make local's port); None: a server of its own
        self.servicenow_url = servicenow_url
        self.incidents: LocalIncidents | None = None
        #: EventBridge's delivery schedule (pipeline.Delivery): a whole number; None delivers in
        #: order, once; by default BUDGET_SYNC_LOCAL_SEED, else a new seed (shown by make demo).
        self.seed: int | None = seed_from_env() if seed == "env" else seed
        #: another version of template-spoke.yaml for the spoke stacks (an upgrade test's old one)
        self.spoke_template_text = spoke_template_text
        self.region = region
        self.management_parameters = {"SpokeStackSetName": STACK_SET_NAME, **(management_parameters or {})}
        self.ou_names = tuple(ous)
        self.ous: dict[str, str] = {}  # name -> id
        self.root_id = ""
        self._stackset_delay_s = stackset_delay_s
        #: deploy template-org-events.yaml in us-east-1 (default: when the stack is elsewhere)
        self.forward_org_events = (
            region != enrolment.ORGANIZATIONS_REGION if forward_org_events is None else forward_org_events
        )
        self.spoke_parameters = {
            "ManagementAccountId": MANAGEMENT_ACCOUNT,
            "AlertEmail1": "finance@example.com",
            "AlertEmail2": "platform-team@example.com",
            **(spoke_parameters or {}),
        }
        self._observer = observer or (lambda _step: None)
        self._watched = observer is not None  # refused records are read back only for a watcher
        self._function_output = function_output
        self._start_mock = start_mock
        self._progress = progress or (lambda _what, _done, _total: None)
        self._exit = ExitStack()
        self._sessions: dict[str, boto3.Session] = {}
        self._role_sessions: dict[str, boto3.Session] = {}
        self._reconciler_spec: FunctionSpec | None = None
        self.spokes: dict[str, spoke_stack.SpokeStack] = {}
        self.spend: dict[str, tuple[Decimal, Decimal]] = {}
        #: Deployments kept by their arguments (``deployment_key``): an organisation whose
        #: arguments have one starts from a copy of its state (``snapshot``) instead of deploying
        #: again, and adds its own otherwise. Only with ``start_mock`` (the state replaces moto's).
        self._deployments = deployments
        if deployments is not None and not start_mock:
            raise ValueError("deployments: only for an organisation in its own mock_aws() (start_mock=True)")
        if deployments is not None and servicenow is not None:
            # the stand-in listens on a port of its own, which the deployed parameters name
            raise ValueError("deployments: not for an organisation with incidents (servicenow=...)")
        self._deployment_key = self.deployment_key() if deployments is not None else None

    def deployment_key(self) -> Hashable:
        """Everything the deployment depends on: the arguments that shape it and the three
        templates as they are now (a test may change one in place)."""
        texts = json.dumps(
            [
                templates.load(path)
                for path in (
                    templates.MANAGEMENT_TEMPLATE,
                    templates.SPOKE_TEMPLATE,
                    templates.ORG_EVENTS_TEMPLATE,
                )
            ],
            sort_keys=True,
            default=str,
        )
        return (
            self.accounts,
            self.region,
            tuple(sorted(self.management_parameters.items())),
            tuple(sorted(self.spoke_parameters.items())),
            self.spoke_template_text,
            self.ou_names,
            self.forward_org_events,
            hashlib.sha256(texts.encode()).hexdigest(),
        )

    # -- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> LocalOrganisation:
        # boto3 >= 1.44 sends DynamoDB Streams calls to account-based endpoints that moto
        # does not route; the local organisation's clients use the regional ones.
        os.environ.setdefault("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
        try:
            if self._start_mock:
                self._exit.enter_context(mock_aws())
            self.standins = self._exit.enter_context(standins.installed())
            # A function invoked through the endpoint (budgetctl reconcile --apply) logs where
            # the pipeline's functions do.
            self._exit.enter_context(function_output_to(self._function_output))
            self._exit.enter_context(standins.authorisation.enforced())
            self._provision()
        except BaseException:
            self._exit.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.pipeline.stop()
        self._exit.close()

    def _provision(self) -> None:
        self.management = boto3.Session(region_name=self.region, botocore_session=_botocore_session())
        self._sts: STSClient = self.management.client("sts")
        deployment = None if self._deployments is None else self._deployments.get(self._deployment_key)
        if deployment is None:
            self._deploy()
            if self._deployments is not None:
                self._deployments[self._deployment_key] = self._deployed()
        else:
            self._adopt(deployment)
        self._connect()

    def _deploy(self) -> None:
        """Everything the organisation creates in moto: the AWS Organization, the management
        stack, the spoke stacks, the spoke StackSet, the forwarding stack, the operators' role."""
        self._create_organization()
        # Deployed as a real organisation would deploy them: with its organisation's id.
        organisation_id = self.management.client("organizations").describe_organization()["Organization"][
            "Id"
        ]
        self.organisation_id = str(organisation_id)
        if not self.management_parameters.get("OrganizationId") and not self.management_parameters.get(
            "SpokeAccountIds"
        ):
            self.management_parameters["OrganizationId"] = self.organisation_id
        self.spoke_parameters.setdefault("OrganizationId", self.organisation_id)
        if self.servicenow is not None:
            self.incidents = LocalIncidents(self.servicenow, self.servicenow_url)
            self._exit.callback(self.incidents.close)
            self.management_parameters.update(self.incidents.management_parameters(self))
        self.stack = management_stack.deploy(
            self.management, MANAGEMENT_ACCOUNT, self.region, self.management_parameters
        )
        if self.incidents is not None:
            self.spoke_parameters.update(self.incidents.spoke_parameters(self))
        total = len(self.accounts)
        with management_stack.moto_cloudformation_quiet():
            for done, account in enumerate(self.accounts, 1):
                session = self.session_in(account)
                self.spokes[account] = spoke_stack.deploy(
                    session, self.region, self.spoke_parameters, template_text=self.spoke_template_text
                )
                self._progress("spoke stacks", done, total)
        self._deploy_stack_set()
        self._forwarders: tuple[enrolment.Forwarder, ...] = ()
        if self.forward_org_events:
            self._forwarders = enrolment.deploy_org_events_forwarding(
                self.management, MANAGEMENT_ACCOUNT, self.region
            )
        self._provision_operator()

    def _deployed(self) -> Deployment:
        """What ``_deploy`` left: its results and a copy of moto's and the stand-ins' state."""
        return Deployment(
            organisation_id=self.organisation_id,
            root_id=self.root_id,
            ous=dict(self.ous),
            management_parameters=dict(self.management_parameters),
            spoke_parameters=dict(self.spoke_parameters),
            stack=self.stack,
            spokes=dict(self.spokes),
            forwarders=self._forwarders,
            state=snapshot.capture(),
        )

    def _adopt(self, deployment: Deployment) -> None:
        """Start from an earlier deployment with the same arguments instead of deploying: its
        state copied back into moto and the stand-ins, its results taken as this one's."""
        snapshot.restore(deployment.state)
        self.organisation_id = deployment.organisation_id
        self.root_id = deployment.root_id
        self.ous = dict(deployment.ous)
        self.management_parameters = dict(deployment.management_parameters)
        self.spoke_parameters = dict(deployment.spoke_parameters)
        self.stack = deployment.stack
        self.spokes = dict(deployment.spokes)
        self._forwarders = deployment.forwarders

    def _connect(self) -> None:
        """The functions as their roles, the event source mappings, the buses and the pipeline
        that connects them: in-process objects of this organisation, over what is deployed."""
        self._spec = self._as_its_role(
            function_spec(
                self.stack.function_logical_id, self.management_parameters, self.region, MANAGEMENT_ACCOUNT
            )
        )
        with lambda_environment(self._spec, self.region):
            load_handler(self._spec)  # imported here, so that its log handler holds the real stdout
        new_execution_environment(self._spec)
        self._result_spec = self._as_its_role(
            function_spec(
                self.stack.result_function_logical_id,
                self.management_parameters,
                self.region,
                MANAGEMENT_ACCOUNT,
                physical_ids=self.stack.physical_ids,
            )
        )
        with lambda_environment(self._result_spec, self.region):
            load_handler(self._result_spec)
        new_execution_environment(self._result_spec)
        # The result bus's rule, the schedule and the status table's stream each have their
        # own function (and role): one entry point per event source.
        self._unconfirmed_spec = self._as_its_role(
            function_spec(
                self.stack.unconfirmed_function_logical_id,
                self.management_parameters,
                self.region,
                MANAGEMENT_ACCOUNT,
                physical_ids=self.stack.physical_ids,
            )
        )
        self._notice_spec = self._as_its_role(
            function_spec(
                self.stack.notice_function_logical_id,
                self.management_parameters,
                self.region,
                MANAGEMENT_ACCOUNT,
                physical_ids=self.stack.physical_ids,
            )
        )
        # Each has its own handler module (handlers/unconfirmed.py, handlers/notices.py), each
        # starting as a fresh execution environment: no client of an earlier moto is reused.
        for spec in (self._unconfirmed_spec, self._notice_spec):
            with lambda_environment(spec, self.region):
                load_handler(spec)
            new_execution_environment(spec)
        # The event source mapping reads the stream and parks failed batches with the
        # function's execution role, as Lambda does.
        mapping = self._role_session(self._spec)
        poller = StreamPoller(
            mapping.client("dynamodbstreams"),
            self.stack.stream_arn,
            self.stack.stream,
            self.invoke_function,
            on_failure_sender(mapping.client("sqs"), self.stack.on_failure_queue_url),
            self._observer,
        )
        results = ResultBus(
            self.stack.result_bus_arn,
            self.stack.result_pattern or {},
            self.invoke_result_asynchronously,
            check=self.check_unconfirmed,  # the unconfirmed check's schedule, when the pipeline runs
        )
        self.pipeline = Pipeline(
            poller, self.spokes, self._session_for_role, self._observer, results, Delivery(self.seed)
        )
        self._provision_failure_notices()
        self._provision_history()
        if self.incidents is not None:
            self.incidents.start(self)
        self._provision_enrolment()
        # Subscribed last: the stacks' own parameter creation is not a budget change.
        self.standins.subscribe(self.pipeline.publish)

    def _provision_failure_notices(self) -> None:
        """The failure-notice function's mapping on the status table's stream (``NewFailures``):
        each account that became FAILED is published once to the alarm topic."""
        (spec,) = stream_mappings(
            self.stack.notice_function_logical_id, self.management_parameters, self.region, MANAGEMENT_ACCOUNT
        ).values()
        stream_arn = self.management.client("dynamodb").describe_table(TableName=self.stack.status_table)[
            "Table"
        ]["LatestStreamArn"]
        mapping = self._role_session(self._notice_spec)
        poller = StreamPoller(
            mapping.client("dynamodbstreams"),
            stream_arn,
            spec.settings,
            filtered(self.invoke_notice_function, spec, self._notified),
            on_failure_sender(mapping.client("sqs"), self.stack.result_dead_letter_queue_url),
            without_batches(self._observer),
        )
        self.pipeline.add_source(Pollers([poller.attach()]))

    def _provision_history(self) -> None:
        """The history function and its four mappings (``StatusChanges``, ``DefaultsChanges``:
        each stream's second reader, as on AWS; ``ApprovalRequestChanges``, ``ApprovalDecisions``:
        the approval tables' only reader); failed batches park in its own failure queue."""
        self._history_spec = self._as_its_role(
            function_spec("HistoryFunction", self.management_parameters, self.region, MANAGEMENT_ACCOUNT)
        )
        with lambda_environment(self._history_spec, self.region):
            load_handler(self._history_spec)
        new_execution_environment(self._history_spec)
        with lambda_environment(self._history_spec, self.region):
            # Lambda's init phase, before the first event: settings and client built in this
            # function's own environment (each invocation has its own view of os.environ,
            # execution_env, so a result function's run overlapping a batch cannot lend it
            # its credentials).
            history_handler.settings()
            history_handler.build_table()
        dynamodb = self.management.client("dynamodb")
        arns = {
            "StatusChanges": self.stack.status_table,
            "DefaultsChanges": self.stack.defaults_table,
            "ApprovalRequestChanges": self.stack.approval_requests_table,
            "ApprovalDecisions": self.stack.approvals_table,
        }
        mapping = self._role_session(self._history_spec)
        send = on_failure_sender(mapping.client("sqs"), self.stack.history_failure_queue_url)
        pollers = []
        for name, spec in stream_mappings(
            "HistoryFunction", self.management_parameters, self.region, MANAGEMENT_ACCOUNT
        ).items():
            stream_arn = dynamodb.describe_table(TableName=arns[name])["Table"]["LatestStreamArn"]
            pollers.append(
                StreamPoller(
                    mapping.client("dynamodbstreams"),
                    stream_arn,
                    spec.settings,
                    filtered(self.invoke_history_function, spec, lambda records, answer: None),
                    send,
                    without_batches(self._observer),
                ).attach()
            )
        self.pipeline.add_source(Pollers(pollers))

    def invoke_history_function(self, event: dict[str, Any]) -> Any:
        """The history function on one batch of one of its four streams."""
        return self._invoke(self._history_spec, event)

    def history(self, subject: str) -> list[Any]:
        """``subject``'s history records, newest first (the history table, read as the admin)."""
        from budget_sync.history_table import DynamoHistoryTable

        table = DynamoHistoryTable(self.management.client("dynamodb"), self.stack.history_table, 400)
        return table.of_subject(subject)

    def _notified(self, records: list[dict[str, Any]], answer: Any) -> None:
        """A ``notified`` step per new failure the failure-notice function published."""
        unpublished = {f["itemIdentifier"] for f in (answer or {}).get("batchItemFailures", [])}
        for failure in new_failures(records):
            if failure.sequence_number in unpublished:
                break
            self._observer(
                Step("notified", failure.account_id, {"reason": failure.reason, "source": failure.source})
            )

    def _resolver_batch(self, mapping: str) -> Callable[[list[dict[str, Any]], Any], None]:
        def after(records: list[dict[str, Any]], result: Any) -> None:
            self._observer(
                Step("resolver-batch", detail={"mapping": mapping, "records": len(records), "result": result})
            )

        return after

    def _provision_enrolment(self) -> None:
        """The resolver's functions (one per event source), their streams and rules, and the
        spoke StackSet (enrolment.py)."""
        self._resolver_specs: dict[str, FunctionSpec] = {}
        for logical_id in enrolment.resolver_functions(
            self.management_parameters, self.region, MANAGEMENT_ACCOUNT
        ):
            function = self._as_its_role(
                function_spec(logical_id, self.management_parameters, self.region, MANAGEMENT_ACCOUNT)
            )
            with lambda_environment(function, self.region):
                load_handler(function)
            new_execution_environment(function)
            self._resolver_specs[logical_id] = function
        dynamodb = self.management.client("dynamodb")
        arns = {
            "DefaultsStream": dynamodb.describe_table(TableName=self.stack.defaults_table)["Table"][
                "LatestStreamArn"
            ],
            "ItemRemoved": self.stack.stream_arn,
        }
        pollers = []
        # Each stream's mapping reads it and parks failed batches with its own function's role.
        for logical_id in ("DefaultsResolverFunction", "ItemRemovedResolverFunction"):
            mapping = self._role_session(self._resolver_specs[logical_id])
            send = on_failure_sender(mapping.client("sqs"), self.stack.on_failure_queue_url)
            for name, spec in stream_mappings(
                logical_id, self.management_parameters, self.region, MANAGEMENT_ACCOUNT
            ).items():
                invoke = functools.partial(self.invoke_resolver, function=logical_id)
                pollers.append(
                    StreamPoller(
                        mapping.client("dynamodbstreams"),
                        arns[name],
                        spec.settings,
                        filtered(invoke, spec, self._resolver_batch(spec.name)),
                        send,
                        without_batches(self._observer),
                    )
                )
        stack_set = None
        name = self.management_parameters.get("SpokeStackSetName", "")
        if name:
            stack_set = enrolment.StackSetEmulation(
                name=name,
                region=self.region,
                target_ous=frozenset(self.ous.values()),
                parent_of=self.parent_of,
                deploy=self._deploy_spoke,
                deployed=set(self.accounts),
                delay_s=self._stackset_delay_s,
            )
        rules = enrolment.resolver_rules(self.management_parameters, self.region, MANAGEMENT_ACCOUNT)
        # The management account's default bus: its own schedule, drawn from the same seed.
        own = None if self.seed is None else self.seed + 1
        self.enrolment = enrolment.Enrolment(
            pollers,
            rules,
            self.invoke_resolver,
            stack_set,
            self._observer,
            Delivery(own),
            region=self.region,
            forwarders=self._forwarders,
        )
        self.pipeline.add_source(self.enrolment)
        standins.subscribe_management(self.enrolment.publish)

    def _deploy_stack_set(self) -> None:
        """The spoke StackSet (service-managed, targeting the OUs), its instances in the
        accounts already deployed by it before the story starts."""
        name = self.management_parameters.get("SpokeStackSetName", "")
        if not name:
            return
        cloudformation = self.management.client("cloudformation")
        cloudformation.create_stack_set(
            StackSetName=name,
            TemplateBody=json.dumps(templates.load(templates.SPOKE_TEMPLATE)),
            PermissionModel="SERVICE_MANAGED",
            AutoDeployment={"Enabled": True, "RetainStacksOnAccountRemoval": True},
            Capabilities=["CAPABILITY_NAMED_IAM"],
        )
        arn = cloudformation.describe_stack_set(StackSetName=name)["StackSet"]["StackSetARN"]
        standins.stacksets.register_stack_set(name, arn)
        for account in self.accounts:
            standins.stacksets.record_instance(name, account, self.region, emit=False)

    def _provision_operator(self) -> None:
        """The operators' role (``BudgetSyncOperator``, which the spoke stacks' read role
        trusts), with the policy docs/operate.md gives an operator "who may do everything",
        trusted by the management account's administrators."""
        iam = self.management.client("iam")
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{MANAGEMENT_ACCOUNT}:root"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        iam.create_role(RoleName=OPERATOR_ROLE, AssumeRolePolicyDocument=json.dumps(trust))
        iam.put_role_policy(
            RoleName=OPERATOR_ROLE,
            PolicyName="budget-sync-operator",
            PolicyDocument=json.dumps(self.operator_policy()),
        )
        iam.create_role(RoleName=APPROVER_ROLE, AssumeRolePolicyDocument=json.dumps(trust))
        iam.put_role_policy(
            RoleName=APPROVER_ROLE,
            PolicyName="budget-sync-approver",
            PolicyDocument=json.dumps(
                approver_policy(self.management_parameters, self.region, MANAGEMENT_ACCOUNT)
            ),
        )

    def operator_policy(self, region: str | None = None, account: str = MANAGEMENT_ACCOUNT) -> dict[str, Any]:
        """docs/operate.md's policy for an operator who may do everything, for this stack's
        names in ``region`` and ``account`` (``budget_sync_local.operator_policy``)."""
        return operator_policy(self.management_parameters, region or self.region, account)

    def operator_credentials(self) -> dict[str, str]:
        """Credentials of the operators' role (AssumeRole as the management account's
        administrator), as ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` /
        ``AWS_SESSION_TOKEN`` for budgetctl or any AWS client."""
        credentials = self._sts.assume_role(
            RoleArn=f"arn:aws:iam::{MANAGEMENT_ACCOUNT}:role/{OPERATOR_ROLE}", RoleSessionName="operator"
        )["Credentials"]
        return {
            "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": credentials["SessionToken"],
        }

    def _deploy_spoke(self, account: str) -> None:
        with management_stack.moto_cloudformation_quiet():
            self.spokes[account] = spoke_stack.deploy(
                self.session_in(account), self.region, self.spoke_parameters
            )

    def _create_organization(self) -> None:
        client = self.management.client("organizations")
        client.create_organization(FeatureSet="ALL")
        self.root_id = client.list_roots()["Roots"][0]["Id"]
        for name in self.ou_names:
            unit = client.create_organizational_unit(ParentId=self.root_id, Name=name)["OrganizationalUnit"]
            self.ous[name] = unit["Id"]
        for index, account in enumerate(self.accounts):
            # moto draws account ids at random; the local organisation's are fixed.
            with mock.patch("moto.organizations.utils.make_random_account_id", return_value=account):
                client.create_account(AccountName=f"spoke-{account}", Email=f"aws+{account}@example.com")
            if self.ou_names:
                ou = self.ous[self.ou_names[index % len(self.ou_names)]]
                client.move_account(AccountId=account, SourceParentId=self.root_id, DestinationParentId=ou)

    # -- the organisation, as an administrator changes it ----------------------------------

    def create_account(self, account: str, ou: str | None = None) -> None:
        """CreateAccount (the account lands in the root), then MoveAccount into ``ou`` (a
        name or an id), as an administrator does on AWS. Both emit their events; the
        StackSet deploys the spoke stack once the account is in one of its OUs."""
        client = self.management.client("organizations")
        with mock.patch("moto.organizations.utils.make_random_account_id", return_value=account):
            client.create_account(AccountName=f"new-{account}", Email=f"aws+{account}@example.com")
        if ou is not None:
            self.move_account(account, ou)

    def move_account(self, account: str, ou: str) -> None:
        client = self.management.client("organizations")
        target = self.ous.get(ou, ou)
        source = self.parent_of(account) or self.root_id
        client.move_account(AccountId=account, SourceParentId=source, DestinationParentId=target)

    def parent_of(self, account: str) -> str | None:
        parents = self.management.client("organizations").list_parents(ChildId=account)["Parents"]
        return str(parents[0]["Id"]) if parents else None

    def set_default(self, ou: str, value: Any) -> None:
        """Write a default for an OU (name or id) or the root ("Root"), as an operator would."""
        target = self.root_id if ou == "Root" else self.ous.get(ou, ou)
        table = self.management.resource("dynamodb").Table(self.stack.defaults_table)
        table.put_item(Item={"TargetId": target, "BudgetValue": Decimal(str(value))})

    def delete_default(self, ou: str) -> None:
        target = self.root_id if ou == "Root" else self.ous.get(ou, ou)
        self.management.resource("dynamodb").Table(self.stack.defaults_table).delete_item(
            Key={"TargetId": target}
        )

    def invoke_resolver(self, event: dict[str, Any], function: str = "ResolverFunction") -> Any:
        """One of the resolver's functions (its logical id; by default the schedule's, which
        resolves the whole organisation) on one event, as Lambda calls it (the template's
        handler, its execution role)."""
        return self._invoke(self._resolver_specs[function], event)

    def invoke_reconciler(self, event: dict[str, Any] | None = None) -> Any:
        """The reconciler function on one event (its schedule's by default), as Lambda calls
        it (the template's handler, its execution role, a fresh execution environment the
        first time for this organisation)."""
        if self._reconciler_spec is None:
            spec = function_spec(
                "ReconcilerFunction", self.management_parameters, self.region, MANAGEMENT_ACCOUNT
            )
            self._reconciler_spec = self._as_its_role(replace(spec, logical_id="ReconcilerFunction"))
            with lambda_environment(self._reconciler_spec, self.region):
                load_handler(self._reconciler_spec)
            new_execution_environment(self._reconciler_spec)
        return self._invoke(self._reconciler_spec, event or {"source": "aws.scheduler"})

    # -- sessions ------------------------------------------------------------------------

    def _as_its_role(self, spec: FunctionSpec) -> FunctionSpec:
        """The function with its execution role's credentials, as Lambda gets them: the
        Lambda service assumes the role its template names (its trust policy must admit
        lambda.amazonaws.com for this account)."""
        credentials = standins.service_credentials(
            self.stack.role_arns[spec.logical_id],
            "lambda.amazonaws.com",
            MANAGEMENT_ACCOUNT,
            self.region,
            spec.function_name,
        )
        return replace(spec, credentials=credentials)

    def operator_session(self) -> boto3.Session:
        """A session of the operators' role, for budgetctl run in-process (the demo's report)."""
        keys = self.operator_credentials()
        return self._keys_session(keys)

    def approver_session(self, session_name: str) -> boto3.Session:
        """A session of the approvers' role (``BudgetSyncApprover``) named ``session_name`` (a
        person: IAM Identity Center names the session after the user), for budgetctl in-process."""
        credentials = self._sts.assume_role(
            RoleArn=f"arn:aws:iam::{MANAGEMENT_ACCOUNT}:role/{APPROVER_ROLE}", RoleSessionName=session_name
        )["Credentials"]
        return self._keys_session(
            {
                "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
                "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
                "AWS_SESSION_TOKEN": credentials["SessionToken"],
            }
        )

    def _keys_session(self, keys: Mapping[str, str]) -> boto3.Session:
        return boto3.Session(
            aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=keys["AWS_SESSION_TOKEN"],
            region_name=self.region,
            botocore_session=_botocore_session(),
        )

    def function_session(self, logical_id: str) -> boto3.Session:
        """A session with the execution role of a function of the management stack (its
        logical id: ``ReconcilerFunction``...), as the function's code gets it from Lambda."""
        spec = replace(
            function_spec(logical_id, self.management_parameters, self.region, MANAGEMENT_ACCOUNT),
            logical_id=logical_id,
        )
        return self._role_session(self._as_its_role(spec))

    def _role_session(self, spec: FunctionSpec) -> boto3.Session:
        """A session with a function's execution role (its stream mapping reads as it)."""
        assert spec.credentials is not None
        key, secret, token = spec.credentials
        return _AssumedSession(
            {"AccessKeyId": key, "SecretAccessKey": secret, "SessionToken": token}, self.region
        )

    def _assume(self, role_arn: str, session_name: str) -> boto3.Session:
        credentials = self._sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name)["Credentials"]
        return _AssumedSession(credentials, self.region)

    def session_in(self, account: str) -> boto3.Session:
        """Administrator credentials in an account (its OrganizationAccountAccessRole)."""
        if account == MANAGEMENT_ACCOUNT:
            return self.management
        if account not in self._sessions:
            self._sessions[account] = self._assume(f"arn:aws:iam::{account}:role/{ADMIN_ROLE}", "local-admin")
        return self._sessions[account]

    def _session_for_role(self, role_arn: str) -> boto3.Session:
        """The automation role's credentials, as EventBridge and SSM get them: the services
        assume it for its own account (its trust policy decides); kept, as moto's
        credentials do not expire."""
        if role_arn not in self._role_sessions:
            key, secret, token = standins.service_credentials(
                role_arn, "ssm.amazonaws.com", role_arn.split(":")[4], self.region, "budget-sync-automation"
            )
            self._role_sessions[role_arn] = _AssumedSession(
                {"AccessKeyId": key, "SecretAccessKey": secret, "SessionToken": token}, self.region
            )
        return self._role_sessions[role_arn]

    def invoke_function(self, event: dict[str, Any]) -> Any:
        """The update function on one event, as Lambda calls it (the template's handler);
        then each record it refused is shown to the observer with its reason."""
        response = self._invoke(self._spec, event)
        if self._watched:
            self._observe_refused(event)
        return response

    def _observe_refused(self, event: dict[str, Any]) -> None:
        """A ``refused`` step per account whose status this batch set to FAILED (an invalid
        item, no spoke stack to write to...), read back from the status table."""
        numbers: dict[str, set[int]] = {}
        for record in event.get("Records", []):
            data = record.get("dynamodb", {})
            key = data.get("Keys", {}).get("AccountId", {})
            account = next(iter(key.values()), None) if isinstance(key, dict) else None
            if account is not None and str(data.get("SequenceNumber", "")).isdigit():
                numbers.setdefault(str(account), set()).add(int(data["SequenceNumber"]))
        for account, sequence in numbers.items():
            status = self.status(account) or {}
            recorded = str(status.get("SequenceNumber", ""))
            if status.get("Status") == "FAILED" and recorded.isdigit() and int(recorded) in sequence:
                self._observer(Step("refused", account, {"reason": str(status.get("Reason", ""))}))

    def invoke_result_function(self, event: dict[str, Any]) -> Any:
        """The result function on one event of the result bus (a spoke's result)."""
        return self._invoke(self._result_spec, event)

    def invoke_unconfirmed_check(self, event: dict[str, Any]) -> Any:
        """The unconfirmed-check function on one event (its schedule's)."""
        return self._invoke(self._unconfirmed_spec, event)

    def invoke_notice_function(self, event: dict[str, Any]) -> Any:
        """The failure-notice function on one batch of the status table's stream."""
        return self._invoke(self._notice_spec, event)

    def invoke_result_asynchronously(self, event: dict[str, Any]) -> Any:
        """The result function as its rule invokes it: asynchronously. An error it raises gets
        the retries of the function's ``EventInvokeConfig`` (template-management.yaml), then
        the event and the error go to its on-failure destination as the record AWS documents
        for asynchronous invocation ("Capturing records of Lambda asynchronous invocations":
        ``requestContext.condition`` ``RetriesExhausted``, ``requestPayload``,
        ``responsePayload``), and the error is raised again (the pipeline records it).
        Without an ``EventInvokeConfig`` the event is lost after Lambda's two retries, as on AWS."""
        config = (
            templates.load(templates.MANAGEMENT_TEMPLATE)["Resources"][self.stack.result_function_logical_id][
                "Properties"
            ].get("EventInvokeConfig")
            or {}
        )
        attempts = 1 + int(config.get("MaximumRetryAttempts", 2))
        for attempt in range(1, attempts + 1):
            try:
                return self.invoke_result_function(event)
            except Exception as exc:
                if attempt < attempts:
                    continue
                destination = (config.get("DestinationConfig") or {}).get("OnFailure", {}).get("Destination")
                if destination == {"Fn::GetAtt": ["ResultDeadLetterQueue", "Arn"]}:
                    # Lambda sends to the destination with the function's execution role
                    # (Lambda Developer Guide, "Adding a destination": the role needs
                    # sqs:SendMessage); a refusal is raised as AccessDenied.
                    sender = self._role_session(self._result_spec).client("sqs")
                    on_failure_sender(sender, self.stack.result_dead_letter_queue_url)(
                        {
                            "version": "1.0",
                            "requestContext": {
                                "functionArn": self._result_spec.function_name,
                                "condition": "RetriesExhausted",
                                "approximateInvokeCount": attempts,
                            },
                            "requestPayload": event,
                            "responseContext": {"functionError": "Unhandled"},
                            "responsePayload": {"errorType": type(exc).__name__, "errorMessage": str(exc)},
                        }
                    )
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def fire_alarm(self, logical_id: str, reason: str = "local organisation") -> list[str]:
        """CloudWatch's actions when the management stack's alarm ``logical_id`` goes to ALARM
        (moto's CloudFormation creates no alarm: its ``AlarmActions`` are read from the
        template, resolved for this stack): each SNS topic is published to by
        ``cloudwatch.amazonaws.com`` for this account and the alarm's ARN. The topic's policy
        must admit it and, for a topic encrypted with a KMS key, the key's policy must let it
        use the key (Amazon SNS Developer Guide, "Key management": "Enable compatibility
        between event sources from AWS services and encrypted topics"). Raises AccessDenied
        naming the action and the service; returns the topics published to."""
        resolver = templates.Resolver(
            templates.load(templates.MANAGEMENT_TEMPLATE),
            self.management_parameters,
            account_id=MANAGEMENT_ACCOUNT,
            region=self.region,
            physical_ids=self.stack.physical_ids,
        )
        if resolver.resource(logical_id)["Type"] != "AWS::CloudWatch::Alarm":
            raise ValueError(f"{logical_id} is not an alarm of the management stack")
        name = f"{management_stack.STACK_NAME}-{logical_id}"
        alarm_arn = f"arn:aws:cloudwatch:{self.region}:{MANAGEMENT_ACCOUNT}:alarm:{name}"
        published = []
        for action in resolver.properties(logical_id).get("AlarmActions", []):
            if ":sns:" not in str(action):
                continue
            standins.authorisation.service_sends(
                "cloudwatch.amazonaws.com", "sns:Publish", str(action), MANAGEMENT_ACCOUNT, alarm_arn
            )
            message = {
                "AlarmName": name,
                "AlarmArn": alarm_arn,
                "NewStateValue": "ALARM",
                "NewStateReason": reason,
            }
            standins.publish_to_topic(str(action), json.dumps(message), subject=f'ALARM: "{name}"')
            published.append(str(action))
        return published

    def check_unconfirmed(self) -> Any:
        """What the unconfirmed check's schedule does: SENT values past the bound become FAILED."""
        return self.invoke_unconfirmed_check(
            {
                "source": "aws.events",
                "detail-type": "Scheduled Event",
                "account": MANAGEMENT_ACCOUNT,
                "detail": {},
            }
        )

    def _invoke(self, spec: Any, event: dict[str, Any]) -> Any:
        return invoke_logging_to(spec, event, self.region, MANAGEMENT_ACCOUNT, self._function_output)

    # -- the operator's side -------------------------------------------------------------

    def put(self, account: str, value: Any, **extra: Any) -> None:
        """Write an item to the budgets table (step 1), as an operator would."""
        item = {"AccountId": account, "BudgetValue": value, **extra}
        self.management.resource("dynamodb").Table(self.stack.budgets_table).put_item(Item=item)

    def put_raw(self, item: Mapping[str, Any]) -> None:
        """Write an item in DynamoDB's JSON, for items of any shape (invalid ones included)."""
        self.management.client("dynamodb").put_item(TableName=self.stack.budgets_table, Item=dict(item))

    def delete(self, account: str) -> None:
        self.management.resource("dynamodb").Table(self.stack.budgets_table).delete_item(
            Key={"AccountId": account}
        )

    def give_planned_limits(self, account: str) -> None:
        """Replace the account's budget by one with PlannedBudgetLimits (as someone could in the
        console): budget-sync manages a fixed limit and its spoke refuses to mix the two."""
        budgets = self.session_in(account).client("budgets")
        name = self.spokes[account].budget_name
        budgets.delete_budget(AccountId=account, BudgetName=name)
        budgets.create_budget(
            AccountId=account,
            Budget={
                "BudgetName": name,
                "BudgetType": "COST",
                "TimeUnit": "MONTHLY",
                "PlannedBudgetLimits": {"1767225600": {"Amount": "1000", "Unit": "USD"}},
            },
        )

    def set_spend(self, account: str, actual: Decimal, forecasted: Decimal) -> None:
        """Simulate this month's actual and forecasted spend of an account."""
        self.spend[account] = (actual, forecasted)
        stack = self.spokes[account]
        standins.set_calculated_spend(account, stack.budget_name, actual, forecasted)

    def spend_arrives(self, account: str, actual: Decimal, forecasted: Decimal) -> tuple[Alert, ...]:
        """New spend data for an account (``make local``'s spend request): the figures, then
        what AWS Budgets does for each notification that the new figures put in alarm (it
        fires now and did not at the previous figures): its alert published to the
        notification's SNS topic (``send_budget_alerts``). A notification already in alarm is
        not alerted again. The alerts that went out (those with a topic, and those with email
        subscribers only, which are not sent locally)."""
        firing = {a.key for a in self.alerts(account) if a.fires}
        self.set_spend(account, actual, forecasted)
        crossed = tuple(a for a in self.alerts(account) if a.fires and a.key not in firing)
        self.send_budget_alerts(account, crossed)
        return crossed

    def set_health(self, account: str, status: str, reason: str | None = None) -> dict[str, Any]:
        """Make an account's budget UNHEALTHY with one of AWS's reasons, or HEALTHY again (AWS
        computes a budget's HealthStatus; budget_sync_local.health). Answers the new one."""
        return standins.set_health(account, self.spokes[account].budget_name, status, reason)

    def update_spoke(
        self, account: str, parameters: Mapping[str, str] | None = None, *, template_text: str | None = None
    ) -> spoke_stack.SpokeStack:
        """UpdateStack of an account's spoke stack (new parameters, or another template version).

        Raises SpokeStackError, with nothing changed, where CloudFormation would roll back.
        The parameter events of the update reach the pipeline like any other.
        """
        with management_stack.moto_cloudformation_quiet():
            updated = spoke_stack.update(
                self.session_in(account), self.spokes[account], parameters, template_text=template_text
            )
        self.spokes[account] = updated
        return updated

    # -- what arrived --------------------------------------------------------------------

    def desired(self, account: str) -> Decimal | None:
        table = self.management.resource("dynamodb").Table(self.stack.budgets_table)
        item = table.get_item(Key={"AccountId": account}).get("Item")
        value = item.get("BudgetValue") if item else None
        return value if isinstance(value, Decimal) else None

    def status(self, account: str) -> dict[str, Any] | None:
        table = self.management.resource("dynamodb").Table(self.stack.status_table)
        item: dict[str, Any] | None = table.get_item(Key={"AccountId": account}).get("Item")
        return item

    def parameter(self, account: str) -> str | None:
        ssm = self.session_in(account).client("ssm")
        try:
            value: str = ssm.get_parameter(Name=self.spokes[account].parameter_name)["Parameter"]["Value"]
        except ssm.exceptions.ParameterNotFound:
            return None
        return value

    def budget(self, account: str) -> dict[str, Any] | None:
        budgets = self.session_in(account).client("budgets")
        try:
            answer = budgets.describe_budget(AccountId=account, BudgetName=self.spokes[account].budget_name)
        except budgets.exceptions.NotFoundException:
            return None
        return dict(answer["Budget"])

    def alerts(self, account: str) -> tuple[Alert, ...]:
        """The budget's notifications, and which fire at the simulated spend."""
        return self._alerts(account, self.budget(account))

    def _alerts(self, account: str, budget: dict[str, Any] | None) -> tuple[Alert, ...]:
        if budget is None:
            return ()
        if "BudgetLimit" not in budget:
            return ()  # planned limits: no one limit to compare the spend with
        limit = Decimal(budget["BudgetLimit"]["Amount"])
        actual, forecasted = self.spend.get(account, (Decimal(0), Decimal(0)))
        alerts = []
        for notification, subscribers in standins.notifications_with_subscribers(
            account, self.spokes[account].budget_name
        ):
            spend = actual if notification["NotificationType"] == "ACTUAL" else forecasted
            threshold = Decimal(str(notification["Threshold"]))
            line = (
                limit * threshold / 100
                if notification.get("ThresholdType", "PERCENTAGE") == "PERCENTAGE"
                else threshold
            )
            comparison = notification["ComparisonOperator"]
            fires = {"GREATER_THAN": spend > line, "LESS_THAN": spend < line, "EQUAL_TO": spend == line}[
                comparison
            ]
            alerts.append(
                Alert(
                    notification_type=notification["NotificationType"],
                    comparison=comparison,
                    threshold=threshold,
                    threshold_type=notification.get("ThresholdType", "PERCENTAGE"),
                    subscribers=tuple(s["Address"] for s in subscribers),
                    fires=fires,
                )
            )
        return tuple(alerts)

    def send_budget_alerts(self, account: str, alerts: Sequence[Alert] | None = None) -> list[str]:
        """What AWS Budgets does for each of the account's notifications that fires at the
        simulated spend (or for each of ``alerts`` that fires): publish to each SNS subscriber
        (a topic) as ``budgets.amazonaws.com`` for the account and its budget. The topic's
        policy must admit the service and, for a topic encrypted with a KMS key (SnsTopicMode
        Create), the key's policy must let it use the key (AWS Budgets User Guide, "Creating an
        Amazon SNS topic for budget notifications"; Amazon SNS Developer Guide, "Key
        management"). Raises AccessDenied naming the action and the service; returns the
        topics published to."""
        name = self.spokes[account].budget_name
        budget_arn = f"arn:aws:budgets::{account}:budget/{name}"
        published = []
        for alert in self.alerts(account) if alerts is None else alerts:
            if not alert.fires:
                continue
            for topic in (s for s in alert.subscribers if s.startswith("arn:") and ":sns:" in s):
                standins.authorisation.service_sends(
                    "budgets.amazonaws.com", "sns:Publish", topic, account, budget_arn
                )
                message = f"AWS Budget Notification: {name} {alert.notification_type} {alert.threshold}"
                standins.publish_to_topic(topic, message, subject=f"AWS Budgets: {name} has exceeded")
                published.append(topic)
        return published

    def view(self, account: str) -> AccountView:
        status = self.status(account) or {}
        budget = self.budget(account)
        actual, forecasted = self.spend.get(account, (Decimal(0), Decimal(0)))
        table = self.management.resource("dynamodb").Table(self.stack.budgets_table)
        item = table.get_item(Key={"AccountId": account}).get("Item") or {}
        inherited = str(item.get("InheritedFrom") or "")
        source = f"default {inherited}" if inherited else ("item" if item else "")
        if not item and status.get("Status") == "WAITING":
            source = "default (waiting)"
        return AccountView(
            account_id=account,
            source=source,
            desired=self.desired(account),
            status=status.get("Status"),
            reason=str(status.get("Reason", "")),
            parameter=self.parameter(account),
            budget_limit=Decimal(budget["BudgetLimit"]["Amount"])
            if budget and "BudgetLimit" in budget
            else None,
            actual_spend=actual,
            forecasted_spend=forecasted,
            alerts=self._alerts(account, budget),  # the budget just read, not read again
        )


__all__ = [
    "APPROVER_ROLE",
    "DEFAULT_ACCOUNTS",
    "MANAGEMENT_ACCOUNT",
    "OPERATOR_ROLE",
    "AccountView",
    "Alert",
    "LocalOrganisation",
    "Step",
]
