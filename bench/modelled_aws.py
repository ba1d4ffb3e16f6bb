"""A modelled AWS for benchmarks: every call a boto3 session makes is answered, after a fixed
latency, with a canned response of the shape AWS documents, instead of by moto or the network.

What is measured with it is budget-sync's code, botocore (building clients, signing, serialising
and parsing) and the wait: ``time.sleep(latency)`` per call, which releases the GIL as waiting on
a socket does, so threads overlap it as they overlap real calls. What is not: AWS's own
behaviour (throttling, retries, variable latency), TLS and connection set-up, and the page
sizes are AWS's documented maxima (ListAccounts: 20 accounts a page).

It answers only what ``budgetctl report`` asks (DynamoDB Scan, Organizations ListAccounts,
STS AssumeRole, SSM GetParameter, Budgets DescribeBudget) and fails loudly on anything else.
The spoke account of a call is taken from the access key its signature names (AssumeRole
hands out keys that encode the account), as AWS takes it from the credentials.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import boto3
from botocore.awsrequest import AWSPreparedRequest, AWSResponse, HeadersDict

LIST_ACCOUNTS_PAGE = 20  # Organizations ListAccounts: MaxResults at most 20
_KEY = re.compile(r"Credential=([A-Z0-9]+)/")


@dataclass(frozen=True, slots=True)
class Spoke:
    """What a spoke account holds: its parameter's value and its budget (None: no spoke role)."""

    parameter: Decimal
    limit: Decimal
    actual: Decimal
    forecast: Decimal


