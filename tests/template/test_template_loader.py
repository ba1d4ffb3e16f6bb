"""``budget_sync_local.templates`` reads a template as cfn-lint's decoder does, without cfn-lint.

The comparison with ``cfnlint.decode`` runs in another interpreter (cfn-lint takes seconds to
import, and ``make unit`` imports it nowhere), so it is marked ``process``; the short forms and
the errors are checked here, in ``make unit``.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from budget_sync_local.templates import ROOT, TemplateError, load, load_text

#: Every template of the repository: the stacks and the spoke's older versions (upgrade tests).
TEMPLATES = sorted(ROOT.glob("template-*.yaml")) + sorted((ROOT / "tests/spoke/fixtures").glob("*.yaml"))

# cfn-lint's decoder in a fresh interpreter: each template as plain builtins, pickled.
DECODE = """
import pickle
import sys

from cfnlint.decode import decode


def plain(value):
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, str):
        return str(value)
    return value


decoded = {}
for path in sys.argv[1:]:
    template, matches = decode(path)
    assert not matches, [str(match) for match in matches]
    decoded[path] = plain(template)
sys.stdout.buffer.write(pickle.dumps(decoded))
"""


def typed(value: Any) -> Any:
    """The value with each node's type alongside, so ``1 == True == 1.0`` compares unequal."""
    if isinstance(value, dict):
        return ("dict", [(typed(key), typed(item)) for key, item in value.items()])
    if isinstance(value, list):
        return ("list", [typed(item) for item in value])
    return (type(value).__name__, value)


@pytest.mark.process
def test_every_template_of_the_repository_loads_exactly_as_cfn_lints_decoder_reads_it():
    assert len(TEMPLATES) >= 4, TEMPLATES
    result = subprocess.run(
        [sys.executable, "-c", DECODE, *map(str, TEMPLATES)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ""},
        capture_output=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    decoded = pickle.loads(result.stdout)  # noqa: S301 - our own child's output

    for path in TEMPLATES:
        assert typed(load(path)) == typed(decoded[str(path)]), path.name
        assert typed(load_text(path.read_text(encoding="utf-8"))) == typed(decoded[str(path)]), path.name


def test_short_form_intrinsic_functions_read_as_their_long_forms():
    template = load_text(
        textwrap.dedent(
            """\
            Conditions:
              IsProd: !Equals [!Ref Stage, prod]
            Resources:
              Role:
                Type: AWS::IAM::Role
                Condition: IsProd
                Properties:
                  RoleName: !Sub "${AWS::StackName}-role"
                  Arn: !GetAtt Table.StreamArn
                  Nested: !GetAtt [Table, Arn]
                  Number: !Ref 5
                  Pick: !Select [0, !Split [",", !Join [",", [a, b]]]]
                  Either: !If [IsProd, !Condition IsProd, !Ref AWS::NoValue]
                  Mapped: !FindInMap {MapName: M, TopLevelKey: a, SecondLevelKey: b}
            """
        )
    )

    assert template["Conditions"] == {"IsProd": {"Fn::Equals": [{"Ref": "Stage"}, "prod"]}}
    properties = template["Resources"]["Role"]["Properties"]
    assert properties == {
        "RoleName": {"Fn::Sub": "${AWS::StackName}-role"},
        "Arn": {"Fn::GetAtt": ["Table", "StreamArn"]},
        "Nested": {"Fn::GetAtt": ["Table", "Arn"]},
        "Number": {"Ref": "5"},
        "Pick": {"Fn::Select": [0, {"Fn::Split": [",", {"Fn::Join": [",", ["a", "b"]]}]}]},
        "Either": {"Fn::If": ["IsProd", {"Condition": "IsProd"}, {"Ref": "AWS::NoValue"}]},
        "Mapped": {"Fn::FindInMap": {"MapName": "M", "TopLevelKey": "a", "SecondLevelKey": "b"}},
    }
    assert typed(properties["Number"]) == typed({"Ref": "5"})


def test_a_key_given_twice_is_an_error_naming_the_key_and_both_lines():
    with pytest.raises(TemplateError, match=r"duplicate key 'Table' \(lines 2 and 4\)"):
        load_text("Resources:\n  Table:\n    Type: A\n  Table:\n    Type: B\n")


def test_a_null_key_is_an_error():
    with pytest.raises(TemplateError, match="null key"):
        load_text("Resources:\n  ~: 1\n")


def test_a_template_that_is_not_a_mapping_or_not_yaml_is_an_error_naming_it(tmp_path: Path):
    with pytest.raises(TemplateError, match="a template is a mapping, not list"):
        load_text("- a\n- b\n")
    broken = tmp_path / "template-broken.yaml"
    broken.write_text("Resources: [\n", encoding="utf-8")
    with pytest.raises(TemplateError, match=r"template-broken\.yaml does not parse"):
        load(broken)


def test_an_empty_template_is_an_empty_mapping():
    assert load_text("") == {}
