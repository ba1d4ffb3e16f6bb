"""budget_sync_local.iam: AWS's policy evaluation logic, on the statements the templates use."""

from __future__ import annotations

from typing import Any

import pytest

from budget_sync_local.iam import AccessDenied, Policy, PolicyError, Principal, Request, context_keys, decide

MANAGEMENT, SPOKE = "123456789012", "111111111111"
FUNCTION = Principal(MANAGEMENT, role_name="BlogBudgetsLambdaRole", session_name="fn")
ADMIN = Principal(MANAGEMENT)
ORG = "o-abcdefghij"


def policy(*statements: dict[str, Any]) -> Policy:
    return Policy.of({"Version": "2012-10-17", "Statement": list(statements)})


def ask(
    principal: Principal,
    action: str,
    resource: str,
    identity: list[Policy] | None,
    held: Policy | None = None,
    **context: str,
) -> None:
    parts = resource.split(":")
    account = parts[4] if len(parts) > 4 and parts[4] else principal.account
    keys = context_keys(
        aws_PrincipalArn=principal.arn, aws_PrincipalOrgID=ORG, aws_ResourceOrgID=ORG, **context
    )
    decide(Request(principal, action, resource, account, keys, held, identity))


TABLE = f"arn:aws:dynamodb:us-east-1:{MANAGEMENT}:table/BlogBudgetsStatus"
SPOKE_ROLE = f"arn:aws:iam::{SPOKE}:role/BlogBudgetsSpokeRole"
TRUST = policy(
    {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{MANAGEMENT}:root"},
        "Action": "sts:AssumeRole",
        "Condition": {
            "ArnLike": {"aws:PrincipalArn": [f"arn:aws:iam::{MANAGEMENT}:role/BlogBudgetsLambdaRole"]},
            "StringEquals": {"aws:PrincipalOrgID": ORG},
        },
    }
)
ASSUME = policy(
    {
        "Effect": "Allow",
        "Action": "sts:AssumeRole",
        "Resource": "arn:aws:iam::*:role/BlogBudgetsSpokeRole",
        "Condition": {"StringEquals": {"aws:ResourceOrgID": "${aws:PrincipalOrgID}"}},
    }
)


def test_given_an_action_no_statement_allows_when_called_then_access_denied_names_action_resource_and_caller() -> (
    None
):
    identity = [policy({"Effect": "Allow", "Action": "dynamodb:UpdateItem", "Resource": TABLE})]
    ask(FUNCTION, "dynamodb:UpdateItem", TABLE, identity)
    with pytest.raises(AccessDenied) as refused:
        ask(FUNCTION, "dynamodb:GetItem", TABLE, identity)
    assert str(refused.value) == (
        f"User: arn:aws:sts::{MANAGEMENT}:assumed-role/BlogBudgetsLambdaRole/fn is not authorized to perform: "
        f"dynamodb:GetItem on resource: {TABLE} because no identity-based policy allows the dynamodb:GetItem action"
    )


def test_wildcards_in_actions_are_case_insensitive_and_resources_are_not() -> None:
    identity = [
        policy({"Effect": "Allow", "Action": "DynamoDB:Get*", "Resource": "arn:aws:dynamodb:*:*:table/Blog*"})
    ]
    ask(FUNCTION, "dynamodb:GetItem", TABLE, identity)
    with pytest.raises(AccessDenied):
        ask(FUNCTION, "dynamodb:GetItem", TABLE.replace("Blog", "blog"), identity)


