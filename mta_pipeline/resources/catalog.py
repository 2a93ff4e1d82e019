"""The DuckDB catalog: one file, one writer at a time, rebuilt shard by shard from the lake.

DuckDB allows a single process to hold a file open for writing, so every connection (readers too,
since a reader also conflicts with a writer) is taken under an inter-process file lock. Runs of
different shards in parallel then queue for a few milliseconds instead of failing on DuckDB's lock.
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
from filelock import FileLock, Timeout

from mta_pipeline import config


class CatalogBusyError(RuntimeError):
    """Another process held the DuckDB file longer than the lock timeout."""


class DuckDBCatalog(dg.ConfigurableResource):
    """DuckDB file at `database` (default `$MTA_DATA_DIR/mta.duckdb`)."""

    database: str | None = None
    lock_timeout_s: float = 600.0

    @property
    def path(self) -> Path:
        return Path(self.database) if self.database else config.duckdb_path()

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        path = self.path
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(path) + ".lock")
        try:
            lock.acquire(timeout=self.lock_timeout_s)
        except Timeout as exc:
            raise CatalogBusyError(
                f"the DuckDB file {path} stayed locked for {self.lock_timeout_s:.0f}s by another "
                "run; wait for it to finish and retry."
            ) from exc
        try:
            if read_only and not path.exists():
                raise FileNotFoundError(
                    f"no DuckDB catalog at {path} yet; run `mta demo` or `mta materialize` first."
                )
            conn = duckdb.connect(str(path), read_only=read_only)
            try:
                yield conn
            finally:
                conn.close()
        finally:
            lock.release()

    def replace_rows(self, table: str, data: pa.Table, where: dict[str, str] | None = None) -> int:
        """Delete the rows matching `where` (all rows when None), insert `data`, in one transaction.

        Rerunning a shard therefore replaces exactly that shard's rows.
        """
        self.apply(replace=[(table, data, where or {})])
        return data.num_rows

    def append_rows(self, table: str, data: pa.Table) -> int:
        """Insert `data` (creating the table on first use); for append-only ledgers."""
        self.apply(append=[(table, data)])
        return data.num_rows

    def apply(
        self,
        replace: Sequence[tuple[str, pa.Table, dict[str, str]]] = (),
        append: Sequence[tuple[str, pa.Table]] = (),
    ) -> None:
        """Several replacements and appends in one connection and one transaction: a checkpoint
        lands whole or not at all."""
        with self.connect() as conn:
            conn.execute("BEGIN")
            try:
                for table, data, where in replace:
                    _insert(conn, table, data, where)
                for table, data in append:
                    _insert(conn, table, data, None)
                conn.execute("COMMIT")
            except Exception:
                conn.execute("ROLLBACK")
                raise

    def create_views(self, views: dict[str, str]) -> None:
        """CREATE OR REPLACE each view from its SELECT."""
        with self.connect() as conn:
            for name, select in views.items():
                conn.execute(f'CREATE OR REPLACE VIEW "{name}" AS {select}')

    def scalar(self, sql: str, params: Sequence[object] | None = None, default: object = None):
        """The first value of a read-only query, or `default` when the file or table is missing."""
        if not self.path.exists():
            return default
        try:
            with self.connect(read_only=True) as conn:
                row = conn.execute(sql, params or []).fetchone()
        except duckdb.CatalogException:
            return default
        return default if row is None or row[0] is None else row[0]

    def query_values(self, sql: str, params: Sequence[object] | None = None) -> set:
        """The first column of a read-only query as a set; empty when the file or table is
        missing."""
        if not self.path.exists():
            return set()
        try:
            with self.connect(read_only=True) as conn:
                return {r[0] for r in conn.execute(sql, params or []).fetchall()}
        except (duckdb.CatalogException, duckdb.BinderException):
            return set()

    def query(self, sql: str, params: Sequence[object] | None = None) -> pa.Table:
        """Run read-only SQL and return the result as Arrow."""
        with self.connect(read_only=True) as conn:
            return conn.sql(sql, params=params).to_arrow_table()


def _insert(
    conn: duckdb.DuckDBPyConnection, table: str, data: pa.Table, where: dict[str, str] | None
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
