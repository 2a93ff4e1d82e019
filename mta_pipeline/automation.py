"""Schedules, sensors and automation conditions. The schedule and the sensor are off by default:
turn them on in the UI (Automation tab) or with `dagster schedule start` / `dagster sensor start`.

- Downstream assets follow their inputs declaratively (`AutomationCondition.eager()`): once a shard
  of `midi_files` or a YouTube asset is materialized, the shard's downstream assets and then the
  exports are requested by Dagster's automation sensor, without anyone selecting them.
- `youtube_refresh_schedule` runs daily just after the Pacific-midnight quota reset and asks for
  the shards whose scrapes are pending or stalest, as many as the day's quota can pay for.
- `giantmidi_archive_sensor` asks for `giantmidi_archive` when the source changes (size, ETag or
  modification time at GIANTMIDI_ARCHIVE_URL, or a new GIANTMIDI_ARCHIVE_SHA256).
"""

import json
from datetime import UTC, datetime, timedelta

import dagster as dg

from mta_pipeline import config
from mta_pipeline.core import scrape_plan
from mta_pipeline.core.download import ArchiveError, source_fingerprint
from mta_pipeline.core.quota import pacific_day, remaining_units
from mta_pipeline.core.refresh import ShardScrape, pick_shards
from mta_pipeline.lake import LakeError
from mta_pipeline.resources.giantmidi import GiantMidiSource
from mta_pipeline.resources.scrape_journal import ledger_today
from mta_pipeline.resources.storage import Storage
from mta_pipeline.resources.youtube import YouTubeResource


def shard_scrapes(storage: Storage, refresh_days: int, now: datetime) -> list[ShardScrape]:
    """Per shard, from the lake: videos due for a scrape, pending ones, the oldest scrape."""
    return scrape_plan.shard_scrapes(
        storage.read_all(config.T_MIDI_FILES).to_pylist(),
        storage.read_all(config.T_YOUTUBE_VIDEOS).to_pylist(),
        now - timedelta(days=refresh_days),
    )


def youtube_due_shards(storage: Storage, refresh_days: int, now: datetime) -> set[str]:
    """Shards with videos due for a scrape, or comments still pending or failed."""
    return scrape_plan.due_shards(
        storage.read_all(config.T_MIDI_FILES).to_pylist(),
        storage.read_all(config.T_YOUTUBE_VIDEOS).to_pylist(),
        storage.read_all(config.T_YOUTUBE_COMMENT_STATUS).to_pylist(),
        now - timedelta(days=refresh_days),
    )


@dg.schedule(
    name="youtube_refresh_schedule",
    cron_schedule="15 0 * * *",
    execution_timezone="America/Los_Angeles",
    target=dg.AssetSelection.assets(
        "youtube_videos", config.T_YOUTUBE_COMMENTS, config.T_YOUTUBE_COMMENT_STATUS
    ),
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Daily after the quota reset: the stalest or pending shards that fit the quota.",
)
def youtube_refresh_schedule(
    context: dg.ScheduleEvaluationContext, storage: Storage, youtube: YouTubeResource
) -> list[dg.RunRequest] | dg.SkipReason:
    now = context.scheduled_execution_time or datetime.now(UTC)
    today = ledger_today(storage, pacific_day(now))
    budget = remaining_units(youtube.quota_per_day(), today.spent, today.refused)
    picked = pick_shards(shard_scrapes(storage, youtube.refresh_after_days(), now), budget)
    if not picked:
        return dg.SkipReason(f"no shard is due, or none fits the {budget} units left today")
    day = pacific_day(now).isoformat()
    context.log.info(f"{len(picked)} shards fit in {budget} units: {[s.shard for s in picked]}")
    return [
        dg.RunRequest(run_key=f"youtube-{day}-{s.shard}", partition_key=s.shard) for s in picked
    ]


@dg.sensor(
    name="giantmidi_archive_sensor",
    target=dg.AssetSelection.assets("giantmidi_archive"),
    minimum_interval_seconds=3600,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Requests giantmidi_archive when the archive at GIANTMIDI_ARCHIVE_URL changes.",
)
def giantmidi_archive_sensor(
    context: dg.SensorEvaluationContext, giantmidi: GiantMidiSource, storage: Storage
) -> dg.SensorResult | dg.SkipReason:
    url = giantmidi.archive_url.strip()
    if not url:
        return dg.SkipReason("GIANTMIDI_ARCHIVE_URL is not set")
    try:
        fingerprint = source_fingerprint(url)
    except ArchiveError as exc:
        return dg.SkipReason(str(exc))
    expected = giantmidi.expected_sha256() or ""
    try:
        recorded = storage.archive_state()  # in the lake: the daemon needs no run's local disk
    except LakeError as exc:
        return dg.SkipReason(f"the lake cannot be read: {exc}")
    if (
        recorded is not None
        and recorded["fingerprint"] == fingerprint
        and expected in ("", recorded["sha256"])
    ):
        return dg.SkipReason("the archive is unchanged since it was fetched")
    key = json.dumps({**fingerprint, "sha256": expected}, sort_keys=True)
    if context.cursor == key:
        return dg.SkipReason("a run for this version of the archive was already requested")
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=key)], cursor=key)
