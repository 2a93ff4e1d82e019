"""YouTube scraping per shard (video details, then top comments), the quota ledger and the raw
landing zone. Planning is in `core/scrape_plan.py`, durable state in `resources/scrape_journal.py`;
a run stopped by the quota, an error or a kill keeps every finished video, and the next run
fetches only what is due."""

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from mta_pipeline import config as settings
from mta_pipeline.assets.results import (
    CODE_VERSION,
    UNCHANGED,
    step_outputs,
    table_result,
    table_version,
)
from mta_pipeline.code_versions import code_version
from mta_pipeline.core import scrape_plan as plan
from mta_pipeline.core.quota import (
    QUOTA_REFUSALS,
    pacific_day,
    remaining_units,
    reset_message,
    units_charged,
)
from mta_pipeline.core.youtube_api import ApiFailure, Kind
from mta_pipeline.partitions import shard_partitions
from mta_pipeline.resources.scrape_journal import (
    ScrapeJournal,
    ShardState,
    ledger_today,
    read_ledger,
)
from mta_pipeline.resources.storage import Storage, parquet_bytes
from mta_pipeline.resources.youtube import Budget, CallRecord, YouTubeResource
from mta_pipeline.summaries import counts_markdown

GROUP = "youtube"
VERSION = code_version(__name__)
CHECKPOINT_EVERY = 50  # finished comment calls between two checkpoints
EAGER = dg.AutomationCondition.eager()


class ScrapeConfig(dg.Config):
    """`force`: fetch again even what was scraped within MTA_YOUTUBE_REFRESH_DAYS."""

    force: bool = False


def _budget(
    context: dg.AssetExecutionContext,
    youtube: YouTubeResource,
    storage: Storage,
    now: datetime,
    recovered: list[CallRecord],
) -> Budget:
    """What this step may spend: the day's quota less the lake ledger's spending today and the
    journal's calls not ledgered yet, and nothing once the API has refused a call for quota
    today (in any shard or process, or in this shard's journal)."""
    today = pacific_day(now)
    day = ledger_today(storage, today)
    unledgered = [c for c in recovered if pacific_day(c.at) == today]
    spent = day.spent + sum(units_charged(c.outcome) for c in unledgered)
    refused = day.refused or any(c.outcome in QUOTA_REFUSALS for c in unledgered)
    if refused:
        context.log.warning(
            f"the API refused a call for quota earlier today (the ledger says so): no calls "
            f"until {reset_message(now)}"
        )
    return Budget(units=remaining_units(youtube.quota_per_day(), spent, refused))


def _run_parallel(items: list[Any], work: Callable[[Any], Any], workers: int) -> Iterator[Any]:
    """Results of `work`: the first item alone (so a bad key fails after one call), then the
    rest on a thread pool, as they complete."""
    if items:
        yield work(items[0])
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="youtube") as pool:
        for future in as_completed([pool.submit(work, item) for item in items[1:]]):
            yield future.result()


def _raise_if_stopped(
    budget: Budget,
    pending: int,
    now: datetime,
    calls: int,
    answered: int,
    statuses: Iterable[dict],
    endpoint: str,
) -> None:
    message = plan.stop_message(budget.stop_reason, pending, now) or plan.nothing_answered_message(
        calls, answered, statuses, endpoint
    )
    if message:
        raise dg.Failure(message)


def _scrape_metadata(budget: Budget, journal: ScrapeJournal, statuses: Counter) -> dict:
    return {
        "pending": statuses.get(plan.PENDING, 0),
        "statuses": dg.MetadataValue.md(counts_markdown(statuses, "status")),
        "quota_units_spent": budget.spent,
        "quota_units_left_today": budget.remaining,
        "calls": journal.total_calls,
    }


