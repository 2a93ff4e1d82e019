"""The published dataset's TSV: exact columns, one record per physical line.

Inside fields (in this file only) a backslash is written `\\\\`, a tab `\\t` and a newline `\\n`,
so no field contains a tab or a line break and `unescape_field` restores the text exactly.
The file reads back unchanged with
`pandas.read_csv(path, sep="\\t", keep_default_na=False, quoting=csv.QUOTE_NONE, dtype=str)` and
DuckDB `read_csv(path, delim='\\t', quote='', escape='', header=true, all_varchar=true,
nullstr='\\N')` (without `nullstr`, DuckDB reads empty fields as NULL).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

TSV_COLUMNS = (
    "index",
    "old_id",
    "vid",
    "describe",
    "reply_1",
    "reply_2",
    "reply_3",
    "reply_4",
    "reply_5",
)
_ESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}
_ESCAPE_RE = re.compile(r"[\\\t\n\r]")
_UNESCAPE_RE = re.compile(r"\\([\\tnr])")
_UNESCAPES = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}


def escape_field(value: object) -> str:
    text = "" if value is None else str(value)
    return _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group()], text)


def unescape_field(field: str) -> str:
    return _UNESCAPE_RE.sub(lambda m: _UNESCAPES[m.group(1)], field)


def tsv_bytes(rows: Iterable[Mapping[str, object]]) -> bytes:
    """UTF-8 TSV with a header line and a trailing newline; missing values are empty."""
    lines = ["\t".join(TSV_COLUMNS)]
    lines += ["\t".join(escape_field(row.get(c)) for c in TSV_COLUMNS) for row in rows]
    return ("\n".join(lines) + "\n").encode("utf-8")


def tsv_problems(data: bytes) -> list[str]:
    """What is wrong with a TSV file as the dataset promises it (empty list: nothing)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [f"not UTF-8: {exc}"]
    if not text.endswith("\n"):
        return ["no newline at the end of the file: truncated?"]
    lines = text[:-1].split("\n")
    problems = []
    if lines[0] != "\t".join(TSV_COLUMNS):
        problems.append(f"header is {lines[0][:200]!r}, expected {chr(9).join(TSV_COLUMNS)!r}")
    bad_width = [
        n for n, line in enumerate(lines[1:], 1) if line.count("\t") != len(TSV_COLUMNS) - 1
    ]
    if bad_width:
        problems.append(
            f"{len(bad_width)} lines without {len(TSV_COLUMNS)} fields, first {bad_width[0]}"
        )
        return problems
    if any("\r" in line for line in lines):
        problems.append("a carriage return inside a field")
    rows = [line.split("\t") for line in lines[1:]]
    indexes = [r[0] for r in rows]
    if indexes != [str(i) for i in range(len(rows))]:
        problems.append("index is not 0..n-1 in order")
    vids = [r[2] for r in rows]
    if len(set(vids)) != len(vids):
        problems.append(f"{len(vids) - len(set(vids))} duplicated vid(s)")
    return problems
