"""In-memory stand-ins for budget-sync's AWS adapters, for tests of the logic that touch no AWS.

Each fake has the adapter's methods (the Protocol the logic is typed with) and records what it
was asked; the adapters themselves are tested on moto (tests/integration).
"""

from tests.fakes.organisation import FakeOrganisation
from tests.fakes.readiness import FakeReadiness
from tests.fakes.resolver_tables import FakeResolverTables
from tests.fakes.spokes import FakeSpokes
from tests.fakes.status import FakeStatus

__all__ = ["FakeSpokes", "FakeStatus"]
__all__ += ["FakeOrganisation", "FakeReadiness", "FakeResolverTables"]
