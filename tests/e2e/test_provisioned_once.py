"""The local organisation deployed once per worker and restored per test
(tests/support/local_org.py, ``budget_sync_local.snapshot``): a restored organisation is the one
its deployment left, a test's writes never reach the next test, and a deployment is reused only
for the same arguments and templates. The same for the moto fixtures built once per worker
(``org``, ``enforced_org``, ``ops``, ``tree``: tests/support/moto_org.py ``built_once``)."""

from __future__ import annotations

import importlib
import io
import pkgutil
from collections.abc import Hashable
from decimal import Decimal
from typing import Any

import pytest

from budget_sync_local import snapshot, standins, templates
from budget_sync_local.organisation import MANAGEMENT_ACCOUNT, Deployment, LocalOrganisation
from budget_sync_local.streams import read_from_start
from tests.support.local_org import Recorder
from tests.support.moto_org import Org

# every test: moto or the local organisation (make unit does not import this module)
pytestmark = [pytest.mark.e2e, pytest.mark.aws]

A, B, C = "111111111111", "222222222222", "333333333333"


def _tagged(session: Any, service: str, method: str, key: str, **arguments: Any) -> list[Any]:
    """Every page of a list call's ``key``."""
    client = session.client(service)
    if client.can_paginate(method):
        return [item for page in client.get_paginator(method).paginate(**arguments) for item in page[key]]
    return list(getattr(client, method)(**arguments)[key])


def describe(org: LocalOrganisation) -> dict[str, Any]:
    """What the organisation's deployment made, as AWS's APIs answer for it: the organisation
    and its OUs, every account's stacks with their resources and outputs, tables, roles with
    their trust and inline policies, parameters, budgets with their notifications, queues,
    topics and rules; the StackSet's instances; the stand-ins' records."""
    management = org.management
    organizations = management.client("organizations")
    world: dict[str, Any] = {
        "organisation": organizations.describe_organization()["Organization"],
        "roots": _tagged(management, "organizations", "list_roots", "Roots"),
        "ous": _tagged(
            management,
            "organizations",
            "list_organizational_units_for_parent",
            "OrganizationalUnits",
            ParentId=org.root_id,
        ),
        "accounts": sorted(
            (a["Id"], a["Name"], organizations.list_parents(ChildId=a["Id"])["Parents"][0]["Id"])
            for a in _tagged(management, "organizations", "list_accounts", "Accounts")
        ),
        "stack_sets": _tagged(management, "cloudformation", "list_stack_sets", "Summaries"),
        "stack_instances": _tagged(
            management,
            "cloudformation",
            "list_stack_instances",
            "Summaries",
            StackSetName=org.management_parameters["SpokeStackSetName"],
        ),
        "tables": {
            name: management.client("dynamodb").describe_table(TableName=name)["Table"]
            for name in _tagged(management, "dynamodb", "list_tables", "TableNames")
        },
        "records": {
            name: dict(record) for name, record in snapshot.RECORDS.items() if name not in _PER_ORGANISATION
        },
    }
    for account in (MANAGEMENT_ACCOUNT, *org.accounts):
        session = org.session_in(account)
        iam = session.client("iam")
        cloudformation = session.client("cloudformation")
        world[account] = {
            "stacks": {
                s["StackName"]: (
                    cloudformation.describe_stacks(StackName=s["StackId"])["Stacks"][0],
                    sorted(
                        tuple(
                            str(r.get(k))
                            for k in (
                                "LogicalResourceId",
                                "PhysicalResourceId",
                                "ResourceType",
                                "ResourceStatus",
                            )
                        )
                        for r in cloudformation.describe_stack_resources(StackName=s["StackId"])[
                            "StackResources"
                        ]
                    ),
                )
                for s in _tagged(session, "cloudformation", "list_stacks", "StackSummaries")
            },
            "roles": {
                r["RoleName"]: (
                    r,
                    {
                        p: iam.get_role_policy(RoleName=r["RoleName"], PolicyName=p)["PolicyDocument"]
                        for p in iam.list_role_policies(RoleName=r["RoleName"])["PolicyNames"]
                    },
                )
                for r in _tagged(session, "iam", "list_roles", "Roles")
            },
            "parameters": _tagged(session, "ssm", "describe_parameters", "Parameters"),
            "values": {
                p["Name"]: p["Value"]
                for p in _tagged(
                    session, "ssm", "get_parameters_by_path", "Parameters", Path="/", Recursive=True
                )
            },
            "budgets": _tagged(session, "budgets", "describe_budgets", "Budgets", AccountId=account),
            "queues": _tagged(session, "sqs", "list_queues", "QueueUrls")
            if account == MANAGEMENT_ACCOUNT
            else [],
            "topics": _tagged(session, "sns", "list_topics", "Topics"),
            "rules": _tagged(session, "events", "list_rules", "Rules"),
            "buses": _tagged(session, "events", "list_event_buses", "EventBuses"),
        }
        for budget in world[account]["budgets"]:
            name = budget["BudgetName"]
            world[account][f"notifications {name}"] = standins.notifications_with_subscribers(account, name)
    return world


