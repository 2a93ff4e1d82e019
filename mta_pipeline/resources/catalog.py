"""The DuckDB catalog file: opened under an inter-process lock, closed deterministically, and
rebuilt from the lake when it is missing, empty or damaged.

DuckDB lets one process hold a file open for writing, and a reader conflicts with a writer, so
every connection is taken under a file lock (`mta.duckdb.lock`): runs of different shards in
parallel queue for milliseconds instead of failing on DuckDB's lock. The catalog is derived from
the lake (the store of record), so a damaged file is never repaired in place: it is moved aside
(`mta.duckdb.damaged-<UTC time>`, kept for a post-mortem) and a new one is filled from the lake
under the same lock, so no writer slips in between. No Dagster import here, so `mta query`
starts as fast as bare DuckDB.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

    Fill = Callable[[duckdb.DuckDBPyConnection], int]

DEFAULT_LOCK_TIMEOUT_S = 600.0
log = logging.getLogger(__name__)

# What DuckDB says about a file that is not (or no longer) a whole database: a truncated file
# opens and then fails on the first read past its end; garbage fails on open. Only an I/O or
# deserialization error with one of these phrases counts: anything else (a full disk, a
# permission, a query that names a `checksum` column) is not damage, and a rebuild would neither
# help nor tell the cause.
DAMAGE_MARKERS = (
    "not a valid DuckDB database file",
    "Could not read enough bytes",
    "Corrupt database file",
    "Failed to deserialize",
)


class CatalogBusyError(RuntimeError):
    """Another process held the DuckDB file longer than the lock timeout."""


class NoCatalogError(FileNotFoundError):
    """There is no catalog file yet."""


class CatalogDamagedError(RuntimeError):
    """The catalog file is not a readable DuckDB database (and nothing here may rebuild it)."""


def is_damaged(exc: BaseException) -> bool:
    """Whether `exc` (a DuckDB error) says the file itself is broken."""
    import duckdb

    broken_file = (duckdb.IOException, duckdb.SerializationException)
    return isinstance(exc, broken_file) and any(m in str(exc) for m in DAMAGE_MARKERS)


def identity(path: Path) -> tuple[int, int, int] | None:
    """Which file is at `path` now (inode, size, modification time), or None."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _problem(path: Path) -> str | None:
    """Why the file cannot be used as it is, before opening it: missing or empty."""
    if not path.exists():
        return "missing"
    if path.stat().st_size == 0:
        return "empty (0 bytes)"
    return None


@contextmanager
def open_catalog(
    path: Path,
    read_only: bool = False,
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
    fill: Fill | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the catalog at `path`, held under the lock and closed on exit.

    With `fill` (a function that writes every table from the lake into a new catalog), a missing,
    empty or damaged file is rebuilt first; without it, a reader gets `NoCatalogError` or
    `CatalogDamagedError` and a writer of a missing file starts an empty catalog."""
    import duckdb

    with locked(path, lock_timeout_s):
        problem = _problem(path)
        if problem is None:
            try:
                conn = duckdb.connect(str(path), read_only=read_only)
            except duckdb.Error as exc:
                if not is_damaged(exc):
                    raise
                problem = f"damaged ({first_line(exc)})"
        if problem is not None:
            if fill is None:
                _refuse(path, problem, read_only)
            else:
                rebuild_locked(path, fill, problem)
            conn = duckdb.connect(str(path), read_only=read_only)
        try:
            yield conn
        finally:
            conn.close()


def rebuild_catalog(path: Path, fill: Fill, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> int:
    """Rebuild the catalog from the lake on demand, under the lock: a whole new file replaces
    the old one in one rename (readers see the old catalog or the new one). Returns the number
    of tables filled."""
    with locked(path, lock_timeout_s):
        return _fill_and_swap(path, fill)


def rebuild_locked(path: Path, fill: Fill, reason: str) -> Path | None:
    """Move the unusable catalog and its WAL aside (`<name>.damaged-<UTC time>`, returned), then
    fill a new one from the lake. One warning line says why, unless the catalog was simply
    missing and the lake empty (a first run). The caller holds the lock."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    moved = None
    for old, new in ((path, aside), (_wal(path), _wal(aside))):
        if old.exists():
            os.replace(old, new)
            moved = moved or new
    tables = _fill_and_swap(path, fill)
    if moved is not None or tables:  # a lost catalog is news; a first run's is not
        log.log(
            logging.WARNING if moved is not None else logging.INFO,
            f"the DuckDB catalog {path} was {reason}"
            + (f" (moved to {moved.name})" if moved is not None else "")
            + f": rebuilt {tables} tables from the lake",
        )
    return moved


def _fill_and_swap(path: Path, fill: Fill) -> int:
    """Fill a temporary catalog beside `path` and rename it over `path`; a crash while filling
    leaves only the temporary file, which the next rebuild removes."""
    import duckdb

    tmp = path.with_name(f".{path.name}.rebuild")
    for stale in (tmp, _wal(tmp)):
        stale.unlink(missing_ok=True)
    conn = duckdb.connect(str(tmp))
    try:
        tables = fill(conn)
        conn.execute("CHECKPOINT")
    finally:
        conn.close()
    _wal(path).unlink(missing_ok=True)  # the old file's log must not be replayed into the new
    os.replace(tmp, path)
    return tables


def _wal(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


@contextmanager
def locked(path: Path, lock_timeout_s: float) -> Iterator[None]:
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
        yield
    finally:
        lock.release()


def _refuse(path: Path, problem: str, read_only: bool) -> None:
    if problem == "missing":
        if read_only:
            raise NoCatalogError(
                f"no DuckDB catalog at {path} yet; run `mta demo` or `mta materialize` first."
            )
        return
    raise CatalogDamagedError(
        f"the DuckDB catalog {path} is {problem}; rebuild it from the lake with "
        "`mta catalog rebuild` (or run `mta materialize`, which rebuilds it)."
    )


def first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
