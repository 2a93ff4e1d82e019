"""The GiantMIDI assets, materialized for real into a temporary data dir."""

import pyarrow.parquet as pq

from mta_pipeline import config
from mta_pipeline.core import archive
from mta_pipeline.definitions import defs
from mta_pipeline.partitions import SHARD_KEYS, assign_shard
from mta_pipeline.resources.storage import Storage
from mta_pipeline.runner import materialize
from mta_pipeline_tests.catalog_db import catalog_db
from mta_pipeline_tests.conftest import run_assets


def table(sql):
    with catalog_db() as conn:
        return conn.execute(sql).fetchall()


def test_every_good_file_is_a_row_and_every_bad_member_one_reject(materialized, corpus):
    data_env, _, lines = materialized
    assert sum(line.startswith("[") for line in lines) == 1 + len(SHARD_KEYS)
    assert sum(" ok in " in line and "] shard " in line for line in lines) == len(SHARD_KEYS)

    features = dict(table("SELECT vid, n_notes FROM midi_features"))
    assert set(features) == set(corpus.good)
    assert all(n > 0 for n in features.values())
    rejects = {m: r.split(":")[0] for m, r in table("SELECT member, reason FROM midi_rejects")}
    assert rejects == corpus.expected_rejects
    parse_failures = {m for m, c in corpus.expected_rejects.items() if c == "parse_error"}
    files = {m for (m,) in table("SELECT member FROM midi_files")}
    assert files == set(corpus.good.values()) | parse_failures
    shards = table("SELECT DISTINCT shard, member FROM midi_rejects")
    assert all(assign_shard(member) == shard for shard, member in shards)

    meta = table("SELECT count(*), count(*) FILTER (giant_midi_piano = 1) FROM giantmidi_metadata")
    assert meta[0][1] >= len(corpus.good)
    storage = Storage(data_dir=str(data_env))
    held = {v: b for s in SHARD_KEYS for v, b in storage.read_midi(s).items()}
    recorded = dict(table("SELECT vid, sha256 FROM midi_files"))
    assert {v: archive.sha256_hex(b) for v, b in held.items()} == recorded
    assert {p for (p,) in table("SELECT DISTINCT path FROM midi_files")} == {
        f"midi/shard={s}/part.parquet" for s in SHARD_KEYS if storage.read_midi(s)
    }
    assert not list(data_env.rglob("*.mid"))  # nothing extracted to disk, under any name


def test_lake_holds_per_shard_parquet_matching_duckdb(materialized, corpus):
    data_env = materialized[0]
    lake = data_env / config.LAKE_DIR
    parts = sorted((lake / config.T_MIDI_FEATURES).glob("shard=*/part.parquet"))
    assert len(parts) == len(SHARD_KEYS)
    assert sum(pq.read_metadata(p).num_rows for p in parts) == len(corpus.good)
    assert table("SELECT count(*) FROM midi_features")[0][0] == len(corpus.good)


def test_rerunning_a_shard_replaces_exactly_its_rows(materialized, corpus):
    instance = materialized[1]
    before = table("SELECT shard, count(*) FROM midi_files GROUP BY shard ORDER BY shard")
    shard = max(before, key=lambda r: r[1])[0]
    outcome = materialize(defs, instance, "midi_files,midi_features", [shard], only_stale=False)
    assert outcome.ok and outcome.runs == 1
    assert table("SELECT shard, count(*) FROM midi_files GROUP BY shard ORDER BY shard") == before
    assert table("SELECT count(*) FROM midi_features")[0][0] == len(corpus.good)


def test_unchanged_archive_is_not_downloaded_again(data_env, instance):
    result = run_assets(instance, ["giantmidi_archive"])
    first = result.get_asset_materialization_events()[0].materialization.metadata
    result = run_assets(instance, ["giantmidi_archive"])
    second = result.get_asset_materialization_events()[0].materialization.metadata
    assert first["unchanged"].value is False and second["unchanged"].value is True
    assert first["sha256"] == second["sha256"]


def test_unique_vid_check_passes_then_fails_on_a_duplicate(data_env, instance):
    assert materialize(defs, instance, "group:giantmidi", SHARD_KEYS[:4], echo=lambda _: None).ok

    def check_passed() -> bool:
        result = run_assets(instance, ["midi_files", "midi_rejects"], SHARD_KEYS[0])
        evals = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
        return evals["midi_files_unique_vid"]

    assert check_passed() is True
    storage = Storage(data_dir=str(data_env))  # another run wrote one of its ids into a shard
    other = storage.read_table(config.T_MIDI_FILES, SHARD_KEYS[1]).slice(0, 1)
    storage.publish(config.T_MIDI_FILES, other, shard="zz")
    assert check_passed() is False