#: The records each organisation adds to as it connects (its own role sessions' access keys).
_PER_ORGANISATION = {"authorisation._SESSIONS", "speed._KEY_ACCOUNTS"}


@pytest.fixture
def deployments() -> dict[Hashable, Deployment]:
    """A cache of this test's own, so that its first organisation deploys."""
    return {}


def test_a_restored_organisation_is_the_one_its_deployment_left(deployments: dict[Hashable, Deployment]):
    # GIVEN an organisation deployed (and kept) for these arguments, as its deployment left it
    with LocalOrganisation((A, B), function_output=io.StringIO(), deployments=deployments) as first:
        deployed = describe(first)
    assert len(deployments) == 1

    # WHEN a second organisation with the same arguments starts from that deployment
    with LocalOrganisation((A, B), function_output=io.StringIO(), deployments=deployments) as second:
        # THEN it is the same organisation: stacks, tables, roles, parameters, budgets, the lot
        restored = describe(second)
        assert restored == deployed
        assert (second.organisation_id, second.root_id, second.ous) == (
            first.organisation_id,
            first.root_id,
            first.ous,
        )
        assert second.stack == first.stack
        assert second.spokes == first.spokes
        # and it works end to end, through its own pipeline
        second.put(A, Decimal(4321))
        second.pipeline.run_until_idle()
        view = second.view(A)
        assert (view.status, view.parameter, view.budget_limit) == ("APPLIED", "4321", Decimal(4321))
    assert len(deployments) == 1  # reused, not deployed again


def test_a_tests_writes_do_not_reach_the_next_organisation(deployments: dict[Hashable, Deployment]):
    # GIVEN a restored organisation in which a test writes everywhere: an item delivered to a
    # spoke, an OU default, a new account with its spoke stack, simulated spend, an alert sent
    recorder = Recorder()
    with LocalOrganisation((A, B), function_output=io.StringIO(), deployments=deployments) as first:
        untouched = describe(first)
    with LocalOrganisation(
        (A, B), observer=recorder, function_output=io.StringIO(), deployments=deployments
    ) as org:
        org.put(A, Decimal(777))
        org.set_default("Production", Decimal(900))
        org.create_account("444444444444", "Sandbox")
        org.pipeline.run_until_idle()
        org.set_spend(A, Decimal(700), Decimal(800))
        org.management.client("sqs").send_message(
            QueueUrl=org.stack.on_failure_queue_url, MessageBody="left behind"
        )
        assert org.parameter(A) == "777"
        assert org.parameter(B) == "900"
        assert "444444444444" in org.spokes
        assert recorder.automations(A)

    # WHEN the next test's organisation starts from the same deployment
    with LocalOrganisation((A, B), function_output=io.StringIO(), deployments=deployments) as after:
        # THEN none of it is there: it is the deployment as it was
        assert describe(after) == untouched
        assert (after.desired(A), after.status(A), after.parameter(A), after.parameter(B)) == (
            None,
            None,
            "1000",
            "1000",
        )
        assert "444444444444" not in after.spokes
        assert after.view(A).actual_spend == Decimal(0)
        queue = after.management.client("sqs").receive_message(QueueUrl=after.stack.on_failure_queue_url)
        assert queue.get("Messages", []) == []


def test_a_deployment_is_reused_only_for_the_same_arguments_and_templates(
    deployments: dict[Hashable, Deployment],
):
    shipped = LocalOrganisation((A,), deployments=deployments).deployment_key()
    assert LocalOrganisation((A,), deployments=deployments).deployment_key() == shipped
    assert LocalOrganisation((A, B), deployments=deployments).deployment_key() != shipped
    assert (
        LocalOrganisation(
            (A,), spoke_parameters={"SnsTopicMode": "Create"}, deployments=deployments
        ).deployment_key()
        != shipped
    )
    assert LocalOrganisation((A,), region="eu-west-1", deployments=deployments).deployment_key() != shipped
    # a test that changes a template in place (tests/e2e/test_iam.py) gets its own deployment
    template = templates.load(templates.MANAGEMENT_TEMPLATE)
    template["Description"], saved = "changed", template.get("Description")
    try:
        assert LocalOrganisation((A,), deployments=deployments).deployment_key() != shipped
    finally:
        template["Description"] = saved
    assert LocalOrganisation((A,), deployments=deployments).deployment_key() == shipped


