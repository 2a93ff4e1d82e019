"""Tests for the published TSV: CSV quoting, exact layout, read-back with pandas, csv and DuckDB,
checks."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from mta_pipeline.core.tsv import TSV_COLUMNS, read_tsv, tsv_bytes, tsv_field, tsv_problems

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
    '""',
    '\\"',
    'say "hi"\r\nthen\tgo',
]


# --- Quoting -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (None, ""),
        ("", '""'),
        (0, "0"),
        (42, "42"),
        ("plain", "plain"),
        ("back\\slash", "back\\slash"),
        ('"lead', '"""lead"'),
        ('a "b" c', '"a ""b"" c"'),
        ("tab\there", '"tab\there"'),
        ("line\nbreak", '"line\nbreak"'),
        ("cr\rhere", '"cr\rhere"'),
        ("NA", "NA"),
        ("日本", "日本"),
    ],
)
def test_field_spelling(value: object, field: str) -> None:
    assert tsv_field(value) == field


def test_fields_match_what_pandas_to_csv_writes() -> None:
    """Non-empty text is quoted exactly as pandas' own `to_csv(sep="\\t")` quotes it."""
    texts = [t for t in NASTY_TEXTS if t and "\r" not in t]  # pandas leaves a lone CR bare
    frame = pd.DataFrame({"t": texts})
    ours = [tsv_field(t) for t in texts]
    theirs = read_tsv(frame.to_csv(sep="\t", index=False, lineterminator="\n").encode())
    assert (
        [r[0] for r in theirs[1:]]
        == texts
        == [r[0] for r in read_tsv(("t\n" + "\n".join(ours) + "\n").encode())[1:]]
    )
    written = frame.to_csv(sep="\t", index=False, lineterminator="\n").split("\n", 1)[1]
    assert written == "".join(f"{f}\n" for f in ours)


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


def _expected(rows: list[dict[str, object]], null: object = "") -> list[list[object]]:
    return [[null if row.get(c) is None else str(row.get(c)) for c in TSV_COLUMNS] for row in rows]


def test_header_exact() -> None:
    data = tsv_bytes([])
    assert data == (HEADER + "\n").encode()
    assert "\t".join(TSV_COLUMNS) == HEADER


def test_missing_values_are_empty_fields_and_empty_text_is_quoted() -> None:
    data = tsv_bytes([{"index": 0, "vid": "v", "old_id": None, "describe": ""}])
    assert data.decode().split("\n")[1] == '0\t\tv\t""\t\t\t\t\t'


def test_utf8_without_bom() -> None:
    data = tsv_bytes(_rows(["日本語 ❤\ufe0f"]))
    assert data.startswith(b"index\t")
    assert "日本語 ❤\ufe0f".encode() in data


# --- Read-back: every recipe the README gives ---------------------------------------------


def test_pandas_reads_back_exactly() -> None:
    rows = _rows(NASTY_TEXTS)
    df = pd.read_csv(io.BytesIO(tsv_bytes(rows)), sep="\t", keep_default_na=False, dtype=str)
    assert list(df.columns) == list(TSV_COLUMNS)
    assert df.to_numpy().tolist() == _expected(rows)
    assert df["describe"].tolist() == NASTY_TEXTS


def test_plain_pandas_never_merges_or_splits_records() -> None:
    rows = _rows(NASTY_TEXTS)
    df = pd.read_csv(io.BytesIO(tsv_bytes(rows)), sep="\t")
    assert len(df) == len(rows)
    assert df["vid"].tolist() == [r["vid"] for r in rows]


def test_csv_module_reads_back_exactly(tmp_path: Path) -> None:
    rows = _rows(NASTY_TEXTS)
    path = tmp_path / "mta.tsv"
    path.write_bytes(tsv_bytes(rows))
    with open(path, newline="", encoding="utf-8") as fh:
        got = list(csv.reader(fh, delimiter="\t"))
    assert got == [list(TSV_COLUMNS), *_expected(rows)]


DUCKDB_RECIPE = "SELECT * FROM read_csv(?, delim='\t', header=true, all_varchar=true)"
DUCKDB_EXACT = DUCKDB_RECIPE.replace("true)", "true, allow_quoted_nulls=false)")


def _duckdb_read(path: Path, query: str) -> tuple[list[str], list[list[str | None]]]:
    rel = duckdb.sql(query, params=[str(path)])
    return rel.columns, [list(r) for r in rel.fetchall()]


def test_duckdb_recipe_reads_back_every_text(tmp_path: Path) -> None:
    """The plain recipe gives every field back; DuckDB reads an empty field, quoted or not, as
    NULL. With `allow_quoted_nulls=false` even '' and NULL come back apart."""
    rows = _rows(NASTY_TEXTS)
    path = tmp_path / "mta.tsv"
    path.write_bytes(tsv_bytes(rows))
    columns, got = _duckdb_read(path, DUCKDB_RECIPE)
    assert columns == list(TSV_COLUMNS)
    assert [[v or "" for v in row] for row in got] == _expected(rows)
    assert _duckdb_read(path, DUCKDB_EXACT)[1] == _expected(rows, null=None)


def test_duckdb_recipe_on_many_rows_and_header_only(tmp_path: Path) -> None:
    # Past DuckDB's sniffing sample, a quote in a field late in the file must not matter: the
    # quoted empty strings (every record without some text has them) show the sniffer quotes.
    rows = [
        {"index": i, "vid": f"v{i}", "describe": "", "reply_1": '"q" \\' if i > 25_000 else "x"}
        for i in range(25_010)
    ]
    path = tmp_path / "many.tsv"
    path.write_bytes(tsv_bytes(rows))
    assert _duckdb_read(path, DUCKDB_EXACT)[1] == _expected(rows, null=None)

    empty = tmp_path / "empty.tsv"
    empty.write_bytes(tsv_bytes([]))
    assert _duckdb_read(empty, DUCKDB_RECIPE)[0] == list(TSV_COLUMNS)


# --- Checks ------------------------------------------------------------------------------


def _good() -> bytes:
    """Fields without line breaks, so defects can be planted by physical line."""
    return tsv_bytes(_rows(["plain", "日本語", 'with "quotes"', "tab\there", "", "x", "y"]))


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
        (lambda d: _field(d, 2, "describe", '"unterminated'), "index"),  # records merged
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
