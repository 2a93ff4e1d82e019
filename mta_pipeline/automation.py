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
import duckdb

from mta_pipeline import config
from mta_pipeline.assets.giantmidi import giantmidi_archive
from mta_pipeline.assets.youtube import youtube_comments, youtube_videos
from mta_pipeline.core.download import ArchiveError, source_fingerprint
from mta_pipeline.core.quota import pacific_day, remaining_units
from mta_pipeline.core.refresh import ShardScrape, pick_shards
from mta_pipeline.resources.catalog import DuckDBCatalog
from mta_pipeline.resources.giantmidi import GiantMidiSource

SHARD_STATS_SQL = f"""
SELECT f.shard,
       count(*) AS videos,
       count(*) FILTER (v.vid IS NULL OR v.status IN ('pending', 'failed')
                        OR v.scraped_at < ?) AS due,
       count(*) FILTER (v.vid IS NULL OR v.status IN ('pending', 'failed')) AS pending,
       min(v.scraped_at) AS oldest
FROM {config.T_MIDI_FILES} f LEFT JOIN {config.T_YOUTUBE_VIDEOS} v USING (vid)
GROUP BY f.shard
"""


NO_VIDEOS = "SELECT NULL::VARCHAR AS vid, NULL::VARCHAR AS status, NULL::TIMESTAMPTZ AS scraped_at"


def shard_scrapes(catalog: DuckDBCatalog, now: datetime) -> list[ShardScrape]:
    """Per shard: videos due for a scrape, pending ones, and the oldest scrape."""
    fresh_after = now - timedelta(
        days=config.positive_int(config.MTA_YOUTUBE_REFRESH_DAYS, config.DEFAULT_REFRESH_DAYS)
    )
    if not catalog.path.exists():
        return []
    with catalog.connect(read_only=True) as conn:
        tables = {
            r[0]
            for r in conn.execute("SELECT table_name FROM information_schema.tables").fetchall()
        }
        if config.T_MIDI_FILES not in tables:
            return []
        sql = SHARD_STATS_SQL
        if config.T_YOUTUBE_VIDEOS not in tables:  # nothing scraped yet: every video is due
            sql = sql.replace(f"JOIN {config.T_YOUTUBE_VIDEOS} v", f"JOIN ({NO_VIDEOS}) v")
        rows = conn.execute(sql, [fresh_after]).fetchall()
    return [
        ShardScrape(shard, videos, due, pending, oldest)
        for shard, videos, due, pending, oldest in rows
    ]


PENDING_COMMENTS_SQL = f"""
SELECT DISTINCT shard FROM {config.T_YOUTUBE_COMMENT_STATUS} WHERE status IN ('pending', 'failed')
"""


def youtube_due_shards(catalog: DuckDBCatalog, now: datetime) -> set[str]:
    """Shards with videos due for a scrape, or comments still pending or failed."""
    due = {s.shard for s in shard_scrapes(catalog, now) if s.due}
    try:
        with catalog.connect(read_only=True) as conn:
            due |= {r[0] for r in conn.execute(PENDING_COMMENTS_SQL).fetchall()}
    except (FileNotFoundError, duckdb.CatalogException):
        pass
    return due


@dg.schedule(
    name="youtube_refresh_schedule",
    cron_schedule="15 0 * * *",
    execution_timezone="America/Los_Angeles",
    target=[youtube_videos, youtube_comments],
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Daily after the quota reset: the stalest or pending shards that fit the quota.",
)
def youtube_refresh_schedule(
    context: dg.ScheduleEvaluationContext, catalog: DuckDBCatalog
) -> list[dg.RunRequest] | dg.SkipReason:
    now = context.scheduled_execution_time or datetime.now(UTC)
    spent = catalog.scalar(
        f"SELECT sum(units) FROM {config.T_YOUTUBE_QUOTA} WHERE day_pt = ?", [pacific_day(now)], 0
    )
    budget = remaining_units(
        config.positive_int(config.MTA_YOUTUBE_DAILY_QUOTA, config.DEFAULT_DAILY_QUOTA),
        int(spent),
    )
    picked = pick_shards(shard_scrapes(catalog, now), budget)
    if not picked:
        return dg.SkipReason(f"no shard is due, or none fits the {budget} units left today")
    day = pacific_day(now).isoformat()
    context.log.info(f"{len(picked)} shards fit in {budget} units: {[s.shard for s in picked]}")
    return [
        dg.RunRequest(run_key=f"youtube-{day}-{s.shard}", partition_key=s.shard) for s in picked
    ]


@dg.sensor(
    name="giantmidi_archive_sensor",
    target=[giantmidi_archive],
    minimum_interval_seconds=3600,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Requests giantmidi_archive when the archive at GIANTMIDI_ARCHIVE_URL changes.",
)
def giantmidi_archive_sensor(
    context: dg.SensorEvaluationContext, giantmidi: GiantMidiSource
) -> dg.SensorResult | dg.SkipReason:
    url = giantmidi.archive_url or config.env(config.GIANTMIDI_ARCHIVE_URL)
    if not url:
        return dg.SkipReason("GIANTMIDI_ARCHIVE_URL is not set")
    try:
        fingerprint = source_fingerprint(url)
    except ArchiveError as exc:
        return dg.SkipReason(str(exc))
    expected = giantmidi.expected_sha256() or ""
    state_path = giantmidi.archive_state_path
    recorded = json.loads(state_path.read_text()) if state_path.exists() else None
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
