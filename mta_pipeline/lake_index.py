"""The DuckDB catalog as a local index over the lake, and DuckDB views straight over the lake.

The lake is the truth; the catalog is a copy any process can bring up to date. `sync` lists the
lake (one listing per table, no file read), compares each Parquet file's stamp (size and ETag on
S3, size and modification time locally) with the stamp the catalog recorded when it loaded that
file, and reloads only what changed: new and rewritten files replace the rows they own, deleted
files take their rows with them. So a new, empty `MTA_DATA_DIR` costs one full load, and a
catalog another machine's runs left behind costs a listing and what changed.

`lake_views` is the other way to query: an in-memory DuckDB whose views read the lake's Parquet
(through s3fs, registered with DuckDB, on S3) with no catalog file at all. It answers from the
truth with no load, and pays for it on every query: each reads the files again.

No Dagster import here: `mta query` uses both.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from mta_pipeline import config, schemas
from mta_pipeline.lake import Lake, LakeError
from mta_pipeline.resources import catalog

T = TypeVar("T")

DEFAULT_PART = "part"
# The catalog's own record of which lake file it loaded at which stamp; not a dataset table.
FILES_TABLE = "_mta_catalog_files"
# What catalogs before issue 13 recorded instead (a digest per table and shard): dropped.
OLD_STATE_TABLE = "_mta_catalog_state"
LEDGER = config.T_YOUTUBE_QUOTA


def table_patterns(table: str) -> tuple[str, ...]:
    """Where a table's files are in the lake (relative globs)."""
    if table == LEDGER:  # parts appended per checkpoint, one row per call_id across them
        return (f"{LEDGER}/shard=*/day=*/*.parquet",)
    return (f"{table}/{table}.parquet", f"{table}/shard=*/*.parquet")


def table_files(lake: Lake, table: str) -> dict[str, str]:
    """The table's lake files with their stamps, sorted by path."""
    found: dict[str, str] = {}
    for pattern in table_patterns(table):
        found.update(lake.stamps(pattern))
    return dict(sorted(found.items()))


@dataclass
class SyncReport:
    """What a sync did: files loaded and files whose rows were dropped, per table."""

    loaded: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    tables: int = 0  # tables the lake holds

    @property
    def changed(self) -> bool:
        return bool(self.loaded or self.dropped)

    def summary(self) -> str:
        if not self.changed:
            return "up to date with the lake"
        parts = [f"{t} {n} file(s)" for t, n in sorted(self.loaded.items())]
        parts += [f"{t} {n} file(s) gone" for t, n in sorted(self.dropped.items())]
        return "loaded " + ", ".join(parts)


def sync(conn: duckdb.DuckDBPyConnection, lake: Lake) -> SyncReport:
    """Bring the catalog `conn` up to date with the lake in one transaction (a crash leaves the
    catalog as it was). A lake file that cannot be read stops the sync: a catalog that silently
    lacks a table would pass for whole."""
    report = SyncReport()
    listings = {table: table_files(lake, table) for table in schemas.SCHEMAS}
    conn.execute("BEGIN")
    try:
        conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{FILES_TABLE}" '
            "(relpath VARCHAR PRIMARY KEY, table_name VARCHAR, stamp VARCHAR)"
        )
        conn.execute(f'DROP TABLE IF EXISTS "{OLD_STATE_TABLE}"')
        for table, files in listings.items():
            report.tables += bool(files)
            held = dict(
                conn.execute(
                    f'SELECT relpath, stamp FROM "{FILES_TABLE}" WHERE table_name = ?', [table]
                ).fetchall()
            )
            if files and held and not _exists(conn, table):  # dropped by another client
                held = {}
            if files == held:
                continue
            if table == LEDGER:
                _sync_ledger(conn, lake, files, held, report)
            else:
                _sync_table(conn, lake, table, files, held, report)
            conn.execute(f'DELETE FROM "{FILES_TABLE}" WHERE table_name = ?', [table])
            if files:
                conn.executemany(
                    f'INSERT INTO "{FILES_TABLE}" VALUES (?, ?, ?)',
                    [(relpath, table, stamp) for relpath, stamp in files.items()],
                )
        create_views(conn, set(report.loaded) | set(report.dropped))
        conn.execute("COMMIT")
    except BaseException:
        with suppress(duckdb.Error):  # a damaged file may fail the rollback too: keep the cause
            conn.execute("ROLLBACK")
        raise
    return report


def _sync_table(
    conn: duckdb.DuckDBPyConnection,
    lake: Lake,
    table: str,
    files: dict[str, str],
    held: dict[str, str],
    report: SyncReport,
) -> None:
    for relpath in held.keys() - files.keys():
        _delete(conn, table, owned_rows(table, relpath))
        report.dropped[table] = report.dropped.get(table, 0) + 1
    for relpath, stamp in files.items():
        if held.get(relpath) == stamp:
            continue
        data = read_table_file(lake, table, relpath)
        if replace_rows(conn, table, data, owned_rows(table, relpath)) and held:
            # A column changed type and was recreated empty: every other file reloads too.
            _sync_table(conn, lake, table, files, {}, report)
            return
        report.loaded[table] = report.loaded.get(table, 0) + 1


