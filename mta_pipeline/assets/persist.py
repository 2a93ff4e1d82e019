"""Writing a table to the lake (store of record) and the DuckDB catalog, only when it changed.

An unchanged rerun then rewrites nothing, and every asset can say "unchanged" in its metadata
and report a data version (a hash of the table) that keeps its downstream from going stale.
"""

import hashlib

import dagster as dg
import pyarrow as pa

from mta_pipeline.resources.catalog import DuckDBCatalog
from mta_pipeline.resources.lake import LakeResource


def table_version(data: pa.Table) -> dg.DataVersion:
    """A content hash of the table: equal tables give equal versions whatever their chunking."""
    digest = hashlib.sha256(str(data.schema).encode())
    for batch in data.combine_chunks().to_batches(max_chunksize=10_000):
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, batch.schema) as writer:
            writer.write_batch(batch)
        digest.update(sink.getvalue().to_pybytes())
    return dg.DataVersion(digest.hexdigest()[:32])


def store(
    lake: LakeResource,
    catalog: DuckDBCatalog,
    table: str,
    relpath: str,
    data: pa.Table,
    where: dict[str, str] | None,
) -> bool:
    """Write `data` to `relpath` and replace the catalog rows matching `where` (None: all), unless
    the lake already holds an equal table and the catalog has the same number of rows for it.
    Returns True when something was written."""
    previous = lake.read_parquet(relpath, data.schema)
    if previous is not None and previous.equals(data):
        clause = " AND ".join(f'"{k}" = ?' for k in (where or {})) or "true"
        rows = catalog.scalar(
            f'SELECT count(*) FROM "{table}" WHERE {clause}', list((where or {}).values()), -1
        )
        if rows == data.num_rows:
            return False
    lake.write_parquet(relpath, data)
    catalog.replace_rows(table, data, where or {})
    return True
