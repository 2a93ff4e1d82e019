"""Column names and Arrow types of every table: the one source of truth for Parquet and DuckDB.

Writing through these schemas gives empty shards the right types and makes a renamed or
retyped column fail loudly at the write, not silently in a reader's query.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pyarrow as pa

from mta_pipeline import config

STR, INT, FLOAT, BOOL = pa.string(), pa.int64(), pa.float64(), pa.bool_()

MIDI_FILES = pa.schema(
    [
        ("vid", STR),
        ("shard", STR),
        ("surname", STR),
        ("firstname", STR),
        ("title", STR),
        ("member", STR),
        ("size_bytes", INT),
        ("sha256", STR),
        ("path", STR),
    ]
)

# A shard's MIDI bytes in the lake (`midi/shard=<k>/part.parquet`), not a catalog table.
MIDI_BYTES = pa.schema([("vid", STR), ("sha256", STR), ("bytes", pa.binary())])

MIDI_REJECTS = pa.schema(
    [
        ("member", STR),
        ("shard", STR),
        ("reason", STR),
        ("stage", STR),
        ("vid", STR),
        ("sha256", STR),  # of the bytes that failed to parse (stage midi_features)
    ]
)

MIDI_FEATURES = pa.schema(
    [
        ("vid", STR),
        ("shard", STR),
        ("sha256", STR),
        ("duration_s", FLOAT),
        ("n_notes", INT),
        ("pitch_min", INT),
        ("pitch_max", INT),
        ("pitch_mean", FLOAT),
        ("velocity_mean", FLOAT),
        ("velocity_std", FLOAT),
        ("notes_per_s", FLOAT),
        ("pedal_ratio", FLOAT),
        ("max_polyphony", INT),
        ("key_estimate", STR),
        ("title_key", STR),
        ("key_matches_title", BOOL),
        ("parser", STR),  # symusic, pretty_midi, or pretty_midi_fallback (symusic refused it)
    ]
)

MIDI_TOKENS = pa.schema(
    [
        ("vid", STR),
        ("shard", STR),
        ("sha256", STR),
        ("tokenizer", STR),  # core.midi_tokens.TOKENIZER_NAME: which vocabulary the ids index
        ("n_tokens", INT),
        ("tokens", pa.list_(pa.int32())),
    ]
)

GIANTMIDI_METADATA = pa.schema(
    [
        ("row_index", INT),
        ("surname", STR),
        ("firstname", STR),
        ("music", STR),
        ("nationality", STR),
        ("birth", STR),
        ("death", STR),
        ("youtube_title", STR),
        ("youtube_id", STR),
        ("similarity", FLOAT),
        ("piano_solo_prob", FLOAT),
        ("audio_name", STR),
        ("audio_duration", FLOAT),
        ("giant_midi_piano", INT),
        ("split", STR),
        ("surname_in_youtube_title", INT),
    ]
)

TS = pa.timestamp("us", tz="UTC")

YOUTUBE_VIDEOS = pa.schema(
    [
        ("vid", STR),
        ("shard", STR),
        ("title", STR),
        ("description", STR),
        ("channel_id", STR),
        ("channel_title", STR),
        ("published_at", TS),
        ("default_language", STR),
        ("default_audio_language", STR),
        ("view_count", INT),
        ("like_count", INT),
        ("comment_count", INT),
        ("status", STR),
        ("reason", STR),
        ("scraped_at", TS),
    ]
)

YOUTUBE_COMMENTS = pa.schema(
    [
        ("vid", STR),
        ("shard", STR),
        ("rank", INT),
        ("comment_id", STR),
        ("text", STR),
        ("text_display", STR),
        ("like_count", INT),
        ("published_at", TS),
        ("author_channel_id", STR),
        ("author_display_name", STR),
        ("reply_count", INT),
        ("order", STR),
        ("scraped_at", TS),
    ]
)

YOUTUBE_COMMENT_STATUS = pa.schema(
    [
        ("vid", STR),
        ("shard", STR),
        ("status", STR),
        ("reason", STR),
        ("n_comments", INT),
        ("scraped_at", TS),
    ]
)

YOUTUBE_QUOTA = pa.schema(
    [
        ("day_pt", pa.date32()),
        ("units", INT),
        ("endpoint", STR),
        ("outcome", STR),
        ("shard", STR),
        ("run_id", STR),
        ("at", TS),
        ("call_id", STR),
    ]
)

COMMENT = pa.struct(
    [
        ("rank", INT),
        ("comment_id", STR),
        ("text_raw", STR),
        ("text", STR),
        ("lang", STR),
        ("lang_confidence", FLOAT),
        ("n_chars", INT),
        ("has_url", BOOL),
        ("is_spam", BOOL),
        ("is_repeated", BOOL),
        ("is_uploader", BOOL),
        ("like_count", INT),
        ("published_at", TS),
        ("author_channel_id", STR),
        ("reply_count", INT),
    ]
)

MTA_RECORDS = pa.schema(
    [
        ("vid", STR),
        ("shard", STR),
        ("old_id", INT),
        ("surname", STR),
        ("firstname", STR),
        ("title", STR),
        ("member", STR),
        ("split", STR),
        ("music", STR),
        ("nationality", STR),
        ("birth", STR),
        ("death", STR),
        ("youtube_title", STR),
        ("similarity", FLOAT),
        ("piano_solo_prob", FLOAT),
        ("audio_duration", FLOAT),
        ("giant_midi_piano", INT),
        ("surname_in_youtube_title", INT),
        ("giantmidi_split", STR),
        ("curated", BOOL),
        *[(f.name, f.type) for f in MIDI_FEATURES if f.name not in ("vid", "shard", "parser")],
        ("caption", STR),
        ("video_status", STR),
        ("video_title", STR),
        ("channel_id", STR),
        ("channel_title", STR),
        ("published_at", TS),
        ("default_language", STR),
        ("default_audio_language", STR),
        ("view_count", INT),
        ("like_count", INT),
        ("comment_count", INT),
        ("video_scraped_at", TS),
        ("describe_raw", STR),
        ("describe", STR),
        ("describe_lang", STR),
        ("describe_lang_confidence", FLOAT),
        ("describe_n_chars", INT),
        ("describe_has_url", BOOL),
        ("comments_status", STR),
        ("comments_scraped_at", TS),
        ("comment_order", STR),
        *[(f"reply_{i}", STR) for i in range(1, 6)],
        ("n_replies", INT),
        ("comments", pa.list_(COMMENT)),
    ]
)

COMMENT_REPETITION = pa.schema([("signature", STR)])

COMPOSER_SPLITS = pa.schema(
    [
        ("composer_key", STR),
        ("surname", STR),
        ("firstname", STR),
        ("split", STR),
        ("records", INT),  # at the last build; 0 for a composer no longer in the archive
    ]
)

MTA_REMOVALS = pa.schema([("kind", STR), ("id", STR)])  # kind: "vid" or "comment"

# Columns kept in the lake but not copied into the DuckDB catalog: DuckDB's insert of a list
# column takes about twenty times its size in memory, so 168 MB of token ids at full size would
# take the tokens step past 1.5 GiB. Their lake Parquet (and the release) holds them.
CATALOG_OMITS: dict[str, tuple[str, ...]] = {config.T_MIDI_TOKENS: ("tokens",)}

# Tables whose shards hold several lake parts, each owned by one step: the part's file name is
# the value of this column in the rows it holds (`midi_rejects/shard=<k>/<stage>.parquet`).
PART_COLUMNS: dict[str, str] = {config.T_MIDI_REJECTS: "stage"}

SCHEMAS: dict[str, pa.Schema] = {
    config.T_MIDI_FILES: MIDI_FILES,
    config.T_MIDI_REJECTS: MIDI_REJECTS,
    config.T_MIDI_FEATURES: MIDI_FEATURES,
    config.T_MIDI_TOKENS: MIDI_TOKENS,
    config.T_GIANTMIDI_METADATA: GIANTMIDI_METADATA,
    config.T_YOUTUBE_VIDEOS: YOUTUBE_VIDEOS,
    config.T_YOUTUBE_COMMENTS: YOUTUBE_COMMENTS,
    config.T_YOUTUBE_COMMENT_STATUS: YOUTUBE_COMMENT_STATUS,
    config.T_YOUTUBE_QUOTA: YOUTUBE_QUOTA,
    config.T_MTA_RECORDS: MTA_RECORDS,
    config.T_COMMENT_REPETITION: COMMENT_REPETITION,
    config.T_COMPOSER_SPLITS: COMPOSER_SPLITS,
    config.T_MTA_REMOVALS: MTA_REMOVALS,
}


def to_table(name: str, rows: Iterable[Mapping[str, object]]) -> pa.Table:
    """Rows as an Arrow table of the named schema; missing keys become nulls, extra keys fail."""
    schema = SCHEMAS[name]
    rows = list(rows)
    extra = {k for r in rows for k in r} - set(schema.names)
    if extra:
        raise ValueError(f"{name}: columns not in the schema: {sorted(extra)}")
    return pa.Table.from_pylist([dict(r) for r in rows], schema=schema)


# The dataset's row order, used by the exports and the DuckDB views alike: GiantMIDI's metadata
# order (`old_id`, records without one last), then `vid`.
RECORD_ORDER = ("old_id", "vid")
RECORD_ORDER_SQL = ", ".join(f'"{c}" NULLS LAST' for c in RECORD_ORDER)

# The published TSV's columns, exactly MusicTextAlignment's (written by `core/tsv.py`).
TSV_COLUMNS = (
    "index",
    "old_id",
    "vid",
    "describe",
    "reply_1",
    "reply_2",
    "reply_3",
    "reply_4",
    "reply_5",
)

# The catalog's views, by name: (the table they read, their SELECT). `dataset` has the TSV's
# columns, `dataset_full` everything, both with the TSV's `index`.
_INDEX = f'row_number() OVER (ORDER BY {RECORD_ORDER_SQL}) - 1 AS "index"'
CATALOG_VIEWS: dict[str, tuple[str, str]] = {
    "dataset": (
        config.T_MTA_RECORDS,
        f"SELECT {_INDEX}, "
        + ", ".join(f'"{c}"' for c in TSV_COLUMNS if c != "index")
        + f" FROM {config.T_MTA_RECORDS}",
    ),
    "dataset_full": (config.T_MTA_RECORDS, f"SELECT {_INDEX}, * FROM {config.T_MTA_RECORDS}"),
}


def sort_records(data: pa.Table) -> pa.Table:
    """`data` in RECORD_ORDER, with `index` 0..n-1 as the first column."""
    data = data.sort_by([(c, "ascending", "at_end") for c in RECORD_ORDER])
    return data.add_column(0, "index", pa.array(range(data.num_rows), pa.int64()))