def _sync_ledger(
    conn: duckdb.DuckDBPyConnection,
    lake: Lake,
    files: dict[str, str],
    held: dict[str, str],
    report: SyncReport,
) -> None:
    """Parts are only ever added, so new parts add their calls not yet held; a part rewritten or
    removed (by hand) reloads the whole ledger."""
    appended_only = _exists(conn, LEDGER) and all(files.get(p) == s for p, s in held.items())
    new = [p for p in files if p not in held] if appended_only else list(files)
    ledger = unique_calls([read_table_file(lake, LEDGER, p) for p in new])
    if appended_only:
        conn.register("incoming", ledger)
        try:
            _add_missing_columns(conn, LEDGER)
            conn.execute(
                f'INSERT INTO "{LEDGER}" BY NAME SELECT * FROM incoming '
                f'WHERE call_id NOT IN (SELECT call_id FROM "{LEDGER}")'
            )
        finally:
            with suppress(duckdb.Error):  # an aborted transaction: keep the cause
                conn.unregister("incoming")
    else:
        replace_rows(conn, LEDGER, ledger, {})
    if new:
        report.loaded[LEDGER] = len(new)
    if held.keys() - files.keys():
        report.dropped[LEDGER] = len(held.keys() - files.keys())


def read_table_file(lake: Lake, table: str, relpath: str) -> pa.Table:
    """One lake file of `table`, cast to the table's schema."""
    body = lake.read_bytes(relpath)
    try:
        if body is None:
            raise FileNotFoundError("removed while being read")
        schema = schemas.SCHEMAS[table]
        omit = schemas.CATALOG_OMITS.get(table, ())  # the token ids: most of midi_tokens' bytes
        columns = [name for name in schema.names if name not in omit]
        return pq.read_table(io.BytesIO(body), schema=schema, columns=columns)
    except Exception as exc:
        raise LakeError(
            f"cannot load {lake.uri(relpath)} into the catalog: it is not a readable {table} "
            f"table ({type(exc).__name__}: {exc}); restore or delete that file and rerun its "
            "asset"
        ) from exc


def unique_calls(parts: Sequence[pa.Table | None]) -> pa.Table:
    """Ledger parts as one table, one row per `call_id` (the first seen), in call order."""
    found = [p for p in parts if p is not None]
    if not found:
        return schemas.YOUTUBE_QUOTA.empty_table()
    data = pa.concat_tables(found)
    first: dict[str, int] = {}
    ids = data.column("call_id").to_pylist()
    data = data.take([i for i, call_id in enumerate(ids) if first.setdefault(call_id, i) == i])
    return data.sort_by([("at", "ascending"), ("call_id", "ascending")])


def owned_rows(table: str, relpath: str) -> dict[str, str]:
    """The catalog rows a lake file holds, as its publisher chose them: all rows of an
    unsharded table, a shard's rows, or (for a table with several parts a shard, named by
    `schemas.PART_COLUMNS`) the rows of that shard and part."""
    parts = relpath.split("/")
    if len(parts) == 2:
        return {}
    shard, part = parts[1].removeprefix("shard="), parts[2].removesuffix(".parquet")
    column = schemas.PART_COLUMNS.get(table)
    return {"shard": shard, column: part} if column and part != DEFAULT_PART else {"shard": shard}


def _exists(conn: duckdb.DuckDBPyConnection, table: str) -> bool:
    [(n,)] = conn.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [table]
    ).fetchall()
    return n > 0


def _where(where: dict[str, str]) -> str:
    return " AND ".join(f'"{k}" = ?' for k in where) or "true"


def _delete(conn: duckdb.DuckDBPyConnection, table: str, where: dict[str, str]) -> None:
    if _exists(conn, table):
        conn.execute(f'DELETE FROM "{table}" WHERE {_where(where)}', list(where.values()))


def replace_rows(
    conn: duckdb.DuckDBPyConnection, table: str, data: pa.Table, where: dict[str, str]
) -> bool:
    """The rows matching `where` become `data`, less the columns the catalog omits (created
    from `data`'s schema if needed; a schema a code change grew is followed). True when a column
    changed type and was recreated empty for every other row."""
    omit = schemas.CATALOG_OMITS.get(table, ())
    data = data.drop_columns([c for c in omit if c in data.column_names])
    conn.register("incoming", data)
    try:
        conn.execute(f'CREATE TABLE IF NOT EXISTS "{table}" AS FROM incoming LIMIT 0')
        recreated = _add_missing_columns(conn, table)
        conn.execute(f'DELETE FROM "{table}" WHERE {_where(where)}', list(where.values()))
        conn.execute(f'INSERT INTO "{table}" BY NAME FROM incoming')
    finally:
        with suppress(duckdb.Error):  # an aborted transaction: keep the cause
            conn.unregister("incoming")
    return recreated