def test_an_explicit_deny_wins_over_any_allow_even_the_administrators() -> None:
    held = policy(
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "sqs:*",
            "Resource": "*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    )
    queue = f"arn:aws:sqs:us-east-1:{MANAGEMENT}:q"
    ask(ADMIN, "sqs:SendMessage", queue, None, held, aws_SecureTransport="true")
    with pytest.raises(AccessDenied, match="explicit deny in a resource-based policy"):
        ask(ADMIN, "sqs:SendMessage", queue, None, held, aws_SecureTransport="false")


def test_not_action_and_not_resource() -> None:
    identity = [
        policy({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}),
        policy({"Effect": "Deny", "Action": "ssm:*", "NotResource": "arn:aws:ssm:*:*:parameter/ok"}),
    ]
    ask(FUNCTION, "ssm:PutParameter", "arn:aws:ssm:us-east-1:123456789012:parameter/ok", identity)
    with pytest.raises(AccessDenied):
        ask(FUNCTION, "ssm:PutParameter", "arn:aws:ssm:us-east-1:123456789012:parameter/other", identity)
    with pytest.raises(AccessDenied):
        ask(FUNCTION, "iam:CreateRole", "*", identity)


def test_a_trust_policy_admits_only_the_principals_its_conditions_name() -> None:
    ask(FUNCTION, "sts:AssumeRole", SPOKE_ROLE, [ASSUME], TRUST)
    with pytest.raises(AccessDenied, match="no trust policy allows the sts:AssumeRole action"):
        ask(ADMIN, "sts:AssumeRole", SPOKE_ROLE, None, TRUST)  # the management account's own principal
    reconciler = Principal(MANAGEMENT, role_name="BlogBudgetsReconcilerRole", session_name="r")
    with pytest.raises(AccessDenied):
        ask(reconciler, "sts:AssumeRole", SPOKE_ROLE, [ASSUME], TRUST)


def test_across_accounts_both_the_identity_and_the_resource_policy_must_allow() -> None:
    with pytest.raises(AccessDenied, match="no identity-based policy"):
        ask(FUNCTION, "sts:AssumeRole", SPOKE_ROLE, [], TRUST)  # trusted, but its own policy says nothing
    bus = f"arn:aws:events:us-east-1:{MANAGEMENT}:event-bus/results"
    forward = Principal(SPOKE, role_name="Forward", session_name="events")
    identity = [policy({"Effect": "Allow", "Action": "events:PutEvents", "Resource": bus})]
    with pytest.raises(AccessDenied, match="no resource-based policy"):
        ask(forward, "events:PutEvents", bus, identity, None)
    admits = policy(
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "events:PutEvents",
            "Resource": bus,
            "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG}},
        }
    )
    ask(forward, "events:PutEvents", bus, identity, admits)


def test_a_policy_variable_without_a_value_matches_nothing() -> None:
    keys = context_keys(aws_PrincipalArn=FUNCTION.arn, aws_ResourceOrgID=ORG)  # no aws:PrincipalOrgID
    with pytest.raises(AccessDenied):
        decide(
            Request(
                FUNCTION,
                "sts:AssumeRole",
                SPOKE_ROLE,
                SPOKE,
                keys,
                policy({"Effect": "Allow", "Principal": {"AWS": MANAGEMENT}, "Action": "sts:AssumeRole"}),
                [ASSUME],
            )
        )


@pytest.mark.parametrize(
    ("operator", "value", "given", "allowed"),
    [
        ("StringEquals", "a", "a", True),
        ("StringEquals", "a", None, False),
        ("StringNotEquals", "a", None, True),  # a negated operator holds when the key is absent
        ("StringEqualsIfExists", "a", None, True),
        ("StringLike", "budget-*", "budget-sync.spoke", True),
        ("StringNotLike", "budget-*", "budget-sync.spoke", False),
        ("ArnLike", "arn:aws:iam::*:role/*", "arn:aws:iam::1:role/x", True),
        ("ArnEquals", "arn:aws:events:*:1:rule/x", "arn:aws:events:us-east-1:1:rule/y", False),
        ("Bool", "true", "true", True),
        ("Null", "true", None, True),
        ("Null", "false", None, False),
    ],
)
def test_condition_operators(operator: str, value: str, given: str | None, allowed: bool) -> None:
    statement = {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {operator: {"k:key": value}}}
    keys = context_keys(k_key=given)
    request = Request(FUNCTION, "ssm:GetParameter", "*", MANAGEMENT, keys, None, [policy(statement)])
    if allowed:
        decide(request)
    else:
        with pytest.raises(AccessDenied):
            decide(request)


def test_multi_value_conditions_any_value_matches_and_for_all_values() -> None:
    statement = {
        "Effect": "Allow",
        "Action": "*",
        "Resource": "*",
        "Condition": {"ForAllValues:StringEquals": {"k:tags": ["a", "b"]}},
    }
    decide(
        Request(FUNCTION, "x:Y", "*", MANAGEMENT, context_keys(k_tags=["a", "b"]), None, [policy(statement)])
    )
    with pytest.raises(AccessDenied):
        decide(
            Request(
                FUNCTION, "x:Y", "*", MANAGEMENT, context_keys(k_tags=["a", "c"]), None, [policy(statement)]
            )
        )


