"""The lake on S3: shards written through s3fs to moto's server, then queried from DuckDB."""

from collections import Counter

import duckdb
import pytest
import s3fs

from mta_pipeline import config
from mta_pipeline.definitions import defs
from mta_pipeline.lake import LakeError
from mta_pipeline.partitions import SHARD_KEYS, vid_to_shard
from mta_pipeline.resources.storage import ARCHIVE_RELPATH, Storage
from mta_pipeline.runner import materialize
from mta_pipeline_tests.catalog_db import catalog_db
from mta_pipeline_tests.conftest import emulated_youtube


def test_shards_land_on_s3_and_duckdb_reads_them_without_httpfs(
    data_env, instance, s3_endpoint, monkeypatch
):
    monkeypatch.setenv(config.MTA_LAKE_URL, "s3://lake/mta")
    monkeypatch.setenv(config.MTA_S3_ENDPOINT_URL, s3_endpoint)
    outcome = materialize(defs, instance, "group:giantmidi", SHARD_KEYS[:3], echo=lambda _: None)
    assert outcome.ok, outcome.failures

    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_endpoint}, skip_instance_cache=True)
    assert len(fs.glob("lake/mta/midi_files/shard=*/part.parquet")) == 3
    assert fs.exists("lake/mta/giantmidi_metadata/giantmidi_metadata.parquet")
    conn = duckdb.connect()
    conn.register_filesystem(fs)
    from_s3 = conn.execute(
        "SELECT count(*) FROM read_parquet('s3://lake/mta/midi_files/*/*.parquet', "
        "hive_partitioning = true)"
    ).fetchone()[0]
    with catalog_db() as catalog:
        assert catalog.execute("SELECT count(*) FROM midi_files").fetchone()[0] == from_s3 > 0


def test_the_release_lands_on_s3_in_one_piece_and_duckdb_queries_them(
    data_env, instance, s3_endpoint, monkeypatch
):
    monkeypatch.setenv(config.MTA_LAKE_URL, "s3://lake/mta")
    monkeypatch.setenv(config.MTA_S3_ENDPOINT_URL, s3_endpoint)
    with emulated_youtube(monkeypatch):
        outcome = materialize(defs, instance, "*", SHARD_KEYS[:4], echo=lambda _: None)
    assert outcome.ok, outcome.failures
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_endpoint}, skip_instance_cache=True)
    names = {p.rsplit("/", 1)[-1] for p in fs.ls("lake/mta/release")}
    expected = {config.TSV_FILE, config.DATASET_CARD, config.TOKENIZER_FILE, ".manifest.json"}
    assert names == expected | {"data", "midi"}
    conn = duckdb.connect()
    conn.register_filesystem(fs)
    n_tsv = conn.execute(
        "SELECT count(*) FROM read_csv('s3://lake/mta/release/midi_text_dataset.tsv', "
        "delim='\t', header=true, all_varchar=true)"
    ).fetchone()[0]
    n_parquet = conn.execute(
        "SELECT count(*) FROM 's3://lake/mta/release/data/default/*.parquet'"
    ).fetchone()[0]
    assert len(fs.ls("lake/mta/release/midi")) == n_parquet
    with catalog_db() as catalog:
        n_view = catalog.execute("SELECT count(*) FROM dataset").fetchone()[0]
    assert n_tsv == n_parquet == n_view > 0
    assert not [p for p in fs.find("lake/mta") if p.endswith(".tmp")]


def test_a_new_data_dir_reads_the_archive_and_midi_bytes_from_the_lake(
    data_env, instance, corpus, s3_endpoint, monkeypatch, tmp_path
):
    """Each step in a new, empty MTA_DATA_DIR (a new pod): `midi_files` downloads the lake's
    archive into its cache once, verified by sha256; `midi_features` reads the shard's bytes from
    the lake; a copy that does not match is refused, and missing bytes fail with what to rerun."""
    monkeypatch.setenv(config.MTA_LAKE_URL, "s3://lake/mta")
    monkeypatch.setenv(config.MTA_S3_ENDPOINT_URL, s3_endpoint)
    shard = Counter(vid_to_shard(v) for v in corpus.good).most_common(1)[0][0]

    def in_new_dir(name: str, selection: str) -> bool:
        monkeypatch.setenv(config.MTA_DATA_DIR, str(tmp_path / name))
        return materialize(defs, instance, selection, [shard], echo=lambda _: None).ok

    assert in_new_dir("archive", "giantmidi_archive")
    assert in_new_dir("files", "midi_files")
    storage = Storage(
        data_dir=str(tmp_path / "files"), lake_url="s3://lake/mta", s3_endpoint_url=s3_endpoint
    )
    state = storage.archive_state()
    assert [p.name for p in (tmp_path / "files" / "archive").glob("*.zip")] == [
        f"{state['sha256']}.zip"
    ]
    assert in_new_dir("features", "midi_features")
    assert not (tmp_path / "features" / "archive").exists()  # the bytes came from the lake

    cached = storage.archive_cache_path(state["sha256"])
    cached.unlink()
    storage.write(ARCHIVE_RELPATH, b"PK" + b"\0" * (state["size"] - 2))  # same size, not it
    with pytest.raises(LakeError, match="does not match its recorded sha256"):
        storage.local_archive()
    assert not cached.exists() and not list(cached.parent.glob(".*partial"))

    lake = storage.lake  # the shard's features are to be made again, and its bytes are gone
    lake.fs().rm(lake.path(storage.midi_relpath(shard)))
    lake.fs().rm(lake.path(storage.table_path(config.T_MIDI_FEATURES, shard)))
    monkeypatch.setenv(config.MTA_DATA_DIR, str(tmp_path / "again"))
    result = materialize(
        defs, instance, "midi_features", [shard], echo=lambda _: None, only_stale=False
    )
    assert not result.ok
    assert f"materialize midi_files for shard {shard} again" in result.failures[0]
