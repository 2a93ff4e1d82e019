"""Exports rebuilt from every shard's records: the TSV, the single-file Parquet, the dataset card.

Each file is written in one piece (temporary name then rename, or one PUT on S3), and only when
its bytes changed, so readers never see a partial export and an unchanged rerun rewrites nothing.
"""

import hashlib
import io

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mta_pipeline import config, schemas
from mta_pipeline.assets.dataset import mta_records
from mta_pipeline.core.dataset_card import dataset_card
from mta_pipeline.core.tsv import tsv_bytes
from mta_pipeline.resources.lake import LakeResource

GROUP = "exports"


def export_path(name: str) -> str:
    return f"{config.EXPORT_DIR}/{name}"


def ordered_records(lake: LakeResource) -> pa.Table:
    """All records in the dataset's order (old_id, unknown last, then vid), with `index`."""
    data = lake.read_shards(config.T_MTA_RECORDS, schemas.MTA_RECORDS)
    data = data.sort_by([("old_id", "ascending"), ("vid", "ascending")])
    if data.num_rows and data.column("old_id").null_count:
        known = pc.is_valid(data.column("old_id"))
        data = pa.concat_tables([data.filter(known), data.filter(pc.invert(known))])
    return data.add_column(0, "index", pa.array(range(data.num_rows), pa.int64()))


def write_if_changed(lake: LakeResource, relpath: str, data: bytes) -> bool:
    """Write unless the file already holds exactly these bytes; True when written."""
    fs, root = lake.filesystem()
    path = f"{root}/{relpath}"
    if fs.exists(path) and fs.size(path) == len(data):
        with fs.open(path, "rb") as fh:
            if hashlib.sha256(fh.read()).digest() == hashlib.sha256(data).digest():
                return False
    lake.write_bytes(relpath, data)
    return True


def text_coverage(data: pa.Table) -> dict[str, float]:
    """Shares of records with a description and with at least one reply."""
    n = max(1, data.num_rows)
    described = pc.sum(pc.not_equal(data.column("describe"), "")).as_py() or 0
    replied = pc.sum(pc.not_equal(data.column("reply_1"), "")).as_py() or 0
    return {"share_with_description": described / n, "share_with_a_reply": replied / n}


@dg.asset(
    group_name=GROUP,
    code_version="1",
    automation_condition=dg.AutomationCondition.eager(),
    deps=[mta_records],
    kinds={"tsv"},
)
def mta_tsv(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    """`midi_text_dataset.tsv`: the published dataset's columns, one record per line."""
    data = ordered_records(lake)
    rows = data.select(["index", "old_id", "vid", "describe", *[f"reply_{i}" for i in range(1, 6)]])
    body = tsv_bytes(rows.to_pylist())
    relpath = export_path(config.TSV_FILE)
    written = write_if_changed(lake, relpath, body)
    context.log.info(f"{relpath}: {data.num_rows} records, {'written' if written else 'unchanged'}")
    return dg.MaterializeResult(
        metadata={
            "rows": data.num_rows,
            "bytes": len(body),
            "unchanged": not written,
            "uri": lake.uri(relpath),
            **{k: round(v, 4) for k, v in text_coverage(data).items()},
        },
        data_version=dg.DataVersion(hashlib.sha256(body).hexdigest()),
    )


@dg.asset(
    group_name=GROUP,
    code_version="1",
    automation_condition=dg.AutomationCondition.eager(),
    deps=[mta_records],
    kinds={"parquet"},
)
def mta_parquet(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    """The full records (raw and clean text, flags, features, provenance) as one Parquet file;
    the same records hive-partitioned by shard are `<lake>/mta_records/shard=*/part.parquet`."""
    data = ordered_records(lake)
    buf = io.BytesIO()
    pq.write_table(data, buf, compression="zstd")
    relpath = export_path(config.PARQUET_FILE)
    written = write_if_changed(lake, relpath, buf.getvalue())
    return dg.MaterializeResult(
        metadata={
            "rows": data.num_rows,
            "bytes": buf.tell(),
            "unchanged": not written,
            "uri": lake.uri(relpath),
            "hive_partitioned": lake.uri(f"{config.T_MTA_RECORDS}/shard=*/part.parquet"),
        }
    )


@dg.asset(
    group_name=GROUP,
    code_version="1",
    automation_condition=dg.AutomationCondition.eager(),
    deps=[mta_records],
    kinds={"markdown"},
)
def mta_dataset_card(lake: LakeResource) -> dg.MaterializeResult:
    """`DATASET.md` beside the exports: counts, columns, sources and licences, rules, dates."""
    data = ordered_records(lake)
    text = dataset_card(data)
    relpath = export_path(config.DATASET_CARD)
    written = write_if_changed(lake, relpath, text.encode("utf-8"))
    return dg.MaterializeResult(
        metadata={
            "unchanged": not written,
            "uri": lake.uri(relpath),
            "card": dg.MetadataValue.md(text),
        }
    )
