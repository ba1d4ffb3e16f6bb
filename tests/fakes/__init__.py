"""In-memory stand-ins for budget-sync's AWS adapters, for tests of the logic that touch no AWS.

Each fake has the adapter's methods (the Protocol the logic is typed with) and records what it
was asked; the adapters themselves are tested on moto (tests/integration).
"""

from tests.fakes.alarm_topic import FakeAlarmTopic
from tests.fakes.spokes import FakeSpokes
from tests.fakes.status import FakeStatus
from tests.fakes.status_table import FakeStatusTable

__all__ = ["FakeAlarmTopic", "FakeSpokes", "FakeStatus", "FakeStatusTable"]
