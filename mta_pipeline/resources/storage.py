"""The storage layer: every path, every write and every catalog change of the pipeline.

The lake (a local folder or `s3://bucket/prefix`, through fsspec) is the store of record; the
DuckDB catalog is derived from it. Layout: `<lake>/<table>/shard=<k>/<part>.parquet` (hive-style,
so DuckDB and pyarrow read the shard as a column) for sharded tables and
`<lake>/<table>/<table>.parquet` for the others; working files (the archive, extracted MIDI, the
scrape journal, the catalog) live under the local data dir.

Three rules hold for every asset because they live only here:
- a write is atomic: locally a unique temporary name, fsync, rename (`atomic.py`); on S3 one PUT;
- a write compares first: equal content is not written again, so an unchanged rerun rewrites
  nothing and can say so;
- a table is published lake first, then its rows in the catalog are replaced (delete then insert
  in one transaction, under the catalog's file lock), so a rerun replaces exactly its rows.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TypeVar

import dagster as dg
import duckdb
import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from mta_pipeline import config, schemas
from mta_pipeline.atomic import atomic_write
from mta_pipeline.resources import catalog
from mta_pipeline.resources.catalog import DEFAULT_LOCK_TIMEOUT_S, open_catalog

DEFAULT_PART = "part"
# The catalog's own record of what each table (and shard) holds; not a dataset table.
CATALOG_STATE = "_mta_catalog_state"
Where = Mapping[str, str]
T = TypeVar("T")


class LakeError(RuntimeError):
    """The lake cannot be written or read; the message names the location and the cause."""


class Storage(dg.ConfigurableResource):
    """Where the pipeline keeps its data. `data_dir`: local working area (`MTA_DATA_DIR`);
    `lake_url`: a folder or `s3://bucket/prefix` (`MTA_LAKE_URL`, empty: `<data_dir>/lake`);
    `s3_endpoint_url`: an S3-compatible server (`MTA_S3_ENDPOINT_URL`, empty: AWS)."""

    data_dir: str = config.DEFAULT_DATA_DIR
    lake_url: str = ""
    s3_endpoint_url: str = ""
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S

    # -- locations -------------------------------------------------------------------------------

    @property
    def root(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    @property
    def catalog_path(self) -> Path:
        return self.root / config.DUCKDB_FILE

    @property
    def lake_root(self) -> str:
        return (self.lake_url or str(self.root / config.LAKE_DIR)).rstrip("/")

    def local(self, *parts: str) -> Path:
        """A working file under the data dir."""
        return self.root.joinpath(*parts)

    @property
    def archive_path(self) -> Path:
        return self.local(config.ARCHIVE_DIR, config.ARCHIVE_FILE)

    @property
    def archive_state_path(self) -> Path:
        """What was fetched: the source's fingerprint, size and sha256."""
        return self.local(config.ARCHIVE_DIR, "archive.json")

    def journal_path(self, endpoint: str, shard: str) -> Path:
        return self.local("journal", endpoint, f"{shard}.jsonl")

    def midi_dir(self, shard: str) -> Path:
        return self.local(config.MIDI_DIR, shard)

    def midi_path(self, shard: str, vid: str) -> Path:
        return self.midi_dir(shard) / f"{vid}.mid"

    @staticmethod
    def table_path(table: str, shard: str | None = None, part: str = DEFAULT_PART) -> str:
        """The lake path of a table (or of one shard's part of it), relative to the lake root."""
        if shard is None:
            return f"{table}/{table}.parquet"
        return f"{table}/shard={shard}/{part}.parquet"

    def uri(self, relpath: str) -> str:
        return f"{self.lake_root}/{relpath}"

    def table_uri(self, table: str, shard: str | None = None, part: str = DEFAULT_PART) -> str:
        """Where a table (or one shard's part of it) lives, as a user would open it."""
        return self.uri(self.table_path(table, shard, part))

    def filesystem(self) -> tuple[fsspec.AbstractFileSystem, str]:
        return _filesystem(self.lake_root, self.s3_endpoint_url)

    # -- lake files ------------------------------------------------------------------------------

    def write(self, relpath: str, data: bytes) -> str:
        """Write `data` at `relpath` in one piece; returns the URI."""
        fs, root = self.filesystem()
        path = f"{root}/{relpath}"
        try:
            if isinstance(fs, LocalFileSystem):
                atomic_write(path, data)
            else:
                fs.pipe_file(path, data)
        except Exception as exc:
            raise LakeError(
                f"cannot write {self.uri(relpath)}: {type(exc).__name__}: {exc}. Check "
                f"{config.MTA_LAKE_URL}, its permissions and (for s3://) "
                f"{config.MTA_S3_ENDPOINT_URL} and AWS_*."
            ) from exc
        return self.uri(relpath)

    def read_bytes(self, relpath: str) -> bytes | None:
        """The file's bytes, or None when it does not exist."""
        fs, root = self.filesystem()
        path = f"{root}/{relpath}"
        try:
            return fs.cat_file(path)
        except FileNotFoundError:
            return None
        except Exception as exc:
            raise LakeError(
                f"cannot read {self.uri(relpath)}: {type(exc).__name__}: {exc}"
            ) from exc

    def write_if_changed(self, relpath: str, data: bytes) -> bool:
        """Write unless the file already holds exactly these bytes; True when written."""
        fs, root = self.filesystem()
        path = f"{root}/{relpath}"
        if fs.exists(path) and fs.size(path) == len(data):
            previous = self.read_bytes(relpath)
            if previous is not None and _digest(previous) == _digest(data):
                return False
        self.write(relpath, data)
        return True

    def glob(self, pattern: str) -> list[str]:
        """Lake paths (relative) matching `pattern`, sorted."""
        fs, root = self.filesystem()
        try:
            found = fs.glob(f"{root}/{pattern}")
        except Exception as exc:
            raise LakeError(
                f"cannot list {self.uri(pattern)}: {type(exc).__name__}: {exc}"
            ) from exc
        prefix = root.rstrip("/") + "/"
        return sorted(p[len(prefix) :] if p.startswith(prefix) else p for p in found)

    # -- tables in the lake ----------------------------------------------------------------------

    def read(self, relpath: str, schema: pa.Schema | None = None) -> pa.Table | None:
        """The Parquet table at `relpath`, or None when it has never been written."""
        data = self.read_bytes(relpath)
        if data is None:
            return None
        try:
            return pq.read_table(io.BytesIO(data), schema=schema)
        except Exception as exc:
            raise LakeError(
                f"cannot read {self.uri(relpath)}: {type(exc).__name__}: {exc}"
            ) from exc

    def read_table(
        self, table: str, shard: str | None = None, part: str = DEFAULT_PART
    ) -> pa.Table | None:
        """A table (or one shard's part of it) with its schema, or None when never written."""
        return self.read(self.table_path(table, shard, part), schemas.SCHEMAS[table])

    def read_rows(self, table: str, shard: str | None = None) -> list[dict]:
        """The rows of a table or shard; empty when never written."""
        data = self.read_table(table, shard)
        return data.to_pylist() if data is not None else []

    def read_all(self, table: str, part: str = "*") -> pa.Table:
        """Every shard's parts of a table concatenated (empty when there are none)."""
        schema = schemas.SCHEMAS[table]
        tables = [self.read(p, schema) for p in self.glob(f"{table}/shard=*/{part}.parquet")]
        return (
            pa.concat_tables([t for t in tables if t is not None])
            if tables
            else schema.empty_table()
        )

    def write_parquet(self, relpath: str, data: pa.Table) -> str:
        return self.write(relpath, parquet_bytes(data))

    # -- publishing: lake then catalog -----------------------------------------------------------

    def publish(
        self,
        table: str,
        data: pa.Table,
        shard: str | None = None,
        part: str = DEFAULT_PART,
        where: Where | None = None,
    ) -> bool:
        """Write `data` as the table's (shard's) file and replace its catalog rows, unless both
        already hold it. `where` selects the catalog rows to replace: by default the shard's
        (all rows for an unsharded table); the views over a replaced table are (re)created in the
        same transaction. Returns True when something was written."""
        return self.publish_parts([(table, data, shard, part, where)])[0]

    def publish_all(self, tables: Sequence[tuple[str, pa.Table, str]]) -> bool:
        """Several shard tables `(table, data, shard)` in one catalog transaction (a checkpoint
        lands whole); True when any was written."""
        return any(self.publish_parts([(t, d, s, DEFAULT_PART, None) for t, d, s in tables]))

    def publish_parts(
        self,
        items: Sequence[tuple[str, pa.Table, str | None, str, Where | None]],
    ) -> list[bool]:
        """`publish` for several `(table, data, shard, part, where)` at once. Lake first
        (compare, then write), then one catalog transaction that replaces the rows of every item
        the catalog is not known to hold: a digest per table and `where`, kept in the catalog and
        written in the same transaction as the rows, and the rows' count (rows deleted by hand
        are seen too). One connection: opening the catalog file is the costly part."""
        lake_same, digests = [], []
        for table, data, shard, part, _ in items:
            relpath = self.table_path(table, shard, part)
            body = parquet_bytes(data)
            digests.append(hashlib.sha256(body).hexdigest())
            try:
                previous = self.read(relpath, data.schema)
            except LakeError:  # an old file that no longer casts to the schema: replace it
                previous = None
            lake_same.append(previous is not None and previous.equals(data))
            if not lake_same[-1]:
                self.write(relpath, body)

        def replace(conn: duckdb.DuckDBPyConnection) -> list[bool]:
            written = []
            with _transaction(conn):
                for (table, data, shard, _, where), same, digest in zip(
                    items, lake_same, digests, strict=True
                ):
                    match = dict(
                        where if where is not None else ({"shard": shard} if shard else {})
                    )
                    written.append(not (same and _holds(conn, table, data, match, digest)))
                    if written[-1]:
                        _replace(conn, table, data, match, digest)
                tables = {item[0] for item, w in zip(items, written, strict=True) if w}
                _create_views(conn, tables)
            return written

        return self.on_catalog(replace)

    # -- the catalog -----------------------------------------------------------------------------

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A catalog connection; a missing, empty or unreadable catalog is rebuilt from the lake
        first (`fill_catalog`)."""
        with open_catalog(
            self.catalog_path, read_only, self.lock_timeout_s, fill=self.fill_catalog
        ) as conn:
            yield conn

    def on_catalog(
        self, work: Callable[[duckdb.DuckDBPyConnection], T], read_only: bool = False
    ) -> T:
        """`work(conn)` on a catalog connection. A catalog found damaged while `work` reads it (a
        truncated file opens, then fails on the first block past its end) is moved aside and
        rebuilt from the lake, and `work` runs again on the new one. Two processes that both
        found it damaged rebuild it once: the second sees a different file under the lock."""
        seen = catalog.identity(self.catalog_path)
        try:
            with self.connect(read_only) as conn:
                return work(conn)
        except duckdb.Error as exc:
            if not catalog.is_damaged(exc):
                raise
            reason = f"damaged ({catalog.first_line(exc)})"
        with catalog.locked(self.catalog_path, self.lock_timeout_s):
            if catalog.identity(self.catalog_path) == seen:
                catalog.rebuild_locked(self.catalog_path, self.fill_catalog, reason)
        with self.connect(read_only) as conn:
            return work(conn)

    def apply(
        self,
        replace: Sequence[tuple[str, pa.Table, Where]] = (),
        append: Sequence[tuple[str, pa.Table]] = (),
    ) -> None:
        """Replacements (delete `where`, insert, record the digest) and appends in one
        transaction."""

        def change(conn: duckdb.DuckDBPyConnection) -> None:
            with _transaction(conn):
                for table, data, where in replace:
                    _replace(conn, table, data, where, table_digest(data))
                for table, data in append:
                    _insert(conn, table, data, None)

        self.on_catalog(change)

    def count(self, table: str, where: Where | None = None) -> int:
        """Rows of a catalog table matching `where`; -1 when the table does not exist."""
        clause = " AND ".join(f'"{k}" = ?' for k in (where or {})) or "true"
        sql = f'SELECT count(*) FROM "{table}" WHERE {clause}'
        return int(self.scalar(sql, list((where or {}).values()), -1))

    def scalar(self, sql: str, params: Sequence[object] | None = None, default: object = None):
        """The first value of a read-only query, or `default` when the table is missing."""

        def first(conn: duckdb.DuckDBPyConnection) -> object:
            try:
                row = conn.execute(sql, params or []).fetchone()
            except duckdb.CatalogException:
                return default
            return default if row is None or row[0] is None else row[0]

        return self.on_catalog(first, read_only=True)

    def query(self, sql: str, params: Sequence[object] | None = None) -> pa.Table:
        """Run read-only SQL and return the result as Arrow."""
        return self.on_catalog(
            lambda conn: conn.sql(sql, params=params).to_arrow_table(), read_only=True
        )

    def row_counts(self) -> dict[str, int]:
        """Rows of every catalog table (not the catalog's own bookkeeping), by name."""

        def counts(conn: duckdb.DuckDBPyConnection) -> dict[str, int]:
            names = conn.execute(
                "SELECT table_name FROM duckdb_tables() WHERE table_name != ? ORDER BY 1",
                [CATALOG_STATE],
            ).fetchall()
            return {n: conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for (n,) in names}

        return self.on_catalog(counts, read_only=True)

    # -- the quota ledger's parts ----------------------------------------------------------------

    def ledger_parts(self, shard: str = "*", day: str = "*") -> list[str]:
        """The ledger's part files (of a shard and Pacific day, or all), relative to the lake."""
        return self.glob(f"{config.T_YOUTUBE_QUOTA}/shard={shard}/day={day}/*.parquet")

    def read_ledger(self, shard: str = "*") -> pa.Table:
        """The lake's ledger rows (of one shard, or all), one per distinct `call_id`."""
        parts = self.ledger_parts(shard)
        return _unique_calls([self.read(p, schemas.YOUTUBE_QUOTA) for p in parts])

    # -- rebuilding the catalog from the lake ----------------------------------------------------

    def rebuild_catalog(self) -> int:
        """Rebuild every catalog table from the lake now (`mta catalog rebuild`); returns the
        number of tables."""
        return catalog.rebuild_catalog(self.catalog_path, self.fill_catalog, self.lock_timeout_s)

    def check_catalog(self) -> None:
        """Open the catalog and read every table through (what `mta materialize` does first): a
        missing, empty, garbage or truncated file is moved aside and rebuilt before anything
        decides what is due."""

        def read_through(conn: duckdb.DuckDBPyConnection) -> None:
            for (table,) in conn.execute("SELECT table_name FROM duckdb_tables()").fetchall():
                conn.execute(f'SELECT sum(hash(COLUMNS(*))) FROM "{table}"').fetchall()

        self.on_catalog(read_through)

    def fill_catalog(self, conn: duckdb.DuckDBPyConnection) -> int:
        """Write every table the lake holds into the (new, empty) catalog `conn`: each file
        replaces the rows it owns, with the digest of its bytes recorded as a publish records
        it; the ledger is gathered one row per `call_id`; the views follow. Returns the number
        of tables written. A lake file that cannot be read stops the rebuild: a catalog that
        silently lacks a table would pass for whole."""
        filled = 0
        for table, schema in schemas.SCHEMAS.items():
            if table == config.T_YOUTUBE_QUOTA:
                ledger = self.read_ledger()
                if ledger.num_rows:
                    _replace(conn, table, ledger, {}, table_digest(ledger))
                    filled += 1
                continue
            paths = self.glob(self.table_path(table)) + self.glob(f"{table}/shard=*/*.parquet")
            for relpath in paths:
                body = self.read_bytes(relpath) or b""
                try:
                    data = pq.read_table(io.BytesIO(body), schema=schema)
                except Exception as exc:
                    raise LakeError(
                        f"cannot rebuild the catalog: {self.uri(relpath)} is not a readable "
                        f"{table} table ({type(exc).__name__}: {exc}); restore or delete that "
                        "file and rerun its asset"
                    ) from exc
                where = _owned_rows(table, relpath)
                _replace(conn, table, data, where, hashlib.sha256(body).hexdigest())
            filled += bool(paths)
        _create_views(conn)
        return filled

    # -- local working files ---------------------------------------------------------------------

    def write_local(self, path: Path, data: bytes) -> bool:
        """Write a working file under the data dir atomically, unless it holds these bytes."""
        same_size = path.exists() and path.stat().st_size == len(data)
        if same_size and _digest(path.read_bytes()) == _digest(data):
            return False
        atomic_write(path, data)
        return True


def table_digest(data: pa.Table) -> str:
    """A content hash of a table (its Parquet bytes: the same rows give the same bytes)."""
    return hashlib.sha256(parquet_bytes(data)).hexdigest()


def _unique_calls(parts: Sequence[pa.Table | None]) -> pa.Table:
    """Ledger parts as one table, one row per `call_id` (the first seen), in call order."""
    found = [p for p in parts if p is not None]
    if not found:
        return schemas.YOUTUBE_QUOTA.empty_table()
    data = pa.concat_tables(found)
    first: dict[str, int] = {}
    ids = data.column("call_id").to_pylist()
    data = data.take([i for i, call_id in enumerate(ids) if first.setdefault(call_id, i) == i])
    return data.sort_by([("at", "ascending"), ("call_id", "ascending")])


def _owned_rows(table: str, relpath: str) -> dict[str, str]:
    """The catalog rows a lake file replaces, as its publisher chose them: all rows of an
    unsharded table, a shard's rows, or (for a table with several parts a shard, named by
    `schemas.PART_COLUMNS`) the rows of that shard and part."""
    parts = relpath.split("/")
    if len(parts) == 2:
        return {}
    shard, part = parts[1].removeprefix("shard="), parts[2].removesuffix(".parquet")
    column = schemas.PART_COLUMNS.get(table)
    return {"shard": shard, column: part} if column and part != DEFAULT_PART else {"shard": shard}


def _create_views(conn: duckdb.DuckDBPyConnection, written: set[str] | None = None) -> None:
    """The catalog's views over the tables just `written` (all that exist when None). Only
    those: DuckDB binds a view's columns when it is created, so a view over a table a code
    change has not rewritten yet would fail, and with it the publish of every other table."""
    tables = {r[0] for r in conn.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    for name, (source, select) in schemas.CATALOG_VIEWS.items():
        if source in tables and (written is None or source in written):
            conn.execute(f'CREATE OR REPLACE VIEW "{name}" AS {select}')


def _state_key(table: str, where: Where) -> str:
    return json.dumps([table, sorted(where.items())])


@functools.lru_cache(maxsize=8)
def _filesystem(root: str, s3_endpoint_url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The lake's filesystem, made once per process: an S3 client costs about 0.1 s to set up,
    and every lake operation needs one. Listings are never cached: other processes write too."""
    options: dict[str, object] = {}
    if root.startswith("s3://"):
        if s3_endpoint_url:
            options["client_kwargs"] = {"endpoint_url": s3_endpoint_url}
        options["skip_instance_cache"] = True
        options["use_listings_cache"] = False
    return fsspec.core.url_to_fs(root, **options)


def parquet_bytes(data: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(data, buf, compression="zstd")
    return buf.getvalue()


def _digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


@contextmanager
def _transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    conn.execute("BEGIN")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        with suppress(duckdb.Error):  # a damaged file may fail the rollback too: keep the cause
            conn.execute("ROLLBACK")
        raise


def _holds(
    conn: duckdb.DuckDBPyConnection, table: str, data: pa.Table, where: Where, digest: str
) -> bool:
    """Whether the catalog's rows for `where` are `data` (whose digest is `digest`), by the
    recorded digest and the count. Missing tables are looked up, not caught: an error inside
    a DuckDB transaction aborts it (a new or rebuilt catalog has neither table yet)."""
    [(present,)] = conn.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name IN (?, ?)", [table, CATALOG_STATE]
    ).fetchall()
    if present < 2:
        return False
    [(held,)] = conn.execute(
        f'SELECT first(digest) FROM "{CATALOG_STATE}" WHERE key = ?', [_state_key(table, where)]
    ).fetchall()
    clause = " AND ".join(f'"{k}" = ?' for k in where) or "true"
    [(rows,)] = conn.execute(
        f'SELECT count(*) FROM "{table}" WHERE {clause}', list(where.values())
    ).fetchall()
    return held == digest and rows == data.num_rows


def _replace(
    conn: duckdb.DuckDBPyConnection, table: str, data: pa.Table, where: Where, digest: str
) -> None:
    """The rows matching `where` become `data` (less the columns the catalog omits), and the
    catalog records its digest."""
    _insert(conn, table, data.drop_columns(list(schemas.CATALOG_OMITS.get(table, ()))), where)
    conn.execute(
        f'CREATE TABLE IF NOT EXISTS "{CATALOG_STATE}" (key VARCHAR PRIMARY KEY, digest VARCHAR)'
    )
    conn.execute(
        f'INSERT OR REPLACE INTO "{CATALOG_STATE}" VALUES (?, ?)',
        [_state_key(table, where), digest],
    )


def _insert(
    conn: duckdb.DuckDBPyConnection, table: str, data: pa.Table, where: Where | None
) -> None:
    """Create the table from `data`'s schema if needed; delete `where` (unless None); insert."""
    conn.register("incoming", data)
    try:
        conn.execute(f'CREATE TABLE IF NOT EXISTS "{table}" AS FROM incoming LIMIT 0')
        _add_missing_columns(conn, table)
        if where is not None:
            clause = " AND ".join(f'"{k}" = ?' for k in where) or "true"
            conn.execute(f'DELETE FROM "{table}" WHERE {clause}', list(where.values()))
        conn.execute(f'INSERT INTO "{table}" BY NAME FROM incoming')
    finally:
        conn.unregister("incoming")


def _add_missing_columns(conn: duckdb.DuckDBPyConnection, table: str) -> None:
    """Follow the schema after a code change: new columns are added; a column whose type changed
    (a struct that gained a field) is replaced, empty for the shards not yet rewritten."""
    have = {r[0]: r[1] for r in conn.execute(f'DESCRIBE "{table}"').fetchall()}
    for name, type_, *_ in conn.execute("DESCRIBE FROM incoming").fetchall():
        if name in have and have[name] == type_:
            continue
        if name in have:
            conn.execute(f'ALTER TABLE "{table}" DROP COLUMN "{name}"')
        conn.execute(f'ALTER TABLE "{table}" ADD COLUMN "{name}" {type_}')
