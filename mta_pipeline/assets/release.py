"""The release: `<lake>/release/`, a Hugging Face-loadable dataset folder rebuilt from every
shard's records and published as one set (resources/folders.py).

One step writes the whole folder, so the TSV, the Parquet files, the MIDI files and the card are
always from one build; its three assets say what changed for each part: `mta_tsv` (the TSV),
`mta_parquet` (the config/split Parquet files and the MIDI files) and `mta_dataset_card`
(`README.md`).
"""

import functools
import hashlib
from collections.abc import Callable

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from mta_pipeline import config, schemas
from mta_pipeline.assets.results import CODE_VERSION, UNCHANGED, progress, step_outputs
from mta_pipeline.code_versions import code_version
from mta_pipeline.core.dataset_card import dataset_card
from mta_pipeline.core.release import (
    CONFIGS,
    config_rows,
    midi_path,
    release_table,
    split_files,
    with_tokens,
)
from mta_pipeline.core.splits import SPLITS
from mta_pipeline.core.tsv import TSV_COLUMNS, tsv_bytes
from mta_pipeline.resources.folders import FolderFile, publish_folder
from mta_pipeline.resources.release import stored_removals
from mta_pipeline.resources.storage import Storage, parquet_bytes

GROUP = "exports"
VERSION = code_version(__name__)
EAGER = dg.AutomationCondition.eager()
DEPS = [config.T_MTA_RECORDS, config.T_MTA_REMOVALS, config.T_MIDI_TOKENS]
TOKENIZER_LAKE_PATH = f"{config.T_MIDI_TOKENS}/{config.TOKENIZER_FILE}"
# The config whose Parquet files carry `tokens`: the others are its subsets (filter `default` on
# `curated`), and three copies of the largest column would triple the release.
TOKENS_CONFIG = "default"
TSV, PARQUET, CARD = "mta_tsv", "mta_parquet", "mta_dataset_card"


def release_path(name: str) -> str:
    return f"{config.RELEASE_DIR}/{name}"


def ordered_records(storage: Storage) -> pa.Table:
    """All records in the dataset's order, with `index` (schemas.RECORD_ORDER). No record shard
    in the lake at all means a wrong lake or nothing built yet: that fails rather than replacing
    the release with an empty one."""
    if not storage.glob(f"{config.T_MTA_RECORDS}/shard=*/part.parquet"):
        raise dg.Failure(
            f"no mta_records in the lake at {storage.uri(config.T_MTA_RECORDS)}: materialize "
            "mta_records first (or check MTA_LAKE_URL)."
        )
    records = storage.read_all(config.T_MTA_RECORDS)
    removed = stored_removals(storage)
    if removed.vids:
        vids = pa.array(sorted(removed.vids), pa.string())
        records = records.filter(pc.invert(pc.is_in(records.column("vid"), vids)))
    if removed.comment_ids and _holds_any(records, removed.comment_ids):
        raise dg.Failure(
            "mta_records still holds comments on the removal list: a record shard was not "
            "rebuilt after the list changed; run `mta materialize` (it rebuilds them) first."
        )
    return schemas.sort_records(records)


def _holds_any(records: pa.Table, comment_ids: frozenset[str]) -> bool:
    ids = pc.struct_field(pc.list_flatten(records.column("comments")), "comment_id")
    return bool(pc.any(pc.is_in(ids, pa.array(sorted(comment_ids), pa.string()))).as_py())


def text_coverage(data: pa.Table) -> dict[str, float]:
    """Shares of records with a description and with at least one reply."""
    n = max(1, data.num_rows)
    described = pc.sum(pc.not_equal(data.column("describe"), "")).as_py() or 0
    replied = pc.sum(pc.not_equal(data.column("reply_1"), "")).as_py() or 0
    return {"share_with_description": described / n, "share_with_a_reply": replied / n}


def _midi_files(storage: Storage, records: pa.Table) -> dict[str, FolderFile]:
    """The release's MIDI files, read from each shard's MIDI bytes in the lake when (and only
    when) the folder needs them: a shard's bytes are read once, by the first file it changed."""

    @functools.cache
    def shard_bytes(shard: str) -> dict[str, bytes]:
        return storage.read_midi(shard)

    def reader(vid: str, shard: str, sha: str) -> Callable[[], bytes]:
        def read() -> bytes:
            data = shard_bytes(shard).get(vid)
            if data is None or hashlib.sha256(data).hexdigest() != sha:
                raise dg.Failure(
                    f"the MIDI file of {vid} (shard {shard}) is missing or changed in "
                    f"{storage.uri(storage.midi_relpath(shard))}: materialize midi_files for "
                    f"shard {shard} again."
                )
            return data

        return read

    return {
        midi_path(vid): FolderFile(sha, reader(vid, shard, sha))
        for vid, shard, sha in zip(
            records.column("vid").to_pylist(),
            records.column("shard").to_pylist(),
            records.column("sha256").to_pylist(),
            strict=True,
        )
    }


