"""STS: AssumeRole needs the role to exist in the target account."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from moto.iam.models import iam_backends
from moto.sts.exceptions import STSClientError
from moto.sts.models import STSBackend, sts_backends

from budget_sync_local.standins import authorisation
from budget_sync_local.standins.speed import _KEY_ACCOUNTS

#: Every member account that AWS Organizations creates has this role.
ADMIN_ROLE = "OrganizationAccountAccessRole"


def _assume_existing_role_only(original: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(original)

    def assume_role(self: STSBackend, *args: Any, **kwargs: Any) -> Any:
        role_arn: str = signature.bind(self, *args, **kwargs).arguments["role_arn"]
        parts = role_arn.split(":")
        account, partition, name = parts[4], parts[1], role_arn.rsplit("/", 1)[-1]
        if name != ADMIN_ROLE:
            roles = iam_backends[account][partition].roles.values()
            if not any(role.name == name for role in roles):
                raise STSClientError(
                    "AccessDenied",
                    f"User is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
                )
        assumed = original(self, *args, **kwargs)
        _KEY_ACCOUNTS[assumed.access_key_id] = account  # see _remembered_account_lookup
        authorisation.remember(assumed.access_key_id, role_arn, assumed.session_name)
        return assumed

    return assume_role


def service_credentials(
    role_arn: str, service: str, source_account: str, region: str, session_name: str
) -> tuple[str, str, str]:
    """A service's credentials for a role it runs something as (Lambda a function's execution
    role, EventBridge a rule's target role): the role's trust policy must admit the service
    for ``source_account`` (authorisation.service_assumes) when IAM is enforced. Returns the
    access key id, secret and session token."""
    if authorisation.is_enforced():
        authorisation.service_assumes(role_arn, service, source_account)
    partition = role_arn.split(":")[1]
    assumed = sts_backends[role_arn.split(":")[4]][partition].assume_role(
        region_name=region,
        role_session_name=session_name,
        role_arn=role_arn,
        policy="",
        duration=3600,
        external_id="",
    )
    return assumed.access_key_id, assumed.secret_access_key, assumed.session_token
