"""YouTube assets through the real google-api-python-client, over HTTP, against the emulator."""

import json
import math
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from mta_pipeline import config
from mta_pipeline.core.quota import pacific_day
from mta_pipeline.definitions import defs
from mta_pipeline.demo.youtube_emulator import YouTubeEmulator
from mta_pipeline.partitions import vid_to_shard
from mta_pipeline.resources.youtube import YouTubeResource
from mta_pipeline.runner import materialize
from mta_pipeline_tests.catalog_db import catalog_db

KEY = "AIzaTEST-secret-key-0123456789"
SCRAPE = "youtube_videos,youtube_comments,youtube_quota"


def fast_defs(**settings) -> dg.Definitions:
    """The project's definitions with a YouTube resource that backs off in milliseconds."""
    env = {
        "api_key": dg.EnvVar(config.YOUTUBE_API_KEY),
        "api_endpoint": dg.EnvVar(config.YOUTUBE_API_ENDPOINT),
        "daily_quota": dg.EnvVar.int(config.MTA_YOUTUBE_DAILY_QUOTA),
        "refresh_days": dg.EnvVar.int(config.MTA_YOUTUBE_REFRESH_DAYS),
        "concurrency": dg.EnvVar.int(config.MTA_YOUTUBE_CONCURRENCY),
    }
    youtube = YouTubeResource(
        **{**env, **settings}, backoff_base_s=0.001, backoff_cap_s=0.01, timeout_s=5
    )
    return dg.Definitions(
        assets=list(defs.assets),
        asset_checks=list(defs.asset_checks),
        resources={**defs.resources, "youtube": youtube},
    )


def sql(query, params=()):
    with catalog_db() as conn:
        return conn.execute(query, list(params)).fetchall()


@pytest.fixture
def shard(corpus) -> str:
    """The demo shard with the most videos."""
    return Counter(vid_to_shard(v) for v in corpus.good).most_common(1)[0][0]


@pytest.fixture
def shard_vids(corpus, shard) -> list[str]:
    return sorted(v for v in corpus.good if vid_to_shard(v) == shard)


@pytest.fixture
def emulator(data_env, instance, monkeypatch, shard):
    emu = YouTubeEmulator(api_keys=(KEY,), disabled_keys=("disabled-key",), seed=3)
    monkeypatch.setenv(config.YOUTUBE_API_ENDPOINT, emu.start())
    monkeypatch.setenv(config.YOUTUBE_API_KEY, KEY)
    assert materialize(defs, instance, "*midi_files", [shard], echo=lambda _: None).ok
    yield emu
    emu.stop()


def scrape(instance, shard, lines=None, **settings):
    echo = lines.append if lines is not None else (lambda _: None)
    return materialize(fast_defs(**settings), instance, SCRAPE, [shard], echo=echo)


def expected_units(emu: YouTubeEmulator, vids: list[str]) -> int:
    with_comments = [
        v
        for v in vids
        if (emu.video_resource(v) or {}).get("statistics", {}).get("commentCount", "0") != "0"
    ]
    return math.ceil(len(vids) / 50) + len(with_comments)


def test_happy_path_fills_the_tables_and_spends_one_unit_per_call(
    emulator, instance, shard, shard_vids
):
    outcome = scrape(instance, shard, concurrency=8)
    assert outcome.ok, outcome.failures
    videos = {
        v: (s, t, d)
        for v, s, t, d in sql("SELECT vid, status, title, description FROM youtube_videos")
    }
    assert set(videos) == set(shard_vids)
    for vid in shard_vids:
        item = emulator.video_resource(vid)
        if item is None:
            assert videos[vid][0] == "unavailable"
        else:
            assert videos[vid] == ("ok", item["snippet"]["title"], item["snippet"]["description"])
    statuses = dict(sql("SELECT vid, status FROM youtube_comment_status"))
    for vid in shard_vids:
        category = emulator.category(vid)
        want = {
            "deleted": "not_found",
            "comments_disabled": "comments_disabled",
            "no_comments": "no_comments",
            "ok": "ok",
        }[category]
        assert statuses[vid] == want, (vid, category)
        if category == "ok":
            threads = emulator.comment_threads(vid, order="relevance")[:5]
            texts = emulator.comment_texts(vid, order="relevance")[:5]  # some lack textOriginal
            got = sql(
                "SELECT rank, comment_id, text FROM youtube_comments WHERE vid = ? ORDER BY rank",
                [vid],
            )
            assert got == [
                (i, t["snippet"]["topLevelComment"]["id"], text)
                for i, (t, text) in enumerate(zip(threads, texts, strict=True), 1)
            ]
    units = sql("SELECT sum(units), count(*) FROM youtube_quota")[0]
    assert units[0] == units[1] == emulator.units_used == expected_units(emulator, shard_vids)
    comment_calls = [p for path, p in emulator.requests if path.endswith("commentThreads")]
    assert all(
        p["order"] == "relevance" and p["maxResults"] == "5" and p["textFormat"] == "plainText"
        for p in comment_calls
    )


