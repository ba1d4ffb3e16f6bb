"""``budgetctl reconcile --apply``: the repair is done by budget-sync's reconciler, not by the
operator's session. budgetctl invokes the reconciler function (``lambda:InvokeFunction`` on
that one function) with the accounts and the caller's identity; the function repairs with
its own role and records who asked (budget_sync.requested). The operator's credentials
never reach a spoke's write role.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.config import Config

from budgetctl.errors import AwsError

if TYPE_CHECKING:
    from budgetctl.context import Context

#: The reconciler may run up to its 900 s timeout; one attempt (a repeat would repair twice
#: over nothing, but an operator should see one outcome, not a retried one).
INVOKE_CONFIG = Config(connect_timeout=5, read_timeout=910, retries={"total_max_attempts": 1})


def invoke_reconciler(ctx: Context, accounts: Sequence[str]) -> dict[str, Any]:
    """The reconciler's response: ``reports`` (one row per account), ``missing`` (no item)."""
    payload = {"Accounts": list(accounts), "RequestedBy": ctx.caller_arn}
    client = ctx.session.client("lambda", endpoint_url=ctx.args.endpoint_url, config=INVOKE_CONFIG)
    response = client.invoke(
        FunctionName=ctx.args.reconciler_function,
        InvocationType="RequestResponse",
        Payload=json.dumps(payload).encode(),
    )
    body = response["Payload"].read()
    try:
        result = json.loads(body or b"null")
    except ValueError:
        result = None
    if response.get("FunctionError"):
        error = result if isinstance(result, dict) else {}
        raise AwsError(
            f"the reconciler {ctx.args.reconciler_function} failed: "
            f"{error.get('errorType', response['FunctionError'])}: {error.get('errorMessage', '')}"
        )
    if not isinstance(result, dict) or not isinstance(result.get("reports"), list):
        raise AwsError(
            f"the reconciler {ctx.args.reconciler_function} did not answer a repair request "
            "(is it budget-sync's reconciler, deployed from this version?)"
        )
    return result
