"""A copy of everything a local organisation's deployment leaves behind in this process: moto's
backends (every service, account and region in use) and the stand-ins' own records (the role
sessions AssumeRole issued, the accounts' organisations, the access keys' accounts, the StackSets'
instances, the instances declared FAILED).

``capture()`` takes the copy; ``restore(state)`` puts a fresh copy of it back, replacing whatever
moto and the stand-ins hold, so that a second organisation built from the same arguments starts
from exactly the state a new deployment would leave (``LocalOrganisation(deployments=...)``), in
milliseconds instead of the seconds CloudFormation on moto takes. Each ``restore`` copies again:
what one organisation writes never reaches the state the next one starts from.

moto keeps each service's state in a ``BackendDict`` (``moto.core.base_backend``): account ->
region -> backend object. The copy is a ``copy.deepcopy`` of their contents, with every
``BackendDict`` itself kept (a model that refers to another service's ``BackendDict`` keeps
referring to the live one). Locks and conditions (an SQS queue's) are copied as new, unlocked
ones; SSM's ``ParameterDict`` is rebuilt with its account and region.

Only for an organisation in its own ``mock_aws()`` (``start_mock=True``): a caller's mock may hold
state of its own, which ``restore`` would replace.
"""

from __future__ import annotations

import contextlib
import copy
import copyreg
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from moto.core.base_backend import BackendDict
from moto.ssm.models import ParameterDict

from budget_sync_local.standins import authorisation, speed, stacksets
from budget_sync_local.standins import cloudformation as cloudformation_standins

#: The stand-ins' module-level records that a deployment fills (name -> the live dict). Every
#: module-level dict, list or set of the stand-ins other than moto's own ``BackendDict`` is
#: either here or in ``NOT_DEPLOYMENT_STATE`` (tests/e2e/test_provisioned_once.py checks it, so
#: that a new one cannot be forgotten).
RECORDS: dict[str, dict[Any, Any]] = {
    "authorisation._SESSIONS": authorisation._SESSIONS,
    "authorisation._ORGS": authorisation._ORGS,
    "speed._KEY_ACCOUNTS": speed._KEY_ACCOUNTS,
    "stacksets._instances": stacksets._instances,
    "stacksets._arns": stacksets._arns,
    "cloudformation._FAILED": cloudformation_standins._FAILED,
}

#: Module-level containers of the stand-ins that are not what a deployment leaves: caches that
#: hold for any state, and the wiring each organisation sets up for itself.
NOT_DEPLOYMENT_STATE = frozenset(
    {
        "automation._RUNNING",  # executions in progress: none once a deployment is done
        "automation._CLIENTS",  # clients by credentials: a cache, valid for any state
        "awslambda._output",  # where invoked functions log: each organisation sets its own
        "organizations._subscribers",  # each organisation subscribes its own enrolment
        "resource_policies._MODELS",  # constant: the policy resource types
        "speed._POSSIBLE_KEYS",  # a cache of moto's serialiser, valid for any state
        "speed._UPDATE_EXPRESSIONS",  # parsed UpdateExpression texts: a cache, valid for any state
        "speed._STRUCTURE_CHECKED",  # ASTs that passed moto's structural checks: valid for any state
        "speed._CONDITION_TOKENS",  # lexed ConditionExpression texts: a cache, valid for any state
        # constants
        "authorisation._PREFIX",
        "authorisation._QUERY_PROTOCOLS",
        "authorisation._SENDS",
        "authorisation._LAMBDA_ACTIONS",
        "authorisation._ITEM_CALLS",
        "speed.DEFAULT_ALIAS_PROVIDERS",
        "speed._PLAIN",
    }
)


@dataclass(frozen=True)
class State:
    """moto's backends and the stand-ins' records, as ``capture`` found them (never handed out:
    ``restore`` copies them again)."""

    #: each BackendDict in use: its accounts' backends, and its own attributes (Organizations'
    #: ``master_accounts``, which moto's reset leaves)
    backends: dict[BackendDict[Any], tuple[dict[str, Any], dict[str, Any]]]
    records: dict[str, dict[Any, Any]]


def _new_lock(_lock: Any) -> tuple[Any, tuple[()]]:
    return threading.Lock, ()


def _new_rlock(_lock: Any) -> tuple[Any, tuple[()]]:
    return threading.RLock, ()


def _new_condition(_condition: threading.Condition) -> tuple[Any, tuple[()]]:
    return threading.Condition, ()


def _parameter_dict(parameters: ParameterDict) -> tuple[Any, ...]:
    return (
        ParameterDict,
        (parameters.account_id, parameters.region_name),
        dict(parameters.__dict__),
        None,
        iter(parameters.items()),
    )


_COPIERS: dict[type, Any] = {
    type(threading.Lock()): _new_lock,
    type(threading.RLock()): _new_rlock,
    threading.Condition: _new_condition,
    ParameterDict: _parameter_dict,
}
_COPY_LOCK = threading.Lock()


@contextlib.contextmanager
def _copiers() -> Iterator[None]:
    """copyreg's reducers for what deepcopy cannot copy by itself, only while copying."""
    with _COPY_LOCK:
        saved = {kind: copyreg.dispatch_table.get(kind) for kind in _COPIERS}
        copyreg.dispatch_table.update(_COPIERS)
        try:
            yield
        finally:
            for kind, previous in saved.items():
                if previous is None:
                    copyreg.dispatch_table.pop(kind, None)
                else:
                    copyreg.dispatch_table[kind] = previous


def _copy(
    backends: dict[BackendDict[Any], tuple[dict[str, Any], dict[str, Any]]],
    records: dict[str, dict[Any, Any]],
) -> State:
    live = {id(backend): backend for backend in backends}  # BackendDicts stay the live ones
    with _copiers():
        copied_backends, copied_records = copy.deepcopy((backends, records), memo=live)
    return State(copied_backends, copied_records)


def capture() -> State:
    """A copy of moto's backends in use and of the stand-ins' records."""
    backends = {backend: (dict(backend), dict(vars(backend))) for backend in BackendDict._instances}  # type: ignore[misc]  # moto annotates it so
    return _copy(backends, {name: dict(record) for name, record in RECORDS.items()})


def restore(state: State) -> None:
    """Replace moto's backends and the stand-ins' records by a fresh copy of ``state``."""
    fresh = _copy(state.backends, state.records)
    BackendDict.reset()  # whatever is in use now, as mock_aws() resets it
    for backend, (contents, attributes) in fresh.backends.items():
        backend.clear()
        backend.update(contents)
        vars(backend).update(attributes)
        BackendDict._instances.append(backend)  # type: ignore[misc]
    for name, record in RECORDS.items():
        record.clear()
        record.update(fresh.records[name])


__all__ = ["NOT_DEPLOYMENT_STATE", "RECORDS", "State", "capture", "restore"]
