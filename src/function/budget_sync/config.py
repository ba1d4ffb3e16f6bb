"""Every function's configuration, in one place: read once from the environment, validated, frozen
(Settings: the update function's and the reconciler's common part; ReconcilerSettings;
ResultSettings; ResolverSettings; HistorySettings; ApprovalSettings; the clients' CLIENT_CONFIG)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from botocore.config import Config

from budget_sync.errors import ConfigError

_ROLE_NAME = re.compile(r"[\w+=,.@-]{1,64}")
_PARAMETER_NAME = re.compile(r"/[\w.\-/]{1,1010}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]+")
_STACK_SET_NAME = re.compile(r"[a-zA-Z][-a-zA-Z0-9]{0,127}")
#: A DynamoDB table name (every function's settings validate theirs with it).
TABLE_NAME = re.compile(r"[\w.\-]{3,255}")
#: The spoke budget's default name (template-spoke.yaml, BudgetName) and what AWS Budgets allows.
DEFAULT_BUDGET_NAME = "SpokeAccountBudget"
_BUDGET_NAME = re.compile(r"[^:\\]{1,100}")

#: botocore retries throttling, 5xx and timeouts itself before we see an error.
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 4},
    connect_timeout=5,
    read_timeout=10,
)


@dataclass(frozen=True, slots=True)
class Settings:
    """What the stream function and the reconciler need to know.

    Environment variables (set by template-management.yaml):
      BUDGET_PARAMETER_NAME  the spoke parameter, e.g. /BlogBudgets/CostThreshold
      SPOKE_ROLE_NAME        the role assumed in each spoke account
      SPOKE_REGION           where the spoke stacks live (empty: the function's own region)
      STATUS_TABLE_NAME      the per-account status table
      ALERT_PARAMETER_NAME   the spoke's alert parameter (empty: AlertSettings beside
                             BUDGET_PARAMETER_NAME, e.g. /BlogBudgets/AlertSettings)
      MAX_CONCURRENCY        accounts applied at once (default 10)
      AWS_REGION             set by Lambda
    """

    parameter_name: str
    spoke_role_name: str
    spoke_region: str
    status_table_name: str
    max_concurrency: int = 10
    session_name: str = "budget-sync"
    alert_parameter_name: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        own_region = required_env(env, "AWS_REGION", _REGION)
        spoke_region = env.get("SPOKE_REGION", "").strip() or own_region
        if not _REGION.fullmatch(spoke_region):
            raise ConfigError(f"SPOKE_REGION {spoke_region!r} is not an AWS region name")
        concurrency_text = env.get("MAX_CONCURRENCY", "10").strip() or "10"
        if not concurrency_text.isdigit() or not 1 <= int(concurrency_text) <= 64:
            raise ConfigError(f"MAX_CONCURRENCY {concurrency_text!r} must be a whole number from 1 to 64")
        return cls(
            parameter_name=required_env(env, "BUDGET_PARAMETER_NAME", _PARAMETER_NAME),
            spoke_role_name=required_env(env, "SPOKE_ROLE_NAME", _ROLE_NAME),
            spoke_region=spoke_region,
            status_table_name=required_env(env, "STATUS_TABLE_NAME", TABLE_NAME),
            max_concurrency=int(concurrency_text),
            session_name=_session_name(env.get("AWS_LAMBDA_FUNCTION_NAME", "")),
            alert_parameter_name=optional_env(env, "ALERT_PARAMETER_NAME", _PARAMETER_NAME),
        )


def required_env(env: Mapping[str, str], name: str, pattern: re.Pattern[str]) -> str:
    """The environment variable ``name``, set and matching ``pattern``; ConfigError naming it otherwise."""
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"environment variable {name} is not set")
    if not pattern.fullmatch(value):
        raise ConfigError(f"environment variable {name} has an invalid value {value!r}")
    return value


def optional_env(env: Mapping[str, str], name: str, pattern: re.Pattern[str]) -> str | None:
    """The environment variable ``name`` if set (it must match ``pattern``), else None."""
    value = env.get(name, "").strip()
    if value and not pattern.fullmatch(value):
        raise ConfigError(f"environment variable {name} has an invalid value {value!r}")
    return value or None


def _session_name(function_name: str) -> str:
    """An STS session name that says which function acted (CloudTrail shows it in the spoke)."""
    cleaned = re.sub(r"[^\w+=,.@-]", "-", function_name)
    return f"budget-sync-{cleaned}"[:64] if cleaned else "budget-sync"


_TOPIC_ARN = re.compile(r"arn:[a-z-]+:sns:[a-z0-9-]+:[0-9]{12}:[\w-]{1,256}")
DEFAULT_TIMEOUT_MINUTES = 15


@dataclass(frozen=True, slots=True)
class ResultSettings:
    """Environment variables (template-management.yaml: ResultFunction, UnconfirmedCheckFunction,
    FailureNoticeFunction; handlers/results.py, unconfirmed.py, notices.py):
    STATUS_TABLE_NAME        the status table
    ALARM_TOPIC_ARN          where a new failure is published (empty: metric and log only)
    CONFIRM_TIMEOUT_MINUTES  a SENT value not confirmed within this becomes FAILED (1 to 1440)
    """

    status_table_name: str
    alarm_topic_arn: str
    confirm_timeout: timedelta

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ResultSettings:
        env = os.environ if env is None else env
        table = required_env(env, "STATUS_TABLE_NAME", TABLE_NAME)
        topic = optional_env(env, "ALARM_TOPIC_ARN", _TOPIC_ARN) or ""
        minutes = env.get("CONFIRM_TIMEOUT_MINUTES", str(DEFAULT_TIMEOUT_MINUTES)).strip()
        if not minutes.isdigit() or not 1 <= int(minutes) <= 1440:
            raise ConfigError(
                f"environment variable CONFIRM_TIMEOUT_MINUTES {minutes!r} must be a whole number from 1 to 1440"
            )
        return cls(table, topic, timedelta(minutes=int(minutes)))


@dataclass(frozen=True, slots=True)
class ReconcilerSettings:
    """The scheduled reconciler's configuration: the stream function's, plus two names.

    Environment variables (template-management.yaml, ReconcilerFunction):
      BUDGETS_TABLE_NAME  the operators' table
      BUDGET_NAME         the spoke budget (template-spoke.yaml, BudgetName)
      and those of budget_sync.config.Settings.
    """

    common: Settings
    budgets_table_name: str
    budget_name: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ReconcilerSettings:
        env = os.environ if env is None else env
        table = required_env(env, "BUDGETS_TABLE_NAME", TABLE_NAME)
        budget = env.get("BUDGET_NAME", DEFAULT_BUDGET_NAME).strip() or DEFAULT_BUDGET_NAME
        if not _BUDGET_NAME.fullmatch(budget):
            raise ConfigError(f"environment variable BUDGET_NAME has an invalid value {budget!r}")
        return cls(Settings.from_env(env), table, budget)


@dataclass(frozen=True, slots=True)
class ResolverSettings:
    """Environment variables (set by template-management.yaml for BlogBudgetsOrgResolver):
    BUDGETS_TABLE_NAME, DEFAULTS_TABLE_NAME, STATUS_TABLE_NAME; SPOKE_STACKSET_NAME (empty:
    every account counts as having its spoke stack); SPOKE_REGION (the StackSet's instances'
    region; empty: the function's own); STACKSET_CALL_AS (SELF | DELEGATED_ADMIN);
    ORGANIZATIONS_MAX_RPS (calls per second to Organizations)."""

    budgets_table_name: str
    defaults_table_name: str
    status_table_name: str
    stack_set_name: str
    spoke_region: str
    call_as: str
    max_rps: float

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ResolverSettings:
        env = os.environ if env is None else env
        tables = {
            name: required_env(env, name, TABLE_NAME)
            for name in ("BUDGETS_TABLE_NAME", "DEFAULTS_TABLE_NAME", "STATUS_TABLE_NAME")
        }
        stack_set = optional_env(env, "SPOKE_STACKSET_NAME", _STACK_SET_NAME) or ""
        region = env.get("SPOKE_REGION", "").strip() or env.get("AWS_REGION", "").strip()
        if stack_set and not _REGION.fullmatch(region):
            raise ConfigError(f"environment variable SPOKE_REGION (or AWS_REGION) is invalid: {region!r}")
        call_as = env.get("STACKSET_CALL_AS", "SELF").strip() or "SELF"
        if call_as not in ("SELF", "DELEGATED_ADMIN"):
            raise ConfigError(
                f"environment variable STACKSET_CALL_AS must be SELF or DELEGATED_ADMIN: {call_as!r}"
            )
        rps_text = env.get("ORGANIZATIONS_MAX_RPS", "4").strip() or "4"
        try:
            rps = float(rps_text)
        except ValueError:
            raise ConfigError(
                f"environment variable ORGANIZATIONS_MAX_RPS is not a number: {rps_text!r}"
            ) from None
        if not 0 <= rps <= 1000:
            raise ConfigError(f"environment variable ORGANIZATIONS_MAX_RPS must be 0 to 1000: {rps_text!r}")
        return cls(
            budgets_table_name=tables["BUDGETS_TABLE_NAME"],
            defaults_table_name=tables["DEFAULTS_TABLE_NAME"],
            status_table_name=tables["STATUS_TABLE_NAME"],
            stack_set_name=stack_set,
            spoke_region=region,
            call_as=call_as,
            max_rps=rps,
        )


@dataclass(frozen=True, slots=True)
class HistorySettings:
    """Environment variables (template-management.yaml, HistoryFunction; handlers/history.py):
    HISTORY_TABLE_NAME      where records are appended
    STATUS_TABLE_NAME, DEFAULTS_TABLE_NAME, APPROVAL_REQUESTS_TABLE_NAME, APPROVALS_TABLE_NAME
                            the tables whose streams it reads (a record's eventSourceARN names one)
    HISTORY_RETENTION_DAYS  how long a record is kept (the TTL attribute; 1 to 3650)
    """

    history_table_name: str
    status_table_name: str
    defaults_table_name: str
    retention_days: int
    requests_table_name: str = ""  # "": no approval requests stream read
    approvals_table_name: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> HistorySettings:
        env = os.environ if env is None else env
        tables = {
            name: required_env(env, name, TABLE_NAME)
            for name in (
                "HISTORY_TABLE_NAME",
                "STATUS_TABLE_NAME",
                "DEFAULTS_TABLE_NAME",
                "APPROVAL_REQUESTS_TABLE_NAME",
                "APPROVALS_TABLE_NAME",
            )
        }
        days = env.get("HISTORY_RETENTION_DAYS", "400").strip() or "400"
        if not days.isdigit() or not 1 <= int(days) <= 3650:
            raise ConfigError(
                f"environment variable HISTORY_RETENTION_DAYS {days!r} must be a whole number from 1 to 3650"
            )
        return cls(
            history_table_name=tables["HISTORY_TABLE_NAME"],
            status_table_name=tables["STATUS_TABLE_NAME"],
            defaults_table_name=tables["DEFAULTS_TABLE_NAME"],
            retention_days=int(days),
            requests_table_name=tables["APPROVAL_REQUESTS_TABLE_NAME"],
            approvals_table_name=tables["APPROVALS_TABLE_NAME"],
        )


_THRESHOLD_AMOUNT = re.compile(r"[1-9][0-9]{0,9}(\.[0-9]{1,2})?")
_THRESHOLD_PERCENT = re.compile(r"[1-9][0-9]{0,5}(\.[0-9]{1,2})?")
DEFAULT_APPROVAL_EXPIRY_HOURS = 72


@dataclass(frozen=True, slots=True)
class ApprovalSettings:
    """The approval rule (budget_sync.approvals) of the update function.

    Environment variables (template-management.yaml, UpdateFunction):
      APPROVAL_THRESHOLD_AMOUNT   an increase of more than this many USD needs approval (empty: no
                                  amount part), e.g. 500 or 1250.50
      APPROVAL_THRESHOLD_PERCENT  an increase of more than this percentage of the current value
                                  needs approval (empty: no percentage part), e.g. 20 or 12.5
      APPROVAL_REQUESTS_TABLE_NAME  the requests table (needed only with a rule)
      APPROVALS_TABLE_NAME        the approvals table (needed only with a rule)
      APPROVAL_EXPIRY_HOURS       a request expires after this many hours (1 to 8760, default 72)
    Both thresholds empty: no rule, every value flows as before.
    """

    amount: Decimal | None
    percent: Decimal | None
    requests_table_name: str
    expiry: timedelta
    approvals_table_name: str = ""

    @property
    def active(self) -> bool:
        return self.amount is not None or self.percent is not None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ApprovalSettings:
        env = os.environ if env is None else env
        amount = _threshold(env, "APPROVAL_THRESHOLD_AMOUNT", _THRESHOLD_AMOUNT, "an amount in USD like 500")
        percent = _threshold(env, "APPROVAL_THRESHOLD_PERCENT", _THRESHOLD_PERCENT, "a percentage like 20")
        hours = env.get("APPROVAL_EXPIRY_HOURS", "").strip() or str(DEFAULT_APPROVAL_EXPIRY_HOURS)
        if not hours.isdigit() or not 1 <= int(hours) <= 8760:
            raise ConfigError(
                f"environment variable APPROVAL_EXPIRY_HOURS {hours!r} must be a whole number from 1 to 8760"
            )
        requests = approvals = ""
        if amount is not None or percent is not None:
            requests = required_env(env, "APPROVAL_REQUESTS_TABLE_NAME", TABLE_NAME)
            approvals = required_env(env, "APPROVALS_TABLE_NAME", TABLE_NAME)
        return cls(amount, percent, requests, timedelta(hours=int(hours)), approvals)


def _threshold(env: Mapping[str, str], name: str, pattern: re.Pattern[str], example: str) -> Decimal | None:
    """A threshold of the approval rule: None if empty, else a number greater than 0."""
    text = env.get(name, "").strip()
    if not text:
        return None
    if not pattern.fullmatch(text) or Decimal(text) <= 0:
        raise ConfigError(
            f"environment variable {name} has an invalid value {text!r}: it must be empty or "
            f"{example}, greater than 0, with at most two decimals"
        )
    return Decimal(text)
