"""The spoke adapter: reach an account's BlogBudgetsSpokeRole, write and read its parameter,
and read its budget (the reconciler and ``budgetctl status``).

All boto3 and ClientError handling for spoke accounts lives here; callers see the
project's own errors (errors.py). Each account's assumed-role credentials are cached until
they are close to expiry, so a warm function makes one call per account. The gateway builds
one SSM and one Budgets client (not two per account: building a botocore client costs about
as much CPU as three calls); each call through them is signed with its account's credentials
(``_in_account``), through botocore's per-request credentials (the request context's
``signing.request_credentials``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

import boto3
from botocore.credentials import Credentials
from botocore.exceptions import BotoCoreError, ClientError

from budget_sync.account_signing import AccountSignedClients
from budget_sync.alerts import NotificationKey, Notifications, notification_key, subscriber
from budget_sync.config import CLIENT_CONFIG, DEFAULT_BUDGET_NAME
from budget_sync.errors import ParameterRejected, PermanentError, SpokeAccessDenied, TransientError

if TYPE_CHECKING:
    from mypy_boto3_budgets import BudgetsClient
    from mypy_boto3_ssm import SSMClient
    from mypy_boto3_sts import STSClient

    from budget_sync.config import Settings

#: A cached client is replaced this long before its credentials expire.
EXPIRY_MARGIN = timedelta(minutes=5)
CREDENTIAL_SECONDS = 3600

_ACCESS_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "InvalidClientTokenId"}
_REJECTED = {
    "ParameterPatternMismatchException",
    "ValidationException",
    "HierarchyTypeMismatchException",
    "HierarchyLevelLimitExceededException",
    "ParameterMaxVersionLimitExceeded",
    "UnsupportedParameterType",
}
_EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired"}
_NOT_FOUND = {"ParameterNotFound", "NotFoundException"}


class SpokeGateway(Protocol):
    """What the pipeline needs from a spoke account."""

    def put_budget_value(self, account_id: str, amount_text: str) -> int:
        """Write the amount to the account's parameter; return the new parameter version."""
        ...

    def put_alert_settings(self, account_id: str, settings_json: str) -> int:
        """Write the alert settings (budget_sync.alerts) to the account's alert parameter."""
        ...


@dataclass(frozen=True, slots=True)
class ParameterReading:
    """The spoke parameter as it is: its text and version (None, None: it does not exist)."""

    value: str | None
    version: int | None


@dataclass(frozen=True, slots=True)
class AlertReading:
    """The spoke's alert side: its stack's defaults (the AlertDefaults parameter's JSON, {} if
    it does not exist) and the budget's notifications with their subscribers."""

    defaults: dict[str, Any]
    notifications: Notifications


@dataclass(frozen=True, slots=True)
class BudgetReading:
    """The spoke budget's limit and this period's spend, as AWS Budgets reports them.

    ``limit`` is None if the budget has no fixed limit (PlannedBudgetLimits: ``planned``) or
    it is not in USD; ``unit`` says which.
    """

    limit: Decimal | None
    unit: str
    actual: Decimal | None
    forecasted: Decimal | None
    planned: bool = False
    #: The budget's HealthStatus (botocore's Budgets model): HEALTHY or UNHEALTHY ("" when AWS
    #: gave none), and AWS's StatusReason with UNHEALTHY (e.g. FILTER_INVALID).
    health: str = ""
    health_reason: str = ""
    #: What the budget counts (budget_sync.cost_basis): its Metrics (None: none), its
    #: FilterExpression (DescribeBudget with ShowFilterExpression), and whether it has CostTypes.
    metrics: tuple[str, ...] | None = None
    filter_expression: Any = None
    cost_types: bool = False


@dataclass(slots=True)
class _CachedClient:
    """One account's assumed-role credentials, for the gateway's clients to sign with."""

    expires: datetime
    credentials: Credentials


