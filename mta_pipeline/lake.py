"""The lake: the store of record, a local folder or `s3://bucket/prefix`, through fsspec.

Plain Python with no Dagster import, so `mta query` can list and read the lake as fast as bare
DuckDB starts. The `Storage` resource (assets) and the catalog index (`lake_index.py`) both go
through `Lake`, so every read, write and listing of the lake is written once.
"""

from __future__ import annotations

import functools
import io
import re
from dataclasses import dataclass

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from mta_pipeline import config
from mta_pipeline.atomic import atomic_write


class LakeError(RuntimeError):
    """The lake cannot be written or read; the message names the location and the cause."""


@functools.lru_cache(maxsize=8)
def filesystem(root: str, s3_endpoint_url: str) -> tuple[fsspec.AbstractFileSystem, str]:
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
    """A table as zstd Parquet; the same rows give the same bytes (digests rely on it)."""
    buf = io.BytesIO()
    pq.write_table(data, buf, compression="zstd")
    return buf.getvalue()


@dataclass(frozen=True)
class Lake:
    """The lake at `root` (a folder or `s3://…`), on the S3-compatible `s3_endpoint_url` when
    set. Paths given to its methods are relative to the root."""

    root: str
    s3_endpoint_url: str = ""

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs(), LocalFileSystem)

    def fs(self) -> fsspec.AbstractFileSystem:
        return filesystem(self.root, self.s3_endpoint_url)[0]

    def path(self, relpath: str) -> str:
        """`relpath` as the filesystem names it (no `s3://` scheme)."""
        return f"{filesystem(self.root, self.s3_endpoint_url)[1]}/{relpath}"

    def uri(self, relpath: str) -> str:
        return f"{self.root}/{relpath}"

    def write(self, relpath: str, data: bytes) -> str:
        """Write `data` at `relpath` in one piece (locally: temporary name, fsync, rename; on
        S3: one PUT); returns the URI."""
        try:
            if self.is_local:
                atomic_write(self.path(relpath), data)
            else:
                self.fs().pipe_file(self.path(relpath), data)
        except Exception as exc:
            raise LakeError(
                f"cannot write {self.uri(relpath)}: {type(exc).__name__}: {exc}. Check "
                f"{config.MTA_LAKE_URL}, its permissions and (for s3://) "
                f"{config.MTA_S3_ENDPOINT_URL} and AWS_*."
            ) from exc
        return self.uri(relpath)

    def read_bytes(self, relpath: str) -> bytes | None:
        """The file's bytes, or None when it does not exist."""
        try:
            return self.fs().cat_file(self.path(relpath))
        except FileNotFoundError:
            return None
        except Exception as exc:
            raise LakeError(
                f"cannot read {self.uri(relpath)}: {type(exc).__name__}: {exc}"
            ) from exc

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

    def stamps(self, pattern: str) -> dict[str, str]:
        """Lake paths (relative) matching `pattern`, each with a stamp that changes whenever the
        file is replaced: its size with its ETag on S3, with its modification time locally (a
        write is a rename of a new file). One listing, no file read."""
        try:
            found = self._listing(pattern)
        except Exception as exc:
            raise LakeError(
                f"cannot list {self.uri(pattern)}: {type(exc).__name__}: {exc}"
            ) from exc
        prefix = self.path("")
        return {
            (p[len(prefix) :] if p.startswith(prefix) else p): _stamp(info)
            for p, info in sorted(found.items())
            if info.get("type") != "directory"
        }

    def _listing(self, pattern: str) -> dict[str, dict]:
        """Files matching `pattern` with their info. On S3, one flat listing of the folder before
        the first wildcard (1,000 keys a request), filtered here: fsspec's glob would list each
        `shard=*` folder on its own, 32 requests where one does."""
        fs = self.fs()
        if self.is_local:
            return fs.glob(self.path(pattern), detail=True)
        folder = pattern.split("*", 1)[0].rpartition("/")[0]
        try:
            listing = fs.find(self.path(folder), detail=True)
        except FileNotFoundError:
            return {}
        wanted = re.compile(
            "".join(
                "[^/]*" if part == "*" else re.escape(part)
                for part in re.split(r"(\*)", self.path(pattern))
            )
        )
        return {p: info for p, info in listing.items() if wanted.fullmatch(p)}

    def glob(self, pattern: str) -> list[str]:
        """Lake paths (relative) matching `pattern`, sorted."""
        return list(self.stamps(pattern))


def _stamp(info: dict) -> str:
    version = info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("LastModified")
    return f"{info.get('size')}:{version}"