def test_an_unset_metadata_url_keeps_the_previous_metadata(data_env, instance, monkeypatch):
    first = run_assets(instance, ["giantmidi_metadata"])
    assert first.success
    rows = table("SELECT count(*) FROM giantmidi_metadata")[0][0]
    assert rows > 0
    monkeypatch.setenv(config.GIANTMIDI_METADATA_URL, "")  # unconfigured (the default)
    again = run_assets(instance, ["giantmidi_metadata"])
    assert again.success and again.get_asset_materialization_events() == []
    assert table("SELECT count(*) FROM giantmidi_metadata")[0][0] == rows
    lake = data_env / config.LAKE_DIR / config.T_GIANTMIDI_METADATA
    assert pq.read_metadata(lake / f"{config.T_GIANTMIDI_METADATA}.parquet").num_rows == rows


def test_the_release_refuses_to_replace_files_when_the_lake_holds_no_records(data_env, instance):
    result = run_assets(instance, ["mta_tsv", "mta_parquet", "mta_dataset_card"])
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "no mta_records in the lake" in failure.step_failure_data.error.message
    assert not (data_env / config.LAKE_DIR / config.RELEASE_DIR).exists()


def test_midi_backends_agree_and_the_ui_shows_parse_speed(data_env, instance, monkeypatch):
    shard = SHARD_KEYS[0]
    assert run_assets(instance, ["giantmidi_archive"]).success
    assert run_assets(instance, ["midi_files", "midi_rejects"], shard).success
    native = run_assets(instance, ["midi_features", "midi_parse_rejects"], shard)
    meta = native.get_asset_materialization_events()[0].materialization.metadata
    assert meta["midi_backend"].value == "symusic"
    assert meta["ms_per_file"].value > 0 and meta["parsed_notes_per_s"].value > 0
    assert "| symusic |" in meta["parsers"].value
    assert "| vid | notes | ms |" in meta["slowest_files"].value
    assert "ms per file against notes" in meta["parse_time_by_notes"].value
    by_native = {
        r[0]: r[1:] for r in table("SELECT vid, n_notes, duration_s, parser FROM midi_features")
    }

    monkeypatch.setenv(config.MTA_MIDI_BACKEND, "pretty_midi")
    reference = run_assets(instance, ["midi_features", "midi_parse_rejects"], shard)
    meta = reference.get_asset_materialization_events()[0].materialization.metadata
    assert meta["midi_backend"].value == "pretty_midi"
    assert meta["parsed"].value == len(by_native)  # another parser: nothing reused
    rows = table("SELECT vid, n_notes, duration_s, parser FROM midi_features")
    assert {r[0] for r in rows} == set(by_native) and by_native
    for vid, n_notes, duration, parser in rows:
        assert parser == "pretty_midi" and by_native[vid][2] == "symusic"
        assert n_notes == by_native[vid][0]
        assert abs(duration - by_native[vid][1]) < 1e-9

    monkeypatch.setenv(config.MTA_MIDI_BACKEND, "fluidsynth")
    failed = run_assets(instance, ["midi_features", "midi_parse_rejects"], shard)
    assert not failed.success
    error = next(e for e in failed.all_events if e.is_step_failure).step_failure_data.error
    assert "MTA_MIDI_BACKEND='fluidsynth' is not a MIDI backend" in str(error.message) + str(
        error.cause.message if error.cause else ""
    )


def test_tokens_are_reused_only_from_the_same_tokenizer(data_env, instance, monkeypatch):
    from mta_pipeline.assets import midi_tokens

    shard = SHARD_KEYS[0]
    assert run_assets(instance, ["giantmidi_archive"]).success
    assert run_assets(instance, ["midi_files", "midi_rejects"], shard).success

    def tokens_run() -> dict:
        result = run_assets(instance, ["midi_tokens"], shard)
        meta = result.get_asset_materialization_events()[0].materialization.metadata
        return {k: meta[k].value for k in ("files", "tokenized", "reused", "tokenizer")}

    first = tokens_run()
    assert first["files"] == first["tokenized"] > 0
    assert tokens_run()["reused"] == first["files"]
    upgraded = first["tokenizer"].replace("+", "+0")  # as if miditok's saved config changed
    monkeypatch.setattr(midi_tokens, "current_tokenizer", lambda: upgraded)
    again = tokens_run()
    assert again["tokenized"] == first["files"] and again["tokenizer"] == upgraded
    assert {t for (t,) in table("SELECT DISTINCT tokenizer FROM midi_tokens")} == {upgraded}
    columns = [c for (c, *_) in table("DESCRIBE midi_tokens")]
    assert "n_tokens" in columns and "tokens" not in columns  # the ids stay in the lake
    lake = data_env / config.LAKE_DIR / config.T_MIDI_TOKENS / f"shard={shard}" / "part.parquet"
    assert pq.read_table(lake).column("tokens").null_count == 0
