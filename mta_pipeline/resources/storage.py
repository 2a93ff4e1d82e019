"""The storage layer: every path, every write and every catalog read of the pipeline.

The lake (a local folder or `s3://bucket/prefix`, through fsspec; `mta_pipeline/lake.py`) is the
store of record, and the only thing a run reads that another run wrote: the GiantMIDI archive
(`archive/`), each shard's MIDI bytes (`midi/shard=<k>/part.parquet`), every table. Layout:
`<lake>/<table>/shard=<k>/<part>.parquet` (hive-style, so DuckDB and pyarrow read the shard as a
column) for sharded tables and `<lake>/<table>/<table>.parquet` for the others. The local data
dir (`MTA_DATA_DIR`) is a cache any run may find empty: a copy of the archive, the scrape
journal, the DuckDB catalog (an index over the lake, brought up to date by `lake_index.sync`
whenever it is read).

Two rules hold for every asset because they live only here:
- a write is atomic: locally a unique temporary name, fsync, rename (`atomic.py`); on S3 one PUT;
- a write compares first: equal content is not written again, so an unchanged rerun rewrites
  nothing and can say so.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import dagster as dg
import duckdb
import fsspec
import pyarrow as pa
from filelock import FileLock

from mta_pipeline import config, lake_index, schemas
from mta_pipeline.atomic import atomic_write
from mta_pipeline.lake import Lake, LakeError, filesystem, parquet_bytes
from mta_pipeline.resources import catalog
from mta_pipeline.resources.catalog import DEFAULT_LOCK_TIMEOUT_S

__all__ = ["DEFAULT_PART", "LakeError", "Storage", "parquet_bytes"]

DEFAULT_PART = lake_index.DEFAULT_PART
ARCHIVE_RELPATH = f"{config.ARCHIVE_DIR}/{config.ARCHIVE_FILE}"
# What was fetched: the source's fingerprint, size and sha256; written after the archive.
ARCHIVE_STATE_RELPATH = f"{config.ARCHIVE_DIR}/archive.json"
T = TypeVar("T")


class Storage(dg.ConfigurableResource):
    """Where the pipeline keeps its data. `data_dir`: local cache (`MTA_DATA_DIR`);
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

    @property
    def lake(self) -> Lake:
        return Lake(self.lake_root, self.s3_endpoint_url)

    def local(self, *parts: str) -> Path:
        """A cache file under the data dir."""
        return self.root.joinpath(*parts)

    def journal_path(self, endpoint: str, shard: str) -> Path:
        return self.local("journal", endpoint, f"{shard}.jsonl")

    @staticmethod
    def table_path(table: str, shard: str | None = None, part: str = DEFAULT_PART) -> str:
        """The lake path of a table (or of one shard's part of it), relative to the lake root."""
        if shard is None:
            return f"{table}/{table}.parquet"
        return f"{table}/shard={shard}/{part}.parquet"

    @staticmethod
    def midi_relpath(shard: str) -> str:
        """The lake file of a shard's MIDI bytes: one zstd Parquet `(vid, sha256, bytes)`."""
        return f"{config.MIDI_DIR}/shard={shard}/{DEFAULT_PART}.parquet"

    def uri(self, relpath: str) -> str:
        return f"{self.lake_root}/{relpath}"

    def table_uri(self, table: str, shard: str | None = None, part: str = DEFAULT_PART) -> str:
        """Where a table (or one shard's part of it) lives, as a user would open it."""
        return self.uri(self.table_path(table, shard, part))

    def filesystem(self) -> tuple[fsspec.AbstractFileSystem, str]:
        return filesystem(self.lake_root, self.s3_endpoint_url)

    # -- lake files ------------------------------------------------------------------------------

    def write(self, relpath: str, data: bytes) -> str:
        """Write `data` at `relpath` in one piece; returns the URI."""
        return self.lake.write(relpath, data)

    def read_bytes(self, relpath: str) -> bytes | None:
        """The file's bytes, or None when it does not exist."""
        return self.lake.read_bytes(relpath)

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
        return self.lake.glob(pattern)

    # -- tables in the lake ----------------------------------------------------------------------

    def read(self, relpath: str, schema: pa.Schema | None = None) -> pa.Table | None:
        """The Parquet table at `relpath`, or None when it has never been written."""
        return self.lake.read(relpath, schema)

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

    # -- publishing ------------------------------------------------------------------------------

    def publish(
        self, table: str, data: pa.Table, shard: str | None = None, part: str = DEFAULT_PART
    ) -> bool:
        """Write `data` as the table's (shard's part's) lake file unless it already holds these
        rows; True when written. The catalog follows when it is next read (`lake_index.sync`)."""
        return self.publish_parts([(table, data, shard, part)])[0]

    def publish_all(self, tables: Sequence[tuple[str, pa.Table, str]]) -> bool:
        """Several shard tables `(table, data, shard)`; True when any was written."""
        return any(self.publish_parts([(t, d, s, DEFAULT_PART) for t, d, s in tables]))

    def publish_parts(self, items: Sequence[tuple[str, pa.Table, str | None, str]]) -> list[bool]:
        """`publish` for several `(table, data, shard, part)`: each compared with the lake's
        file first (rows, not bytes: an older writer's file with the same rows stays)."""
        written = []
        for table, data, shard, part in items:
            relpath = self.table_path(table, shard, part)
            try:
                previous = self.read(relpath, data.schema)
            except LakeError:  # an old file that no longer casts to the schema: replace it
                previous = None
            written.append(previous is None or not previous.equals(data))
            if written[-1]:
                self.write(relpath, parquet_bytes(data))
        return written

    # -- MIDI bytes and the archive in the lake ----------------------------------------------------

    def write_midi(self, shard: str, files: pa.Table) -> bool:
        """The shard's MIDI bytes (`schemas.MIDI_BYTES`) as one Parquet, unless it holds them;
        True when written. One object a shard: on S3 one PUT writes 10,855 files 27 times faster
        than one object a file, and a reader gets its shard in one GET (bench/MIDI_STORE.md)."""
        return self.write_if_changed(self.midi_relpath(shard), parquet_bytes(files))

    def read_midi(self, shard: str) -> dict[str, bytes]:
        """The shard's MIDI bytes by video id (empty when the shard holds none)."""
        data = self.read(self.midi_relpath(shard), schemas.MIDI_BYTES)
        if data is None:
            return {}
        return dict(
            zip(data.column("vid").to_pylist(), data.column("bytes").to_pylist(), strict=True)
        )

    def archive_state(self) -> dict | None:
        """What `giantmidi_archive` last put in the lake (fingerprint, size, sha256), or None."""
        body = self.read_bytes(ARCHIVE_STATE_RELPATH)
        try:
            state = json.loads(body) if body else None
        except ValueError:
            return None  # a damaged state: the archive is fetched again
        keys = {"fingerprint", "size", "sha256"}
        return state if isinstance(state, dict) and keys <= state.keys() else None

    def archive_in_lake(self, state: dict) -> bool:
        """Whether the lake holds the archive `state` describes (by its size)."""
        fs, path = self.lake.fs(), self.lake.path(ARCHIVE_RELPATH)
        return fs.exists(path) and fs.size(path) == state["size"]

    def archive_cache_path(self, sha256: str) -> Path:
        """The local copy of the archive with this sha256 (named by it, so a copy is never
        mistaken for another version)."""
        return self.local(config.ARCHIVE_DIR, f"{sha256}.zip")

    def put_archive(self, local: Path, state: dict) -> str:
        """Put the fetched archive (`local`, verified) into the lake, then its state; returns the
        lake URI. A local lake takes it by rename (it was fetched beside it); S3 by upload."""
        fs, target = self.lake.fs(), self.lake.path(ARCHIVE_RELPATH)
        try:
            if self.lake.is_local:
                if Path(local) != Path(target):
                    Path(target).parent.mkdir(parents=True, exist_ok=True)
                    Path(local).replace(target)
            else:
                fs.put_file(str(local), target)
        except Exception as exc:
            raise LakeError(
                f"cannot write {self.uri(ARCHIVE_RELPATH)}: {type(exc).__name__}: {exc}"
            ) from exc
        self.write(ARCHIVE_STATE_RELPATH, json.dumps(state, indent=1).encode())
        return self.uri(ARCHIVE_RELPATH)

    def archive_fetch_path(self) -> Path:
        """Where a download goes first: the lake's own file for a local lake (no second copy),
        a cache file for S3."""
        if self.lake.is_local:
            return Path(self.lake.path(ARCHIVE_RELPATH))
        return self.local(config.ARCHIVE_DIR, config.ARCHIVE_FILE)

    def local_archive(self) -> Path:
        """A local path of the archive the lake holds, to open as a zip: the lake's file when
        the lake is local; on S3 a cached copy named by its sha256, downloaded when this data
        dir has none (a new machine, a new pod)."""
        state = self.archive_state()
        if state is None or not self.archive_in_lake(state):
            raise LakeError(
                f"no GiantMIDI archive in the lake at {self.uri(ARCHIVE_RELPATH)}: materialize "
                "giantmidi_archive first."
            )
        if self.lake.is_local:
            return Path(self.lake.path(ARCHIVE_RELPATH))
        cached = self.archive_cache_path(state["sha256"])
        cached.parent.mkdir(parents=True, exist_ok=True)
        # Runs sharing this data dir download it once: the others wait for the lock, then find
        # the copy. A copy is only ever renamed into place whole and verified, so one there is
        # this version (its name is its sha256).
        with FileLock(f"{cached}.lock", timeout=self.lock_timeout_s):
            if cached.exists() and cached.stat().st_size == state["size"]:
                return cached
            partial = cached.with_name(f".{cached.name}.{uuid.uuid4().hex}.partial")
            try:
                self.lake.fs().get_file(self.lake.path(ARCHIVE_RELPATH), str(partial))
                if _file_sha256(partial) != state["sha256"]:
                    raise LakeError(
                        f"{self.uri(ARCHIVE_RELPATH)} does not match its recorded sha256: "
                        "materialize giantmidi_archive again."
                    )
                partial.replace(cached)
            except LakeError:
                raise
            except Exception as exc:
                raise LakeError(
                    f"cannot read {self.uri(ARCHIVE_RELPATH)} into {cached}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            finally:
                partial.unlink(missing_ok=True)
        return cached

    # -- the catalog: a local index over the lake ------------------------------------------------

    def on_catalog(self, work: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """`work(conn)` on the catalog, up to date with the lake; a missing or damaged catalog is
        rebuilt from the lake first (`lake_index.on_synced`)."""
        return lake_index.on_synced(self.catalog_path, self.lake, work, self.lock_timeout_s)[0]

    def sync_catalog(self) -> lake_index.SyncReport:
        """Bring the catalog up to date with the lake now, reading every table through first
        (a truncated file opens fine and fails only past its end), so a damaged catalog is
        rebuilt here rather than in a user's query."""

        return lake_index.on_synced(
            self.catalog_path, self.lake, lambda conn: None, self.lock_timeout_s, read_through=True
        )[1]

    def count(self, table: str, where: dict[str, str] | None = None) -> int:
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

        return self.on_catalog(first)

    def query(self, sql: str, params: Sequence[object] | None = None) -> pa.Table:
        """Run read-only SQL on the up-to-date catalog and return the result as Arrow."""
        return self.on_catalog(lambda conn: conn.sql(sql, params=params).to_arrow_table())

    def row_counts(self) -> dict[str, int]:
        """Rows of every catalog table (not the catalog's own bookkeeping), by name."""

        def counts(conn: duckdb.DuckDBPyConnection) -> dict[str, int]:
            names = conn.execute(
                "SELECT table_name FROM duckdb_tables() WHERE table_name != ? ORDER BY 1",
                [lake_index.FILES_TABLE],
            ).fetchall()
            return {n: conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for (n,) in names}

        return self.on_catalog(counts)

    def rebuild_catalog(self) -> int:
        """Rebuild every catalog table from the lake now (`mta catalog rebuild`); returns the
        number of tables."""
        return catalog.rebuild_catalog(self.catalog_path, self.fill_catalog, self.lock_timeout_s)

    def fill_catalog(self, conn: duckdb.DuckDBPyConnection) -> int:
        """Write every table the lake holds into the new, empty catalog `conn`."""
        return lake_index.rebuild(conn, self.lake)

    # -- the quota ledger's parts ----------------------------------------------------------------

    def ledger_parts(self, shard: str = "*", day: str = "*") -> list[str]:
        """The ledger's part files (of a shard and Pacific day, or all), relative to the lake."""
        return self.glob(f"{config.T_YOUTUBE_QUOTA}/shard={shard}/day={day}/*.parquet")

    def read_ledger(self, shard: str = "*") -> pa.Table:
        """The lake's ledger rows (of one shard, or all), one per distinct `call_id`."""
        parts = self.ledger_parts(shard)
        return lake_index.unique_calls([self.read(p, schemas.YOUTUBE_QUOTA) for p in parts])

    # -- local cache files -----------------------------------------------------------------------

    def write_local(self, path: Path, data: bytes) -> bool:
        """Write a cache file under the data dir atomically, unless it holds these bytes."""
        same_size = path.exists() and path.stat().st_size == len(data)
        if same_size and _digest(path.read_bytes()) == _digest(data):
            return False
        atomic_write(path, data)
        return True


def _digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
