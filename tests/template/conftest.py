"""The template tests also run the handler on moto: reuse the integration fixture."""

from tests.integration.conftest import org  # noqa: F401 - a pytest fixture, used by name
