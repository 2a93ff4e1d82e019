"""What the release folder holds, computed from the records (no I/O here).

Layout (Hugging Face's conventions, so `datasets.load_dataset("<release dir>")` reads it):
`README.md` (the card, YAML front matter naming the configs), `data/<config>/<split>-NNNNN-of-
NNNNN.parquet` for every config and split, `midi/<vid>.mid`, `midi_text_dataset.tsv`.

Configs: `default` every record; `curated` GiantMIDI's curated subset (`curated`:
`giant_midi_piano = 1` and `surname_in_youtube_title = 1`); `clean_en` the curated records with
English human text (an English description, or an English comment among the five replies).
A split without records has no file and is left out of its config's `data_files` (the
`datasets` library cannot load an empty Parquet file); a config without records is left out.

Privacy: no author names, channel ids or comment ids (the API resolves a comment id to its author)
leave the lake as columns; comments keep `is_uploader`. Texts are as their authors wrote them, so
they may mention a channel. The raw (uncleaned) texts stay in the lake's `mta_records` too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from mta_pipeline.core.splits import SPLITS
from mta_pipeline.core.text_flags import reply_comments
from mta_pipeline.core.token_ids import config_digest

CONFIGS = ("default", "curated", "clean_en")
CONFIG_DESCRIPTIONS = {
    "default": "every record",
    "curated": "GiantMIDI's curated subset: giant_midi_piano = 1 and surname_in_youtube_title = 1",
    "clean_en": "curated records with English human text (description or a non-spam reply)",
}
MIDI_DIR = "midi"
ROWS_PER_FILE = 20_000
# Not in the release: who wrote what (privacy), lake bookkeeping, and raw text.
PRIVATE = ("channel_id", "channel_title", "shard", "member", "describe_raw")
PRIVATE_COMMENT_FIELDS = ("author_channel_id", "comment_id", "text_raw")


def midi_path(vid: str) -> str:
    """Where a record's MIDI file is, relative to the release root."""
    return f"{MIDI_DIR}/{vid}.mid"


def release_table(records: pa.Table) -> pa.Table:
    """The release's rows: ordered records (with `index`), `midi_path` after the TSV columns,
    private columns and comment fields dropped (a cast to the struct without them)."""
    data = records.drop_columns([c for c in PRIVATE if c in records.column_names])
    comments = data.schema.field("comments").type
    public = pa.list_(
        pa.struct([f for f in comments.value_type if f.name not in PRIVATE_COMMENT_FIELDS])
    )
    i = data.schema.get_field_index("comments")
    data = data.set_column(i, "comments", data.column("comments").cast(public))
    paths = pa.array([midi_path(v) for v in data.column("vid").to_pylist()], pa.string())
    return data.add_column(data.schema.get_field_index("reply_5") + 1, "midi_path", paths)


def with_tokens(data: pa.Table, tokens: pa.Table, tokenizer: bytes | None) -> pa.Table:
    """`tokens` added after `midi_path`: the `midi_tokens` ids of each record's MIDI bytes
    (matched by vid and sha256) made with the tokenizer saved as `tokenizer`; null where there
    are none (no tokenizer, a file that could not be tokenized, ids of another tokenizer)."""
    column = pa.nulls(data.num_rows, pa.list_(pa.int32()))
    if tokenizer is not None and tokens.num_rows:
        made = pc.ends_with(tokens.column("tokenizer"), f"+{config_digest(tokenizer)}")
        usable = pc.if_else(made, _file_keys(tokens), pa.scalar(None, pa.string()))
        at = pc.index_in(_file_keys(data), value_set=usable)  # only this file's ids are copied
        column = tokens.column("tokens").take(at)
    return data.add_column(data.schema.get_field_index("midi_path") + 1, "tokens", column)


def _file_keys(table: pa.Table) -> pa.Array:
    return pc.binary_join_element_wise(table.column("vid"), table.column("sha256"), "/")


def _has_english_text(row: dict) -> bool:
    """An English description, or an English comment among the five replies."""
    if row["describe_lang"] == "en" and row["describe"]:
        return True
    return any(c["lang"] == "en" for c in reply_comments(row["comments"] or []))


def config_rows(data: pa.Table, name: str) -> pa.Table:
    """The release rows of one config."""
    if name == "default":
        return data
    curated = data.filter(pc.equal(data.column("curated"), True))
    if name == "curated":
        return curated
    if name == "clean_en":
        mask = [
            _has_english_text(r)
            for r in curated.select(["describe", "describe_lang", "comments"]).to_pylist()
        ]
        return curated.filter(pa.array(mask, pa.bool_()))
    raise ValueError(f"unknown config {name!r}; the configs are {', '.join(CONFIGS)}")


def split_files(data: pa.Table, name: str) -> dict[str, pa.Table]:
    """`data/<config>/<split>-NNNNN-of-NNNNN.parquet` → rows, for the splits with records."""
    files = {}
    for split in SPLITS:
        rows = data.filter(pc.equal(data.column("split"), split))
        if not rows.num_rows:
            continue
        n = -(-rows.num_rows // ROWS_PER_FILE)
        for k in range(n):
            part = rows.slice(k * ROWS_PER_FILE, ROWS_PER_FILE)
            files[f"data/{name}/{split}-{k:05d}-of-{n:05d}.parquet"] = part
    return files


def configs_yaml(present: Mapping[str, Sequence[str]]) -> list[str]:
    """The `configs:` block of the card's YAML front matter; `present` names each config's
    splits that have records."""
    lines = ["configs:"]
    for name in CONFIGS:
        splits = [s for s in SPLITS if s in present.get(name, ())]
        if not splits:
            continue
        lines.append(f"- config_name: {name}")
        if name == "default":
            lines.append("  default: true")
        lines.append("  data_files:")
        for split in splits:
            lines += [f"  - split: {split}", f"    path: data/{name}/{split}-*.parquet"]
    return lines


def present_splits(configs: Mapping[str, pa.Table]) -> dict[str, list[str]]:
    """The splits with records, per config."""
    return {
        name: [s for s in SPLITS if pc.any(pc.equal(rows.column("split"), s)).as_py()]
        for name, rows in configs.items()
    }
