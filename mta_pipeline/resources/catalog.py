"""The DuckDB catalog file: opened under an inter-process lock, closed deterministically.

DuckDB lets one process hold a file open for writing, and a reader conflicts with a writer, so
every connection is taken under a file lock (`mta.duckdb.lock`): runs of different shards in
parallel queue for milliseconds instead of failing on DuckDB's lock. No Dagster import here, so
`mta query` starts as fast as bare DuckDB.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

DEFAULT_LOCK_TIMEOUT_S = 600.0


class CatalogBusyError(RuntimeError):
    """Another process held the DuckDB file longer than the lock timeout."""


class NoCatalogError(FileNotFoundError):
    """There is no catalog file yet."""


@contextmanager
def open_catalog(
    path: Path, read_only: bool = False, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the catalog at `path`, held under the lock and closed on exit."""
    import duckdb
    from filelock import FileLock, Timeout

    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path) + ".lock")
    try:
        lock.acquire(timeout=lock_timeout_s)
    except Timeout as exc:
        raise CatalogBusyError(
            f"the DuckDB file {path} stayed locked for {lock_timeout_s:.0f}s by another run; "
            "wait for it to finish and retry."
        ) from exc
    try:
        if read_only and not path.exists():
            raise NoCatalogError(
                f"no DuckDB catalog at {path} yet; run `mta demo` or `mta materialize` first."
            )
        conn = duckdb.connect(str(path), read_only=read_only)
        try:
            yield conn
        finally:
            conn.close()
    finally:
        lock.release()
