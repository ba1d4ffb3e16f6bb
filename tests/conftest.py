"""Shared test setup: fake credentials and a fixed region before any client is built."""

from __future__ import annotations

import os

# Set at import, before any test module builds a boto3 client.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        # boto3 >= 1.44 sends DynamoDB (Streams) calls to account-based endpoints moto does not route.
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        "POWERTOOLS_METRICS_NAMESPACE": "BudgetSync",
        "POWERTOOLS_SERVICE_NAME": "budget-sync",
    }
)
os.environ.pop("AWS_PROFILE", None)
