"""IAM policy evaluation for the local organisation: AWS's documented logic for the parts
budget-sync's templates use.

Sources: IAM User Guide, "Policy evaluation logic" (explicit deny wins; within one account
an identity-based OR a resource-based policy allow suffices; across accounts both the
caller's identity policy and the resource's policy must allow; a role's trust policy must
always allow ``sts:AssumeRole``), "IAM JSON policy elements: Condition operators"
(``String*``, ``Arn*``, ``Bool``, ``Null``, ``...IfExists``, ``ForAnyValue:`` /
``ForAllValues:``; a negated operator is true when its key is absent), "Policy variables"
(``${aws:PrincipalOrgID}``) and "AWS global condition context keys".

AWS KMS (AWS KMS Developer Guide, "Key policies in AWS KMS"): a key policy must always allow,
naming the caller (its role's ARN, a service principal) or the account, whose root principal
only delegates to the account's IAM policies, which must then allow too (``Request.key_policy``).

Evaluated: ``Effect``, ``Action`` / ``NotAction`` and ``Resource`` / ``NotResource`` with
``*`` and ``?`` wildcards (actions case-insensitively), ``Principal`` (``*``, ``AWS`` as an
account id, an account root ARN or a role ARN, ``Service``), ``Condition`` with the
operators above. Not evaluated: permissions boundaries, session policies, SCPs, ``Numeric*``
and ``Date*`` operators, ``NotPrincipal`` (an unknown operator or element is an error, not
an allow).

``Policy.of`` parses a document once (cached by its text): a thousand accounts' calls
evaluate already compiled statements.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

ALLOW = "Allow"
DENY = "Deny"


class PolicyError(ValueError):
    """A policy this evaluator cannot read (names the element and the value)."""


@dataclass(frozen=True)
class Principal:
    """Who calls: a role's session, an account's administrator (no role: its identity
    policies allow everything), or an AWS service acting for an account."""

    account: str
    partition: str = "aws"
    role_name: str | None = None
    session_name: str = ""
    service: str | None = None

    @property
    def arn(self) -> str:
        """``aws:PrincipalArn``: the role's ARN (not the session's), or the account root."""
        if self.service is not None:
            return self.service
        if self.role_name is not None:
            return f"arn:{self.partition}:iam::{self.account}:role/{self.role_name}"
        return f"arn:{self.partition}:iam::{self.account}:root"

    @property
    def caller_arn(self) -> str:
        """As AWS names the caller in ``AccessDenied``: the assumed-role session."""
        if self.role_name is not None:
            return (
                f"arn:{self.partition}:sts::{self.account}:assumed-role/{self.role_name}/{self.session_name}"
            )
        return self.arn


class AccessDenied(Exception):
    """A call AWS would refuse, worded as AWS words it."""

    def __init__(self, principal: Principal, action: str, resource: str, why: str) -> None:
        self.principal, self.action, self.resource = principal, action, resource
        super().__init__(
            f"User: {principal.caller_arn} is not authorized to perform: {action} "
            f"on resource: {resource} because {why}"
        )


# -- compiled policies -----------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _pattern(text: str, ignore_case: bool) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(text), re.IGNORECASE if ignore_case else 0)


def _wild(pattern: str, value: str, ignore_case: bool = False) -> bool:
    if "*" not in pattern and "?" not in pattern:
        return pattern.lower() == value.lower() if ignore_case else pattern == value
    return _pattern(pattern, ignore_case).fullmatch(value) is not None


_VARIABLE = re.compile(r"\$\{([^}]+)\}")


def _substitute(text: str, context: Mapping[str, Sequence[str]]) -> str | None:
    """Policy variables (``${aws:PrincipalOrgID}``); None if one has no value (the
    statement element then matches nothing, as AWS documents)."""
    if "${" not in text:
        return text
    missing = False

    def value(match: re.Match[str]) -> str:
        nonlocal missing
        name = match.group(1)
        if name in ("*", "?", "$"):
            return name
        found = _lookup(context, name)
        if not found:
            missing = True
            return ""
        return found[0]

    result = _VARIABLE.sub(value, text)
    return None if missing else result


def _lookup(context: Mapping[str, Sequence[str]], key: str) -> Sequence[str]:
    return context.get(key.lower(), ())


def _listed(value: Any, element: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, (str, bool, int)) for v in value):
        return tuple(str(v).lower() if isinstance(v, bool) else str(v) for v in value)
    if isinstance(value, bool):
        return (str(value).lower(),)
    raise PolicyError(f"{element} must be a string or a list of strings, not {value!r}")


_OPERATORS: dict[str, tuple[Callable[[str, str], bool], bool]] = {
    "StringEquals": (lambda p, v: p == v, False),
    "StringNotEquals": (lambda p, v: p == v, True),
    "StringEqualsIgnoreCase": (lambda p, v: p.lower() == v.lower(), False),
    "StringNotEqualsIgnoreCase": (lambda p, v: p.lower() == v.lower(), True),
    "StringLike": (lambda p, v: _wild(p, v), False),
    "StringNotLike": (lambda p, v: _wild(p, v), True),
    "ArnEquals": (lambda p, v: _arn_like(p, v), False),
    "ArnLike": (lambda p, v: _arn_like(p, v), False),
    "ArnNotEquals": (lambda p, v: _arn_like(p, v), True),
    "ArnNotLike": (lambda p, v: _arn_like(p, v), True),
    "Bool": (lambda p, v: p.lower() == v.lower(), False),
}


def _arn_like(pattern: str, value: str) -> bool:
    """ArnLike: each of the six colon-separated parts matches on its own (wildcards do not
    cross a colon, except in the resource part, which may hold colons)."""
    wanted, given = pattern.split(":", 5), value.split(":", 5)
    if len(wanted) != 6 or len(given) != 6:
        return False
    return all(_wild(w, g) for w, g in zip(wanted, given, strict=True))


@dataclass(frozen=True)
class _Condition:
    operator: str
    key: str
    values: tuple[str, ...]
    if_exists: bool
    quantifier: str  # "" | "ForAnyValue" | "ForAllValues"

    def holds(self, context: Mapping[str, Sequence[str]]) -> bool:
        given = _lookup(context, self.key)
        if self.operator == "Null":
            return (not given) == (self.values[0].lower() == "true")
        test, negated = _OPERATORS[self.operator]
        if not given:
            if self.quantifier == "ForAllValues":
                return True
            return self.if_exists or negated
        wanted = [w for w in (_substitute(v, context) for v in self.values) if w is not None]

        def matches(value: str) -> bool:
            hit = any(test(w, value) for w in wanted)
            return not hit if negated else hit

        if self.quantifier == "ForAllValues":
            return all(matches(v) for v in given)
        return any(matches(v) for v in given)


@dataclass(frozen=True)
class _Statement:
    effect: str
    actions: tuple[str, ...]
    not_action: bool
    resources: tuple[str, ...]
    not_resource: bool
    principals: Mapping[str, tuple[str, ...]] | None
    conditions: tuple[_Condition, ...]

    def applies(
        self,
        principal: Principal | None,
        action: str,
        resource: str,
        context: Mapping[str, Sequence[str]],
        account_principal: bool = True,
    ) -> bool:
        if any(_wild(a, action, ignore_case=True) for a in self.actions) == self.not_action:
            return False
        if self.resources:
            hit = any(
                r is not None and _wild(r, resource)
                for r in (_substitute(p, context) for p in self.resources)
            )
            if hit == self.not_resource:
                return False
        if self.principals is not None and (
            principal is None or not _admits(self.principals, principal, account_principal)
        ):
            return False
        return all(c.holds(context) for c in self.conditions)


def _admits(
    principals: Mapping[str, tuple[str, ...]], principal: Principal, account_principal: bool = True
) -> bool:
    """Does a resource policy's Principal name the caller? ``account_principal`` False: the
    account (its id or root ARN) does not name the account's roles (a key policy's account
    principal only delegates to the account's IAM policies)."""
    if principal.service is not None:
        # "Principal": "*" and {"AWS": "*"} are the same: everyone (IAM User Guide, "AWS JSON
        # policy elements: Principal", "All principals").
        return (
            principal.service in principals.get("Service", ())
            or "*" in principals.get("*", ())
            or "*" in principals.get("AWS", ())
        )
    if "*" in principals.get("*", ()):
        return True
    for named in principals.get("AWS", ()):
        if named == "*":
            return True
        if named in (principal.account, f"arn:{principal.partition}:iam::{principal.account}:root"):
            if account_principal:
                return True  # the account: any of its principals its own policies allow
            continue
        if principal.role_name is not None and named in (principal.arn, principal.caller_arn):
            return True
    return False