class SsmSpokeGateway:
    """Writes /BlogBudgets/CostThreshold in spoke accounts through the spoke role."""

    def __init__(
        self,
        *,
        parameter_name: str,
        role_name: str,
        region: str,
        session_name: str,
        session: boto3.Session | None = None,
        endpoint_url: str | None = None,
        alert_parameter_name: str | None = None,
    ) -> None:
        self._session = session or boto3.Session()
        self._endpoint_url = endpoint_url  # budgetctl --endpoint-url (the local organisation)
        self._parameter_name = parameter_name
        self._alert_parameter_name = alert_parameter_name or alert_parameter_beside(parameter_name)
        self._role_name = role_name
        self._region = region
        self._session_name = session_name
        self._partition = self._session.get_partition_for_region(region)
        self._sts: STSClient = self._session.client(
            "sts", region_name=region, config=CLIENT_CONFIG, endpoint_url=endpoint_url
        )
        self._clients: dict[str, _CachedClient] = {}
        # one SSM and one Budgets client for every spoke, each call signed as its account
        self._signed = AccountSignedClients(
            self._session,
            "SsmSpokeGateway._in_account",
            region_name=region,
            config=CLIENT_CONFIG,
            endpoint_url=endpoint_url,
        )

    @classmethod
    def from_settings(cls, settings: Settings, session: boto3.Session) -> SsmSpokeGateway:
        """The gateway of a function (stream or reconciler), from its validated settings."""
        return cls(
            parameter_name=settings.parameter_name,
            role_name=settings.spoke_role_name,
            region=settings.spoke_region,
            session_name=settings.session_name,
            session=session,
            alert_parameter_name=settings.alert_parameter_name,
        )

    def role_arn(self, account_id: str) -> str:
        """Built from the account id and the configured role name, never taken from an item."""
        return f"arn:{self._partition}:iam::{account_id}:role/{self._role_name}"

    def put_budget_value(self, account_id: str, amount_text: str) -> int:
        return self._put(account_id, self._parameter_name, amount_text, "")

    def put_alert_settings(self, account_id: str, settings_json: str) -> int:
        return self._put(
            account_id,
            self._alert_parameter_name,
            settings_json,
            " (a spoke stack older than alert settings? update it to the current template-spoke.yaml)",
        )

    def _put(self, account_id: str, name: str, value: str, hint: str) -> int:
        try:
            with self._in_account(account_id):
                response = cast("SSMClient", self._service("ssm")).put_parameter(
                    Name=name, Value=value, Type="String", Overwrite=True
                )
        except (ClientError, BotoCoreError) as exc:
            raise self._failure(
                exc,
                account_id,
                denied=f"the spoke role may not write {name}{hint}",
                rejected=f"parameter {name} rejected the value {value!r}",
            ) from exc
        return int(response["Version"])

    def read_parameter(self, account_id: str) -> ParameterReading:
        """The parameter's current value and version (ssm:GetParameter through the spoke role)."""
        try:
            with self._in_account(account_id):
                parameter = cast("SSMClient", self._service("ssm")).get_parameter(Name=self._parameter_name)[
                    "Parameter"
                ]
        except (ClientError, BotoCoreError) as exc:
            if isinstance(exc, ClientError) and _code(exc) in _NOT_FOUND:
                return ParameterReading(None, None)
            raise self._failure(
                exc,
                account_id,
                denied=f"the spoke role may not read {self._parameter_name}",
                rejected=f"cannot read {self._parameter_name}",
            ) from exc
        return ParameterReading(parameter.get("Value"), parameter.get("Version"))

    def read_budget(self, account_id: str, budget_name: str = DEFAULT_BUDGET_NAME) -> BudgetReading | None:
        """The budget's limit and spend (budgets:ViewBudget through the spoke role); None if absent."""
        try:
            with self._in_account(account_id):
                budget = cast("BudgetsClient", self._service("budgets")).describe_budget(
                    AccountId=account_id, BudgetName=budget_name, ShowFilterExpression=True
                )["Budget"]
        except (ClientError, BotoCoreError) as exc:
            if isinstance(exc, ClientError) and _code(exc) in _NOT_FOUND:
                return None
            raise self._failure(
                exc,
                account_id,
                denied=f"the spoke role may not view the budget {budget_name}",
                rejected=f"cannot read the budget {budget_name}",
            ) from exc
        limit: Mapping[str, Any] = budget.get("BudgetLimit") or {}
        spend: Mapping[str, Any] = budget.get("CalculatedSpend") or {}
        unit = str(limit.get("Unit", ""))
        health: Mapping[str, Any] = budget.get("HealthStatus") or {}
        return BudgetReading(
            limit=_decimal(limit.get("Amount")) if unit in ("USD", "") else None,
            unit=unit,
            actual=_decimal((spend.get("ActualSpend") or {}).get("Amount")),
            forecasted=_decimal((spend.get("ForecastedSpend") or {}).get("Amount")),
            planned=bool(budget.get("PlannedBudgetLimits")) and not limit,
            health=str(health.get("Status") or ""),
            health_reason=str(health.get("StatusReason") or ""),
            metrics=tuple(budget["Metrics"]) if budget.get("Metrics") else None,
            filter_expression=budget.get("FilterExpression"),
            cost_types="CostTypes" in budget,
        )

    def _alert_defaults(self, account_id: str) -> dict[str, Any]:
        """The stack's AlertDefaults parameter as a JSON object ({} when there is none)."""
        name = alert_defaults_beside(self._alert_parameter_name)
        try:
            with self._in_account(account_id):
                try:
                    text = cast("SSMClient", self._service("ssm")).get_parameter(Name=name)["Parameter"][
                        "Value"
                    ]
                except ClientError as exc:
                    if _code(exc) not in _NOT_FOUND:
                        raise
                    text = "{}"  # no defaults (a stack older than alert settings): as the spoke reads it
        except (ClientError, BotoCoreError) as exc:
            raise self._failure(
                exc,
                account_id,
                denied=f"the spoke role may not read {name} (a spoke stack older than the reconciler's "
                "alert comparison? update it to the current template-spoke.yaml)",
                rejected=f"cannot read {name}",
            ) from exc
        try:
            defaults = json.loads(text)
        except ValueError:
            defaults = None
        if not isinstance(defaults, dict):
            raise ParameterRejected(
                f"account {account_id}: parameter {name} holds {text!r}, not a JSON object"
            )
        return defaults

    def read_alert_state(
        self, account_id: str, budget_name: str = DEFAULT_BUDGET_NAME
    ) -> AlertReading | None:
        """The stack's alert defaults (ssm:GetParameter of the AlertDefaults parameter beside the
        alert parameter) and the budget's notifications with their subscribers
        (budgets:ViewBudget), through the spoke role; None if the budget does not exist."""
        defaults = self._alert_defaults(account_id)
        notifications = self._notifications(account_id, budget_name)
        if notifications is None:
            return None
        found: Notifications = {}
        for notification, subscribers in notifications:
            key = _notification_key(notification)
            shown = frozenset(subscriber(s["SubscriptionType"], s["Address"]) for s in subscribers)
            found[key] = shown | found.get(key, frozenset())
        return AlertReading(defaults, found)

    def read_alerts(self, account_id: str, budget_name: str = DEFAULT_BUDGET_NAME) -> list[str] | None:
        """The budget's notifications as text (``ACTUAL>80%: a@x.com,b@x.com``); None if no budget."""
        notifications = self._notifications(account_id, budget_name)
        if notifications is None:
            return None
        found: list[str] = []
        for notification, subscribers in notifications:
            operator = {"GREATER_THAN": ">", "LESS_THAN": "<", "EQUAL_TO": "="}.get(
                notification["ComparisonOperator"], "?"
            )
            unit = "%" if notification.get("ThresholdType", "PERCENTAGE") == "PERCENTAGE" else " USD"
            threshold = _decimal(notification["Threshold"])
            shown = "?" if threshold is None else f"{threshold.normalize():f}"
            addresses = ",".join(sorted(s["Address"] for s in subscribers))
            found.append(f"{notification['NotificationType']}{operator}{shown}{unit}: {addresses}")
        return sorted(found)

    def _notifications(
        self, account_id: str, budget_name: str
    ) -> list[tuple[Mapping[str, Any], list[Mapping[str, Any]]]] | None:
        """The budget's notifications, each with its subscribers as AWS Budgets returns them
        (every page of both), through the spoke role; None if the budget does not exist."""
        found: list[tuple[Mapping[str, Any], list[Mapping[str, Any]]]] = []
        try:
            with self._in_account(account_id):
                budgets = cast("BudgetsClient", self._service("budgets"))
                pages = budgets.get_paginator("describe_notifications_for_budget")
                for page in pages.paginate(AccountId=account_id, BudgetName=budget_name):
                    for notification in page.get("Notifications", []):
                        found.append(
                            (notification, _subscribers(budgets, account_id, budget_name, notification))
                        )
        except (ClientError, BotoCoreError) as exc:
            if isinstance(exc, ClientError) and _code(exc) in _NOT_FOUND:
                return None
            raise self._failure(
                exc,
                account_id,
                denied=f"the spoke role may not view the budget {budget_name}",
                rejected=f"cannot read the notifications of {budget_name}",
            ) from exc
        return found

    @contextmanager
    def _in_account(self, account_id: str) -> Iterator[None]:
        """Calls of this thread through the gateway's clients are signed as the spoke role in
        ``account_id`` (its cached credentials; AssumeRole when there are none or they expire)."""
        with self._signed.signed_as(self._cached(account_id).credentials):
            yield

    def _cached(self, account_id: str) -> _CachedClient:
        now = datetime.now(UTC)
        cached = self._clients.get(account_id)
        if cached is not None and cached.expires - EXPIRY_MARGIN > now:
            return cached
        credentials = self._assume(account_id)
        keys = Credentials(
            credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"]
        )
        cached = _CachedClient(_as_utc(credentials["Expiration"]), keys)
        self._clients[account_id] = cached
        return cached

    def _service(self, service: Literal["ssm", "budgets"]) -> Any:
        """The gateway's client of ``service`` in the spoke region (built once, with retries);
        its calls are signed per account (``_in_account``)."""
        return self._signed.client(service)

    def _failure(
        self, exc: ClientError | BotoCoreError, account_id: str, *, denied: str, rejected: str
    ) -> Exception:
        """The project's error for a failed spoke call; expired credentials are dropped."""
        if isinstance(exc, BotoCoreError):
            return TransientError(f"account {account_id}: {exc}")
        if _code(exc) in _EXPIRED:
            self.forget(account_id)
        return _translate(exc, account_id, denied=denied, rejected=rejected)

    def forget(self, account_id: str) -> None:
        self._clients.pop(account_id, None)

    def _assume(self, account_id: str) -> Any:
        role_arn = self.role_arn(account_id)
        try:
            response = self._sts.assume_role(
                RoleArn=role_arn, RoleSessionName=self._session_name, DurationSeconds=CREDENTIAL_SECONDS
            )
        except ClientError as exc:
            raise _translate(
                exc,
                account_id,
                denied=f"cannot assume {role_arn}: is the spoke stack deployed in this account, "
                "and does its role trust this function's role?",
                rejected=f"cannot assume {role_arn}",
            ) from exc
        except BotoCoreError as exc:
            raise TransientError(f"account {account_id}: {exc}") from exc
        return response["Credentials"]


