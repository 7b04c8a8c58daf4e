"""Core (sync): telemetry event names and patterns, and the catalogue they are checked against."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from snakepit_trio._core._event_names import check_name, check_patterns, is_name, matcher
from snakepit_trio.telemetry._catalogue import CLOSED, EVENTS, NAMESPACES


def check(patterns: object) -> tuple[str, ...]:
    return check_patterns(patterns, closed=CLOSED, namespaces=NAMESPACES)


@pytest.mark.parametrize("name", ["a", "model.inference", "x-1.y_2", "A.B.C"])
def test_good_names(name: str) -> None:
    assert check_name("event name", name) == name
    assert is_name(name)


@pytest.mark.parametrize(
    ("name", "error"),
    [
        (3, TypeError),
        (None, TypeError),
        ("", ValueError),
        ("a..b", ValueError),
        (".a", ValueError),
        ("a.", ValueError),
        ("a b", ValueError),
        ("a*", ValueError),
        ("x" * 201, ValueError),
    ],
)
def test_bad_names_say_what_a_name_is(name: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="event name must be"):
        check_name("event name", name)


def test_patterns_are_a_str_or_a_list() -> None:
    assert check("call.*") == ("call.*",)
    assert check(["call.stop", "worker.*"]) == ("call.stop", "worker.*")
    with pytest.raises(TypeError, match=r"patterns must be an event name pattern .* got 3"):
        check(3)
    with pytest.raises(ValueError, match="at least one pattern"):
        check([])
    with pytest.raises(TypeError, match="each pattern must be a str"):
        check(["call.*", 1])


def test_a_typo_in_a_known_event_names_the_event() -> None:
    with pytest.raises(
        ValueError, match=r"'call\.stpo' selects no event.*did you mean 'call\.stop'"
    ):
        check("call.stpo")


def test_an_unknown_namespace_is_refused_with_the_ones_there_are() -> None:
    with pytest.raises(ValueError, match=r"begin with one of adapter, .*did you mean 'worker'"):
        check("wrker.*")


@pytest.mark.parametrize(
    "pattern", ["*", "w*", "*.stop", "adapter.anything.at.all", "breaker.opened"]
)
def test_open_patterns_pass(pattern: str) -> None:
    assert check(pattern) == (pattern,)


@pytest.mark.parametrize("pattern", ["call..*", "call.st?p", "call.[a]", " call.*"])
def test_malformed_patterns(pattern: str) -> None:
    with pytest.raises(ValueError, match="a pattern is dotted words"):
        check(pattern)


def test_matching() -> None:
    matches = matcher(["call.*", "worker.ready", "adapter.*.stop"])
    assert matches("call.stop") and matches("call.exception")
    assert matches("worker.ready") and not matches("worker.crashed")
    assert matches("adapter.model.prep.stop") and not matches("adapter.model.prep")
    assert not matches("stream.stop")
    assert matcher(["*"])("anything.at.all")


def test_every_catalogued_event_is_a_name_in_a_closed_namespace() -> None:
    for name in EVENTS:
        assert is_name(name)
        assert name in CLOSED[name.split(".")[0]]


@given(st.from_regex(r"[a-z]{1,5}(\.[a-z]{1,5}){0,3}", fullmatch=True))
def test_a_pattern_without_a_star_matches_itself_only(name: str) -> None:
    matches = matcher([name])
    assert matches(name)
    assert not matches(name + ".x")


def test_the_readme_lists_every_event() -> None:
    import pathlib

    readme = (pathlib.Path(__file__).parents[2] / "README.md").read_text()
    for name in EVENTS:
        assert f"| `{name}` |" in readme, name
