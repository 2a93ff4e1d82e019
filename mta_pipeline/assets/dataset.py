"""The dataset's records, one per good MIDI file, per shard: MIDI, metadata, video and comments;
and the corpus-wide inputs every shard's records share: repeated texts, composer splits, the
removal list."""

from collections import Counter

import dagster as dg
import pyarrow as pa

from mta_pipeline import config, schemas
from mta_pipeline.assets.results import table_result
from mta_pipeline.code_versions import code_version
from mta_pipeline.core.records import build_record
from mta_pipeline.core.removals import Removals
from mta_pipeline.core.splits import (
    SPLITS,
    assign_splits,
    composer_key,
    record_shares,
    split_records,
)
from mta_pipeline.core.text_clean import clean_text
from mta_pipeline.core.text_flags import repeated_signatures
from mta_pipeline.partitions import shard_partitions
from mta_pipeline.resources.release import ReleaseSettings, stored_removals
from mta_pipeline.resources.storage import Storage
from mta_pipeline.summaries import bars_markdown, counts_markdown

VERSION = code_version(__name__)
EAGER = dg.AutomationCondition.eager()


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


@dg.asset(
    group_name="dataset",
    code_version=VERSION,
    # No inputs: `mta materialize` runs it every time; under Dagster's automation, hourly.
    automation_condition=dg.AutomationCondition.on_cron("0 * * * *"),
    kinds={"python", "parquet"},
)
def mta_removals(
    context: dg.AssetExecutionContext, release: ReleaseSettings, storage: Storage
) -> dg.MaterializeResult:
    """The removal list (`MTA_REMOVALS`) as a table: video and comment ids kept out of every
    record and release. When the list changes, the records and the release are rebuilt without
    them. An unset `MTA_REMOVALS` keeps the stored list: a process started without the setting
    (a daemon, a second shell) must never bring removed texts back; an empty file clears it."""
    stored = storage.read_table(config.T_MTA_REMOVALS)
    if not release.removals.strip() and stored is not None and stored.num_rows:
        context.log.warning(
            f"{config.MTA_REMOVALS} is unset: keeping the {stored.num_rows} stored removals "
            "(point it at an empty file to clear them)"
        )
        removals = Removals.from_rows(stored.to_pylist())
    else:
        removals = release.removal_list()
    data = schemas.to_table(config.T_MTA_REMOVALS, removals.rows())
    written = storage.publish(config.T_MTA_REMOVALS, data)
    return table_result(
        config.T_MTA_REMOVALS,
        data,
        written=written,
        code_version=VERSION,
        uri=storage.table_uri(config.T_MTA_REMOVALS),
        metadata={
            "videos": len(removals.vids),
            "comments": len(removals.comment_ids),
        },
    )


def _good_files_per_composer(storage: Storage) -> tuple[dict[str, int], dict[str, tuple]]:
    """Records (files that parsed) per composer key, and a spelling of each composer's name."""
    files = storage.read_all(config.T_MIDI_FILES)
    parsed = set(storage.read_all(config.T_MIDI_FEATURES).column("vid").to_pylist())
    counts: Counter[str] = Counter()
    names: dict[str, tuple] = {}
    for vid, surname, firstname in zip(
        files.column("vid").to_pylist(),
        files.column("surname").to_pylist(),
        files.column("firstname").to_pylist(),
        strict=True,
    ):
        if vid in parsed:
            key = composer_key(surname, firstname)
            counts[key] += 1
            names.setdefault(key, (surname, firstname))
    return dict(counts), names


def shares_markdown(shares: dict[str, float], counts: dict[str, int]) -> str:
    lines = ["| split | records | share |", "|---|---|---|"]
    lines += [f"| {s} | {counts.get(s, 0)} | {shares[s]:.1%} |" for s in SPLITS]
    return "\n".join(lines)


@dg.asset(
    group_name="dataset",
    code_version=VERSION,
    automation_condition=EAGER,
    deps=[config.T_MIDI_FILES, config.T_MIDI_FEATURES],
    kinds={"python", "parquet"},
)
def composer_splits(context: dg.AssetExecutionContext, storage: Storage) -> dg.MaterializeResult:
    """Each composer's split, balanced by records to 80/10/10 and stable: composers already in
    the stored table keep their split; new ones fill the split furthest below its target."""
    previous = storage.read_table(config.T_COMPOSER_SPLITS)
    known_rows = previous.to_pylist() if previous is not None else []
    known = {r["composer_key"]: r["split"] for r in known_rows}
    counts, names = _good_files_per_composer(storage)
    for r in known_rows:
        names.setdefault(r["composer_key"], (r["surname"], r["firstname"]))
    assigned = assign_splits(counts, known)
    rows = [
        {
            "composer_key": key,
            "surname": names[key][0],
            "firstname": names[key][1],
            "split": assigned[key],
            "records": counts.get(key, 0),
        }
        for key in sorted(assigned)
    ]
    data = schemas.to_table(config.T_COMPOSER_SPLITS, rows)
    written = storage.publish(config.T_COMPOSER_SPLITS, data)
    shares = record_shares(counts, assigned)
    per_split = split_records(counts, assigned)
    new = len(set(assigned) - set(known))
    context.log.info(
        f"{len(assigned)} composers ({new} new); record shares "
        + ", ".join(f"{s} {shares[s]:.1%}" for s in SPLITS)
    )
    return table_result(
        config.T_COMPOSER_SPLITS,
        data,
        written=written,
        code_version=VERSION,
        uri=storage.table_uri(config.T_COMPOSER_SPLITS),
        metadata={
            "record_shares": dg.MetadataValue.md(shares_markdown(shares, per_split)),
            **{f"share_{s}": round(shares[s], 4) for s in SPLITS},
            "new_composers": new,
        },
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


def _splits(storage: Storage) -> dict[str, str]:
    data = storage.read_table(config.T_COMPOSER_SPLITS)
    if data is None:
        raise dg.Failure("composer_splits is not materialized yet: materialize it first.")
    return dict(
        zip(data.column("composer_key").to_pylist(), data.column("split").to_pylist(), strict=True)
    )


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
        composer_splits,
        mta_removals,
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
    splits = _splits(storage)
    removed = stored_removals(storage)
    records = []
    for f in sorted(features, key=lambda f: f["vid"]):
        file = files.get(f["vid"])
        if file is None or f["vid"] in removed.vids:
            continue
        key = composer_key(file["surname"], file["firstname"])
        if key not in splits:
            raise dg.Failure(
                f"composer {file['surname']}, {file['firstname']} has no split yet: materialize "
                "composer_splits first."
            )
        records.append(
            build_record(
                file,
                f,
                meta.get(f["vid"]),
                videos.get(f["vid"]),
                comments.get(f["vid"], []),
                statuses.get(f["vid"]),
                repeated,
                split=splits[key],
                removed=removed.comment_ids,
            )
        )
    data = pa.Table.from_pylist(records, schema=schemas.MTA_RECORDS)
    written = storage.publish(config.T_MTA_RECORDS, data, shard)
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
            "removed_videos": sum(1 for f in features if f["vid"] in removed.vids),
            "spam_comments": sum(c["is_spam"] for r in records for c in r["comments"]),
            "splits": dg.MetadataValue.md(
                counts_markdown(
                    {s: sum(r["split"] == s for r in records) for s in SPLITS},
                    "split",
                )
            ),
            "languages": dg.MetadataValue.md(
                bars_markdown(dict(languages.most_common(8)), "language")
            ),
        },
    )
