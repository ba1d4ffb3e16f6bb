"""The Organizations and StackSets adapter's own decisions, without AWS: how it paces its
calls (Organizations throttles at a few per second) and which errors are retried (Lambda
retries the event), which fail, and which mean "not in this organisation"."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from budget_sync.errors import PermanentError, TransientError
from budget_sync.organizations import (
    NotInOrganization,
    OrganizationsReader,
    StackSetReadiness,
    _Pace,
    _translate,
)


def error(code: str, status: int = 400) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"{code} message"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "Op",
    )


def test_calls_are_spaced_to_the_rate_and_none_waits_when_the_rate_is_unbounded():
    now = [100.0]
    slept: list[float] = []
    pace = _Pace(4, clock=lambda: now[0], sleep=slept.append)

    for _ in range(3):
        pace.wait()

    assert slept == [0.25, 0.5]  # three calls at once: the second a quarter second later, the third half

    now[0] = 200.0  # long after: no wait
    pace.wait()
    assert slept == [0.25, 0.5]

    unbounded = _Pace(0, clock=lambda: now[0], sleep=slept.append)
    unbounded.wait()
    unbounded.wait()
    assert slept == [0.25, 0.5]


class _Answering:
    def list_roots(self, **_: Any) -> dict[str, Any]:
        return {"Roots": []}


def test_in_the_suite_the_reader_keeps_its_spacing_in_virtual_time_and_a_given_clock_is_real():
    # tests/conftest.py: a pace the code under test creates sleeps on its own virtual clock
    reader = OrganizationsReader(_Answering(), max_rps=4)  # type: ignore[arg-type]
    virtual = reader._pace.virtual  # type: ignore[attr-defined]
    start = virtual.now()
    for _ in range(5):
        reader.roots()

    assert len(virtual.slept) == 4  # the first call waits for nobody, each later one for its turn
    assert all(0 < seconds <= 0.25 for seconds in virtual.slept)
    assert virtual.now() - start >= 1.0  # five calls at 4 a second span a second, on its clock
    assert reader.calls == {"list_roots": 5}

    # a clock and a sleep given to the pace are the ones it uses
    given: list[float] = []
    _Pace(4, clock=lambda: 0.0, sleep=given.append).wait()
    assert given == []


@pytest.mark.parametrize(
    "code",
    [
        "TooManyRequestsException",
        "ThrottlingException",
        "ServiceException",
        "ConcurrentModificationException",
    ],
)
def test_throttling_and_service_errors_are_retried(code: str):
    translated = _translate("list_parents", error(code))
    assert isinstance(translated, TransientError)
    assert translated.retryable is True
    assert str(translated) == f"list_parents: {code}"


def test_a_5xx_and_a_connection_failure_are_retried():
    assert isinstance(_translate("list_roots", error("Whatever", 503)), TransientError)
    assert isinstance(_translate("list_roots", EndpointConnectionError(endpoint_url="x")), TransientError)


@pytest.mark.parametrize(
    "code",
    [
        "AccountNotFoundException",
        "OrganizationalUnitNotFoundException",
        "ChildNotFoundException",
        "StackSetNotFoundException",
    ],
)
def test_not_found_means_not_in_this_organisation_and_is_not_retried(code: str):
    translated = _translate("describe_account", error(code))
    assert isinstance(translated, NotInOrganization)
    assert translated.retryable is False


def test_access_denied_fails_naming_the_call_and_aws_message():
    translated = _translate("list_roots", error("AccessDeniedException"))
    assert type(translated) is PermanentError
    assert str(translated) == "list_roots: AccessDeniedException: AccessDeniedException message"


class _Raising:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def __getattr__(self, name: str) -> Any:
        def call(**_: Any) -> Any:
            raise self.exc

        return call


def test_the_reader_raises_the_translation_and_counts_the_call():
    reader = OrganizationsReader(_Raising(error("TooManyRequestsException")), max_rps=0)  # type: ignore[arg-type]
    with pytest.raises(TransientError):
        reader.full()
    assert reader.calls == {"list_roots": 1}


def test_an_account_no_longer_in_the_organisation_is_an_empty_tree():
    reader = OrganizationsReader(_Raising(error("ChildNotFoundException")), max_rps=0)  # type: ignore[arg-type]
    assert reader.account("111111111111").accounts == {}


def test_the_stack_set_reader_translates_its_errors():
    readiness = StackSetReadiness(_Raising(error("StackSetNotFoundException")), "spokes", "eu-west-1")  # type: ignore[arg-type]
    with pytest.raises(NotInOrganization):
        readiness.ready_accounts()
