"""The release, materialized for real: every reading recipe of the TSV against the `dataset`
view, Hugging Face `datasets` loading the folder, MIDI files, privacy, removals, atomicity."""

import csv
import errno
import hashlib
import json
import os
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from mta_pipeline import config
from mta_pipeline.core.release import CONFIGS
from mta_pipeline.core.splits import SPLITS, composer_key
from mta_pipeline.core.tsv import TSV_COLUMNS
from mta_pipeline.definitions import defs
from mta_pipeline.partitions import SHARD_KEYS
from mta_pipeline.runner import materialize
from mta_pipeline_tests.catalog_db import catalog_db

QUIET = {"echo": lambda _: None}


def release(data):
    return data / config.LAKE_DIR / config.RELEASE_DIR


def catalog_rows(sql):
    with catalog_db() as conn:
        return conn.execute(sql).fetchall()


def view_rows():
    """The `dataset` view as strings, NULL as None."""
    rows = catalog_rows('SELECT * FROM dataset ORDER BY "index"')
    return [[None if v is None else str(v) for v in r] for r in rows]


def _as_text(rows):
    return [["" if v is None else v for v in r] for r in rows]


def test_the_demo_text_holds_what_breaks_naive_readers(full_pipeline):
    texts = [v for r in view_rows() for v in r[3:]]
    assert any(t.startswith('"') for t in texts)
    assert any('"' in t[1:] for t in texts) and any("\\" in t for t in texts)
    assert any("\n" in t for t in texts)
    assert any(any(0x1F300 <= ord(c) <= 0x1FAFF for c in t) for t in texts)  # emoji
    assert not any("&quot;" in t or "&amp;" in t or "&#39;" in t for t in texts)


def test_pandas_reads_the_tsv_exactly_as_the_view(full_pipeline):
    path = release(full_pipeline[0]) / config.TSV_FILE
    frame = pd.read_csv(path, sep="\t", keep_default_na=False, dtype=str)
    assert tuple(frame.columns) == TSV_COLUMNS
    assert frame.to_numpy().tolist() == _as_text(view_rows())
    assert len(pd.read_csv(path, sep="\t")) == len(frame)  # plain read: nothing merged or split


def test_the_csv_module_reads_the_tsv_exactly_as_the_view(full_pipeline):
    path = release(full_pipeline[0]) / config.TSV_FILE
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh, delimiter="\t"))
    assert tuple(rows[0]) == TSV_COLUMNS and rows[1:] == _as_text(view_rows())


def test_duckdb_reads_the_tsv_as_the_view(full_pipeline):
    path = str(release(full_pipeline[0]) / config.TSV_FILE)
    recipe = "SELECT * FROM read_csv(?, delim='\t', header=true, all_varchar=true"
    plain = [list(r) for r in duckdb.sql(recipe + ")", params=[path]).fetchall()]
    assert _as_text(plain) == _as_text(view_rows())  # empty text reads as NULL there
    exact = duckdb.sql(recipe + ", allow_quoted_nulls=false)", params=[path]).fetchall()
    assert [list(r) for r in exact] == view_rows()


