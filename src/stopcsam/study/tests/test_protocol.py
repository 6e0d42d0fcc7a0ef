from __future__ import annotations

import copy
from typing import Any

import pytest

from stopcsam.study.demo import demo_definition
from stopcsam.study.exceptions import ProtocolError
from stopcsam.study.protocol import protocol_from_dict
from stopcsam.study.tests.conftest import four_arm_definition


def test_the_demo_protocol_loads() -> None:
    protocol = protocol_from_dict(demo_definition())
    assert [arm.key for arm in protocol.arms] == ["chat", "waitlist"]
    assert protocol.arm("waitlist").offers_chat_after == "post"
    assert [p.key for p in protocol.schedule] == ["baseline", "week2", "post", "followup"]
    assert protocol.largest_block() == 6 and protocol.course_sessions == 4


@pytest.mark.parametrize("language", ["en", "de", "cs", "pt", "es"])
def test_the_demo_protocol_speaks_every_language(language: str) -> None:
    protocol = protocol_from_dict(demo_definition())
    assert language in protocol.consent
    for instrument in [protocol.screening, *protocol.instruments.values()]:
        assert language in instrument.title
        for item in instrument.items:
            assert item.label.get(language), (instrument.key, item.key)
            assert all(option.label.get(language) for option in item.options)


def test_a_four_arm_factorial_protocol_loads() -> None:
    protocol = protocol_from_dict(four_arm_definition())
    assert len(protocol.arms) == 4 and protocol.largest_block() == 12


def _broken(change: dict[str, Any]) -> dict[str, Any]:
    definition = copy.deepcopy(demo_definition())
    definition.update(change)
    return definition


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"arms": [{"key": "only", "label": "x"}]}, "two arms"),
        ({"arms": [{"key": "a", "label": "x"}, {"key": "a", "label": "y"}]}, "unique"),
        ({"arms": [{"key": "a", "label": "x", "ratio": 0}, {"key": "b", "label": "y"}]}, "ratio"),
        ({"strata": ["shoe_size"]}, "strata"),
        ({"block_multipliers": []}, "block_multipliers"),
        ({"schedule": [{"key": "baseline", "label": "x", "instruments": ["nope"]}]}, "unknown"),
        (
            {
                "consent": {
                    "documents": {"de": {"title": "x", "items": [{"key": "a", "text": "t"}]}}
                }
            },
            "English",
        ),
        ({"key": "Not Valid"}, "key"),
    ],
)
def test_broken_protocols_are_refused_with_a_clear_reason(
    change: dict[str, Any], message: str
) -> None:
    with pytest.raises(ProtocolError, match=message):
        protocol_from_dict(_broken(change))


def test_unknown_screening_items_in_rules_are_refused() -> None:
    definition = copy.deepcopy(demo_definition())
    definition["screening"]["rules"] = [{"item": "shoe", "op": ">=", "value": 1, "reason": "x"}]
    with pytest.raises(ProtocolError, match="unknown"):
        protocol_from_dict(definition)


def test_an_instrument_about_the_sessions_is_asked_only_in_arms_offering_the_chat() -> None:
    protocol = protocol_from_dict(four_arm_definition())
    post = protocol.time_point("post")
    asked = {arm.key: protocol.instruments_at(post, arm) for arm in protocol.arms}
    assert "feedback" in asked["chat"] and "feedback" in asked["both"]
    assert "feedback" not in asked["selfhelp"] and "feedback" not in asked["waitlist"]
    assert protocol.instruments_at(post, None) == asked["waitlist"]  # not randomized yet


@pytest.mark.parametrize(
    "chat_only",
    [["feedback", "nothing"], "feedback", ["urge", "feedback", "wellbeing", "selfefficacy"]],
)
def test_chat_arms_only_names_some_of_the_time_points_instruments(chat_only: Any) -> None:
    definition = demo_definition()
    definition["schedule"][2]["chat_arms_only"] = chat_only
    with pytest.raises(ProtocolError, match="chat_arms_only"):
        protocol_from_dict(definition)


def test_the_primary_time_point_is_the_demo_week_4_and_must_name_a_later_point() -> None:
    assert protocol_from_dict(demo_definition()).primary_time_point.key == "post"
    definition = demo_definition()
    del definition["primary_time_point"]
    assert protocol_from_dict(definition).primary_time_point.key == "followup"  # the last
    for wrong in ("baseline", "week9"):
        with pytest.raises(ProtocolError, match="primary_time_point"):
            protocol_from_dict({**definition, "primary_time_point": wrong})


@pytest.mark.parametrize(
    "change",
    [
        {"arms": ["chat", "waitlist"]},
        {"schedule": ["baseline"]},
        {"schedule": [{"key": "baseline", "label": "x", "instruments": ["urge"], "day": "one"}]},
        {"consent": {"documents": {"en": "Information and consent"}}},
        {"consent": {"documents": {"en": {"items": [{"key": "read", "text": "t"}]}}}},
        {"consent": ["en"]},
        {"screening": {"questions": demo_definition()["screening"]["questions"], "rules": ["x"]}},
        {"instruments": "urge"},
    ],
)
def test_a_protocol_of_the_wrong_shape_is_refused_with_a_reason(change: dict[str, Any]) -> None:
    """A coordinator's protocol in the admin with a list where a mapping belongs (or a word
    where a number does) failed with AttributeError or ValueError: a server error in the
    admin, a traceback from study_load_protocol (a review finding)."""
    with pytest.raises(ProtocolError):
        protocol_from_dict(_broken(change))