def test_a_rerun_spends_nothing_and_force_fetches_again(emulator, instance, shard, shard_vids):
    assert scrape(instance, shard).ok
    spent = emulator.units_used
    assert scrape(instance, shard).ok
    assert emulator.units_used == spent
    assert materialize(
        fast_defs(), instance, SCRAPE, [shard], echo=lambda _: None, force_refresh=True
    ).ok
    assert emulator.units_used == 2 * spent


def test_quota_exhausted_mid_shard_then_resume_pays_no_video_twice(
    emulator, instance, shard, shard_vids
):
    full = expected_units(emulator, shard_vids)
    assert full >= 3
    emulator.set_faults(quota_cap=full // 2)
    lines: list[str] = []
    outcome = scrape(instance, shard, lines)
    assert not outcome.ok
    assert "quota exceeded" in outcome.failures[0] and "Pacific time" in outcome.failures[0]
    pending = sql("SELECT count(*) FROM youtube_comment_status WHERE status = 'pending'")[0][0]
    assert pending > 0
    emulator.set_faults(quota_cap=None)
    calls = len(emulator.requests)
    assert scrape(instance, shard).ok  # the same Pacific day: the refusal stopped the day
    assert len(emulator.requests) == calls
    _next_pacific_day()
    assert scrape(instance, shard).ok
    assert emulator.units_used == full  # every unit charged once: nothing fetched twice
    assert sql("SELECT count(*) FROM youtube_comment_status WHERE status = 'pending'")[0][0] == 0
    # refusals are ledgered, but charge nothing (as the service counts them)
    assert sql("SELECT sum(units), count(*) FROM youtube_quota")[0] == (
        emulator.units_used,
        len(emulator.requests),
    )


def _next_pacific_day() -> None:
    """Let the quota day pass: today's ledger parts become yesterday's."""
    lake = config.data_dir() / config.LAKE_DIR / config.T_YOUTUBE_QUOTA
    today = pacific_day(datetime.now(UTC))
    for folder in lake.glob(f"shard=*/day={today.isoformat()}"):
        folder.rename(folder.with_name(f"day={(today - timedelta(days=1)).isoformat()}"))


def test_a_small_daily_quota_does_what_fits_and_leaves_the_rest_pending(
    emulator, instance, shard, shard_vids, monkeypatch
):
    monkeypatch.setenv(config.MTA_YOUTUBE_DAILY_QUOTA, "3")
    outcome = scrape(instance, shard)
    assert outcome.ok, outcome.failures
    assert emulator.units_used <= 3
    statuses = Counter(s for (s,) in sql("SELECT status FROM youtube_videos"))
    assert statuses["pending"] == len(shard_vids) - 2  # one batch of 2 videos fits in 3 units
    monkeypatch.setenv(config.MTA_YOUTUBE_DAILY_QUOTA, "10000")
    assert scrape(instance, shard).ok
    assert sql("SELECT count(*) FROM youtube_videos WHERE status = 'pending'")[0][0] == 0


@pytest.mark.parametrize(
    ("key", "hint"),
    [("wrong-key", "check YOUTUBE_API_KEY"), ("disabled-key", "enable the YouTube Data API v3")],
)
def test_a_bad_key_fails_at_once_after_one_call(emulator, instance, shard, monkeypatch, key, hint):
    monkeypatch.setenv(config.YOUTUBE_API_KEY, key)
    outcome = scrape(instance, shard, concurrency=8)
    assert not outcome.ok and hint in outcome.failures[0]
    assert len(emulator.requests) == 1
    assert key not in outcome.failures[0]


def test_transient_faults_are_retried_until_everything_is_fetched(
    emulator, instance, shard, shard_vids
):
    emulator.set_faults(error_5xx_rate=0.2, rate_limit_rate=0.1, malformed_rate=0.1, drop_rate=0.1)
    outcome = scrape(instance, shard, concurrency=4, max_retries=8)
    assert outcome.ok, outcome.failures
    assert (
        sql("SELECT count(*) FROM youtube_videos WHERE status IN ('failed', 'pending')")[0][0] == 0
    )
    assert (
        sql("SELECT count(*) FROM youtube_comment_status WHERE status IN ('failed', 'pending')")[0][
            0
        ]
        == 0
    )
    assert sql("SELECT sum(units) FROM youtube_quota")[0][0] == len(emulator.requests)


def test_retries_that_give_up_record_failed_and_the_run_says_so(
    emulator, instance, shard, shard_vids
):
    emulator.set_faults(error_5xx_rate=1.0)
    outcome = scrape(instance, shard, max_retries=2)
    assert not outcome.ok and "failed" in outcome.failures[0]
    assert len(emulator.requests) == 3  # one batch: the call and two retries
    assert {s for (s,) in sql("SELECT status FROM youtube_videos")} == {"failed"}
    emulator.set_faults(error_5xx_rate=0.0)
    assert scrape(instance, shard).ok  # failed videos are fetched again


def test_comment_errors_get_their_statuses(data_env, instance, monkeypatch, shard, shard_vids):
    ok_vids = shard_vids[:3]  # overrides give any video the behaviour asked for
    overrides = dict(
        zip(
            ok_vids, ["comments_forbidden", "comments_not_found", "processing_failure"], strict=True
        )
    )
    emu = YouTubeEmulator(api_keys=(KEY,), seed=3, overrides=overrides)
    monkeypatch.setenv(config.YOUTUBE_API_ENDPOINT, emu.start())
    monkeypatch.setenv(config.YOUTUBE_API_KEY, KEY)
    try:
        assert materialize(defs, instance, "*midi_files", [shard], echo=lambda _: None).ok
        assert scrape(instance, shard).ok
        statuses = dict(sql("SELECT vid, status FROM youtube_comment_status"))
        assert [statuses[v] for v in ok_vids] == ["forbidden", "not_found", "failed"]
        calls = Counter(
            p.get("videoId") for path, p in emu.requests if path.endswith("commentThreads")
        )
        assert calls[ok_vids[2]] == 3  # processingFailure: the call and two retries, no more
        assert calls[ok_vids[0]] == calls[ok_vids[1]] == 1
    finally:
        emu.stop()


def test_the_api_key_is_written_nowhere(emulator, tmp_path, shard, monkeypatch, capfd):
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as persistent:
        emulator.set_faults(error_5xx_rate=0.3, malformed_rate=0.1)
        scrape(persistent, shard, max_retries=6)
        monkeypatch.setenv(config.YOUTUBE_API_KEY, KEY + "x")  # an invalid key: an error path
        scrape(persistent, shard, [], concurrency=1)
        runs = persistent.get_runs()
        events = [str(e) for r in runs for e in persistent.all_logs(r.run_id)]
    assert not any(KEY in e for e in events)
    out, err = capfd.readouterr()
    assert KEY not in out + err
    for path in [*Path(tmp_path).rglob("*")]:
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
    with catalog_db() as conn:
        for (table,) in conn.execute("SELECT table_name FROM information_schema.tables").fetchall():
            assert KEY not in json.dumps(conn.execute(f'FROM "{table}"').fetchall(), default=str)
    raw = list((config.data_dir() / config.LAKE_DIR / "raw").rglob("*.jsonl"))
    assert raw and all(KEY not in p.read_text() for p in raw)


def test_one_quota_refusal_stops_the_day_for_every_shard(
    emulator, instance, corpus, shard, shard_vids
):
    """The refusal is ledgered at once (0 units: the service does not charge it) and every
    other shard then makes no call until the Pacific midnight; the schedule sees 0 units left."""
    from mta_pipeline.automation import youtube_refresh_schedule
    from mta_pipeline.resources.scrape_journal import ledger_today
    from mta_pipeline.resources.storage import Storage

    other = next(vid_to_shard(v) for v in sorted(corpus.good) if vid_to_shard(v) != shard)
    assert materialize(defs, instance, "*midi_files", [other], echo=lambda _: None).ok
    emulator.set_faults(quota_cap=1)
    assert not scrape(instance, shard).ok
    calls = len(emulator.requests)
    emulator.set_faults(quota_cap=None)  # the service would answer again: the ledger says no
    assert scrape(instance, other).ok
    assert len(emulator.requests) == calls
    statuses = sql("SELECT DISTINCT status FROM youtube_videos WHERE shard = ?", [other])
    assert statuses == [("pending",)]
    storage = Storage(data_dir=str(config.data_dir()))
    today = ledger_today(storage, pacific_day(datetime.now(UTC)))
    assert today == (emulator.units_used, True)
    refused = sql("SELECT units FROM youtube_quota WHERE outcome = 'quotaExceeded'")
    assert refused and all(units == 0 for (units,) in refused)
    now = datetime.now(UTC)
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=now) as context:
        tick = youtube_refresh_schedule(
            context, storage=storage, youtube=YouTubeResource(daily_quota=10_000)
        )
    assert isinstance(tick, dg.SkipReason) and "0 units" in tick.skip_message
