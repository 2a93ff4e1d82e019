"""The lake on S3: shards written through s3fs to moto's server, then queried from DuckDB."""

import duckdb
import s3fs

from mta_pipeline import config
from mta_pipeline.definitions import defs
from mta_pipeline.partitions import SHARD_KEYS
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
