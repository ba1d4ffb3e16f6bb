"""Organisation-aware budgets at scale.

1. Full resolution: an organisation of BENCH_ORG_ACCOUNTS (5,000) accounts in BENCH_ORG_OUS
   (50) OUs under the root, a default on every OU, on moto. Measured: the resolver's time and
   its Organizations calls (walk of the tree), against a baseline measured in the same run:
   the naive walk (ListAccounts, then ListParents for every account) that a resolver
   without the tree walk would make. On AWS the resolver spaces its calls at
   ``OrganizationsMaxRps`` (4 a second by default): calls / 4 is the Organizations part of a
   full resolution there.
2. One default change: the local organisation (the whole pipeline) with
   BENCH_ORG_PIPELINE_ACCOUNTS (500) spoke accounts in OUs of BENCH_ORG_PER_OU (100)
   accounts each (the density of 5,000 in 50); the time from writing one OU's default to
   every affected account *sent* (parameter written, status APPLIED) and to every affected
   budget holding the value. Spoke stacks cost about 50 ms each to provision, so 5,000
   spokes are a parameter, not the default.
"""

from __future__ import annotations

import io
import os
import time
from collections import Counter
from decimal import Decimal
from typing import Any
from unittest import mock

import boto3
from moto import mock_aws

from bench.handler import counting_calls
from budget_sync.config import ResolverSettings
from budget_sync.handlers import resolve as resolve_handler
from budget_sync.organizations import PAGE_SIZE, OrganizationsReader
from budget_sync.resolve import Resolver
from budget_sync.resolve_tables import DynamoDBResolverTables
from budget_sync_local import standins
from budget_sync_local.organisation import LocalOrganisation
from budget_sync_local.templates import MANAGEMENT_TEMPLATE, load
from budget_sync_local.templates import Resolver as TemplateResolver

ACCOUNTS = int(os.environ.get("BENCH_ORG_ACCOUNTS", "5000"))
OUS = int(os.environ.get("BENCH_ORG_OUS", "50"))
PIPELINE_ACCOUNTS = int(os.environ.get("BENCH_ORG_PIPELINE_ACCOUNTS", "500"))
PER_OU = int(os.environ.get("BENCH_ORG_PER_OU", "100"))
AWS_RPS = 4.0  # template-management.yaml, OrganizationsMaxRps default
REGION = "us-east-1"


def _tables(session: boto3.Session) -> None:
    resolver = TemplateResolver(load(MANAGEMENT_TEMPLATE), region=REGION)
    for logical_id in ("BudgetsTable", "StatusTable", "DefaultsTable"):
        properties = resolver.properties(logical_id)
        stream = properties.get("StreamSpecification")
        extra: dict[str, Any] = {"StreamSpecification": {"StreamEnabled": True, **stream}} if stream else {}
        session.client("dynamodb").create_table(
            TableName=properties["TableName"],
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=properties["AttributeDefinitions"],
            KeySchema=properties["KeySchema"],
            **extra,
        )


