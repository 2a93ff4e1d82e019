"""Tests for parsing the removal list."""

import pytest

from mta_pipeline.core.removals import RemovalListError, Removals, parse_removals


def test_videos_comments_comments_and_blank_lines() -> None:
    text = "# removal requests\n\nabcdefghijk\n  UgzAbC-123_xyz4AaABAg  # by email\nabcdefghijk\n"
    removals = parse_removals(text)
    assert removals == Removals(frozenset({"abcdefghijk"}), frozenset({"UgzAbC-123_xyz4AaABAg"}))
    assert removals.rows() == [
        {"kind": "vid", "id": "abcdefghijk"},
        {"kind": "comment", "id": "UgzAbC-123_xyz4AaABAg"},
    ]


def test_an_empty_list_removes_nothing() -> None:
    assert parse_removals("") == Removals() and parse_removals("# none yet\n").rows() == []


@pytest.mark.parametrize("line", ["two words", "short", "https://youtu.be/abcdefghijk", "a;b" * 5])
def test_a_line_that_is_no_id_names_its_line(line: str) -> None:
    with pytest.raises(RemovalListError, match="line 2"):
        parse_removals(f"abcdefghijk\n{line}\n", source="removals.txt")
