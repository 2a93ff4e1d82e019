"""Tests for the published TSV: escaping, exact layout, read-back with pandas and DuckDB, checks."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from mta_pipeline.core.tsv import (
    TSV_COLUMNS,
    escape_field,
    tsv_bytes,
    tsv_problems,
    unescape_field,
)

HEADER = "index\told_id\tvid\tdescribe\treply_1\treply_2\treply_3\treply_4\treply_5"

NASTY_TEXTS = [
    "",
    "plain",
    "back\\slash",
    "\\",
    "\\\\double",
    "trailing backslash\\",
    "tab\there",
    "\t",
    "line\nbreak",
    "\n\n",
    "cr\rhere",
    "crlf\r\n",
    "literal \\n is not a newline",
    "literal \\t and \\r and \\\\",
    "\\\n",  # backslash then a real newline
    "\\N",
    "emoji 👨\u200d👩\u200d👧 ❤\ufe0f 👍🏽",
    "日本語のテキスト\nПривет, мир",
    "NA",
    "null",
    "None",
    "NULL",
    "nan",
    " leading space",
    "trailing space ",
    '"quoted"',
    '"',
    "'single'",
    "#hashtag first",
    "a,b;c|d",
]


# --- Escaping ----------------------------------------------------------------------------


@pytest.mark.parametrize("text", NASTY_TEXTS)
def test_escape_round_trip(text: str) -> None:
    escaped = escape_field(text)
    assert "\t" not in escaped
    assert "\n" not in escaped
    assert "\r" not in escaped
    assert unescape_field(escaped) == text


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("a\\b", "a\\\\b"),
        ("a\tb", "a\\tb"),
        ("a\nb", "a\\nb"),
        ("a\rb", "a\\rb"),
        ("\\n", "\\\\n"),
        ("日本", "日本"),
    ],
)
def test_escape_field_spelling(text: str, escaped: str) -> None:
    assert escape_field(text) == escaped


@pytest.mark.parametrize(("value", "field"), [(None, ""), (0, "0"), (42, "42"), ("", "")])
def test_escape_field_of_non_strings(value: object, field: str) -> None:
    assert escape_field(value) == field


# --- Layout ------------------------------------------------------------------------------


def _rows(texts: list[str]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for i, text in enumerate(texts):
        rows.append(
            {
                "index": i,
                "old_id": None if i % 3 == 0 else 1000 + i,
                "vid": f"vid{i:08d}",
                "describe": text,
                "reply_1": text,
                "reply_2": "",
                "reply_3": None,
                "reply_4": "ok",
                "reply_5": text[::-1],
                "not_a_column": "dropped",
            }
        )
    return rows


def _expected(rows: list[dict[str, object]]) -> list[list[str]]:
    return [[escape_field(row.get(c)) for c in TSV_COLUMNS] for row in rows]


def test_header_exact() -> None:
    data = tsv_bytes([])
    assert data == (HEADER + "\n").encode()
    assert "\t".join(TSV_COLUMNS) == HEADER


def test_one_physical_line_per_record() -> None:
    rows = _rows(NASTY_TEXTS)
    data = tsv_bytes(rows)
    assert data.endswith(b"\n")
    assert b"\r" not in data
    lines = data.decode("utf-8").split("\n")
    assert lines[-1] == ""  # the trailing newline
    lines = lines[:-1]
    assert lines[0] == HEADER
    assert len(lines) == len(rows) + 1
    for line, row in zip(lines[1:], rows, strict=True):
        fields = line.split("\t")
        assert len(fields) == len(TSV_COLUMNS)
        assert [unescape_field(f) for f in fields] == [
            "" if row[c] is None else str(row[c]) for c in TSV_COLUMNS
        ]


def test_missing_values_are_empty_fields() -> None:
    data = tsv_bytes([{"index": 0, "vid": "v", "old_id": None}])
    assert data.decode().split("\n")[1] == "0\t\tv\t\t\t\t\t\t"


def test_utf8_without_bom() -> None:
    data = tsv_bytes(_rows(["日本語 ❤\ufe0f"]))
    assert data.startswith(b"index\t")
    assert "日本語 ❤\ufe0f".encode() in data


# --- Read-back ---------------------------------------------------------------------------


def test_pandas_reads_back_exactly() -> None:
    rows = _rows(NASTY_TEXTS)
    data = tsv_bytes(rows)
    df = pd.read_csv(
        io.BytesIO(data), sep="\t", keep_default_na=False, quoting=csv.QUOTE_NONE, dtype=str
    )
    assert list(df.columns) == list(TSV_COLUMNS)
    assert df.to_numpy().tolist() == _expected(rows)
    # the texts themselves come back once unescaped
    assert [unescape_field(v) for v in df["describe"]] == NASTY_TEXTS


DUCKDB_RECIPE = (
    "SELECT * FROM read_csv(?, delim='\t', quote='', escape='', header=true, "
    "all_varchar=true, nullstr='\\N')"
)


def _duckdb_read(path: Path, query: str) -> tuple[list[str], list[list[str | None]]]:
    rel = duckdb.sql(query, params=[str(path)])
    return rel.columns, [list(r) for r in rel.fetchall()]


def test_duckdb_recipe_reads_back_exactly(tmp_path: Path) -> None:
    rows = _rows(NASTY_TEXTS)
    path = tmp_path / "mta.tsv"
    path.write_bytes(tsv_bytes(rows))
    columns, got = _duckdb_read(path, DUCKDB_RECIPE)
    assert columns == list(TSV_COLUMNS)
    assert got == _expected(rows)
    assert all(v is not None for row in got for v in row)  # empty stays "", never NULL


def test_duckdb_recipe_on_many_rows_and_header_only(tmp_path: Path) -> None:
    # Past DuckDB's sniffing sample, a quote-like field late in the file must not matter.
    rows = [
        {"index": i, "vid": f"v{i}", "reply_1": "'q'" if i > 25_000 else ""} for i in range(25_010)
    ]
    path = tmp_path / "many.tsv"
    path.write_bytes(tsv_bytes(rows))
    assert _duckdb_read(path, DUCKDB_RECIPE)[1] == _expected(rows)

    empty = tmp_path / "empty.tsv"
    empty.write_bytes(tsv_bytes([]))
    assert _duckdb_read(empty, DUCKDB_RECIPE) == (list(TSV_COLUMNS), [])


def test_duckdb_without_nullstr_reads_empty_fields_as_null(tmp_path: Path) -> None:
    """Why the recipe needs `nullstr` (as the module docstring says)."""
    path = tmp_path / "mta.tsv"
    path.write_bytes(tsv_bytes(_rows(["x"])))
    query = DUCKDB_RECIPE.replace(", nullstr='\\N'", "")
    assert "nullstr" not in query
    assert _duckdb_read(path, query)[1][0][5] is None  # reply_2 was ""


# --- Checks ------------------------------------------------------------------------------


def _good() -> bytes:
    return tsv_bytes(_rows(NASTY_TEXTS))


def test_good_file_has_no_problems() -> None:
    assert tsv_problems(_good()) == []
    assert tsv_problems(tsv_bytes([])) == []


def _replace_line(data: bytes, n: int, line: str) -> bytes:
    lines = data.decode().split("\n")
    lines[n] = line
    return "\n".join(lines).encode()


def _field(data: bytes, n: int, col: str, value: str) -> bytes:
    line = data.decode().split("\n")[n].split("\t")
    line[TSV_COLUMNS.index(col)] = value
    return _replace_line(data, n, "\t".join(line))


@pytest.mark.parametrize(
    ("defect", "needle"),
    [
        (lambda d: d.replace(b"reply_5", b"reply5", 1), "header"),
        (lambda d: d.replace(b"index\t", b"", 1), "header"),
        (lambda d: _replace_line(d, 2, "1\t\tvid\tonly four"), "fields"),
        (lambda d: _replace_line(d, 3, d.decode().split("\n")[3] + "\textra"), "fields"),
        (lambda d: d + b"\n", "fields"),  # a blank last line
        (lambda d: _field(d, 4, "index", "7"), "index"),
        (lambda d: _field(_field(d, 1, "index", "1"), 2, "index", "0"), "index"),
        (lambda d: _field(d, 5, "vid", "vid00000000"), "duplicated vid"),
        (lambda d: d[:-1], "newline"),
        (lambda d: b"", "newline"),
        (lambda d: d.replace("日本語".encode(), b"\xff\xfe", 1), "UTF-8"),
        (lambda d: _field(d, 2, "describe", "carriage\rreturn"), "carriage return"),
    ],
)
def test_each_defect_reported(defect, needle: str) -> None:
    bad = defect(_good())
    problems = tsv_problems(bad)
    assert problems, bad
    assert any(needle in p for p in problems), problems


def test_several_defects_reported_together() -> None:
    bad = _field(_good().replace(b"vid\t", b"video\t", 1), 3, "vid", "vid00000000")
    problems = tsv_problems(bad)
    assert len(problems) == 2
    assert "header" in problems[0]
    assert "1 duplicated vid(s)" in problems[1]