def _add_missing_columns(conn: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Follow the schema after a code change: new columns are added; a column whose type changed
    (a struct that gained a field) is replaced, empty until its files are reloaded. True when a
    column was replaced."""
    have = {r[0]: r[1] for r in conn.execute(f'DESCRIBE "{table}"').fetchall()}
    replaced = False
    for name, type_, *_ in conn.execute("DESCRIBE FROM incoming").fetchall():
        if name in have and have[name] == type_:
            continue
        if name in have:
            conn.execute(f'ALTER TABLE "{table}" DROP COLUMN "{name}"')
            replaced = True
        conn.execute(f'ALTER TABLE "{table}" ADD COLUMN "{name}" {type_}')
    return replaced


def create_views(conn: duckdb.DuckDBPyConnection, changed: set[str] | None = None) -> None:
    """The catalog's views over the tables just `changed` (all that exist when None). Only
    those: DuckDB binds a view's columns when it is created, so a view over a table whose files
    a code change has not rewritten yet could fail, and with it every other table's sync."""
    tables = {r[0] for r in conn.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    tables |= {r[0] for r in conn.execute("SELECT view_name FROM duckdb_views()").fetchall()}
    for name, (source, select) in schemas.CATALOG_VIEWS.items():
        if source in tables and (changed is None or source in changed):
            conn.execute(f'CREATE OR REPLACE VIEW "{name}" AS {select}')


def rebuild(conn: duckdb.DuckDBPyConnection, lake: Lake) -> int:
    """Fill a new, empty catalog from the lake; returns the number of tables the lake holds."""
    return sync(conn, lake).tables


def on_synced(
    path: Path,
    lake: Lake,
    work: Callable[[duckdb.DuckDBPyConnection], T],
    lock_timeout_s: float = catalog.DEFAULT_LOCK_TIMEOUT_S,
    read_through: bool = False,
) -> tuple[T, SyncReport]:
    """`work(conn)` on the catalog at `path`, brought up to date with the lake first, under the
    catalog's lock; returns its result and what the sync did. With `read_through`, every table
    is read whole first (a truncated file is found only so). A missing, empty or garbage file
    is rebuilt from the lake on open; one found damaged while read is moved aside and rebuilt,
    and `work` runs again. Two processes that both found it damaged rebuild it once: the second
    sees a different file under the lock."""

    def fill(conn: duckdb.DuckDBPyConnection) -> int:
        return rebuild(conn, lake)

    def attempt() -> tuple[T, SyncReport]:
        with catalog.open_catalog(path, False, lock_timeout_s, fill=fill) as conn:
            if read_through:
                tables = conn.execute("SELECT table_name FROM duckdb_tables()").fetchall()
                for (table,) in tables:
                    conn.execute(f'SELECT sum(hash(COLUMNS(*))) FROM "{table}"').fetchall()
            report = sync(conn, lake)
            return work(conn), report

    seen = catalog.identity(path)
    try:
        return attempt()
    except duckdb.Error as exc:
        if not catalog.is_damaged(exc):
            raise
        reason = f"damaged ({catalog.first_line(exc)})"
    with catalog.locked(path, lock_timeout_s):
        if catalog.identity(path) == seen:
            catalog.rebuild_locked(path, fill, reason)
    return attempt()


def lake_views(conn: duckdb.DuckDBPyConnection, lake: Lake) -> list[str]:
    """Views named like the catalog's tables (and its views) that read the lake's Parquet where
    it is, on every query: `read_parquet` over each table's files (listed once, here), through
    s3fs on S3. The ledger view keeps one row per `call_id`, as the catalog does. Returns the
    tables found."""
    if not lake.is_local:
        conn.register_filesystem(lake.fs())
    found = []
    for table in schemas.SCHEMAS:
        files = table_files(lake, table)  # listed once here: DuckDB's glob through fsspec would
        if not files:  # list an S3 lake one folder level a request, on every query
            continue
        globs = ", ".join(_quote(lake.uri(p)) for p in files)
        omit = schemas.CATALOG_OMITS.get(table, ())
        exclude = f" EXCLUDE ({', '.join(json.dumps(c) for c in omit)})" if omit else ""
        source = f"read_parquet([{globs}], union_by_name = true, hive_partitioning = false)"
        dedupe = ' QUALIFY row_number() OVER (PARTITION BY "call_id" ORDER BY "at", "call_id") = 1'
        conn.execute(
            f'CREATE VIEW "{table}" AS SELECT *{exclude} FROM {source}'
            + (dedupe if table == LEDGER else "")
        )
        found.append(table)
    create_views(conn)
    return found


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
