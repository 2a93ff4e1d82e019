"""The dataset's records, one per good MIDI file, per shard: MIDI, metadata, video and comments."""

from collections import Counter

import dagster as dg
import pyarrow as pa

from mta_pipeline import config, schemas
from mta_pipeline.assets.results import table_result
from mta_pipeline.code_versions import code_version
from mta_pipeline.core.records import build_record
from mta_pipeline.core.text_clean import clean_text
from mta_pipeline.core.text_flags import repeated_signatures
from mta_pipeline.core.tsv import TSV_COLUMNS
from mta_pipeline.partitions import shard_partitions
from mta_pipeline.resources.storage import Storage
from mta_pipeline.summaries import bars_markdown, counts_markdown

VERSION = code_version(__name__)
EAGER = dg.AutomationCondition.eager()
_INDEX = f'row_number() OVER (ORDER BY {schemas.RECORD_ORDER_SQL}) - 1 AS "index"'
VIEWS = {
    "dataset": f"SELECT {_INDEX}, "
    + ", ".join(f'"{c}"' for c in TSV_COLUMNS if c != "index")
    + f" FROM {config.T_MTA_RECORDS}",
    "dataset_full": f"SELECT {_INDEX}, * FROM {config.T_MTA_RECORDS}",
}


def _metadata_by_vid(storage: Storage) -> dict[str, dict]:
    """GiantMIDI metadata by YouTube id; a release row (giant_midi_piano = 1) wins over others."""
    data = storage.read_table(config.T_GIANTMIDI_METADATA)
    by_vid: dict[str, dict] = {}
    for row in data.to_pylist() if data is not None else []:
        vid, prev = row["youtube_id"], by_vid.get(row["youtube_id"])
        if vid and (prev is None or (row["giant_midi_piano"] == 1 != prev["giant_midi_piano"])):
            by_vid[vid] = row
    return by_vid


@dg.asset(
    group_name="dataset",
    code_version=VERSION,
    automation_condition=EAGER,
    deps=[config.T_YOUTUBE_COMMENTS],
    kinds={"python", "parquet"},
)
def comment_repetition(context: dg.AssetExecutionContext, storage: Storage) -> dg.MaterializeResult:
    """Comment texts repeated across authors or videos, over every shard scraped so far.

    Repetition is a property of the whole corpus, so it is computed once here, after all shards'
    comments, and every shard's records read it: a shard's flags never depend on which other
    shards happened to be scraped before it.
    """
    comments = storage.read_all(config.T_YOUTUBE_COMMENTS)
    posts = zip(
        comments.column("text").to_pylist(),
        comments.column("author_channel_id").to_pylist(),
        comments.column("vid").to_pylist(),
        strict=True,
    )
    repeated = sorted(repeated_signatures((clean_text(t), a, v) for t, a, v in posts))
    data = schemas.to_table(config.T_COMMENT_REPETITION, [{"signature": s} for s in repeated])
    written = storage.publish(config.T_COMMENT_REPETITION, data)
    context.log.info(f"{len(repeated)} repeated texts among {comments.num_rows} comments")
    return table_result(
        config.T_COMMENT_REPETITION,
        data,
        written=written,
        code_version=VERSION,
        uri=storage.table_uri(config.T_COMMENT_REPETITION),
        metadata={"repeated_texts": len(repeated), "comments": comments.num_rows},
    )


def _repeated_texts(context: dg.AssetExecutionContext, storage: Storage) -> set[str]:
    """The corpus-wide repeated texts; empty (with a warning) before comment_repetition exists,
    which then brings every shard's records up to date through automation or the next run."""
    data = storage.read_table(config.T_COMMENT_REPETITION)
    if data is None:
        context.log.warning(
            "comment_repetition is not materialized yet: no text counts as repeated"
        )
        return set()
    return set(data.column("signature").to_pylist())


@dg.asset(
    group_name="dataset",
    code_version=VERSION,
    automation_condition=EAGER,
    partitions_def=shard_partitions,
    deps=[
        config.T_MIDI_FEATURES,
        config.T_YOUTUBE_VIDEOS,
        config.T_YOUTUBE_COMMENTS,
        config.T_YOUTUBE_COMMENT_STATUS,
        config.T_GIANTMIDI_METADATA,
        comment_repetition,
    ],
    kinds={"python", "duckdb", "parquet"},
)
def mta_records(context: dg.AssetExecutionContext, storage: Storage) -> dg.MaterializeResult:
    """One record per good MIDI file of the shard, joined by YouTube id with everything known."""
    shard = context.partition_key
    if storage.read_table(config.T_MIDI_FEATURES, shard) is None:
        raise dg.Failure(f"shard {shard} of midi_features is missing: materialize it first.")
    files = {r["vid"]: r for r in storage.read_rows(config.T_MIDI_FILES, shard)}
    features = storage.read_rows(config.T_MIDI_FEATURES, shard)
    videos = {r["vid"]: r for r in storage.read_rows(config.T_YOUTUBE_VIDEOS, shard)}
    statuses = {r["vid"]: r for r in storage.read_rows(config.T_YOUTUBE_COMMENT_STATUS, shard)}
    comments: dict[str, list[dict]] = {}
    for row in storage.read_rows(config.T_YOUTUBE_COMMENTS, shard):
        comments.setdefault(row["vid"], []).append(row)
    meta = _metadata_by_vid(storage)
    repeated = _repeated_texts(context, storage)
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
    written = storage.publish(config.T_MTA_RECORDS, data, shard, views=VIEWS)
    languages = Counter(c["lang"] for r in records for c in r["comments"])
    with_text = sum(1 for r in records if r["describe"] or r["reply_1"])
    return table_result(
        config.T_MTA_RECORDS,
        data,
        written=written,
        code_version=VERSION,
        uri=storage.table_uri(config.T_MTA_RECORDS, shard),
        preview=("vid", "surname", "title", "describe", "reply_1"),
        metadata={
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
        },
    )
