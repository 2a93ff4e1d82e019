"""A shard as its own run on Dagster's multiprocess executor: each step in its own process."""

from collections import Counter

import dagster as dg

from mta_pipeline.definitions import defs
from mta_pipeline.partitions import vid_to_shard
from mta_pipeline.runner import materialize
from mta_pipeline_tests.catalog_db import catalog_db
from mta_pipeline_tests.conftest import emulated_youtube

SHARD_ASSETS = ["midi_files", "midi_features", "youtube_videos", "youtube_comments"]


def shard_job() -> dg.JobDefinition:
    """Reconstructable in the step processes: they import this module and call it."""
    return defs.resolve_job_def("shard_job")


def test_two_shards_as_separate_multiprocess_runs(data_env, corpus, monkeypatch, tmp_path):
    shards = [s for s, _ in Counter(vid_to_shard(v) for v in corpus.good).most_common(2)]
    home = tmp_path / "home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as instance, emulated_youtube(monkeypatch):
        assert materialize(defs, instance, "giantmidi_archive", echo=lambda _: None).ok
        for shard in shards:
            result = dg.execute_job(
                dg.reconstructable(shard_job),
                instance=instance,
                run_config={"execution": {"config": {"multiprocess": {"max_concurrent": 2}}}},
                tags={"dagster/partition": shard},
            )
            assert result.success
            pids = {
                e.step_key: e.pid
                for e in result.all_events
                if e.event_type_value == "STEP_WORKER_STARTED"
            }
            assert set(SHARD_ASSETS) <= set(pids)  # (asset checks are steps too)
            assert len(set(pids.values())) == len(pids)  # one process per step
    with catalog_db() as conn:
        rows = conn.execute("SELECT shard, count(*) FROM midi_features GROUP BY 1").fetchall()
        scraped = conn.execute("SELECT count(DISTINCT shard) FROM youtube_videos").fetchone()
    expected = Counter(vid_to_shard(v) for v in corpus.good)
    assert dict(rows) == {s: expected[s] for s in shards}
    assert scraped == (2,)
