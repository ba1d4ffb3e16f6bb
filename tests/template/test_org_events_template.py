"""template-org-events.yaml: the us-east-1 stack that forwards Organizations' enrolment
events to a management stack in another region. Its rule sees what the management stack's
rule sees, sends it to that region's default bus only, and its role may do nothing else."""

from __future__ import annotations

from budget_sync_local.templates import MANAGEMENT_TEMPLATE, ORG_EVENTS_TEMPLATE, Resolver, load

ACCOUNT = "123456789012"
FORWARDING = Resolver(
    load(ORG_EVENTS_TEMPLATE),
    {"ManagementStackRegion": "eu-west-1"},
    account_id=ACCOUNT,
    region="us-east-1",
    physical_ids={"ForwardRole": "budget-sync-ForwardRole-ABC"},
)
BUS = f"arn:aws:events:eu-west-1:{ACCOUNT}:event-bus/default"


def test_the_forwarding_rule_matches_exactly_what_the_management_stack_s_rule_matches():
    management = load(MANAGEMENT_TEMPLATE)["Resources"]["OrganizationsEventsRule"]["Properties"][
        "EventPattern"
    ]
    assert FORWARDING.properties("ForwardRule")["EventPattern"] == management


def test_the_rule_targets_the_management_region_s_default_bus_with_its_own_role():
    (target,) = FORWARDING.properties("ForwardRule")["Targets"]
    assert target["Arn"] == BUS
    assert target["RoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/budget-sync-ForwardRole-ABC"


def test_the_role_may_only_put_events_on_that_bus_and_only_events_of_that_rule_may_assume_it():
    role = FORWARDING.properties("ForwardRole")
    (policy,) = role["Policies"]
    assert policy["PolicyDocument"]["Statement"] == [
        {"Effect": "Allow", "Action": "events:PutEvents", "Resource": BUS}
    ]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}
    rule_arn = f"arn:aws:events:us-east-1:{ACCOUNT}:rule/budget-sync-forward"  # the Resolver's stack name
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT, "aws:SourceArn": rule_arn}}
    assert FORWARDING.properties("ForwardRule")["Name"] == "budget-sync-forward"


def test_the_template_s_rules_refuse_another_region_and_a_management_stack_in_us_east_1():
    template = load(ORG_EVENTS_TEMPLATE)

    def holds(region: str, stack_region: str) -> dict[str, bool]:
        resolver = Resolver(
            template, {"ManagementStackRegion": stack_region}, account_id=ACCOUNT, region=region
        )
        return {
            name: all(resolver.resolve(a["Assert"]) for a in rule["Assertions"])
            for name, rule in template["Rules"].items()
        }

    assert holds("us-east-1", "eu-west-1") == {"DeployedInUsEast1": True, "ManagementStackElsewhere": True}
    assert holds("eu-west-1", "eu-west-1")["DeployedInUsEast1"] is False
    assert holds("us-east-1", "us-east-1")["ManagementStackElsewhere"] is False
