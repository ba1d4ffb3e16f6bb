"""samconfig.toml: the dev environment deploys beside prod in one account, so every named
resource of template-management.yaml must get a different name in each. Rendered from each
environment's parameter_overrides against the template itself."""

from __future__ import annotations

import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest

from budget_sync_local.management_stack import StackRefused, check_rules
from budget_sync_local.templates import MANAGEMENT_TEMPLATE, ROOT, Resolver, load

SAMCONFIG = ROOT / "samconfig.toml"
#: Properties that give a resource its physical name (CloudFormation generates one otherwise).
NAME_PROPERTIES = (
    "TableName",
    "FunctionName",
    "RoleName",
    "LogGroupName",
    "Name",
    "TopicName",
    "QueueName",
    "AlarmName",
    "ManagedPolicyName",
    "EventBusName",
    "ScheduleName",
    "BucketName",
    "AliasName",
)


def overrides(environment: str, path: Path = SAMCONFIG) -> dict[str, str]:
    config = tomllib.loads(path.read_text())
    text = config[environment]["deploy"]["parameters"].get("parameter_overrides", "")
    return dict(token.split("=", 1) for token in shlex.split(text))


def named_resources(parameters: dict[str, str]) -> dict[str, str]:
    """logical id + property -> the physical name it renders to with these parameters."""
    template = load(MANAGEMENT_TEMPLATE)
    resolver = Resolver(template, parameters)
    names: dict[str, str] = {}
    for logical_id, resource in template["Resources"].items():
        properties: dict[str, Any] = resource.get("Properties", {})
        for key in NAME_PROPERTIES:
            if key in properties:
                names[f"{logical_id}.{key}"] = str(resolver.resolve(properties[key]))
    return names


def test_the_template_has_the_named_resources_this_test_looks_for():
    names = named_resources({})
    for expected in ("BudgetsTable.TableName", "ReconcilerFunction.FunctionName", "ReconcilerRole.RoleName"):
        assert expected in names
    assert "ReconcilerLogGroup.LogGroupName" in names


def test_dev_and_prod_render_every_named_resource_differently():
    # GIVEN each environment's parameters, rendered against the template
    dev = named_resources(overrides("dev"))
    prod = named_resources(overrides("prod"))

    # THEN no physical name of dev is one of prod's (one account holds both)
    clashes = sorted(f"{resource}: {name}" for resource, name in dev.items() if name in set(prod.values()))
    assert clashes == []
    config = tomllib.loads(SAMCONFIG.read_text())
    assert (
        config["dev"]["global"]["parameters"]["stack_name"]
        != config["prod"]["global"]["parameters"]["stack_name"]
    )


@pytest.mark.parametrize("environment", ["default", "dev", "prod"])
def test_every_override_is_a_template_parameter(environment: str):
    assert set(overrides(environment)) <= set(load(MANAGEMENT_TEMPLATE)["Parameters"])


@pytest.mark.parametrize("environment", ["default", "dev", "prod"])
def test_every_environment_must_be_given_the_organisation_or_the_stack_is_refused(environment: str):
    # GIVEN an environment as shipped (no organisation: only the user knows theirs)
    parameters = overrides(environment)
    resolver = Resolver(load(MANAGEMENT_TEMPLATE), parameters)

    # WHEN CloudFormation checks the template's rules THEN it refuses, naming the parameter
    with pytest.raises(StackRefused, match=r"Set OrganizationId .* or SpokeAccountIds"):
        check_rules(resolver)
    # and with the organisation (or named spoke accounts) it deploys
    check_rules(Resolver(load(MANAGEMENT_TEMPLATE), {**parameters, "OrganizationId": "o-a1b2c3d4e5"}))
    check_rules(Resolver(load(MANAGEMENT_TEMPLATE), {**parameters, "SpokeAccountIds": "111111111111"}))
