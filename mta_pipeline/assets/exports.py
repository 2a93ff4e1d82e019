"""Exports rebuilt from every shard's records: the TSV, the single-file Parquet, the dataset card.

Each file is written through the storage layer: in one piece, and only when its bytes changed, so
readers never see a partial export and an unchanged rerun rewrites nothing.
"""

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from mta_pipeline import config, schemas
from mta_pipeline.assets.results import file_result
from mta_pipeline.code_versions import code_version
from mta_pipeline.core.dataset_card import dataset_card
from mta_pipeline.core.tsv import TSV_COLUMNS, tsv_bytes
from mta_pipeline.resources.storage import Storage, parquet_bytes

GROUP = "exports"
VERSION = code_version(__name__)
EAGER = dg.AutomationCondition.eager()
DEPS = [config.T_MTA_RECORDS]


def export_path(name: str) -> str:
    return f"{config.EXPORT_DIR}/{name}"


def ordered_records(storage: Storage) -> pa.Table:
    """All records in the dataset's order, with `index` (schemas.RECORD_ORDER). No record shard
    in the lake at all means a wrong lake or nothing built yet: that fails rather than replacing
    the exports with empty files."""
    if not storage.glob(f"{config.T_MTA_RECORDS}/shard=*/part.parquet"):
        raise dg.Failure(
            f"no mta_records in the lake at {storage.uri(config.T_MTA_RECORDS)}: materialize "
            "mta_records first (or check MTA_LAKE_URL)."
        )
    return schemas.sort_records(storage.read_all(config.T_MTA_RECORDS))


def text_coverage(data: pa.Table) -> dict[str, float]:
    """Shares of records with a description and with at least one reply."""
    n = max(1, data.num_rows)
    described = pc.sum(pc.not_equal(data.column("describe"), "")).as_py() or 0
    replied = pc.sum(pc.not_equal(data.column("reply_1"), "")).as_py() or 0
    return {"share_with_description": described / n, "share_with_a_reply": replied / n}


def _export(storage: Storage, name: str, body: bytes, **metadata: object) -> dg.MaterializeResult:
    relpath = export_path(name)
    written = storage.write_if_changed(relpath, body)
    return file_result(
        body, written=written, code_version=VERSION, uri=storage.uri(relpath), metadata=metadata
    )


@dg.asset(
    group_name=GROUP, code_version=VERSION, automation_condition=EAGER, deps=DEPS, kinds={"tsv"}
)
def mta_tsv(storage: Storage) -> dg.MaterializeResult:
    """`midi_text_dataset.tsv`: the published dataset's columns, one record per line."""
    data = ordered_records(storage)
    body = tsv_bytes(data.select(list(TSV_COLUMNS)).to_pylist())
    coverage = {k: round(v, 4) for k, v in text_coverage(data).items()}
    return _export(storage, config.TSV_FILE, body, rows=data.num_rows, **coverage)


@dg.asset(
    group_name=GROUP, code_version=VERSION, automation_condition=EAGER, deps=DEPS, kinds={"parquet"}
)
def mta_parquet(storage: Storage) -> dg.MaterializeResult:
    """The full records (raw and clean text, flags, features, provenance) as one Parquet file;
    the same records hive-partitioned by shard are `<lake>/mta_records/shard=*/part.parquet`."""
    data = ordered_records(storage)
    hive = storage.uri(f"{config.T_MTA_RECORDS}/shard=*/part.parquet")
    return _export(
        storage, config.PARQUET_FILE, parquet_bytes(data), rows=data.num_rows, hive_partitioned=hive
    )


@dg.asset(
    group_name=GROUP,
    code_version=VERSION,
    automation_condition=EAGER,
    deps=DEPS,
    kinds={"markdown"},
)
def mta_dataset_card(storage: Storage) -> dg.MaterializeResult:
    """`DATASET.md` beside the exports: counts, columns, sources and licences, rules, dates."""
    text = dataset_card(ordered_records(storage))
    return _export(
        storage, config.DATASET_CARD, text.encode("utf-8"), card=dg.MetadataValue.md(text)
    )
