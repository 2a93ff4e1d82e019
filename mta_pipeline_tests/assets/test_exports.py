"""The dataset and its exports, materialized for real: TSV, Parquet, DuckDB views, the card."""

import csv

import duckdb
import pandas as pd
import pyarrow.parquet as pq

from mta_pipeline import config, schemas
from mta_pipeline.core.tsv import TSV_COLUMNS, unescape_field
from mta_pipeline.definitions import defs
from mta_pipeline.resources.storage import Storage
from mta_pipeline.runner import materialize


def export(data, name):
    return data / config.LAKE_DIR / config.EXPORT_DIR / name


def catalog_rows(sql):
    with duckdb.connect(str(config.duckdb_path()), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def test_tsv_round_trips_through_pandas_and_duckdb(full_pipeline, corpus):
    data = full_pipeline[0]
    path = export(data, config.TSV_FILE)
    frame = pd.read_csv(path, sep="\t", keep_default_na=False, quoting=csv.QUOTE_NONE, dtype=str)
    assert tuple(frame.columns) == TSV_COLUMNS
    assert len(frame) == len(corpus.good) == len(path.read_text("utf-8").splitlines()) - 1
    assert frame["index"].tolist() == [str(i) for i in range(len(frame))]
    assert frame["vid"].is_unique and set(frame["vid"]) == set(corpus.good)
    lines = path.read_bytes().split(b"\n")[1:-1]
    assert [line.decode().split("\t") for line in lines] == frame.values.tolist()
    from_duckdb = (
        duckdb.connect()
        .sql(
            "SELECT * FROM read_csv(?, delim='\t', quote='', escape='', header=true, "
            "all_varchar=true, nullstr='\\N')",
            params=[str(path)],
        )
        .fetchall()
    )
    assert [list(r) for r in from_duckdb] == frame.values.tolist()


def test_tsv_matches_the_dataset_view_after_unescaping(full_pipeline):
    data = full_pipeline[0]
    path = export(data, config.TSV_FILE)
    frame = pd.read_csv(path, sep="\t", keep_default_na=False, quoting=csv.QUOTE_NONE, dtype=str)
    view = catalog_rows(
        'SELECT "index", old_id, vid, "describe", reply_1, reply_5 FROM dataset ORDER BY 1'
    )
    assert len(view) == len(frame)
    for row, (_, tsv) in zip(view, frame.iterrows(), strict=True):
        assert (
            str(row[0]) == tsv["index"]
            and (str(row[1]) if row[1] is not None else "") == tsv["old_id"]
        )
        assert row[2] == tsv["vid"] and row[3] == unescape_field(tsv["describe"])
        assert row[4] == unescape_field(tsv["reply_1"]) and row[5] == unescape_field(tsv["reply_5"])
    assert any("\n" in r[3] for r in view)  # descriptions keep their lines; the TSV escapes them
    described = sum(1 for r in view if r[3])
    assert 0 < described < len(view)  # deleted videos have no description: "" not NULL


def test_parquet_files_have_the_schema_and_the_same_records(full_pipeline, corpus):
    data = full_pipeline[0]
    single = pq.read_table(export(data, config.PARQUET_FILE))
    assert single.schema.remove(0).equals(schemas.MTA_RECORDS)
    assert single.column("index").to_pylist() == list(range(len(corpus.good)))
    hive = (
        duckdb.connect()
        .execute(
            "SELECT count(*), count(DISTINCT shard) FROM read_parquet(?, hive_partitioning=true)",
            [f"{data / config.LAKE_DIR / config.T_MTA_RECORDS}/*/*.parquet"],
        )
        .fetchone()
    )
    assert hive[0] == single.num_rows
    rows = single.to_pylist()
    assert all(r["reply_5"] is not None and r["describe"] is not None for r in rows)
    assert {r["split"] for r in rows} <= {"train", "validation", "test"}
    by_composer = {}
    for r in rows:
        by_composer.setdefault((r["surname"], r["firstname"]), set()).add(r["split"])
    assert all(len(s) == 1 for s in by_composer.values())
    comments = [c for r in rows for c in r["comments"]]
    assert any(c["is_spam"] for c in comments) and any(c["is_uploader"] for c in comments)
    assert {c["lang"] for c in comments} >= {"en", "ru", "ja"}


def test_duckdb_views_and_checks(full_pipeline):
    counts = catalog_rows(
        "SELECT (SELECT count(*) FROM dataset), (SELECT count(*) FROM dataset_full)"
    )
    assert counts[0][0] == counts[0][1] > 0
    columns = [r[0] for r in catalog_rows("DESCRIBE dataset")]
    assert tuple(columns) == TSV_COLUMNS


def test_the_dataset_card_credits_the_sources(full_pipeline, corpus):
    card = export(full_pipeline[0], config.DATASET_CARD).read_text("utf-8")
    assert f"| records (good MIDI files) | {len(corpus.good)} |" in card
    assert card.count("CC BY 4.0") >= 2 and "belong to their authors" in card
    assert "Videos scraped:" in card and "not scraped" not in card.split("Videos scraped:")[1][:40]


def test_an_unchanged_rerun_rewrites_no_export(full_pipeline):
    data, instance, _ = full_pipeline
    files = [export(data, n) for n in (config.TSV_FILE, config.PARQUET_FILE, config.DATASET_CARD)]
    before = [p.stat().st_mtime_ns for p in files]
    outcome = materialize(
        defs, instance, "mta_tsv,mta_parquet,mta_dataset_card", echo=lambda _: None
    )
    assert outcome.ok
    assert [p.stat().st_mtime_ns for p in files] == before


def test_a_crash_mid_export_leaves_the_previous_files_whole(full_pipeline, monkeypatch):
    data, instance, _ = full_pipeline
    tsv = export(data, config.TSV_FILE)
    old = tsv.read_bytes()
    monkeypatch.setattr(
        "mta_pipeline.assets.exports.tsv_bytes", lambda rows: b"index\told_id\n" + b"x" * 10
    )
    real_write = Storage.write

    def crash_halfway(self, relpath, payload):
        if relpath.endswith(config.TSV_FILE):
            _, root = self.filesystem()
            with open(f"{root}/{relpath}.partial.tmp", "wb") as fh:
                fh.write(payload[: len(payload) // 2])
            raise OSError("disk vanished mid-write")
        return real_write(self, relpath, payload)

    monkeypatch.setattr(Storage, "write", crash_halfway)
    outcome = materialize(defs, instance, "mta_tsv", echo=lambda _: None, only_stale=False)
    assert not outcome.ok and "disk vanished" in outcome.failures[0]
    assert tsv.read_bytes() == old