def _principals(value: Any) -> Mapping[str, tuple[str, ...]]:
    if value == "*":
        return {"*": ("*",)}
    if not isinstance(value, Mapping):
        raise PolicyError(f'Principal must be "*" or a map, not {value!r}')
    return {kind: _listed(names, f"Principal.{kind}") for kind, names in value.items()}


def _conditions(block: Any) -> tuple[_Condition, ...]:
    if block is None:
        return ()
    if not isinstance(block, Mapping):
        raise PolicyError(f"Condition must be a map, not {block!r}")
    parsed = []
    for raw_operator, tests in block.items():
        quantifier, _, operator = raw_operator.rpartition(":")
        if_exists = operator.endswith("IfExists")
        base = operator.removesuffix("IfExists")
        if (base not in _OPERATORS and base != "Null") or quantifier not in (
            "",
            "ForAnyValue",
            "ForAllValues",
        ):
            raise PolicyError(f"Condition operator {raw_operator!r} is not evaluated locally")
        if not isinstance(tests, Mapping):
            raise PolicyError(f"Condition {raw_operator} must map keys to values, not {tests!r}")
        for key, values in tests.items():
            parsed.append(
                _Condition(
                    base, key, _listed(values, f"Condition.{raw_operator}.{key}"), if_exists, quantifier
                )
            )
    return tuple(parsed)