@dg.asset(
    group_name=GROUP,
    code_version=VERSION,
    automation_condition=EAGER,
    partitions_def=shard_partitions,
    deps=["midi_files"],
    pool=settings.YOUTUBE_POOL,
    kinds={"youtube", "parquet"},
)
def youtube_videos(
    context: dg.AssetExecutionContext,
    config: ScrapeConfig,
    youtube: YouTubeResource,
    storage: Storage,
) -> dg.MaterializeResult:
    """Title, description, channel and statistics of each video: `videos.list`, 50 ids a unit."""
    shard, now = context.partition_key, datetime.now(UTC)
    files = storage.read_table(settings.T_MIDI_FILES, shard)
    if files is None:
        raise dg.Failure(f"shard {shard} of midi_files is missing: materialize midi_files first.")
    vids = sorted(files.column("vid").to_pylist())
    state = ShardState(storage, settings.T_YOUTUBE_VIDEOS, shard)
    state.keep_only(set(vids))
    journal = ScrapeJournal(storage, shard, context.run_id, "videos")
    for call in journal.recovered:
        for vid, row in plan.replayed_videos(call, set(vids)).items():
            state.put(vid, [row])
    fresh_after = now - timedelta(days=youtube.refresh_after_days())
    due = [v for v in vids if config.force or plan.video_due(state.first(v), fresh_after)]
    budget = journal.budget = _budget(context, youtube, storage, now, journal.recovered)
    client = youtube.client(budget, journal.record)
    batches, planned = plan.plan_batches(due, budget.remaining)
    for vid in due[planned:]:
        pending = plan.video_status(vid, plan.PENDING, "not enough quota left today", now)
        if plan.status_changed(state.rows.get(vid), pending):
            state.put(vid, [pending])
    context.log.info(
        f"shard {shard}: {len(vids)} videos, {len(due)} due, {planned} fit in the "
        f"{budget.remaining} units left today, {len(batches)} videos.list calls"
    )
    done = answered = 0
    for ids, result in _run_parallel(
        batches, lambda ids: (ids, client.videos(ids)), youtube.workers()
    ):
        for vid, row in plan.batch_rows(ids, result, now).items():
            state.put(vid, [row])
        done, answered = done + len(ids), answered + (not isinstance(result, ApiFailure))
        journal.checkpoint(state)
        context.log.info(f"shard {shard}: videos {done}/{planned}")
    written = journal.checkpoint(state) or bool(batches) or bool(journal.recovered)
    journal.close()
    rows = [r[0] for r in state.rows.values()]
    statuses = Counter(r["status"] for r in rows)
    _raise_if_stopped(
        budget, statuses[plan.PENDING], now, len(batches), answered, rows, "videos.list"
    )
    if statuses[plan.PENDING]:
        context.log.warning(f"shard {shard}: {statuses[plan.PENDING]} videos pending: quota spent")
    return table_result(
        settings.T_YOUTUBE_VIDEOS,
        state.table(),
        written=written,
        code_version=VERSION,
        uri=storage.table_uri(settings.T_YOUTUBE_VIDEOS, shard),
        preview=("vid", "status", "title", "comment_count"),
        metadata={
            "videos": len(vids),
            "fetched": planned,
            "fresh": len(vids) - len(due),
            **_scrape_metadata(budget, journal, statuses),
        },
    )


@dg.multi_asset(
    specs=step_outputs(
        VERSION,
        ["youtube_videos"],
        {"youtube", "parquet"},
        youtube_comments="Top comments (order=relevance, plain text) of each available video.",
        youtube_comment_status="Per video: comments ok, none, disabled, not found, forbidden, "
        "failed or pending.",
    ),
    group_name=GROUP,
    partitions_def=shard_partitions,
    pool=settings.YOUTUBE_POOL,
)
def youtube_comments(
    context: dg.AssetExecutionContext,
    config: ScrapeConfig,
    youtube: YouTubeResource,
    storage: Storage,
) -> Iterator[dg.MaterializeResult]:
    """Top comments of each available video that has any: `commentThreads.list`, a unit a video."""
    shard, now = context.partition_key, datetime.now(UTC)
    videos = {r["vid"]: r for r in storage.read_rows(settings.T_YOUTUBE_VIDEOS, shard)}
    comments = ShardState(storage, settings.T_YOUTUBE_COMMENTS, shard)
    status = ShardState(storage, settings.T_YOUTUBE_COMMENT_STATUS, shard)
    comments.keep_only(set(videos))
    status.keep_only(set(videos))
    journal = ScrapeJournal(storage, shard, context.run_id, "commentThreads")
    for call in journal.recovered:
        if replayed := plan.replayed_comments(call, videos):
            vid_status, rows = replayed
            status.put(vid_status["vid"], [vid_status])
            comments.put(vid_status["vid"], [{**r, "scraped_at": call.at} for r in rows])
    to_call = []
    for vid, video in sorted(videos.items()):
        free = plan.status_without_call(video, now)
        if free is not None:
            if plan.status_changed(status.rows.get(vid), free):
                status.put(vid, [free])
                comments.put(vid, [])
        elif config.force or plan.comments_due(status.first(vid), video):
            to_call.append(vid)
    budget = journal.budget = _budget(context, youtube, storage, now, journal.recovered)
    client = youtube.client(budget, journal.record)
    context.log.info(
        f"shard {shard}: {len(to_call)} comment calls due, {budget.remaining} units left"
    )
    answered = 0
    work = lambda vid: (vid, client.comment_threads(vid))  # noqa: E731
    for n, (vid, result) in enumerate(_run_parallel(to_call, work, youtube.workers()), 1):
        answered += not isinstance(result, ApiFailure) or result.kind is Kind.TERMINAL
        vid_status, rows = plan.comment_result(vid, result, now)
        status.put(vid, [vid_status])
        if vid_status["status"] != plan.PENDING:
            comments.put(vid, [{**r, "scraped_at": now} for r in rows])
        if n % CHECKPOINT_EVERY == 0:
            journal.checkpoint(comments, status)
            context.log.info(f"shard {shard}: comments {n}/{len(to_call)}")
    written = journal.checkpoint(comments, status) or bool(to_call) or bool(journal.recovered)
    journal.close()
    status_rows = status.all_rows()
    statuses = Counter(r["status"] for r in status_rows)
    _raise_if_stopped(
        budget,
        statuses[plan.PENDING],
        now,
        len(to_call),
        answered,
        status_rows,
        "commentThreads.list",
    )
    comments_t = comments.table()
    yield table_result(
        settings.T_YOUTUBE_COMMENTS,
        comments_t,
        asset_key=settings.T_YOUTUBE_COMMENTS,
        written=written,
        code_version=VERSION,
        uri=storage.table_uri(settings.T_YOUTUBE_COMMENTS, shard),
        preview=("vid", "rank", "like_count", "text"),
        metadata={
            "videos": len(videos),
            "calls_due": len(to_call),
            "comments": comments_t.num_rows,
            **_scrape_metadata(budget, journal, statuses),
        },
    )
    yield table_result(
        settings.T_YOUTUBE_COMMENT_STATUS,
        status.table(),
        asset_key=settings.T_YOUTUBE_COMMENT_STATUS,
        written=written,
        code_version=VERSION,
        uri=storage.table_uri(settings.T_YOUTUBE_COMMENT_STATUS, shard),
        metadata={"statuses": dg.MetadataValue.md(counts_markdown(statuses, "status"))},
    )


