"""One loader of botocore's JSON models for every botocore session of a test process.

Each ``mock_aws()`` makes boto3 start a new default session (moto's ``reset_boto3_session``), and
the fixtures and the code under test build sessions of their own (one per assumed role); each
new botocore session has a new loader, which parses ``endpoints.json`` and every service model it
is asked for again: about a second of JSON decoding for a fixture with three spoke accounts, in
every test that touches moto. Registered once here (a plugin of tests/conftest.py), every
session's ``data_loader`` is the process's one loader for its data path, as the local
organisation already does for its own sessions (``budget_sync_local.organisation``): the models
are parsed once per process. botocore treats the loaded models as read-only; a test that needs
a changed model copies it first (tests/spoke/test_budget_contract.py).
"""

from __future__ import annotations

from typing import Any

import botocore.session
from botocore.loaders import Loader, create_loader

_LOADERS: dict[str | None, Loader] = {}


def _shared_data_loader(session: botocore.session.Session) -> None:
    def loader() -> Loader:
        path: Any = session.get_config_variable("data_path")
        if path not in _LOADERS:
            _LOADERS[path] = create_loader(path)
        return _LOADERS[path]

    session._components.lazy_register_component("data_loader", loader)


botocore.session.Session._register_data_loader = _shared_data_loader  # type: ignore[method-assign]
