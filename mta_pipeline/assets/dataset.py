"""The dataset's records, one per good MIDI file, per shard: MIDI, metadata, video and comments."""

from collections import Counter

import dagster as dg
import pyarrow as pa

from mta_pipeline import config, schemas
from mta_pipeline.assets.giantmidi import giantmidi_metadata, midi_features
from mta_pipeline.assets.persist import store, table_version
from mta_pipeline.assets.youtube import youtube_comments, youtube_videos
from mta_pipeline.core.records import build_record
from mta_pipeline.core.text_clean import clean_text
from mta_pipeline.core.text_flags import repeated_signatures
from mta_pipeline.partitions import shard_partitions
from mta_pipeline.resources.catalog import DuckDBCatalog
from mta_pipeline.resources.lake import LakeResource
from mta_pipeline.summaries import bars_markdown, counts_markdown, preview_markdown

INDEX_ORDER = "old_id NULLS LAST, vid"
VIEWS = {
    "dataset": (
        f'SELECT row_number() OVER (ORDER BY {INDEX_ORDER}) - 1 AS "index", old_id, vid, '
        '"describe", reply_1, reply_2, reply_3, reply_4, reply_5 FROM mta_records'
    ),
    "dataset_full": (
        f'SELECT row_number() OVER (ORDER BY {INDEX_ORDER}) - 1 AS "index", * FROM mta_records'
    ),
}


def _rows(lake: LakeResource, table: str, shard: str) -> list[dict]:
    data = lake.read_parquet(lake.shard_path(table, shard), schemas.SCHEMAS[table])
    return data.to_pylist() if data is not None else []


def _metadata_by_vid(lake: LakeResource) -> dict[str, dict]:
    """GiantMIDI metadata by YouTube id; a release row (giant_midi_piano = 1) wins over others."""
    data = lake.read_parquet(
        lake.table_path(config.T_GIANTMIDI_METADATA), schemas.GIANTMIDI_METADATA
    )
    by_vid: dict[str, dict] = {}
    for row in data.to_pylist() if data is not None else []:
        vid, prev = row["youtube_id"], by_vid.get(row["youtube_id"])
        if vid and (prev is None or (row["giant_midi_piano"] == 1 != prev["giant_midi_piano"])):
            by_vid[vid] = row
    return by_vid


@dg.asset(
    group_name="dataset",
    code_version="1",
    automation_condition=dg.AutomationCondition.eager(),
    deps=[youtube_comments],
    kinds={"python", "duckdb", "parquet"},
)
def comment_repetition(
    context: dg.AssetExecutionContext, lake: LakeResource, catalog: DuckDBCatalog
) -> dg.MaterializeResult:
    """Comment texts repeated across authors or videos, over every shard scraped so far.

    Repetition is a property of the whole corpus, so it is computed once here, after all shards'
    comments, and every shard's records read it: a shard's flags never depend on which other
    shards happened to be scraped before it.
    """
    comments = lake.read_shards(config.T_YOUTUBE_COMMENTS, schemas.YOUTUBE_COMMENTS)
    posts = zip(
        comments.column("text").to_pylist(),
        comments.column("author_channel_id").to_pylist(),
        comments.column("vid").to_pylist(),
        strict=True,
    )
    repeated = sorted(repeated_signatures((clean_text(t), a, v) for t, a, v in posts))
    data = schemas.to_table(config.T_COMMENT_REPETITION, [{"signature": s} for s in repeated])
    relpath = lake.table_path(config.T_COMMENT_REPETITION)
    written = store(lake, catalog, config.T_COMMENT_REPETITION, relpath, data, None)
    context.log.info(f"{len(repeated)} repeated texts among {comments.num_rows} comments")
    return dg.MaterializeResult(
        metadata={
            "repeated_texts": len(repeated),
            "comments": comments.num_rows,
            "unchanged": not written,
        },
        data_version=table_version(data),
    )


def _repeated_texts(context: dg.AssetExecutionContext, lake: LakeResource) -> set[str]:
    """The corpus-wide repeated texts; empty (with a warning) before comment_repetition exists,
    which then brings every shard's records up to date through automation or the next run."""
    relpath = lake.table_path(config.T_COMMENT_REPETITION)
    data = lake.read_parquet(relpath, schemas.COMMENT_REPETITION)
    if data is None:
        context.log.warning(
            "comment_repetition is not materialized yet: no text counts as repeated"
        )
        return set()
    return set(data.column("signature").to_pylist())


@dg.asset(
    group_name="dataset",
    code_version="1",
    automation_condition=dg.AutomationCondition.eager(),
    partitions_def=shard_partitions,
    deps=[midi_features, youtube_videos, youtube_comments, giantmidi_metadata, comment_repetition],
    kinds={"python", "duckdb", "parquet"},
)
def mta_records(
    context: dg.AssetExecutionContext, lake: LakeResource, catalog: DuckDBCatalog
) -> dg.MaterializeResult:
    """One record per good MIDI file of the shard, joined by YouTube id with everything known."""
    shard = context.partition_key
    files = {r["vid"]: r for r in _rows(lake, config.T_MIDI_FILES, shard)}
    features = _rows(lake, config.T_MIDI_FEATURES, shard)
    videos = {r["vid"]: r for r in _rows(lake, config.T_YOUTUBE_VIDEOS, shard)}
    statuses = {r["vid"]: r for r in _rows(lake, config.T_YOUTUBE_COMMENT_STATUS, shard)}
    comments: dict[str, list[dict]] = {}
    for row in _rows(lake, config.T_YOUTUBE_COMMENTS, shard):
        comments.setdefault(row["vid"], []).append(row)
    meta = _metadata_by_vid(lake)
    repeated = _repeated_texts(context, lake)
    records = [
        build_record(
            files[f["vid"]],
            f,
            meta.get(f["vid"]),
            videos.get(f["vid"]),
            comments.get(f["vid"], []),
            statuses.get(f["vid"]),
            repeated,
        )
        for f in sorted(features, key=lambda f: f["vid"])
        if f["vid"] in files
    ]
    data = pa.Table.from_pylist(records, schema=schemas.MTA_RECORDS)
    relpath = lake.shard_path(config.T_MTA_RECORDS, shard)
    written = store(lake, catalog, config.T_MTA_RECORDS, relpath, data, {"shard": shard})
    if written:
        catalog.create_views(VIEWS)
    languages = Counter(c["lang"] for r in records for c in r["comments"])
    with_text = sum(1 for r in records if r["describe"] or r["reply_1"])
    return dg.MaterializeResult(
        metadata={
            "rows": len(records),
            "unchanged": not written,
            "with_description": sum(1 for r in records if r["describe"]),
            "with_replies": sum(1 for r in records if r["reply_1"]),
            "without_text": len(records) - with_text,
            "spam_comments": sum(c["is_spam"] for r in records for c in r["comments"]),
            "splits": dg.MetadataValue.md(
                counts_markdown(
                    {
                        s: sum(r["split"] == s for r in records)
                        for s in ("train", "validation", "test")
                    },
                    "split",
                )
            ),
            "languages": dg.MetadataValue.md(
                bars_markdown(dict(languages.most_common(8)), "language")
            ),
            "preview": dg.MetadataValue.md(
                preview_markdown(records, ("vid", "surname", "title", "describe", "reply_1"))
            ),
        },
        data_version=table_version(data),
    )
