"""The published dataset's TSV: MusicTextAlignment's exact columns, CSV-quoted as pandas writes.

Fields are written as `pandas.DataFrame.to_csv(sep="\\t")` and Python's `csv` module write them:
a field holding a tab, a line break or a double quote is wrapped in double quotes with inner
quotes doubled; nothing else is escaped, so text reads back exactly as its authors wrote it.
Two deliberate differences: a lone `\\r` is quoted too (pandas leaves it bare, and readers then
split the record), and an empty *string* is written `""` while a missing value (NULL; only
`old_id` can be one) is written as nothing. pandas and `csv.reader` read both as the empty string,
so these give back every field of the `dataset` view:

    pandas.read_csv(path, sep="\\t", keep_default_na=False, dtype=str)
    csv.reader(open(path, newline="", encoding="utf-8"), delimiter="\\t")

DuckDB's `read_csv(path, delim='\\t', header=true, all_varchar=true)` gives back every text, but
reads an empty field, quoted or not, as NULL; with `allow_quoted_nulls=false` it reads `""` as ''
and the bare empty field as NULL, exactly the view (`quote='"', escape='"'` spares it guessing the
quote character from a sample).

and a plain `pandas.read_csv(path, sep="\\t")` never merges or splits records (it only turns
words like `NA` into NaN, as pandas does for any file).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping

from mta_pipeline.schemas import TSV_COLUMNS

_NEEDS_QUOTES = re.compile(r'[\t\n\r"]')


def tsv_field(value: object) -> str:
    """One field as written: None is empty; '' and text with a tab, line break or quote are
    quoted (quotes doubled); anything else as is."""
    if value is None:
        return ""
    text = str(value)
    if text == "" or _NEEDS_QUOTES.search(text):
        return '"' + text.replace('"', '""') + '"'
    return text


def tsv_bytes(rows: Iterable[Mapping[str, object]]) -> bytes:
    """UTF-8 TSV with a header line; every record ends with `\\n` (inside quotes a field keeps
    its own line breaks)."""
    lines = ["\t".join(TSV_COLUMNS)]
    lines += ["\t".join(tsv_field(row.get(c)) for c in TSV_COLUMNS) for row in rows]
    return ("\n".join(lines) + "\n").encode("utf-8")


def read_tsv(data: bytes) -> list[list[str]]:
    """Header and records as the `csv` module reads them (the reference reader)."""
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline=""), delimiter="\t"))


def tsv_problems(data: bytes) -> list[str]:
    """What is wrong with a TSV file as the dataset promises it (empty list: nothing)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [f"not UTF-8: {exc}"]
    if not data.endswith(b"\n"):
        return ["no newline at the end of the file: truncated?"]
    try:
        rows = read_tsv(data)
    except csv.Error as exc:
        return [f"not readable as CSV: {exc}"]
    if not rows:
        return ["empty file"]
    problems = []
    if tuple(rows[0]) != TSV_COLUMNS:
        head = "\t".join(rows[0])[:200]
        problems.append(f"header is {head!r}, expected {chr(9).join(TSV_COLUMNS)!r}")
    body = rows[1:]
    bad_width = [n for n, row in enumerate(body, 1) if len(row) != len(TSV_COLUMNS)]
    if bad_width:
        problems.append(
            f"{len(bad_width)} records without {len(TSV_COLUMNS)} fields, first {bad_width[0]}"
        )
        return problems
    if [r[0] for r in body] != [str(i) for i in range(len(body))]:
        problems.append("index is not 0..n-1 in order")
    vids = [r[2] for r in body]
    if len(set(vids)) != len(vids):
        problems.append(f"{len(vids) - len(set(vids))} duplicated vid(s)")
    return problems
