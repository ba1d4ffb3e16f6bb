"""The spoke adapter: reach an account's BlogBudgetsSpokeRole and write its parameter.

All boto3 and ClientError handling for spoke accounts lives here; callers see the
project's own errors (errors.py). Cross-account clients are cached per account until
their credentials are close to expiry, so a warm function makes one call per account.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from budget_sync.errors import ParameterRejected, PermanentError, SpokeAccessDenied, TransientError

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient
    from mypy_boto3_sts import STSClient

#: botocore retries throttling, 5xx and timeouts itself before we see an error.
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 4},
    connect_timeout=5,
    read_timeout=10,
)
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


class SpokeGateway(Protocol):
    """What the pipeline needs from a spoke account."""

    def put_budget_value(self, account_id: str, amount_text: str) -> int:
        """Write the amount to the account's parameter; return the new parameter version."""
        ...


@dataclass(slots=True)
class _CachedClient:
    client: SSMClient
    expires: datetime


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
    ) -> None:
        self._session = session or boto3.Session()
        self._parameter_name = parameter_name
        self._role_name = role_name
        self._region = region
        self._session_name = session_name
        self._partition = self._session.get_partition_for_region(region)
        self._sts: STSClient = self._session.client("sts", region_name=region, config=CLIENT_CONFIG)
        self._clients: dict[str, _CachedClient] = {}
        self._lock = threading.Lock()

    def role_arn(self, account_id: str) -> str:
        """Built from the account id and the configured role name, never taken from an item."""
        return f"arn:{self._partition}:iam::{account_id}:role/{self._role_name}"

    def put_budget_value(self, account_id: str, amount_text: str) -> int:
        ssm = self.ssm_client(account_id)
        try:
            response = ssm.put_parameter(
                Name=self._parameter_name, Value=amount_text, Type="String", Overwrite=True
            )
        except ClientError as exc:
            code = _code(exc)
            if code in _EXPIRED:
                self.forget(account_id)
            raise _translate(
                exc,
                account_id,
                denied=f"the spoke role may not write {self._parameter_name}",
                rejected=f"parameter {self._parameter_name} rejected the value {amount_text!r}",
            ) from exc
        except BotoCoreError as exc:
            raise TransientError(f"account {account_id}: {exc}") from exc
        return int(response["Version"])

    def ssm_client(self, account_id: str) -> SSMClient:
        """An SSM client acting as the spoke role in ``account_id`` (cached)."""
        now = datetime.now(UTC)
        cached = self._clients.get(account_id)
        if cached is not None and cached.expires - EXPIRY_MARGIN > now:
            return cached.client
        credentials = self._assume(account_id)
        with self._lock:  # building clients on one session is not thread-safe
            client: SSMClient = self._session.client(
                "ssm",
                region_name=self._region,
                aws_access_key_id=credentials["AccessKeyId"],
                aws_secret_access_key=credentials["SecretAccessKey"],
                aws_session_token=credentials["SessionToken"],
                config=CLIENT_CONFIG,
            )
            self._clients[account_id] = _CachedClient(client, _as_utc(credentials["Expiration"]))
        return client

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


def _as_utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
