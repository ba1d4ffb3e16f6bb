"""The spoke adapter on moto: cross-account clients cached until close to expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest

from budget_sync.spoke import SsmSpokeGateway
from tests.support.moto_org import PARAMETER, REGION, SPOKE_ROLE, SPOKES, Org

A = SPOKES[0]


@pytest.fixture
def org(enforced_org: Org) -> Org:
    """Under IAM: the gateway as the template's FunctionRole, each spoke's SpokeRole as the
    template defines it (tests/support/moto_org.py, enforced_org)."""
    return enforced_org


def gateway(org: Org) -> SsmSpokeGateway:
    """The update function's gateway, with its execution role's session."""
    return SsmSpokeGateway(
        parameter_name=PARAMETER,
        role_name=SPOKE_ROLE,
        region=REGION,
        session_name="budget-sync-test",
        session=org.function_session(),
    )


def assumed(account: str) -> int:
    from moto.sts.models import sts_backends  # moto: not at collection (make unit)

    return len(sts_backends[account]["aws"].assumed_roles)


def test_given_a_warm_gateway_then_the_spoke_role_is_assumed_once_per_account(org: Org):
    spokes = gateway(org)
    before = assumed(A)

    first = spokes.put_budget_value(A, "10")
    second = spokes.put_budget_value(A, "11")

    assert assumed(A) - before == 1
    assert second == first + 1
    assert org.parameter(A) == "11"


def test_given_credentials_close_to_expiry_then_the_role_is_assumed_again(org: Org):
    spokes = gateway(org)
    spokes.put_budget_value(A, "10")
    spokes._clients[A].expires = datetime.now(UTC) + timedelta(minutes=4)  # inside the 5-minute margin
    before = assumed(A)

    spokes.put_budget_value(A, "12")

    assert assumed(A) - before == 1


def test_the_role_arn_is_built_from_the_account_and_the_configured_name_in_the_regions_partition():
    china = SsmSpokeGateway(
        parameter_name=PARAMETER,
        role_name="CustomSpokeRole",
        region="cn-north-1",
        session_name="s",
        session=boto3.Session(region_name="cn-north-1"),
    )
    assert china.role_arn("111111111111") == "arn:aws-cn:iam::111111111111:role/CustomSpokeRole"


def test_the_session_name_identifies_the_function_in_the_spokes_cloudtrail(org: Org):
    spokes = gateway(org)
    spokes.put_budget_value(A, "13")
    from moto.sts.models import sts_backends

    sessions = [role.session_name for role in sts_backends[A]["aws"].assumed_roles]
    assert sessions[-1] == "budget-sync-test"


def test_under_iam_the_spoke_role_admits_the_function_role_and_not_the_administrator(org: Org):
    # GIVEN the spoke role as template-spoke.yaml defines it (its trust: the two function roles)
    administrator = SsmSpokeGateway(
        parameter_name=PARAMETER,
        role_name=SPOKE_ROLE,
        region=REGION,
        session_name="admin",
        session=boto3.Session(region_name=REGION),
    )

    # WHEN the management account's administrator writes through the gateway THEN it is refused
    with pytest.raises(Exception, match="is not authorized to perform: sts:AssumeRole") as refused:
        administrator.put_budget_value(A, "14")
    assert "arn:aws:iam::123456789012:root" in str(refused.value)
    assert org.parameter(A) == "1000"

    # while the function's role may
    gateway(org).put_budget_value(A, "15")
    assert org.parameter(A) == "15"
