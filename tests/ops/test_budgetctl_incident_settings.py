"""budgetctl and an account's incident overrides (IncidentUrgency, IncidentImpact,
IncidentAssignmentGroup, IncidentCaller; docs/itsm.md): set, get, import and export, as a user
types them; validated by budget_sync.incidents.lifecycle's own rules before anything is written."""

from __future__ import annotations

from pathlib import Path

from budget_sync.incidents.lifecycle import IncidentSettings
from budgetctl.errors import ExitCode
from tests.support.moto_org import SPOKES, Org
from tests.support.operators import budgetctl

A, B, _ = SPOKES
GROUP = "0123456789abcdef0123456789abcdef"
CALLER = "fedcba9876543210fedcba9876543210"


def stored(org: Org, account: str) -> dict:
    table = org.management.resource("dynamodb").Table(org.budgets_table)
    return table.get_item(Key={"AccountId": account}, ConsistentRead=True)["Item"]


def test_given_incident_options_when_set_then_the_item_carries_them_as_the_incident_function_reads_them(
    ops: Org,
):
    result = budgetctl(
        "set", A, "1000", "--incident-urgency", "2", "--incident-impact", " 1 ",
        "--incident-assignment-group", GROUP, "--incident-caller", CALLER,
    )  # fmt: skip

    assert result.code == ExitCode.OK, result.stderr
    item = stored(ops, A)
    assert IncidentSettings.from_item(item, A) == IncidentSettings(2, 1, GROUP, CALLER)
    row = budgetctl("get", A, "--output", "json").json()
    assert (row["IncidentUrgency"], row["IncidentImpact"], row["IncidentAssignmentGroup"]) == (
        "2",
        "1",
        GROUP,
    )

    # the same again writes nothing; an empty option removes the attribute (the OU's or stack's)
    assert "nothing written" in budgetctl("set", A, "1000", "--incident-urgency", "2").stderr
    assert budgetctl("set", A, "1000", "--incident-caller", "").code == ExitCode.OK
    item = stored(ops, A)
    assert "IncidentCaller" not in item
    assert item["IncidentAssignmentGroup"] == GROUP


def test_given_a_bad_incident_option_then_exit_2_naming_field_and_value_and_nothing_is_written(ops: Org):
    before = stored(ops, A)
    urgency = budgetctl("set", A, "2000", "--incident-urgency", "4")
    assert urgency.code == ExitCode.USAGE
    assert "IncidentUrgency '4' is not 1, 2 or 3" in urgency.stderr
    group = budgetctl("set", A, "2000", "--incident-assignment-group", "Cloud Ops")
    assert group.code == ExitCode.USAGE
    assert "IncidentAssignmentGroup 'Cloud Ops' is not a ServiceNow sys_id" in group.stderr
    assert stored(ops, A) == before


def test_export_then_import_carries_the_incident_columns_validated(ops: Org, tmp_path: Path):
    budgetctl("set", A, "1000", "--incident-urgency", "1", "--incident-assignment-group", GROUP)
    exported = tmp_path / "budgets.csv"
    assert budgetctl("export", "--file", str(exported)).code == ExitCode.OK
    lines = exported.read_text().splitlines()
    assert lines[0].endswith(",IncidentUrgency,IncidentImpact,IncidentAssignmentGroup,IncidentCaller")
    assert any(line.startswith(f"{A},1000,") and line.endswith(f",1,,{GROUP},") for line in lines)
    assert "0 to add, 0 to change, 3 unchanged" in budgetctl("import", str(exported)).stderr

    # a change shows in the dry run's Attributes, then is written
    source = tmp_path / "change.csv"
    source.write_text(f"AccountId,BudgetValue,IncidentUrgency,IncidentImpact\n{A},1000,2,3\n")
    dry = budgetctl("import", str(source), "--dry-run", "--output", "json")
    assert dry.code == ExitCode.OK, dry.stderr
    assert "IncidentUrgency 1 -> 2" in dry.json()[0]["Attributes"]
    assert "IncidentImpact (default) -> 3" in dry.json()[0]["Attributes"]
    assert budgetctl("import", str(source)).code == ExitCode.OK
    item = stored(ops, A)
    assert (item["IncidentUrgency"], item["IncidentImpact"], item["IncidentAssignmentGroup"]) == (
        "2",
        "3",
        GROUP,
    )

    # a bad cell: the line, the field and the value; nothing written
    bad = tmp_path / "bad.csv"
    bad.write_text(f"AccountId,BudgetValue,IncidentCaller\n{B},500,{GROUP}\n{A},1000,nobody\n")
    before = (stored(ops, A), stored(ops, B))
    refused = budgetctl("import", str(bad))
    assert refused.code == ExitCode.USAGE
    assert "bad.csv:3: IncidentCaller 'nobody' is not a ServiceNow sys_id" in refused.stderr
    assert (stored(ops, A), stored(ops, B)) == before