def _statement(raw: Mapping[str, Any]) -> _Statement:
    effect = raw.get("Effect")
    if effect not in (ALLOW, DENY):
        raise PolicyError(f"Effect must be Allow or Deny, not {effect!r}")
    unknown = set(raw) - {
        "Sid",
        "Effect",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Principal",
        "Condition",
    }
    if unknown:
        raise PolicyError(f"statement element {sorted(unknown)[0]!r} is not evaluated locally")
    not_action = "NotAction" in raw
    not_resource = "NotResource" in raw
    resources = raw.get("NotResource" if not_resource else "Resource")
    return _Statement(
        effect=effect,
        actions=_listed(raw.get("NotAction" if not_action else "Action"), "Action"),
        not_action=not_action,
        resources=_listed(resources, "Resource") if resources is not None else (),
        not_resource=not_resource,
        principals=_principals(raw["Principal"]) if "Principal" in raw else None,
        conditions=_conditions(raw.get("Condition")),
    )


@dataclass(frozen=True)
class Policy:
    """One policy document, compiled."""

    statements: tuple[_Statement, ...] = field(default_factory=tuple)

    @staticmethod
    def of(document: str | Mapping[str, Any]) -> Policy:
        text = document if isinstance(document, str) else json.dumps(document, sort_keys=True)
        return _parsed(text)

    def effect(
        self,
        principal: Principal | None,
        action: str,
        resource: str,
        context: Mapping[str, Sequence[str]],
        account_principal: bool = True,
    ) -> str | None:
        """Deny if a statement denies, Allow if one allows, None if none applies."""
        allowed = False
        for statement in self.statements:
            if statement.applies(principal, action, resource, context, account_principal):
                if statement.effect == DENY:
                    return DENY
                allowed = True
        return ALLOW if allowed else None


@lru_cache(maxsize=4096)
def _parsed(text: str) -> Policy:
    raw = json.loads(text)
    statements = raw.get("Statement", []) if isinstance(raw, Mapping) else None
    if isinstance(statements, Mapping):
        statements = [statements]
    if not isinstance(statements, list):
        raise PolicyError(f"Statement must be a list or a map, not {statements!r}")
    # moto's CloudFormation leaves an ``AWS::NoValue`` list element as null; CloudFormation drops it.
    return Policy(tuple(_statement(s) for s in statements if s is not None))