def full_resolution() -> None:
    with mock_aws(), standins.installed():
        session = boto3.Session(region_name=REGION)
        _tables(session)
        organizations = session.client("organizations")
        organizations.create_organization(FeatureSet="ALL")
        root = organizations.list_roots()["Roots"][0]["Id"]
        began = time.perf_counter()
        units = [
            organizations.create_organizational_unit(ParentId=root, Name=f"ou-{i:02d}")["OrganizationalUnit"][
                "Id"
            ]
            for i in range(OUS)
        ]
        for i in range(ACCOUNTS):
            account = f"{600000000000 + i:012d}"
            with mock.patch("moto.organizations.utils.make_random_account_id", return_value=account):
                organizations.create_account(AccountName=f"a{i}", Email=f"a{i}@example.com")
            organizations.move_account(
                AccountId=account, SourceParentId=root, DestinationParentId=units[i % OUS]
            )
        defaults = session.resource("dynamodb").Table("BlogBudgetsDefaults")
        with defaults.batch_writer() as batch:
            for i, unit in enumerate(units):
                batch.put_item(Item={"TargetId": unit, "BudgetValue": Decimal(100 + i)})
        print(
            f"organisation of {ACCOUNTS} accounts in {OUS} OUs built in {time.perf_counter() - began:.1f} s"
        )

        # the baseline: ListAccounts, then ListParents for each account (no tree walk)
        with counting_calls() as naive_calls:
            began = time.perf_counter()
            accounts = [
                a["Id"]
                for page in organizations.get_paginator("list_accounts").paginate(
                    PaginationConfig={"PageSize": PAGE_SIZE}
                )
                for a in page["Accounts"]
            ]
            for account in accounts:
                organizations.list_parents(ChildId=account)
            naive_s = time.perf_counter() - began
        naive = sum(naive_calls.values())

        settings = ResolverSettings.from_env(
            {
                "BUDGETS_TABLE_NAME": "BlogBudgetsDynamoDB",
                "DEFAULTS_TABLE_NAME": "BlogBudgetsDefaults",
                "STATUS_TABLE_NAME": "BlogBudgetsStatus",
            }
        )
        reader = OrganizationsReader(organizations, max_rps=0)  # locally unthrottled: counted
        tables = DynamoDBResolverTables(
            session.client("dynamodb"),
            settings.budgets_table_name,
            settings.defaults_table_name,
            settings.status_table_name,
        )
        resolver = Resolver(tables, reader, None, "bench")
        with counting_calls() as calls:
            began = time.perf_counter()
            tree = reader.full()
            walked_s = time.perf_counter() - began
            walk_calls = sum(reader.calls.values())
            summary = resolver.resolve_all()
            resolved_s = time.perf_counter() - began
        written = summary.counts.get("InheritedWritten", 0)
        org_calls = sum(reader.calls.values()) - walk_calls
        dynamodb = {k: v for k, v in calls.items() if k.startswith("dynamodb:")}

    print(
        f"tree walk: {len(tree.accounts)} accounts, {len(tree.units)} roots and OUs, {walk_calls} calls, {walked_s:.2f} s"
    )
    print(
        f"full resolution: {resolved_s - walked_s:.1f} s for {written} inherited items written; "
        f"Organizations calls {org_calls} ({dict(sorted(reader.calls.items()))} in all, walk included); "
        f"DynamoDB calls {sum(dynamodb.values())}"
    )
    print(
        f"baseline (ListAccounts + ListParents per account): {naive} calls, {naive_s:.2f} s; "
        f"the tree walk makes {org_calls / naive:.3f}x the baseline's calls ({naive / org_calls:.0f}x fewer)"
    )
    print(
        f"on AWS at {AWS_RPS:.0f} Organizations calls/s: full resolution about {org_calls / AWS_RPS:.0f} s "
        f"of Organizations calls (the baseline: {naive / AWS_RPS:.0f} s)"
    )


def default_change() -> None:
    accounts = [f"{700000000000 + i:012d}" for i in range(PIPELINE_ACCOUNTS)]
    ous = [f"ou-{i:02d}" for i in range(max(1, PIPELINE_ACCOUNTS // PER_OU))]
    for value in vars(resolve_handler).values():  # each resolver function's cached builder
        if callable(getattr(value, "cache_clear", None)):
            value.cache_clear()
    began = time.perf_counter()
    with LocalOrganisation(accounts, function_output=io.StringIO(), ous=ous) as org:
        print(
            f"local organisation: {len(accounts)} spoke accounts in {len(ous)} OUs, provisioned in {time.perf_counter() - began:.1f} s"
        )
        affected = [a for i, a in enumerate(accounts) if i % len(ous) == 0]
        status = org.management.resource("dynamodb").Table(org.stack.status_table)
        with counting_calls() as calls:
            began = time.perf_counter()
            org.set_default(ous[0], "321")
            sent_s = None
            while time.perf_counter() - began < 600:
                org.pipeline.step()
                if sent_s is None and all(
                    (status.get_item(Key={"AccountId": a}).get("Item") or {}).get("AppliedValue")
                    == Decimal(321)
                    for a in affected
                ):
                    sent_s = time.perf_counter() - began
                if (
                    sent_s is not None
                    and org.pipeline.poller.idle()
                    and org.pipeline.events.empty()
                    and org.enrolment.idle()
                ):
                    break
            org.pipeline.run_until_idle(timeout_s=600)
            confirmed_s = time.perf_counter() - began
        wrong = [a for a in affected if org.view(a).budget_limit != Decimal(321)]
        untouched = [a for a in accounts if a not in affected and org.desired(a) is not None]
    counted = Counter(k for k in calls.elements() if k.startswith("organizations:"))
    print(
        f"one default change (OU with {len(affected)} accounts): every affected account sent after "
        f"{sent_s or float('nan'):.1f} s, every budget confirmed at the new limit after {confirmed_s:.1f} s "
        f"(wrong: {len(wrong)}; other accounts touched: {len(untouched)}); Organizations calls "
        f"{sum(counted.values())} {dict(sorted(counted.items()))}"
    )


def run() -> None:
    full_resolution()
    default_change()
