"""The lake: Parquet (and later TSV) outputs on a local folder or S3-compatible storage via fsspec.

Layout: `<lake>/<table>/shard=<key>/part.parquet` (hive-style, so DuckDB and pyarrow read the
shard as a column) and `<lake>/<table>/<table>.parquet` for unpartitioned tables. Every file is
written in one piece: locally to a temporary name then renamed, on S3 as a single PUT, so a reader
never sees half a file and a crash leaves the previous version whole.
"""

import io
import os
import uuid

import dagster as dg
import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from mta_pipeline import config


class LakeError(RuntimeError):
    """The lake cannot be written or read; the message names the location and the cause."""


class LakeResource(dg.ConfigurableResource):
    """`url`: a folder or `s3://bucket/prefix`; default `$MTA_LAKE_URL` or `$MTA_DATA_DIR/lake`."""

    url: str | None = None
    s3_endpoint_url: str | None = None

    @property
    def root_url(self) -> str:
        return (self.url or config.lake_url()).rstrip("/")

    def filesystem(self) -> tuple[fsspec.AbstractFileSystem, str]:
        url = self.root_url
        options: dict[str, object] = {}
        if url.startswith("s3://"):
            endpoint = self.s3_endpoint_url or config.env(config.MTA_S3_ENDPOINT_URL)
            if endpoint:
                options["client_kwargs"] = {"endpoint_url": endpoint}
            options["skip_instance_cache"] = True
        return fsspec.core.url_to_fs(url, **options)

    def shard_path(self, table: str, shard: str) -> str:
        return f"{table}/shard={shard}/part.parquet"

    def table_path(self, table: str) -> str:
        return f"{table}/{table}.parquet"

    def uri(self, relpath: str) -> str:
        return f"{self.root_url}/{relpath}"

    def write_bytes(self, relpath: str, data: bytes) -> str:
        """Write `data` to `relpath` in one piece; returns the full URI."""
        fs, root = self.filesystem()
        path = f"{root}/{relpath}"
        try:
            if isinstance(fs, LocalFileSystem):
                os.makedirs(os.path.dirname(path), exist_ok=True)
                tmp = f"{path}.{uuid.uuid4().hex}.tmp"
                try:
                    with open(tmp, "wb") as fh:
                        fh.write(data)
                        fh.flush()
                        os.fsync(fh.fileno())
                    os.replace(tmp, path)
                finally:
                    if os.path.exists(tmp):
                        os.unlink(tmp)
            else:
                fs.pipe_file(path, data)
        except Exception as exc:
            raise LakeError(
                f"cannot write {self.uri(relpath)}: {type(exc).__name__}: {exc}. "
                "Check MTA_LAKE_URL, its permissions and (for s3://) MTA_S3_ENDPOINT_URL and AWS_*."
            ) from exc
        return self.uri(relpath)

    def write_parquet(self, relpath: str, table: pa.Table) -> str:
        buf = io.BytesIO()
        pq.write_table(table, buf, compression="zstd")
        return self.write_bytes(relpath, buf.getvalue())

    def read_shards(self, table: str, schema: pa.Schema) -> pa.Table:
        """Every shard file of `table` concatenated (an empty table when there are none)."""
        fs, root = self.filesystem()
        try:
            paths = sorted(fs.glob(f"{root}/{table}/shard=*/part.parquet"))
        except Exception as exc:
            raise LakeError(f"cannot list {self.uri(table)}: {type(exc).__name__}: {exc}") from exc
        tables = []
        for path in paths:
            with fs.open(path, "rb") as fh:
                tables.append(pq.read_table(fh, schema=schema))
        return pa.concat_tables(tables) if tables else schema.empty_table()

    def read_parquet(self, relpath: str, schema: pa.Schema | None = None) -> pa.Table | None:
        """The table at `relpath`, or None when it has never been written."""
        fs, root = self.filesystem()
        path = f"{root}/{relpath}"
        try:
            if not fs.exists(path):
                return None
            with fs.open(path, "rb") as fh:
                return pq.read_table(fh, schema=schema)
        except Exception as exc:
            raise LakeError(
                f"cannot read {self.uri(relpath)}: {type(exc).__name__}: {exc}"
            ) from exc
