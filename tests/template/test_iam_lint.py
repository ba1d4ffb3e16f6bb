"""The IAM policy linter (parliament) that `make lint-iam` runs: both templates are clean or
justified in place, and the linter does find what it is for."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from budget_sync_local.templates import MANAGEMENT_TEMPLATE, SPOKE_TEMPLATE
from tests.template.lint_iam import lint, main

BAD = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Resources": {
        "Loose": {
            "Type": "AWS::IAM::ManagedPolicy",
            "Properties": {
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
                }
            },
        }
    },
}


def test_every_policy_of_both_templates_is_clean_or_justified_in_place(capsys):
    assert main() == 0
    out = capsys.readouterr().out
    assert "template-management.yaml: 0 finding(s)" in out
    assert "template-spoke.yaml: 0 finding(s)" in out
    assert "template-org-events.yaml: 0 finding(s), 0 justified" in out


def test_the_justifications_are_the_ones_in_the_templates():
    _, management = lint(MANAGEMENT_TEMPLATE)
    _, spoke = lint(SPOKE_TEMPLATE)
    assert {(f.resource, f.issue) for f in management} == {
        ("FunctionRole", "RESOURCE_MISMATCH"),
        ("DefaultsResolverRole", "RESOURCE_MISMATCH"),  # ListStreams on the defaults table's stream
        ("ItemRemovedResolverRole", "RESOURCE_MISMATCH"),  # ListStreams on the budgets table's stream
        ("FailureNoticeRole", "RESOURCE_MISMATCH"),  # ListStreams on the status table's stream
        ("HistoryRole", "RESOURCE_MISMATCH"),  # ListStreams on the four streams it reads
        ("IncidentQueuePolicy", "UNKNOWN_CONDITION_FOR_ACTION"),  # aws:SourceOrgID, newer than parliament
    }
    assert {(f.resource, f.issue) for f in spoke} == {("AlertTopicKey", "RESOURCE_STAR")}


def test_given_a_policy_on_every_object_then_it_is_a_finding_and_an_ignore_without_a_comment_is_none(
    tmp_path: Path,
):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(BAD))
    unjustified, _ = lint(path, [{}])
    assert [(f.resource, f.issue) for f in unjustified] == [("Loose", "RESOURCE_STAR")]

    for comment, expected in (("", 1), ("Read-only, public bucket objects only.", 0)):
        ignored = copy.deepcopy(BAD)
        entry = {"issue": "RESOURCE_STAR", "comment": comment}
        ignored["Resources"]["Loose"]["Metadata"] = {"parliament": {"ignore": [entry]}}
        other = tmp_path / f"ignored-{expected}.yaml"  # templates are cached per path
        other.write_text(yaml.safe_dump(ignored))
        unjustified, justified = lint(other, [{}])
        assert len(unjustified) == expected
        assert len(justified) == 1 - expected