QUOTA_CHECK = "youtube_quota_within_daily_quota"


@dg.asset(
    group_name=GROUP,
    code_version=VERSION,
    automation_condition=EAGER,
    deps=["youtube_videos", settings.T_YOUTUBE_COMMENTS],
    kinds={"parquet"},
    check_specs=[
        dg.AssetCheckSpec(
            QUOTA_CHECK,
            asset="youtube_quota",
            description="No Pacific day of the ledger spends more than MTA_YOUTUBE_DAILY_QUOTA.",
        )
    ],
)
def youtube_quota(
    context: dg.AssetExecutionContext, youtube: YouTubeResource, storage: Storage
) -> Iterator[Any]:
    """The quota ledger: one row per API call (failed ones too), by Pacific day. The scrape steps
    write its parts to the lake as they call; this asset reads them all (one row per `call_id`)
    and reports the days. It changed when its content hash differs from the last
    materialization's data version."""
    ledger = read_ledger(storage)
    last = context.instance.get_latest_materialization_event(context.asset_key)
    tags = last.asset_materialization.tags if last and last.asset_materialization else None
    written = (tags or {}).get("dagster/data_version") != table_version(ledger).value
    by_day = ledger.group_by("day_pt").aggregate([("units", "sum")]).to_pylist()
    per_day = {str(r["day_pt"]): r["units_sum"] for r in by_day}
    today = per_day.get(pacific_day(datetime.now(UTC)).isoformat(), 0)
    yield table_result(
        settings.T_YOUTUBE_QUOTA,
        ledger,
        written=written,
        code_version=VERSION,
        uri=storage.uri(settings.T_YOUTUBE_QUOTA),
        metadata={
            "units_total": int(pc.sum(ledger.column("units")).as_py() or 0),
            "units_today": today,
            "quota_per_day": youtube.quota_per_day(),
            "units_by_day": dg.MetadataValue.md(counts_markdown(per_day, "Pacific day")),
        },
    )
    over = {day: units for day, units in per_day.items() if units > youtube.quota_per_day()}
    yield dg.AssetCheckResult(
        check_name=QUOTA_CHECK,
        passed=not over,
        metadata={
            "days_over_quota": len(over),
            "worst_day_units": max(per_day.values(), default=0),
        },
    )


@dg.asset(
    group_name=GROUP,
    code_version=VERSION,
    automation_condition=EAGER,
    deps=["youtube_videos", settings.T_YOUTUBE_COMMENTS],
    kinds={"json"},
)
def youtube_raw(storage: Storage) -> dg.MaterializeResult:
    """The raw landing zone: every API response body as received, one JSON line per call, under
    `<lake>/raw/youtube/<endpoint>/shard=<k>/date=<Pacific date>/`. The scrape steps write it
    as they call; this asset takes stock of it (`index.parquet` lists the files), so its lineage
    and growth show in the UI."""
    files = storage.glob(f"{settings.RAW_YOUTUBE_DIR}/*/shard=*/date=*/*.jsonl")
    by_endpoint = Counter(path.split("/")[2] for path in files)
    by_day = Counter(path.split("/")[4].removeprefix("date=") for path in files)
    listing = pa.table({"path": pa.array(files, pa.string())})
    index = f"{settings.RAW_YOUTUBE_DIR}/index.parquet"
    written = storage.write_if_changed(index, parquet_bytes(listing))
    return dg.MaterializeResult(
        metadata={
            "files": len(files),
            "files_by_endpoint": dg.MetadataValue.md(counts_markdown(by_endpoint, "endpoint")),
            "files_by_day": dg.MetadataValue.md(counts_markdown(by_day, "Pacific day")),
            "dagster/uri": dg.MetadataValue.path(storage.uri(settings.RAW_YOUTUBE_DIR)),
            "index": dg.MetadataValue.path(storage.uri(index)),
            CODE_VERSION: VERSION,
            UNCHANGED: not written,
        },
        data_version=table_version(listing),
    )