def _result(
    key: str, changed: list[str], prefixes: tuple[str, ...], **metadata
) -> dg.MaterializeResult:
    mine = [p for p in changed if p.startswith(prefixes)]
    return dg.MaterializeResult(
        asset_key=key,
        metadata={
            UNCHANGED: not mine,
            CODE_VERSION: VERSION,
            "files_changed": len(mine),
            **metadata,
        },
    )


@dg.multi_asset(
    specs=step_outputs(
        VERSION,
        DEPS,
        {"parquet", "tsv"},
        mta_tsv="`release/midi_text_dataset.tsv`: MusicTextAlignment's columns, CSV-quoted as "
        "pandas writes it.",
        mta_parquet="`release/data/<config>/<split>-*.parquet`, `release/midi/<vid>.mid` and "
        "`release/tokenizer.json`.",
        mta_dataset_card="`release/README.md`: the dataset card with Hugging Face YAML.",
    ),
    group_name=GROUP,
    can_subset=False,
)
def mta_release(context: dg.AssetExecutionContext, storage: Storage):
    """The whole release folder, published as one set."""
    records = ordered_records(storage)
    data = release_table(records)
    tsv = tsv_bytes(data.select(list(TSV_COLUMNS)).to_pylist())
    files: dict[str, FolderFile] = {config.TSV_FILE: FolderFile.of_bytes(tsv)}
    configs = {name: config_rows(data, name) for name in CONFIGS}
    tokenizer = storage.read_bytes(TOKENIZER_LAKE_PATH)
    tokens = storage.read_all(config.T_MIDI_TOKENS)
    without_tokens = 0
    for name, rows in configs.items():
        for relpath, part in split_files(rows, name).items():
            if name == TOKENS_CONFIG:  # one file's ids in memory at a time, beside the lake's
                part = with_tokens(part, tokens, tokenizer)
                without_tokens += part.column("tokens").null_count
            files[relpath] = FolderFile.of_bytes(parquet_bytes(part))
    del tokens
    files.update(_midi_files(storage, records))
    if tokenizer is not None:
        files[config.TOKENIZER_FILE] = FolderFile.of_bytes(tokenizer)
    if without_tokens:
        context.log.warning(
            f"{without_tokens} records have no tokens: materialize midi_tokens (the lake holds "
            "no ids of these files made with its tokenizer.json)"
        )
    card = dataset_card(data, configs, tokens=tokenizer is not None)
    files[config.DATASET_CARD] = FolderFile.of_bytes(card.encode("utf-8"))
    progress(context, f"release: {data.num_rows} records, {len(files)} files; publishing")
    changed = publish_folder(storage, config.RELEASE_DIR, files)
    context.log.info(f"release at {storage.uri(config.RELEASE_DIR)}: {len(changed)} files changed")
    root = dg.MetadataValue.path(storage.uri(config.RELEASE_DIR))
    coverage = {k: round(v, 4) for k, v in text_coverage(data).items()}
    yield _result(
        TSV,
        changed,
        (config.TSV_FILE,),
        rows=data.num_rows,
        bytes=len(tsv),
        sha256=hashlib.sha256(tsv).hexdigest(),
        **{"dagster/uri": dg.MetadataValue.path(storage.uri(release_path(config.TSV_FILE)))},
        **coverage,
    )
    counts = {
        f"{name}_{split}": int(pc.sum(pc.equal(rows.column("split"), split)).as_py() or 0)
        for name, rows in configs.items()
        for split in SPLITS
    }
    yield _result(
        PARQUET,
        changed,
        ("data/", "midi/", config.TOKENIZER_FILE),
        **{"dagster/uri": root},
        **counts,
        midi_files=data.num_rows,
        records_without_tokens=without_tokens,
    )
    yield _result(
        CARD,
        changed,
        (config.DATASET_CARD,),
        card=dg.MetadataValue.md(card.split("\n---\n", 1)[-1]),
        **{"dagster/uri": dg.MetadataValue.path(storage.uri(release_path(config.DATASET_CARD)))},
    )
