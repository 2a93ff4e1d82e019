"""Incremental reruns, declarative automation, the schedule and the sensor, on a real instance."""

import io
import os
import shutil
import zipfile
from datetime import UTC, datetime, timedelta

import dagster as dg
import pretty_midi
import pytest

from mta_pipeline import config, schemas
from mta_pipeline.automation import giantmidi_archive_sensor, youtube_refresh_schedule
from mta_pipeline.definitions import defs
from mta_pipeline.partitions import SHARD_KEYS, vid_to_shard
from mta_pipeline.resources.giantmidi import GiantMidiSource
from mta_pipeline.resources.storage import Storage
from mta_pipeline.resources.youtube import YouTubeResource
from mta_pipeline.runner import materialize
from mta_pipeline_tests.catalog_db import catalog_db
from mta_pipeline_tests.conftest import emulated_youtube, isolate_env


def metadata_by_asset(instance: dg.DagsterInstance, run_ids: set[str]) -> dict:
    """(asset, partition) -> metadata values of the materializations of the given runs."""
    found = {}
    for key in defs.resolve_asset_graph().get_all_asset_keys():
        records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key), limit=200)
        for record in records.records:
            if record.run_id in run_ids:
                mat = record.asset_materialization
                found[(key.to_user_string(), mat.partition)] = {
                    k: v.value for k, v in mat.metadata.items()
                }
    return found


@pytest.fixture(scope="module")
def scraped(tmp_path_factory, corpus):
    """Everything materialized once in a persistent (SQLite) instance, emulator running. The
    tests below share it, in file order: the last ones change data."""
    root = tmp_path_factory.mktemp("scraped")
    home = root / "home"
    home.mkdir()
    with (
        pytest.MonkeyPatch.context() as mp,
        dg.instance_for_test(temp_dir=str(home)) as instance,
    ):
        data = isolate_env(mp, root, corpus)
        with emulated_youtube(mp) as emulator:
            assert materialize(defs, instance, "*", echo=lambda _: None).ok
            yield instance, emulator, data


def run_ids_since(instance, before: set[str]) -> set[str]:
    return {r.run_id for r in instance.get_runs()} - before


def test_declarative_automation_follows_one_updated_shard(scraped):
    instance = scraped[0]
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    settled = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    assert settled.total_requested == 0  # everything materialized: nothing to follow
    shard = SHARD_KEYS[3]
    assert materialize(defs, instance, "midi_files", [shard], echo=print, only_stale=False).ok
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=settled.cursor)
    requested = {
        key.to_user_string(): result.get_requested_partitions(key)
        for key in defs.resolve_asset_graph().get_all_asset_keys()
        if result.get_num_requested(key)
    }
    assert requested["midi_features"] == {shard}
    assert requested["youtube_videos"] == {shard}
    assert "midi_files" not in requested  # other shards do not move


def test_a_rerun_with_nothing_changed_says_unchanged_everywhere(scraped):
    instance, emulator, _ = scraped
    units, before = emulator.units_used, {r.run_id for r in instance.get_runs()}
    lines: list[str] = []
    outcome = materialize(defs, instance, "*", echo=lines.append)
    assert outcome.ok and outcome.runs == 1  # only the assets that look outside
    assert outcome.skipped == 2 * len(SHARD_KEYS)
    assert sum("up to date, skipped" in line for line in lines) == 2 * len(SHARD_KEYS) + 2
    assert emulator.units_used == units
    before = {r.run_id for r in instance.get_runs()}
    shards = SHARD_KEYS[:8]  # forced runs of every asset on a quarter of the shards
    assert materialize(defs, instance, "*", shards, echo=lambda _: None, only_stale=False).ok
    assert emulator.units_used == units  # no quota spent
    meta = metadata_by_asset(instance, run_ids_since(instance, before))
    # archive, metadata; 9 sharded assets; comment_repetition, composer_splits, removals,
    # quota, raw zone; the release's 3 assets
    assert len(meta) == 2 + 9 * len(shards) + 5 + 3
    changed = [k for k, m in meta.items() if m.get("unchanged") is not True]
    assert changed == [], sorted(changed)
    parsed = {p: m["parsed"] for (a, p), m in meta.items() if a == "midi_features" and m["parsed"]}
    assert parsed == {}