def test_a_service_principal_is_admitted_by_the_trust_policy_with_its_source_account() -> None:
    lambda_ = Principal(MANAGEMENT, service="lambda.amazonaws.com")
    trust = policy(
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": MANAGEMENT}},
        }
    )
    role = f"arn:aws:iam::{MANAGEMENT}:role/BlogBudgetsLambdaRole"
    decide(
        Request(
            lambda_,
            "sts:AssumeRole",
            role,
            MANAGEMENT,
            context_keys(aws_SourceAccount=MANAGEMENT),
            trust,
            None,
        )
    )
    with pytest.raises(AccessDenied):
        decide(
            Request(
                lambda_,
                "sts:AssumeRole",
                role,
                MANAGEMENT,
                context_keys(aws_SourceAccount=SPOKE),
                trust,
                None,
            )
        )


def test_what_is_not_evaluated_is_an_error_not_an_allow() -> None:
    with pytest.raises(PolicyError, match="NumericLessThan"):
        Policy.of(
            {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "*",
                        "Resource": "*",
                        "Condition": {"NumericLessThan": {"a:b": "1"}},
                    }
                ]
            }
        )
    with pytest.raises(PolicyError, match="NotPrincipal"):
        Policy.of({"Statement": [{"Effect": "Allow", "Action": "*", "NotPrincipal": "*"}]})


# -- AWS KMS: the key policy must always allow ---------------------------------------------------

KEY = f"arn:aws:kms:us-east-1:{MANAGEMENT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ROOT_ONLY = policy(
    {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{MANAGEMENT}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }
)
USE_KEY = policy({"Effect": "Allow", "Action": "kms:GenerateDataKey*", "Resource": KEY})


def use_key(principal: Principal, identity: list[Policy] | None, held: Policy | None) -> None:
    keys = context_keys(aws_PrincipalArn=principal.arn if principal.service is None else None)
    decide(Request(principal, "kms:GenerateDataKey", KEY, MANAGEMENT, keys, held, identity, key_policy=True))


def test_a_key_policy_naming_the_account_delegates_to_iam_so_the_role_needs_an_identity_allow():
    use_key(FUNCTION, [USE_KEY], ROOT_ONLY)  # delegated, and IAM allows
    with pytest.raises(AccessDenied, match="the key policy delegates to IAM and no identity-based policy"):
        use_key(FUNCTION, [], ROOT_ONLY)


def test_a_key_policy_naming_the_role_allows_it_without_an_identity_policy():
    named = policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{MANAGEMENT}:role/BlogBudgetsLambdaRole"},
            "Action": "kms:GenerateDataKey*",
            "Resource": "*",
        }
    )
    use_key(FUNCTION, [], named)


def test_without_a_key_policy_statement_no_identity_policy_can_use_the_key():
    with pytest.raises(AccessDenied, match="no key policy allows the kms:GenerateDataKey action"):
        use_key(FUNCTION, [USE_KEY], policy())
    with pytest.raises(AccessDenied, match="no key policy allows"):
        use_key(FUNCTION, [USE_KEY], None)


def test_a_service_principal_needs_its_own_key_policy_statement():
    cloudwatch = Principal(MANAGEMENT, service="cloudwatch.amazonaws.com")
    with pytest.raises(AccessDenied, match=r"User: cloudwatch\.amazonaws\.com is not authorized"):
        use_key(cloudwatch, None, ROOT_ONLY)
    admits = policy(
        {
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": "kms:GenerateDataKey*",
            "Resource": "*",
        }
    )
    use_key(cloudwatch, None, admits)


def test_principal_aws_star_admits_a_service_principal_as_principal_star_does():
    topic = f"arn:aws:sns:us-east-1:{MANAGEMENT}:alarms"
    everyone = policy(
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sns:Publish", "Resource": topic}
    )
    cloudwatch = Principal(MANAGEMENT, service="cloudwatch.amazonaws.com")
    decide(Request(cloudwatch, "sns:Publish", topic, MANAGEMENT, {}, everyone, None))
