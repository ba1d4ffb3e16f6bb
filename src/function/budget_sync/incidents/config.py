"""The incident function's configuration (template-management.yaml, IncidentFunction): read
once from the environment, validated, frozen. ConfigError names the variable and the value.

  INCIDENTS_TABLE_NAME        the incidents table (table.py)
  BUDGETS_TABLE_NAME          the accounts and their ``Incident*`` settings
  DEFAULTS_TABLE_NAME         the OU/root defaults and theirs (empty: no OU override)
  SERVICENOW_INSTANCE_URL     https://INSTANCE.service-now.com
  SERVICENOW_SECRET_ARN       the Secrets Manager secret with the credentials (servicenow.Credentials)
  ALARM_TOPIC_ARN             where a refusal by ServiceNow is published once (empty: log only)
  SPOKE_ROLE_NAME, BUDGET_NAME, SPOKE_REGION   the spoke role to assume, the budget to read
  INCIDENT_URGENCY, INCIDENT_IMPACT            the stack's defaults, 1 to 3 (default 3)
  INCIDENT_ASSIGNMENT_GROUP, INCIDENT_CALLER   the stack's defaults, sys_ids (empty: none)
  INCIDENT_CLOSE_CODE         the resolution code sent with state 6 (default "Solution provided")
  INCIDENT_SWEEP_CONCURRENCY  accounts the hourly sweep looks at at once, 1 to 64 (default 16;
                              1: one after another)
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from budget_sync.config import _REGION, _ROLE_NAME, _TOPIC_ARN, TABLE_NAME, optional_env, required_env
from budget_sync.errors import ConfigError, InvalidItemError
from budget_sync.incidents.lifecycle import (
    CALLER_FIELD,
    GROUP_FIELD,
    IMPACT_FIELD,
    URGENCY_FIELD,
    IncidentSettings,
)
from budget_sync.incidents.servicenow import instance_url

_SECRET_ARN = re.compile(r"arn:[a-z-]+:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[\w/+=.@-]{1,512}")
_BUDGET_NAME = re.compile(r"[^:\\]{1,100}")
_CLOSE_CODE = re.compile(r"[^\x00-\x1f]{1,40}")
_ENV_OF = {
    URGENCY_FIELD: "INCIDENT_URGENCY",
    IMPACT_FIELD: "INCIDENT_IMPACT",
    GROUP_FIELD: "INCIDENT_ASSIGNMENT_GROUP",
    CALLER_FIELD: "INCIDENT_CALLER",
}


@dataclass(frozen=True, slots=True)
class IncidentFunctionSettings:
    incidents_table_name: str
    budgets_table_name: str
    defaults_table_name: str
    instance_url: str
    secret_arn: str
    alarm_topic_arn: str
    spoke_role_name: str
    budget_name: str
    spoke_region: str
    stack: IncidentSettings
    close_code: str
    sweep_concurrency: int = 16  # DEFAULT_SWEEP_CONCURRENCY

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> IncidentFunctionSettings:
        env = os.environ if env is None else env
        url = env.get("SERVICENOW_INSTANCE_URL", "")
        if not url.strip():
            raise ConfigError("environment variable SERVICENOW_INSTANCE_URL is not set")
        try:
            stack = IncidentSettings.from_item({field: env.get(name, "") for field, name in _ENV_OF.items()})
        except InvalidItemError as exc:
            raise ConfigError(
                f"environment variable {_ENV_OF[exc.field]} {exc.value!r} {exc.reason}"
            ) from exc
        return cls(
            incidents_table_name=required_env(env, "INCIDENTS_TABLE_NAME", TABLE_NAME),
            budgets_table_name=required_env(env, "BUDGETS_TABLE_NAME", TABLE_NAME),
            defaults_table_name=optional_env(env, "DEFAULTS_TABLE_NAME", TABLE_NAME) or "",
            instance_url=instance_url(url),
            secret_arn=required_env(env, "SERVICENOW_SECRET_ARN", _SECRET_ARN),
            alarm_topic_arn=optional_env(env, "ALARM_TOPIC_ARN", _TOPIC_ARN) or "",
            spoke_role_name=required_env(env, "SPOKE_ROLE_NAME", _ROLE_NAME),
            budget_name=optional_env(env, "BUDGET_NAME", _BUDGET_NAME) or "SpokeAccountBudget",
            spoke_region=optional_env(env, "SPOKE_REGION", _REGION) or env.get("AWS_REGION", "us-east-1"),
            stack=stack,
            close_code=optional_env(env, "INCIDENT_CLOSE_CODE", _CLOSE_CODE) or "Solution provided",
            sweep_concurrency=_concurrency(env),
        )


#: The sweep's default concurrency, and the most it may be set to.
DEFAULT_SWEEP_CONCURRENCY = 16
MAX_SWEEP_CONCURRENCY = 64


def _concurrency(env: Mapping[str, str]) -> int:
    text = env.get("INCIDENT_SWEEP_CONCURRENCY", "").strip()
    if not text:
        return DEFAULT_SWEEP_CONCURRENCY
    if not text.isdigit() or not 1 <= int(text) <= MAX_SWEEP_CONCURRENCY:
        raise ConfigError(
            f"environment variable INCIDENT_SWEEP_CONCURRENCY {text!r} is not a whole number "
            f"from 1 to {MAX_SWEEP_CONCURRENCY}"
        )
    return int(text)


__all__ = ["DEFAULT_SWEEP_CONCURRENCY", "MAX_SWEEP_CONCURRENCY", "IncidentFunctionSettings"]