def test_changing_one_file_reruns_that_shard_only(scraped, corpus):
    instance, _, data_env = scraped
    vid, member = sorted(corpus.good.items())[0]
    shard = vid_to_shard(vid)
    pm = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    piano.notes += [pretty_midi.Note(90, 60 + i, i * 0.25, i * 0.25 + 0.2) for i in range(12)]
    pm.instruments.append(piano)
    new = io.BytesIO()
    pm.write(new)
    source = data_env.parent / "changed.zip"
    with zipfile.ZipFile(corpus.archive_path) as old, zipfile.ZipFile(source, "w") as out:
        for info in old.infolist():
            out.writestr(info, new.getvalue() if info.filename == member else old.read(info))
    os.environ[config.GIANTMIDI_ARCHIVE_URL] = str(source)
    try:
        before = {r.run_id for r in instance.get_runs()}
        assert materialize(defs, instance, "*", echo=lambda _: None).ok
    finally:
        os.environ[config.GIANTMIDI_ARCHIVE_URL] = str(corpus.archive_path)
    meta = metadata_by_asset(instance, run_ids_since(instance, before))
    changed = sorted(k for k, m in meta.items() if m.get("unchanged") is False)
    assert ("midi_files", shard) in changed and ("midi_features", shard) in changed
    assert ("mta_records", shard) in changed and ("mta_parquet", None) in changed
    assert all(p in (shard, None) for _, p in changed), changed
    assert meta[("midi_features", shard)]["parsed"] == 1
    with catalog_db() as conn:
        assert (
            conn.execute("SELECT n_notes FROM midi_features WHERE vid = ?", [vid]).fetchone()[0]
            == 12
        )


def test_schedule_picks_due_shards_within_the_quota(scraped):
    instance, _, data = scraped
    storage = Storage(data_dir=str(data))
    when = datetime.now(UTC)

    def evaluate(daily_quota: int = 10_000):
        context = dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=when,
            resources={"storage": storage, "youtube": YouTubeResource(daily_quota=daily_quota)},
        )
        return youtube_refresh_schedule(context)

    assert isinstance(evaluate(), dg.SkipReason)  # all fresh
    videos = storage.read_all(config.T_YOUTUBE_VIDEOS)
    shards = sorted(set(videos.column("shard").to_pylist()))[:3]
    for shard in shards:  # the lake is the store of record: the schedule reads it
        rows = storage.read_rows(config.T_YOUTUBE_VIDEOS, shard)
        for row in rows:
            if shard == shards[2]:
                row["scraped_at"] -= timedelta(days=90)
            else:
                row["status"] = "pending"
        storage.write_parquet(
            storage.table_path(config.T_YOUTUBE_VIDEOS, shard),
            schemas.to_table(config.T_YOUTUBE_VIDEOS, rows),
        )
    requests = evaluate()
    assert sorted(r.partition_key for r in requests) == shards
    assert all(r.run_key.startswith("youtube-") for r in requests)
    assert isinstance(evaluate(daily_quota=1), dg.SkipReason)


def test_sensor_requests_the_archive_only_when_it_changes(data_env, corpus, instance, tmp_path):
    source = tmp_path / "source.zip"
    shutil.copyfile(corpus.archive_path, source)
    resource = GiantMidiSource(archive_url=str(source))
    storage = Storage(data_dir=str(data_env))
    context = dg.build_sensor_context(
        instance=instance, resources={"giantmidi": resource, "storage": storage}
    )
    first = giantmidi_archive_sensor(context)
    assert len(first.run_requests) == 1  # never fetched
    defs_with_source = dg.Definitions(
        assets=list(defs.assets), resources={**defs.resources, "giantmidi": resource}
    )
    assert materialize(defs_with_source, instance, "giantmidi_archive", echo=lambda _: None).ok
    context = dg.build_sensor_context(
        instance=instance,
        resources={"giantmidi": resource, "storage": storage},
        cursor=first.cursor,
    )
    assert isinstance(giantmidi_archive_sensor(context), dg.SkipReason)
    with zipfile.ZipFile(source, "a") as zf:  # a new release: one more member
        zf.writestr("midis/NEWS.txt", "v1.3")
    changed = giantmidi_archive_sensor(context)
    assert len(changed.run_requests) == 1 and changed.cursor != first.cursor
    again = dg.build_sensor_context(
        instance=instance,
        resources={"giantmidi": resource, "storage": storage},
        cursor=changed.cursor,
    )
    assert isinstance(giantmidi_archive_sensor(again), dg.SkipReason)