def combined(policies: Iterable[Policy], *args: Any) -> str | None:
    """The effect of several policies together (one Deny wins)."""
    result = None
    for policy in policies:
        effect = policy.effect(*args)
        if effect == DENY:
            return DENY
        result = result or effect
    return result


# -- the decision ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One authorisation question: who, what, on which resource, in which context."""

    principal: Principal
    action: str
    resource: str
    resource_account: str
    context: Mapping[str, Sequence[str]]
    #: the resource's own policy (a trust policy, a bus policy), if it has one
    resource_policy: Policy | None = None
    #: the caller's identity policies; None: the account's administrator (allowed everything)
    identity: Sequence[Policy] | None = None
    #: the resource policy is a KMS key policy: it must always allow (``_decide_key``)
    key_policy: bool = False


def decide(request: Request) -> None:
    """Raise AccessDenied where AWS's evaluation logic ends in a deny."""
    principal, action, resource = request.principal, request.action, request.resource
    args = (principal, action, resource, request.context)
    if principal.service is not None:
        identity: str | None = None  # a service principal has no identity policy here
    elif request.identity is None:
        identity = ALLOW
    else:
        identity = combined(request.identity, *args)
    held = request.resource_policy.effect(*args) if request.resource_policy is not None else None
    if request.key_policy:
        _decide_key(request, identity, held)
        return
    if DENY in (identity, held):
        kind = "identity-based" if identity == DENY else "resource-based"
        raise AccessDenied(principal, action, resource, f"of an explicit deny in a {kind} policy")
    assume = action.lower() == "sts:assumerole"
    same_account = principal.service is None and principal.account == request.resource_account
    if assume or not same_account:
        # A trust policy must always allow; across accounts both sides must (a service
        # principal is admitted by the resource policy alone).
        if held != ALLOW:
            kind = "trust" if assume else "resource-based"
            raise AccessDenied(principal, action, resource, f"no {kind} policy allows the {action} action")
        if principal.service is None and identity != ALLOW:
            raise AccessDenied(
                principal, action, resource, f"no identity-based policy allows the {action} action"
            )
        return
    if ALLOW not in (identity, held):
        raise AccessDenied(
            principal, action, resource, f"no identity-based policy allows the {action} action"
        )


def _decide_key(request: Request, identity: str | None, held: str | None) -> None:
    """AWS KMS: the key policy must allow, either the caller itself (its role's ARN, a
    service principal) or the account, which delegates to the account's IAM policies: then
    an identity policy must allow too. Across accounts both must allow; a deny in either
    wins (AWS KMS Developer Guide, "Key policies in AWS KMS", "Allows access to the AWS
    account and enables IAM policies", and "Troubleshooting key access")."""
    principal, action, resource = request.principal, request.action, request.resource
    if DENY in (identity, held):
        kind = "identity-based" if identity == DENY else "key"
        raise AccessDenied(principal, action, resource, f"of an explicit deny in a {kind} policy")
    if held != ALLOW:
        raise AccessDenied(principal, action, resource, f"no key policy allows the {action} action")
    direct = request.resource_policy is not None and (
        request.resource_policy.effect(principal, action, resource, request.context, account_principal=False)
        == ALLOW
    )
    same_account = principal.service is None and principal.account == request.resource_account
    if principal.service is not None:
        if not direct:
            raise AccessDenied(principal, action, resource, f"no key policy allows the {action} action")
        return
    if (direct and same_account) or identity == ALLOW:
        return
    raise AccessDenied(
        principal,
        action,
        resource,
        f"the key policy delegates to IAM and no identity-based policy allows the {action} action",
    )


def context_keys(**keys: str | Sequence[str] | None) -> dict[str, tuple[str, ...]]:
    """A condition context from keyword arguments: ``aws_PrincipalArn="..."`` ->
    ``aws:principalarn``. Keys without a value are left out (absent, as AWS leaves them)."""
    context: dict[str, tuple[str, ...]] = {}
    for name, value in keys.items():
        if value is None or value == "":
            continue
        key = name.replace("__", "-").replace("_", ":", 1).lower()
        context[key] = (value,) if isinstance(value, str) else tuple(value)
    return context


__all__ = [
    "AccessDenied",
    "Policy",
    "PolicyError",
    "Principal",
    "Request",
    "context_keys",
    "decide",
]
