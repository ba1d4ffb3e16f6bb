"""What libraries say that is not the project's to show on the console.

``make demo``, ``make local``, ``make invoke`` and ``make bench`` show what the project
says, nothing else. These library messages would otherwise reach the console:
* moto's ``UserWarning`` when it serialises an error code its service model lacks (STS
  ``AccessDenied`` for an account without a spoke stack): the project shows the refusal
  itself, with its reason;
* moto's CloudFormation warning for resource types it skips (the local organisation
  lists what it skips);
* Powertools' "No application metrics to publish" warning, for a batch with no outcome to
  count (all unchanged). In Lambda it goes to the function's log; locally the function's
  log is ``.local-org/function.log``, not the console.
(The SAM translator's "There are unpublished metrics" log line is silenced where the
translator runs, budget_sync_local.management_stack.)
The same filters are in pyproject.toml for the tests.
"""

from __future__ import annotations

import warnings

LIBRARY_WARNINGS = (
    r"Exception\(.*\) with code .* does not match an error shape",
    r"Tried to parse AWS.* but it's not supported by moto",
    r"No application metrics to publish",
)


def silence_library_warnings() -> None:
    for message in LIBRARY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=UserWarning)
