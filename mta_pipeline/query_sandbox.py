"""The sandbox of `mta query`: the SQL reads the catalog and the lake, and writes no file.

The catalog is opened read-only, but DuckDB's SQL reaches the whole machine: `read_text` reads
any file the user can, and `COPY … TO` overwrote the released TSV. So the connection is confined
with DuckDB's own settings (external access off, the local lake as the only allowed directory,
the configuration locked so the SQL cannot `SET` them back), and, since an allowed directory is
writable too, statements that are not known to only read are refused by their parsed type.
`mta query --allow-files` skips all of this. No Dagster import: `mta query` must start fast.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import duckdb

ALLOW_FILES = "`mta query --allow-files` permits it"

# Statement types that only read. An allow-list, not a deny-list of writers, because writes hide:
# DuckDB parses `COPY (PIVOT …) TO` as MULTI, and `EXPLAIN ANALYZE` runs what it explains (it is
# allowed when that is allowed). PRAGMA includes IMPORT DATABASE, which the read-only catalog
# refuses; SET includes `SET VARIABLE`, while every setting is locked.
READING = frozenset({"SELECT", "EXPLAIN", "PRAGMA", "CALL", "SET"})
# Pragmas that run other statements unchecked: `import_database` executes a folder's schema.sql
# and load.sql, which could `COPY … TO` a file in the lake.
UNCHECKED_PRAGMAS = re.compile(r"(?i)\bimport_database\b")


class FilesRefusedError(Exception):
    """The SQL may write a file; the message says so in one line and names the flag."""


def local_lake(lake_url: str) -> Path | None:
    """The lake's folder, absolute; None for a remote lake (`s3://…`), which DuckDB reads only
    through a filesystem registered from Python, so the sandbox leaves it unreadable."""
    url = urlsplit(lake_url)
    if url.scheme not in ("", "file"):
        return None
    return Path(os.path.abspath(Path(url.path if url.scheme else lake_url).expanduser()))


def allowed_folders(lake_url: str) -> list[str]:
    """The lake as DuckDB's `allowed_directories`: a local folder in both spellings (DuckDB
    compares the paths as written, without resolving symbolic links); an `s3://` lake as its
    prefix, read through the s3fs filesystem the caller registered (DuckDB matches whole folders:
    a sibling prefix such as `lake2/` stays refused, tested)."""
    lake = local_lake(lake_url)
    if lake is None:
        return [lake_url.rstrip("/") + "/"] if lake_url.startswith("s3://") else []
    return list(dict.fromkeys([str(lake), str(lake.resolve())]))


def confine(conn: duckdb.DuckDBPyConnection, sql: str, lake_url: str) -> None:
    """Let `conn` open no file but the lake's, for good, and refuse `sql` unless every
    statement in it only reads (FilesRefusedError)."""
    folders = allowed_folders(lake_url)
    conn.execute("SET allowed_directories = ?", [folders])
    conn.execute("SET enable_external_access = false")
    conn.execute("SET lock_configuration = true")
    for statement in conn.extract_statements(sql):
        if not _reads_only(conn, statement):
            raise FilesRefusedError(
                f"{_name(statement)} is refused: mta query runs only statements that read "
                "(SELECT, PRAGMA, CALL, SET, EXPLAIN of those), so it writes no file, not even "
                f"in the lake; {ALLOW_FILES}"
            )


def error_line(exc: duckdb.Error, lake_url: str) -> str:
    """The one line for a DuckDB error in the sandbox: a refused file or a locked setting says
    why and names the flag; any other error is DuckDB's first line."""
    line = str(exc).strip().splitlines()[0]
    if isinstance(exc, duckdb.PermissionException):
        where = (
            lake_url if allowed_folders(lake_url) else f"{lake_url}, which mta query does not read"
        )
        return f"the query touched a file outside the lake ({where}): {line}; {ALLOW_FILES}"
    if "configuration has been locked" in line:
        return f"{line} (mta query locks DuckDB's settings); {ALLOW_FILES}"
    return line


def _reads_only(conn: duckdb.DuckDBPyConnection, statement: duckdb.Statement) -> bool:
    kind = statement.type.name
    if kind == "PRAGMA" and UNCHECKED_PRAGMAS.search(statement.query):
        return False
    if kind != "EXPLAIN":
        return kind in READING
    words = _words(statement.query)
    skip = 2 if len(words) > 1 and words[1][0] in ("ANALYZE", "ANALYSE") else 1
    explained = statement.query[words[skip][1] :] if len(words) > skip else ""
    try:
        inner = conn.extract_statements(explained)
    except duckdb.ParserException:  # `EXPLAIN (options) …`: refused rather than guessed at
        return False
    return bool(inner) and all(_reads_only(conn, s) for s in inner)


def _words(sql: str) -> list[tuple[str, int]]:
    """DuckDB's tokens of `sql` as (upper-case text, offset), comments left out."""
    tokens = duckdb.tokenize(sql)
    ends = [pos for pos, _ in tokens[1:]] + [len(sql)]
    return [
        (sql[start:end].strip().upper(), start)
        for (start, kind), end in zip(tokens, ends, strict=True)
        if kind != duckdb.token_type.comment
    ]


def _name(statement: duckdb.Statement) -> str:
    """How the user wrote the refused statement: its first word (a dynamic PIVOT is MULTI)."""
    words = _words(statement.query)
    first = words[0][0] if words else statement.type.name
    return first + (" with a PIVOT lacking `IN (…)`" if statement.type.name == "MULTI" else "")
