"""In-memory stand-ins for budget-sync's AWS adapters, for tests of the logic that touch no AWS.

Each fake has the adapter's methods (the Protocol the logic is typed with) and records what it
was asked; the adapters themselves are tested on moto (tests/integration).
"""

from tests.fakes.alarm_topic import FakeAlarmTopic
from tests.fakes.budgets_table import FakeBudgetsTable
from tests.fakes.history_table import FakeHistoryTable
from tests.fakes.organisation import FakeOrganisation
from tests.fakes.readiness import FakeReadiness
from tests.fakes.requests_table import FakeApprovalTable, FakeRequestTable
from tests.fakes.resolver_tables import FakeResolverTables
from tests.fakes.spoke_accounts import FakeSpoke, FakeSpokeAccounts, usd
from tests.fakes.spokes import FakeSpokes
from tests.fakes.status import FakeStatus
from tests.fakes.status_table import FakeStatusTable
from tests.fakes.status_writer import FakeStatusWriter

__all__ = [
    "FakeAlarmTopic",
    "FakeApprovalTable",
    "FakeBudgetsTable",
    "FakeHistoryTable",
    "FakeOrganisation",
    "FakeReadiness",
    "FakeRequestTable",
    "FakeResolverTables",
    "FakeSpoke",
    "FakeSpokeAccounts",
    "FakeSpokes",
    "FakeStatus",
    "FakeStatusTable",
    "FakeStatusWriter",
    "usd",
]
