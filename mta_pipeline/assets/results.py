"""What every table materialization tells the UI: Dagster's standard table metadata, whether
anything was written, the code version that made it, and a content hash as its data version."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
import pyarrow as pa

from mta_pipeline import config, schemas
from mta_pipeline.resources.storage import Storage
from mta_pipeline.summaries import preview_markdown

# Metadata keys the `mta` command reads back (runner.py): keep them stable.
UNCHANGED = "unchanged"
CODE_VERSION = "code_version"
# Assets report long work on this logger too; the `mta` command shows it in the terminal.
PROGRESS_LOGGER = "mta_pipeline.progress"


def progress(context: dg.AssetExecutionContext, message: str) -> None:
    """Report long work: in the run's event log (the UI) and in the `mta` terminal."""
    context.log.info(message)
    logging.getLogger(PROGRESS_LOGGER).info(message)


def step_outputs(
    version: str, deps: list[Any], kinds: set[str], **descriptions: str
) -> list[dg.AssetSpec]:
    """The specs of a step's outputs (one `multi_asset`): same inputs, code version and kinds,
    each following its inputs (`eager`)."""
    return [
        dg.AssetSpec(
            key,
            deps=deps,
            description=description,
            code_version=version,
            automation_condition=dg.AutomationCondition.eager(),
            kinds=kinds,
        )
        for key, description in descriptions.items()
    ]


def table_version(data: pa.Table) -> dg.DataVersion:
    """A content hash of the table: equal tables give equal versions whatever their chunking."""
    digest = hashlib.sha256(str(data.schema).encode())
    for batch in data.combine_chunks().to_batches(max_chunksize=10_000):
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, batch.schema) as writer:
            writer.write_batch(batch)
        digest.update(sink.getvalue().to_pybytes())
    return dg.DataVersion(digest.hexdigest()[:32])


def column_schema(table: str) -> dg.TableSchema:
    """The table's columns as Dagster shows them, from `schemas.py`."""
    return dg.TableSchema(
        columns=[dg.TableColumn(f.name, str(f.type)) for f in schemas.SCHEMAS[table]]
    )


def table_result(
    table: str,
    data: pa.Table,
    *,
    written: bool,
    code_version: str,
    uri: str | None = None,
    asset_key: str | None = None,
    preview: Sequence[str] = (),
    metadata: Mapping[str, Any] | None = None,
) -> dg.MaterializeResult:
    """A table's MaterializeResult: row count, columns, table name, uri, preview and more."""
    extra: dict[str, Any] = {
        "dagster/row_count": data.num_rows,
        "dagster/column_schema": column_schema(table),
        "dagster/table_name": table,
        UNCHANGED: not written,
        CODE_VERSION: code_version,
    }
    if uri:
        extra["dagster/uri"] = dg.MetadataValue.path(uri)
    if preview:
        head = data.slice(0, 5).select(list(preview)).to_pylist()  # not the whole table
        extra["preview"] = dg.MetadataValue.md(preview_markdown(head, preview))
    return dg.MaterializeResult(
        asset_key=asset_key,
        metadata={**extra, **(metadata or {})},
        data_version=table_version(data),
    )


def file_result(
    body: bytes, *, written: bool, code_version: str, uri: str, metadata: Mapping[str, Any]
) -> dg.MaterializeResult:
    """A file export's MaterializeResult, versioned by the file's bytes."""
    return dg.MaterializeResult(
        metadata={
            UNCHANGED: not written,
            CODE_VERSION: code_version,
            "bytes": len(body),
            "dagster/uri": dg.MetadataValue.path(uri),
            **metadata,
        },
        data_version=dg.DataVersion(hashlib.sha256(body).hexdigest()[:32]),
    )


def ran_this_code(
    context: dg.AssetExecutionContext, asset_key: str, version: str, **settings: str
) -> bool:
    """Whether the latest materialization of this run's partition of `asset_key` ran `version`
    with the same `settings` (metadata name → value): only then may its rows be reused."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey(asset_key), asset_partitions=[context.partition_key]
        ),
        limit=1,
    ).records
    meta = records[0].asset_materialization.metadata if records else {}
    wanted = {CODE_VERSION: version, **settings}
    return all(name in meta and meta[name].value == value for name, value in wanted.items())


def shard_blobs(storage: Storage, shard: str, files: list[dict]) -> list[tuple[str, bytes]]:
    """`(vid, bytes)` of each of `files` (rows of the shard's `midi_files`), from the shard's
    MIDI bytes in the lake, so any machine can run the MIDI steps; a Failure when a file's bytes
    are missing or are not the ones `midi_files` recorded."""
    if not files:
        return []
    held = storage.read_midi(shard)
    blobs = []
    for f in files:
        data = held.get(f["vid"])
        if data is None or hashlib.sha256(data).hexdigest() != f["sha256"]:
            raise dg.Failure(
                f"the MIDI bytes of {f['vid']} (shard {shard}) are missing or changed at "
                f"{storage.uri(storage.midi_relpath(shard))}: materialize midi_files for shard "
                f"{shard} again."
            )
        blobs.append((f["vid"], data))
    return blobs


def shard_files(storage: Storage, shard: str) -> list[dict]:
    """The shard's `midi_files` rows, which the MIDI steps read; a Failure when missing."""
    files = storage.read_table(config.T_MIDI_FILES, shard)
    if files is None:
        raise dg.Failure(f"shard {shard} of midi_files is missing: materialize midi_files first.")
    return files.to_pylist()
