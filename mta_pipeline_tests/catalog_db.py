"""The catalog as a test reads it: brought up to date with the lake first, as `mta query` and
`mta materialize` do (runs write the lake only; the catalog is an index over it)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from mta_pipeline import config, lake_index
from mta_pipeline.lake import Lake


def current_lake() -> Lake:
    """The lake the environment names (MTA_LAKE_URL, MTA_S3_ENDPOINT_URL)."""
    return Lake(config.lake_url(), config.env(config.MTA_S3_ENDPOINT_URL) or "")


@contextmanager
def catalog_db(read_only: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to `$MTA_DATA_DIR/mta.duckdb` after a sync with the lake."""
    lake_index.on_synced(config.duckdb_path(), current_lake(), lambda conn: None)
    with duckdb.connect(str(config.duckdb_path()), read_only=read_only) as conn:
        yield conn