def test_a_deployment_is_not_restored_into_a_callers_own_moto():
    with pytest.raises(ValueError, match="deployments: only for an organisation in its own mock_aws"):
        LocalOrganisation((A,), start_mock=False, deployments={})


def test_every_module_level_record_of_the_stand_ins_is_kept_with_a_deployment_or_said_not_to_be():
    # A stand-in that keeps state in a module-level dict, list or set must have it copied with
    # the deployment (snapshot.RECORDS) or say why not (snapshot.NOT_DEPLOYMENT_STATE): a record
    # that neither lists would leak from one test into the next.
    from moto.core.base_backend import BackendDict

    names: dict[int, set[str]] = {}
    for module in pkgutil.iter_modules(standins.__path__):
        loaded = importlib.import_module(f"{standins.__name__}.{module.name}")
        for name, value in vars(loaded).items():
            if (
                isinstance(value, dict | list | set)
                and not isinstance(value, BackendDict)
                and not name.startswith("__")
            ):
                names.setdefault(id(value), set()).add(f"{module.name}.{name}")  # one object, maybe two names
    listed = set(snapshot.RECORDS) | snapshot.NOT_DEPLOYMENT_STATE
    assert [sorted(aliases) for aliases in names.values() if not aliases & listed] == []
    assert listed <= set().union(*names.values())


# -- the moto fixtures (org, enforced_org, ops, tree): built once per worker, restored per test --


def _org_world(org: Org) -> dict[str, Any]:
    """What ``org`` holds, as AWS's APIs answer for it: tables with their items and stream
    records, and each spoke's roles and parameters (value and version)."""
    dynamodb = org.management.client("dynamodb")
    world: dict[str, Any] = {
        name: (
            dynamodb.describe_table(TableName=name)["Table"],
            sorted(str(item) for item in dynamodb.scan(TableName=name, ConsistentRead=True)["Items"]),
        )
        for name in dynamodb.list_tables()["TableNames"]
    }
    world["stream"] = len(read_from_start(org.management.client("dynamodbstreams"), org.stream_arn))
    for account, session in org.spokes.items():
        world[account] = (
            sorted(r["RoleName"] for r in session.client("iam").list_roles()["Roles"]),
            [
                (p["Name"], p["Value"], p["Version"])
                for p in session.client("ssm").get_parameters_by_path(Path="/", Recursive=True)["Parameters"]
            ],
        )
    return world


def test_the_org_fixture_is_restored_as_built_and_a_tests_writes_do_not_reach_the_next(
    monkeypatch: pytest.MonkeyPatch,
):
    from moto import mock_aws

    from tests.support import moto_org

    monkeypatch.setattr(moto_org, "BUILT", {})  # this test's own: its first organisation builds
    # as the org fixture does: no client the update function cached in an earlier test of this
    # worker (another organisation's tables and credentials) may serve this one's invocation
    moto_org.update_handler.build_service.cache_clear()
    # GIVEN the org fixture's organisation, built, in which a test writes: an item (a stream
    # record), a spoke's parameter, a table
    with mock_aws(), standins.installed():
        first = moto_org.built_once("org", moto_org._build_org, moto_org.fresh_org)
        built = _org_world(first)
        first.put(A, Decimal(777))
        first.spokes[B].client("ssm").put_parameter(
            Name=moto_org.PARAMETER, Value="5", Type="String", Overwrite=True
        )
        moto_org.create_table(first.management, "DefaultsTable")
        first.consumed = 5
        assert _org_world(first) != built

    # WHEN the next test asks for it
    with mock_aws(), standins.installed():
        second = moto_org.built_once("org", moto_org._build_org, moto_org.fresh_org)
        # THEN it is the organisation as built, none of the writes, and it works: a handler
        # invoked on a new item writes the spoke's parameter
        assert _org_world(second) == built
        assert second.consumed == 0
        assert second.spokes is not first.spokes
        assert len(moto_org.BUILT) == 1
        second.put(A, Decimal(888))
        moto_org.update_handler.build_service.cache_clear()
        second.invoke()
        assert second.parameter(A) == "888"
