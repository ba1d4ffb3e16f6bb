"""The spoke adapter on moto: cross-account clients cached until close to expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
from moto.sts.models import sts_backends

from budget_sync.spoke import SsmSpokeGateway
from tests.integration.conftest import PARAMETER, REGION, SPOKE_ROLE, SPOKES, Org

A = SPOKES[0]


def gateway() -> SsmSpokeGateway:
    return SsmSpokeGateway(
        parameter_name=PARAMETER,
        role_name=SPOKE_ROLE,
        region=REGION,
        session_name="budget-sync-test",
        session=boto3.Session(region_name=REGION),
    )


def assumed(account: str) -> int:
    return len(sts_backends[account]["aws"].assumed_roles)


def test_given_a_warm_gateway_then_the_spoke_role_is_assumed_once_per_account(org: Org):
    spokes = gateway()
    before = assumed(A)

    first = spokes.put_budget_value(A, "10")
    second = spokes.put_budget_value(A, "11")

    assert assumed(A) - before == 1
    assert second == first + 1
    assert org.parameter(A) == "11"


def test_given_credentials_close_to_expiry_then_the_role_is_assumed_again(org: Org):
    spokes = gateway()
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
    spokes = gateway()
    spokes.put_budget_value(A, "13")
    sessions = [role.session_name for role in sts_backends[A]["aws"].assumed_roles]
    assert sessions[-1] == "budget-sync-test"