def test_datasets_loads_every_config_with_three_splits(full_pipeline, tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    root = release(full_pipeline[0])
    whole = datasets.load_dataset(str(root), cache_dir=str(tmp_path / "cache"))
    assert set(whole) == set(SPLITS)
    n = sum(whole[s].num_rows for s in SPLITS)
    assert n == catalog_rows("SELECT count(*) FROM dataset")[0][0]
    composers = {}
    for split in SPLITS:
        for row in whole[split]:
            assert row["split"] == split
            assert (root / row["midi_path"]).is_file() and not row["midi_path"].startswith("/")
            composers.setdefault(composer_key(row["surname"], row["firstname"]), set()).add(split)
    assert all(len(s) == 1 for s in composers.values())  # composer-disjoint
    curated = datasets.load_dataset(str(root), "curated", cache_dir=str(tmp_path / "cache"))
    assert set(curated) == set(SPLITS)
    rows = [r for s in SPLITS for r in curated[s]]
    assert rows and all(r["curated"] for r in rows) and len(rows) < n
    assert all(r["giant_midi_piano"] == 1 and r["surname_in_youtube_title"] == 1 for r in rows)
    clean = datasets.load_dataset(str(root), "clean_en", cache_dir=str(tmp_path / "cache"))
    assert 0 < sum(clean[s].num_rows for s in SPLITS) <= len(rows)


def test_midi_files_are_the_sources(full_pipeline):
    data = full_pipeline[0]
    root = release(data)
    files = {r[0]: r[1] for r in catalog_rows("SELECT vid, sha256 FROM midi_files")}
    shipped = sorted(p.stem for p in (root / "midi").iterdir())
    assert shipped == sorted(r[2] for r in view_rows())
    for vid in shipped[:20]:
        assert hashlib.sha256((root / "midi" / f"{vid}.mid").read_bytes()).hexdigest() == files[vid]


def test_no_absolute_path_author_or_channel_id_in_the_release(full_pipeline):
    data = full_pipeline[0]
    secrets = {str(data), str(data.resolve())}
    ids = catalog_rows(
        "SELECT DISTINCT author_channel_id FROM youtube_comments WHERE author_channel_id "
        "IS NOT NULL UNION SELECT DISTINCT channel_id FROM youtube_videos WHERE channel_id "
        "IS NOT NULL"
    )
    # Display names are not searched for: texts mention channels ("subscribe to @etudelab").
    needles = [s.encode() for s in secrets] + [r[0].encode() for r in ids]
    assert len(needles) > 20
    for path in release(data).rglob("*"):
        if path.is_file() and path.suffix != ".mid":
            body = path.read_bytes()
            if path.suffix == ".parquet":  # compressed: look at the values
                body = json.dumps(pq.read_table(path).to_pylist(), default=str).encode()
            assert not [n for n in needles if n in body], path
    columns = pq.read_table(release(data) / "data/default/train-00000-of-00001.parquet").schema
    assert not [n for n in ("channel", "author", "display_name") if n in str(columns)]
    assert "is_uploader" in str(columns)


def test_the_card_is_hugging_face_yaml_with_configs_and_credit(full_pipeline):
    card = (release(full_pipeline[0]) / config.DATASET_CARD).read_text("utf-8")
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["license"] == "cc-by-4.0" and front["task_categories"] and front["tags"]
    assert [c["config_name"] for c in front["configs"]] == list(CONFIGS)
    for c in front["configs"]:
        assert [f["split"] for f in c["data_files"]] == list(SPLITS)
    body = card.split("---\n", 2)[2]
    assert body.count("CC BY 4.0") >= 2 and "belong to their authors" in body
    assert "record shares by split: train" in body and "generated" in body
    assert "full_music_pieces_youtube_similarity_pianosoloprob_split.csv" in body


def test_split_record_shares_are_close_to_80_10_10(full_pipeline):
    rows = catalog_rows("SELECT split, count(*) FROM mta_records GROUP BY split")
    n = sum(c for _, c in rows)
    shares = {s: c / n for s, c in rows}
    assert abs(shares["train"] - 0.8) <= 0.05 and abs(shares["test"] - 0.1) <= 0.05, shares


def test_views_and_checks(full_pipeline):
    counts = catalog_rows(
        "SELECT (SELECT count(*) FROM dataset), (SELECT count(*) FROM dataset_full)"
    )
    assert counts[0][0] == counts[0][1] > 0
    assert tuple(r[0] for r in catalog_rows("DESCRIBE dataset")) == TSV_COLUMNS


def test_an_unchanged_rerun_rewrites_nothing(full_pipeline):
    data, instance, _ = full_pipeline
    before = os.stat(release(data)).st_ino, (release(data) / config.TSV_FILE).stat().st_mtime_ns
    outcome = materialize(defs, instance, "mta_tsv", only_stale=False, **QUIET)
    assert outcome.ok
    after = os.stat(release(data)).st_ino, (release(data) / config.TSV_FILE).stat().st_mtime_ns
    assert after == before


def _snapshot(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_disk_full_on_the_cards_write_leaves_the_previous_release_whole(
    full_pipeline, monkeypatch
):
    """The card is the last file of a build: the new TSV is written, then the disk is full for
    the new card. The previous TSV, Parquet files and card stay, byte for byte."""
    data, instance, _ = full_pipeline
    root = release(data)
    before = _snapshot(root)
    monkeypatch.setattr("mta_pipeline.assets.release.tsv_bytes", lambda rows: b"index\n")
    card = "mta_pipeline.assets.release.dataset_card"
    monkeypatch.setattr(card, lambda *a, **k: "---\n---\nanother build\n")
    real_write = Path.write_bytes

    def write_bytes(path: Path, body: bytes) -> int:
        if path.name == config.DATASET_CARD:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(path, body)

    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    outcome = materialize(defs, instance, "mta_tsv", only_stale=False, **QUIET)
    assert not outcome.ok and "No space left" in outcome.failures[0]
    assert _snapshot(root) == before
    assert not list(root.parent.glob(".release.*-*"))  # the staging folder is gone


def test_a_crash_between_the_renames_is_repaired_by_the_next_publish(full_pipeline):
    data, instance, _ = full_pipeline
    root = release(data)
    before = _snapshot(root)
    os.rename(root, root.parent / ".release.previous-crashed")
    outcome = materialize(defs, instance, "mta_tsv", only_stale=False, **QUIET)
    assert outcome.ok
    assert _snapshot(root) == before and not list(root.parent.glob(".release.*-*"))


def test_the_ui_shows_the_split_record_shares(full_pipeline):
    instance = full_pipeline[1]
    event = instance.get_latest_materialization_event(dg.AssetKey("composer_splits"))
    meta = event.asset_materialization.metadata
    shares = {s: meta[f"share_{s}"].value for s in SPLITS}
    assert abs(sum(shares.values()) - 1) < 1e-3 and shares["train"] > 0.7
    assert "| train |" in meta["record_shares"].value


def test_release_tokens_decode_back_to_each_records_midi(full_pipeline):
    """A trainer's path: load `tokens` and `tokenizer.json` from the release, decode to MIDI,
    and get the source's notes back within the tokenizer's grid."""
    import numpy as np
    import symusic

    from mta_pipeline.core.midi_tokens import load_tokenizer

    data, instance, _ = full_pipeline
    root = release(data)
    tokenizer = load_tokenizer(root / config.TOKENIZER_FILE)
    rows = pq.read_table(sorted((root / "data" / "default").glob("train-*.parquet"))[0])
    assert rows.schema.field("tokens").type == pa.list_(pa.int32())
    assert rows.column("tokens").null_count == 0
    for row in rows.slice(0, 5).to_pylist():
        source = symusic.Score.from_file(str(root / row["midi_path"]))
        notes = source.tracks[0].notes.numpy()
        decoded = tokenizer.decode([row["tokens"]]).tracks[0].notes.numpy()
        assert set(decoded["pitch"].tolist()) == set(notes["pitch"].tolist())
        on_grid = {  # notes of one pitch on one step of the 16-a-beat grid become one
            (p, round(t * 16 / source.ticks_per_quarter))
            for p, t in zip(notes["pitch"].tolist(), notes["time"].tolist(), strict=True)
        }
        assert abs(len(decoded["pitch"]) - len(on_grid)) <= 0.01 * len(on_grid)
        assert np.all(np.diff(decoded["time"]) >= 0)
    curated = pq.read_table(sorted((root / "data" / "curated").glob("*.parquet"))[0])
    assert "tokens" not in curated.column_names  # one copy of the largest column
    before = {r.run_id for r in instance.get_runs()}
    shards = SHARD_KEYS[:4]
    assert materialize(defs, instance, "midi_tokens", shards, only_stale=False, **QUIET).ok
    runs = instance.fetch_materializations(dg.AssetKey("midi_tokens"), limit=200).records
    metas = [r.asset_materialization.metadata for r in runs if r.run_id not in before]
    assert len(metas) == len(shards)
    assert sum(m["tokenized"].value for m in metas) == 0
    assert sum(m["reused"].value for m in metas) == sum(m["files"].value for m in metas) > 0