@dataclass
class ModelledAws:
    """The organisation the modelled AWS answers for; ``latency`` seconds per call."""

    latency: float
    role_name: str
    budgets_table: str
    status_table: str
    items: list[tuple[str, Decimal]]
    names: dict[str, str]
    spokes: dict[str, Spoke]
    calls: int = 0
    waited: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def install(self, session: boto3.Session) -> None:
        """Answer every call of clients built from ``session`` from now on."""
        session.events.register("before-send", self._answer)

    def _answer(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        time.sleep(self.latency)
        with self._lock:
            self.calls += 1
            self.waited += self.latency
        target = request.headers.get("X-Amz-Target", b"")
        operation = (target.decode() if isinstance(target, bytes) else target).rsplit(".", 1)[-1]
        body = request.body or b""
        text = body.decode() if isinstance(body, bytes) else str(body)
        if not operation:  # the query protocol (STS): the action is in the form
            form = parse_qs(text)
            return (
                self._assume_role(form["RoleArn"][0]) if form.get("Action") == ["AssumeRole"] else _fail(text)
            )
        handlers: Mapping[str, Callable[[dict[str, Any], AWSPreparedRequest], AWSResponse]] = {
            "Scan": self._scan,
            "Query": self._query,
            "ListAccounts": self._list_accounts,
            "GetParameter": self._get_parameter,
            "DescribeBudget": self._describe_budget,
            # no alerts: no item sets any, and the stacks have no alert defaults (above)
            "DescribeNotificationsForBudget": lambda _body, _request: _json({"Notifications": []}),
        }
        if operation not in handlers:
            return _fail(operation)
        return handlers[operation](json.loads(text or "{}"), request)

    def _scan(self, body: dict[str, Any], _: AWSPreparedRequest) -> AWSResponse:
        if body["TableName"] == self.budgets_table:
            rows = [{"AccountId": {"S": a}, "BudgetValue": {"N": str(v)}} for a, v in self.items]
        else:
            rows = [
                {"AccountId": {"S": a}, "Status": {"S": "APPLIED"}, "SequenceNumber": {"S": "1"}}
                for a, _v in self.items
            ]
        return _json({"Items": rows, "Count": len(rows), "ScannedCount": len(rows)})

    def _query(self, body: dict[str, Any], _: AWSPreparedRequest) -> AWSResponse:
        """The history table's day index (the report's "changes this period"): no change
        recorded. A month's history read at scale is bench.history's measure, not this one's."""
        return _json({"Items": [], "Count": 0, "ScannedCount": 0})

    def _list_accounts(self, body: dict[str, Any], _: AWSPreparedRequest) -> AWSResponse:
        start = int(body.get("NextToken") or 0)
        ids = list(self.names)[start : start + LIST_ACCOUNTS_PAGE]
        page: dict[str, Any] = {
            "Accounts": [{"Id": a, "Name": self.names[a], "Status": "ACTIVE"} for a in ids]
        }
        if start + LIST_ACCOUNTS_PAGE < len(self.names):
            page["NextToken"] = str(start + LIST_ACCOUNTS_PAGE)
        return _json(page)

    def _assume_role(self, role_arn: str) -> AWSResponse:
        account = role_arn.split(":")[4]
        if account not in self.spokes or not role_arn.endswith(f":role/{self.role_name}"):
            return _response(
                403,
                "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>"
                f"User is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
                "</Message></Error><RequestId>r</RequestId></ErrorResponse>",
                "text/xml",
            )
        return _response(
            200,
            '<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>'
            f"<Credentials><AccessKeyId>ASIA{account}</AccessKeyId><SecretAccessKey>secret</SecretAccessKey>"
            "<SessionToken>token</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials>"
            f"<AssumedRoleUser><AssumedRoleId>AROA{account}:report</AssumedRoleId><Arn>{role_arn}</Arn>"
            "</AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>r</RequestId>"
            "</ResponseMetadata></AssumeRoleResponse>",
            "text/xml",
        )

    def _get_parameter(self, body: dict[str, Any], request: AWSPreparedRequest) -> AWSResponse:
        spoke = self.spokes[_account(request)]
        if not body["Name"].endswith("/CostThreshold"):  # the stack's alert defaults: none set
            return _response(
                400,
                json.dumps({"__type": "ParameterNotFound", "message": ""}),
                "application/x-amz-json-1.1",
            )
        parameter = {"Name": body["Name"], "Type": "String", "Value": str(spoke.parameter), "Version": 1}
        return _json({"Parameter": parameter})

    def _describe_budget(self, body: dict[str, Any], request: AWSPreparedRequest) -> AWSResponse:
        spoke = self.spokes[_account(request)]
        budget = {
            "BudgetName": body["BudgetName"],
            "BudgetLimit": {"Amount": str(spoke.limit), "Unit": "USD"},
            "TimeUnit": "MONTHLY",
            "BudgetType": "COST",
            "HealthStatus": {"Status": "HEALTHY"},
            "CalculatedSpend": {
                "ActualSpend": {"Amount": str(spoke.actual), "Unit": "USD"},
                "ForecastedSpend": {"Amount": str(spoke.forecast), "Unit": "USD"},
            },
        }
        return _json({"Budget": budget})


def _account(request: AWSPreparedRequest) -> str:
    """The account whose credentials signed the call (keys from AssumeRole: ASIA + account)."""
    authorization = request.headers.get("Authorization", b"")
    text = authorization.decode() if isinstance(authorization, bytes) else authorization
    found = _KEY.search(text)
    if found is None or not found.group(1).startswith("ASIA"):
        raise AssertionError(f"not signed with a spoke role's keys: {text}")
    return found.group(1)[4:]


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def _response(status: int, body: str, content_type: str) -> AWSResponse:
    headers = HeadersDict({"Content-Type": content_type, "x-amzn-RequestId": "r"})
    return AWSResponse("https://modelled.invalid/", status, headers, _Raw(body.encode()))


def _json(body: Mapping[str, Any]) -> AWSResponse:
    return _response(200, json.dumps(body), "application/x-amz-json-1.1")


def _fail(what: str) -> AWSResponse:
    raise AssertionError(f"the modelled AWS does not answer {what!r}")
