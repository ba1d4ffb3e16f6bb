"""The item's alert attributes (budget_sync.alerts) and how the batch plan sends them."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from budget_sync.alerts import AlertSettings, alert_attributes, parse_alerts
from budget_sync.errors import InvalidItemError, SpokeAccessDenied
from budget_sync.status import Status
from budget_sync.update import BudgetSync, Outcome, StreamRecord
from tests.fakes import FakeSpokes, FakeStatus

A = "111111111111"  # an account


class AlertSpokes(FakeSpokes):
    def __init__(self, failures=None) -> None:
        super().__init__()
        self.alert_failures = failures or {}
        self.alerts: list[tuple[str, str]] = []

    def put_alert_settings(self, account_id: str, settings_json: str) -> int:
        if account_id in self.alert_failures:
            raise self.alert_failures[account_id]
        self.alerts.append((account_id, settings_json))
        return len(self.alerts)


def record(seq: int, new: dict | None, old: dict | None = None) -> StreamRecord:
    new_image = None if new is None else {"AccountId": A, "BudgetValue": Decimal(100), **new}
    old_image = None if old is None else {"AccountId": A, "BudgetValue": Decimal(100), **old}
    return StreamRecord(
        "INSERT" if old is None else "MODIFY", str(seq), {"AccountId": A}, new_image, old_image
    )


def run(*records: StreamRecord, spokes: AlertSpokes | None = None):
    spokes = spokes or AlertSpokes()
    status = FakeStatus()
    result = BudgetSync(spokes, status).process(list(records))  # type: ignore[arg-type]
    return result, spokes, status


# -- the contract ----------------------------------------------------------------------------


def test_given_text_sets_and_numbers_then_they_parse_to_one_canonical_form():
    from_text = parse_alerts(
        {
            "AlertEmails": " b@example.com, a@example.com ,",
            "AlertThresholds": "100,80.0",
            "ForecastedThreshold": "100",
        }
    )
    from_sets = parse_alerts(
        {
            "AlertEmails": {"a@example.com", "b@example.com"},
            "AlertThresholds": {Decimal(80), Decimal(100)},
            "ForecastedThreshold": Decimal("100.00"),
        }
    )
    assert from_text == from_sets
    assert json.loads(from_text.to_parameter()) == {
        "emails": ["a@example.com", "b@example.com"],
        "actual": ["80", "100"],
        "forecasted": "100",
    }


def test_given_no_alert_attributes_then_the_settings_are_the_stacks_defaults():
    settings = parse_alerts({"AccountId": A, "BudgetValue": Decimal(1), "AlertEmails": ""})
    assert settings.is_default
    assert settings.to_parameter() == "{}"


def test_forecasted_none_turns_the_forecasted_alert_off():
    assert parse_alerts({"ForecastedThreshold": "None"}).to_parameter() == '{"forecasted":"none"}'


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (
            {"AlertEmails": "ops@example.com,not-an-address"},
            "AlertEmails 'not-an-address' is not a well-formed email",
        ),
        ({"AlertEmails": "a@b"}, "AlertEmails 'a@b' is not a well-formed email"),
        (
            {"AlertEmails": [f"u{i}@example.com" for i in range(11)]},
            "has 11 addresses; AWS Budgets takes at most 10",
        ),
        ({"AlertThresholds": "80,eighty"}, "AlertThresholds 'eighty' is not a number"),
        ({"AlertThresholds": "-5"}, "AlertThresholds '-5' must be from 0 to 1000000"),
        ({"AlertThresholds": "1000000.01"}, "must be from 0 to 1000000"),
        ({"AlertThresholds": "80.125"}, "has more than two decimals"),
        ({"AlertThresholds": "80,80.0"}, "AlertThresholds '80,80.0' names a threshold twice"),
        ({"AlertThresholds": ",".join(str(t) for t in range(10, 110, 10))}, "has 10 thresholds; at most 9"),
        ({"ForecastedThreshold": "90,100"}, "ForecastedThreshold '90,100' must be one threshold at most"),
        ({"ForecastedThreshold": True}, "ForecastedThreshold True is not a number"),
    ],
)
def test_given_a_bad_value_then_the_error_names_the_field_and_the_value(item: dict, message: str):
    with pytest.raises(InvalidItemError, match=message) as error:
        parse_alerts(item, A)
    assert error.value.account_id == A


def test_operator_text_is_validated_and_empty_text_removes_an_attribute():
    assert alert_attributes("b@example.com,a@example.com", "100,80", "", A) == {
        "AlertEmails": "a@example.com,b@example.com",
        "AlertThresholds": "80,100",
        "ForecastedThreshold": None,
    }
    assert alert_attributes(None, None, "95") == {"ForecastedThreshold": "95"}
    with pytest.raises(InvalidItemError, match="AlertEmails 'x' is not"):
        alert_attributes("x", "80", None)


# -- the batch plan --------------------------------------------------------------------------


def test_given_new_recipients_on_an_unchanged_value_then_only_the_alert_parameter_is_written():
    result, spokes, status = run(record(2, {"AlertEmails": "team@example.com"}, {}))
    assert spokes.writes == []
    assert spokes.alerts == [(A, '{"emails":["team@example.com"]}')]
    assert status.rows[A].status is Status.SENT  # until the spoke reports what it applied
    assert status.rows[A].alerts == '{"emails":["team@example.com"]}'
    assert result.outcomes[Outcome.APPLIED] == 1


def test_given_the_same_alerts_in_another_form_then_nothing_is_sent():
    result, spokes, status = run(
        record(2, {"AlertThresholds": {Decimal(80), Decimal(100)}}, {"AlertThresholds": "80,100"})
    )
    assert spokes.writes == spokes.alerts == []
    assert status.rows == {}
    assert result.outcomes[Outcome.UNCHANGED] == 1


def test_given_alert_attributes_removed_then_the_defaults_are_sent():
    _, spokes, _ = run(record(2, {}, {"AlertEmails": "team@example.com"}))
    assert spokes.alerts == [(A, "{}")]


def test_given_a_new_item_without_alerts_then_only_the_value_is_sent():
    _, spokes, _ = run(record(1, {}))
    assert spokes.writes == [(A, "100")]
    assert spokes.alerts == []


def test_given_an_invalid_address_then_status_failed_names_it_and_nothing_is_sent():
    result, spokes, status = run(record(2, {"BudgetValue": Decimal(200), "AlertEmails": "bad"}, {}))
    assert spokes.writes == spokes.alerts == []
    assert status.rows[A].status is Status.FAILED
    assert "AlertEmails 'bad' is not a well-formed email address" in status.rows[A].reason
    assert result.outcomes[Outcome.INVALID_ITEM] == 1


def test_given_a_spoke_stack_without_the_alert_parameter_then_status_failed_says_to_update_it():
    denied = SpokeAccessDenied(
        "account 111111111111: the spoke role may not write /BlogBudgets/AlertSettings"
    )
    result, _, status = run(record(2, {"AlertThresholds": "90"}, {}), spokes=AlertSpokes({A: denied}))
    assert status.rows[A].status is Status.FAILED
    assert "/BlogBudgets/AlertSettings" in status.rows[A].reason
    assert result.outcomes[Outcome.FAILED] == 1


def test_alert_settings_equality_ignores_order_and_case_duplicates():
    assert parse_alerts({"AlertEmails": "A@example.com,a@example.com"}) == AlertSettings(
        emails=("A@example.com",)
    )


MERGES = [
    ({}, {"emails": "a@example.com,b@example.com", "actual": "80,100", "forecasted": "100", "sns": ""}),
    (
        {"AlertEmails": "Team@example.com"},
        {"emails": "a@example.com", "actual": "80", "forecasted": "none", "sns": "arn:aws:sns:eu-west-1:1:t"},
    ),
    (
        {"AlertThresholds": "50,75.5", "ForecastedThreshold": "none"},
        {"emails": "a@example.com", "actual": "80"},
    ),
    ({"AlertEmails": "x@example.com", "AlertThresholds": "90", "ForecastedThreshold": "120"}, {}),
]


@pytest.mark.parametrize(("item", "defaults"), MERGES)
def test_the_reconcilers_expected_notifications_are_what_the_spokes_automation_makes(
    item: dict, defaults: dict
):
    from budget_sync.alerts import expected_notifications, notification_key, subscriber
    from budget_sync_spoke import alerts as spoke

    # the spoke's merge, from the JSON the update function writes and the stack's defaults
    made = spoke.desired_alerts(json.loads(parse_alerts(item).to_parameter()), defaults).notifications()
    as_aws_returns = {
        notification_key(kind, "GREATER_THAN", "PERCENTAGE", Decimal(str(float(threshold)))): frozenset(
            subscriber(t, a) for t, a in subs
        )
        for (kind, threshold), subs in made.items()
    }
    assert expected_notifications(parse_alerts(item), defaults) == as_aws_returns


def test_notifications_differ_names_each_missing_unexpected_and_changed_notification():
    from budget_sync.alerts import expected_notifications, notification_key, notifications_differ, subscriber

    expected = expected_notifications(
        parse_alerts({"AlertEmails": "a@example.com", "AlertThresholds": "80"}), {}
    )
    assert notifications_differ(expected, expected) == ""
    actual = {
        notification_key("ACTUAL", "GREATER_THAN", "PERCENTAGE", Decimal("80.0")): frozenset(
            {subscriber("EMAIL", "A@EXAMPLE.COM"), subscriber("EMAIL", "b@example.com")}
        ),
        notification_key("FORECASTED", "GREATER_THAN", "ABSOLUTE_VALUE", Decimal("500")): frozenset(),
    }
    assert notifications_differ(expected, actual) == (
        "unexpected FORECASTED>500 ABSOLUTE_VALUE; ACTUAL>80% subscribers: missing -, unexpected b@example.com"
    )
    assert notifications_differ(expected, {}) == "missing ACTUAL>80%"


def test_an_invalid_stack_default_is_refused_naming_the_field_and_the_value():
    from budget_sync.alerts import expected_notifications

    with pytest.raises(InvalidItemError, match=r"AlertEmails.*finance\(at\)example.com"):
        expected_notifications(AlertSettings(), {"emails": "finance(at)example.com", "actual": "80"})
