"""The walker on its own: each value checked where it stands, every problem kept with
its line, column and path, and one wrong value never hiding the next."""

from __future__ import annotations

import pytest
import yaml

from twofad.yaml_walk import Invalid, Loader, Walker


def walk(text: str) -> tuple[dict[str, object], list[str]]:
    walker = Walker()
    schema = {
        "count": walker.integer(1, 5),
        "wait": walker.duration(10, 3600),
        "on": walker.boolean,
        "names": lambda node, path: walker.sequence(node, path, walker.string),
    }
    root = yaml.compose(text, Loader=Loader)
    result = walker.mapping(root, "", schema)
    return result, [problem.format("f.yaml") for problem in walker.problems]


def test_good_values_are_converted() -> None:
    result, problems = walk("count: 3\nwait: 1m30s\non: true\nnames: [a, b]\n")
    assert problems == []
    assert result == {"count": 3, "wait": 90, "on": True, "names": ("a", "b")}


def test_every_problem_is_kept_with_where_it_is() -> None:
    result, problems = walk("count: 9\nwait: 30\ncolour: red\non: maybe\ncount: 2\n")
    assert result == {}
    assert problems == [
        "f.yaml:1:8: count: expected a whole number from 1 to 5, not 9",
        "f.yaml:2:7: wait: 30 is not a duration; write it with a unit: 30s, 15m, 1h",
        "f.yaml:3:1: unknown key 'colour'; expected one of count, wait, on, names",
        "f.yaml:4:5: on: expected true or false, not 'maybe'",
        "f.yaml:5:1: 'count' is given twice",
    ]


def test_a_duration_out_of_range_says_the_range() -> None:
    _, problems = walk("wait: 2h\n")
    assert problems == ["f.yaml:1:7: wait: '2h' is out of range (10s to 1h)"]


def test_a_single_value_stands_for_a_list_of_one() -> None:
    result, _ = walk("names: solo\n")
    assert result == {"names": ("solo",)}


def test_a_mapping_where_a_value_belongs_is_refused() -> None:
    walker = Walker()
    with pytest.raises(Invalid):
        walker.scalar(yaml.compose("{a: 1}", Loader=Loader), "x")
    assert walker.problems[0].message == "expected a single value, not a mapping"