def alert_defaults_beside(alert_parameter_name: str) -> str:
    """The spoke stack's alert defaults parameter (template-spoke.yaml AlertDefaultsParameterName,
    default /BlogBudgets/AlertDefaults), beside the alert parameter: /BlogBudgets/AlertSettings ->
    /BlogBudgets/AlertDefaults."""
    return alert_parameter_name.rsplit("/", 1)[0] + "/AlertDefaults"


def alert_parameter_beside(parameter_name: str) -> str:
    """The alert parameter's default name: /BlogBudgets/CostThreshold -> /BlogBudgets/AlertSettings."""
    return parameter_name.rsplit("/", 1)[0] + "/AlertSettings"


def _translate(exc: ClientError, account_id: str, *, denied: str, rejected: str) -> Exception:
    """ClientError -> the project's errors. Unknown errors are retried, never dropped."""
    code = _code(exc)
    message = exc.response.get("Error", {}).get("Message", "")

    def detail(what: str) -> str:
        return f"account {account_id}: {what} ({code}: {message})"

    if code in _ACCESS_DENIED:
        return SpokeAccessDenied(detail(denied))
    if code in _REJECTED:
        return ParameterRejected(detail(rejected))
    if code == "RegionDisabledException":
        return PermanentError(detail("STS is not enabled in the spoke region"))
    return TransientError(detail("will retry"))


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _decimal(value: object) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _as_utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _notification_key(notification: Mapping[str, Any]) -> NotificationKey:
    """A Budgets notification as the alert contract keys it."""
    return notification_key(
        notification["NotificationType"],
        notification["ComparisonOperator"],
        notification.get("ThresholdType", "PERCENTAGE"),
        _decimal(notification["Threshold"]) or Decimal(0),
    )


def _subscribers(
    budgets: BudgetsClient, account_id: str, budget_name: str, notification: Mapping[str, Any]
) -> list[Mapping[str, Any]]:
    """Every subscriber of one notification, all pages, as AWS Budgets returns them."""
    subscribers: list[Mapping[str, Any]] = []
    pages = budgets.get_paginator("describe_subscribers_for_notification")
    for page in pages.paginate(AccountId=account_id, BudgetName=budget_name, Notification=notification):  # type: ignore[arg-type]
        subscribers += page.get("Subscribers", [])
    return subscribers
