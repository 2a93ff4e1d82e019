"""YouTube scraping per shard: video details, then top comments; quota-aware and resumable.

Each shard's state (one row per video, one status per video's comments) is rewritten at every
checkpoint, so a run stopped by the quota, an error or a kill keeps every finished video; the
next run fetches only what is pending or older than MTA_YOUTUBE_REFRESH_DAYS.
"""

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import pyarrow as pa

from mta_pipeline import config as settings
from mta_pipeline import schemas
from mta_pipeline.assets.giantmidi import midi_files
from mta_pipeline.assets.persist import table_version
from mta_pipeline.assets.scrape_log import ScrapeLog
from mta_pipeline.core.quota import (
    batch_that_fits,
    pacific_day,
    remaining_units,
    reset_message,
)
from mta_pipeline.core.youtube_api import (
    COMMENT_STATUS_BY_REASON,
    ApiFailure,
    Kind,
    classify_http_error,
    comment_rows,
    needs_comment_call,
    video_row,
)
from mta_pipeline.partitions import shard_partitions
from mta_pipeline.resources.catalog import DuckDBCatalog
from mta_pipeline.resources.lake import LakeResource
from mta_pipeline.resources.youtube import Budget, CallRecord, YouTubeResource
from mta_pipeline.summaries import counts_markdown, preview_markdown

GROUP = "youtube"
CHECKPOINT_EVERY = 50  # finished videos between two writes of the shard's state
PENDING, FAILED = "pending", "failed"


class ScrapeConfig(dg.Config):
    """`force`: fetch again even what was scraped within MTA_YOUTUBE_REFRESH_DAYS."""

    force: bool = False


def _shard_vids(lake: LakeResource, shard: str) -> list[str]:
    files = lake.read_parquet(lake.shard_path(settings.T_MIDI_FILES, shard), schemas.MIDI_FILES)
    if files is None:
        raise dg.Failure(f"shard {shard} of midi_files is missing: materialize midi_files first.")
    return sorted(files.column("vid").to_pylist())


def _previous(lake: LakeResource, table: str, shard: str) -> list[dict[str, Any]]:
    data = lake.read_parquet(lake.shard_path(table, shard), schemas.SCHEMAS[table])
    return data.to_pylist() if data is not None else []


def _budget(
    youtube: YouTubeResource, catalog: DuckDBCatalog, now: datetime, unledgered: int = 0
) -> Budget:
    spent = catalog.scalar(
        f"SELECT sum(units) FROM {settings.T_YOUTUBE_QUOTA} WHERE day_pt = ?",
        [pacific_day(now)],
        default=0,
    )
    return Budget(units=remaining_units(youtube.quota_per_day(), int(spent) + unledgered))


def _stop_failure(budget: Budget, pending: int, now: datetime) -> dg.Failure | None:
    """The run's failure when the API stopped it: quota gone, or a key that cannot work."""
    reason = budget.stop_reason
    if reason is None or reason.reason == "budget":
        return None
    if reason.kind is Kind.QUOTA:
        return dg.Failure(
            f"YouTube quota exceeded ({reason.reason}); finished videos are kept and {pending} "
            f"are pending. {reset_message(now)}: rerun then, only pending videos are fetched."
        )
    hint = {
        "accessNotConfigured": "enable the YouTube Data API v3 for the key's Google Cloud project",
        "keyInvalid": "check YOUTUBE_API_KEY: the API rejected it",
    }.get(reason.reason, "check YOUTUBE_API_KEY and the project's API settings")
    return dg.Failure(f"YouTube refused the request ({reason.describe()}): {hint}.")


def _run_parallel(
    first: Iterable[Any], rest: Iterable[Any], work: Callable[[Any], Any], workers: int
) -> Iterator[Any]:
    """Results of `work`: the first items alone (so a bad key fails after one call), then the
    rest on a thread pool, as they complete."""
    for item in first:
        yield work(item)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="youtube") as pool:
        for future in as_completed([pool.submit(work, item) for item in rest]):
            yield future.result()


class ShardState:
    """A shard's rows keyed by vid, written whole to the lake and the catalog at checkpoints."""

    def __init__(self, lake: LakeResource, table: str, shard: str):
        self.lake, self.table_name, self.shard = lake, table, shard
        self.rows: dict[str, list[dict[str, Any]]] = {}
        for row in _previous(lake, table, shard):
            self.rows.setdefault(row["vid"], []).append(row)

    def put(self, vid: str, rows: list[dict[str, Any]]) -> None:
        self.rows[vid] = [{**r, "shard": self.shard} for r in rows]

    def keep_only(self, vids: set[str]) -> None:
        self.rows = {v: r for v, r in self.rows.items() if v in vids}

    def table(self) -> pa.Table:
        rows = [r for vid in sorted(self.rows) for r in self.rows[vid]]
        return schemas.to_table(self.table_name, rows)


def checkpoint(log: ScrapeLog, catalog: DuckDBCatalog, *states: ShardState) -> bool:
    """Write the shard's state and the calls behind it: lake files first (each whole), then one
    catalog transaction, so the ledger and the rows it paid for land together. Nothing is
    written when no call was made and no state changed; returns True when something was."""
    ledger = log.flush()
    replace = []
    for state in states:
        data = state.table()
        relpath = state.lake.shard_path(state.table_name, state.shard)
        previous = state.lake.read_parquet(relpath, data.schema)
        if previous is not None and previous.equals(data):
            continue
        state.lake.write_parquet(relpath, data)
        replace.append((state.table_name, data, {"shard": state.shard}))
    append = [(settings.T_YOUTUBE_QUOTA, ledger)] if ledger is not None else []
    if replace or append:
        catalog.apply(replace=replace, append=append)
    log.committed()
    return bool(replace or append)


@dg.asset(
    group_name=GROUP,
    code_version="1",
    automation_condition=dg.AutomationCondition.eager(),
    partitions_def=shard_partitions,
    deps=[midi_files],
    pool=settings.YOUTUBE_POOL,
    kinds={"youtube", "duckdb", "parquet"},
)
def youtube_videos(
    context: dg.AssetExecutionContext,
    config: ScrapeConfig,
    youtube: YouTubeResource,
    lake: LakeResource,
    catalog: DuckDBCatalog,
) -> dg.MaterializeResult:
    """Title, description, channel and statistics of each video: `videos.list`, 50 ids a unit."""
    shard, now = context.partition_key, datetime.now(UTC)
    vids = _shard_vids(lake, shard)
    state = ShardState(lake, settings.T_YOUTUBE_VIDEOS, shard)
    state.keep_only(set(vids))
    shard_vids = set(vids)
    log = ScrapeLog(lake, catalog, shard, context.run_id, "videos")
    for call in log.recovered:
        if call.endpoint == "videos.list" and call.outcome == "ok" and call.body:
            ids = [v for v in call.params["id"].split(",") if v in shard_vids]
            for vid, row in _batch_rows(ids, json.loads(call.body), call.at).items():
                state.put(vid, [row])
    if log.recovered:
        context.log.info(f"shard {shard}: {len(log.recovered)} calls replayed from the journal")
    fresh_after = now - timedelta(days=youtube.refresh_after_days())
    due = [v for v in vids if config.force or _video_due(state.rows.get(v), fresh_after)]
    budget = _budget(youtube, catalog, now, len(log.recovered))
    client = youtube.client(budget, log.record)
    batches, planned = _plan_batches(due, budget.remaining)
    for vid in due[planned:]:
        pending = _video_status(vid, PENDING, "not enough quota left today", now)
        if _status_changed(state.rows.get(vid), pending):
            state.put(vid, [pending])
    context.log.info(
        f"shard {shard}: {len(vids)} videos, {len(due)} due, {planned} fit in the "
        f"{budget.remaining} units left today, {len(batches)} videos.list calls"
    )
    done, answered = 0, 0
    work = lambda ids: (ids, client.videos(ids))  # noqa: E731
    for ids, result in _run_parallel(batches[:1], batches[1:], work, youtube.workers()):
        for vid, row in _batch_rows(ids, result, now).items():
            state.put(vid, [row])
        done += len(ids)
        answered += not isinstance(result, ApiFailure)
        checkpoint(log, catalog, state)
        context.log.info(f"shard {shard}: videos {done}/{planned}")
    written = checkpoint(log, catalog, state) or bool(batches) or bool(log.recovered)
    log.close()
    statuses = Counter(rows[0]["status"] for rows in state.rows.values())
    pending = statuses.get(PENDING, 0)
    failure = _stop_failure(budget, pending, now)
    if failure:
        raise failure
    _fail_if_nothing_answered(batches, answered, state, "videos.list")
    if pending:
        context.log.warning(f"shard {shard}: {pending} videos pending: the day's quota is spent")
    return dg.MaterializeResult(
        metadata={
            "videos": len(vids),
            "fetched": planned,
            "fresh": len(vids) - len(due),
            "unchanged": not written,
            "pending": pending,
            "statuses": dg.MetadataValue.md(counts_markdown(statuses, "status")),
            "quota_units_spent": budget.spent,
            "quota_units_left_today": budget.remaining,
            "calls": log.total_calls,
            "preview": dg.MetadataValue.md(
                preview_markdown(
                    [r[0] for r in state.rows.values()], ("vid", "status", "title", "comment_count")
                )
            ),
        },
        data_version=table_version(state.table()),
    )


def _fail_if_nothing_answered(
    calls: list[Any], answered: int, state: ShardState, endpoint: str
) -> None:
    """A run whose every call failed is a failed run, though the statuses are recorded."""
    if calls and not answered:
        reasons = Counter(
            r[0]["reason"] for r in state.rows.values() if r and r[0]["status"] == FAILED
        )
        if reasons:
            reason, n = reasons.most_common(1)[0]
            raise dg.Failure(
                f"all {len(calls)} {endpoint} calls failed ({n}x {reason}); the videos are "
                "recorded as failed and the next run fetches them again."
            )


def _status_changed(previous: list[dict[str, Any]] | None, new: dict[str, Any]) -> bool:
    """Whether a status row says something new (the time alone is not news: an unchanged
    rerun must not rewrite the shard)."""
    return not previous or (previous[0]["status"], previous[0]["reason"]) != (
        new["status"],
        new["reason"],
    )


def _video_due(row: list[dict[str, Any]] | None, fresh_after: datetime) -> bool:
    if not row:
        return True
    row0 = row[0]
    return row0["status"] in (PENDING, FAILED) or row0["scraped_at"] < fresh_after


def _plan_batches(due: list[str], remaining: int) -> tuple[list[list[str]], int]:
    """Batches of up to 50 ids such that each batch and its comment calls are paid for."""
    batches, start = [], 0
    while start < len(due):
        size = batch_that_fits(remaining, len(due) - start)
        if size == 0:
            break
        batches.append(due[start : start + size])
        remaining -= 1 + size
        start += size
    return batches, start


def _video_status(vid: str, status: str, reason: str | None, now: datetime) -> dict[str, Any]:
    return {"vid": vid, "status": status, "reason": reason, "scraped_at": now}


def _batch_rows(
    ids: list[str], result: dict[str, Any] | ApiFailure, now: datetime
) -> dict[str, dict[str, Any]]:
    """Rows for one batch: listed ids are ok, missing ones unavailable; a failed call marks the
    batch pending (quota, stop) or failed (anything else)."""
    if isinstance(result, ApiFailure):
        status = PENDING if result.kind in (Kind.QUOTA, Kind.FATAL) else FAILED
        return {vid: _video_status(vid, status, result.describe(), now) for vid in ids}
    rows = {item["id"]: {**video_row(item), "scraped_at": now} for item in result.get("items", [])}
    for vid in ids:
        rows.setdefault(
            vid, _video_status(vid, "unavailable", "not in the videos.list response", now)
        )
    return {vid: rows[vid] for vid in ids}


@dg.asset(
    group_name=GROUP,
    code_version="1",
    automation_condition=dg.AutomationCondition.eager(),
    partitions_def=shard_partitions,
    deps=[youtube_videos],
    pool=settings.YOUTUBE_POOL,
    kinds={"youtube", "duckdb", "parquet"},
)
def youtube_comments(
    context: dg.AssetExecutionContext,
    config: ScrapeConfig,
    youtube: YouTubeResource,
    lake: LakeResource,
    catalog: DuckDBCatalog,
) -> dg.MaterializeResult:
    """Top comments (order=relevance) of each available video that has any; one unit a video."""
    shard, now = context.partition_key, datetime.now(UTC)
    videos = {r["vid"]: r for r in _previous(lake, settings.T_YOUTUBE_VIDEOS, shard)}
    comments = ShardState(lake, settings.T_YOUTUBE_COMMENTS, shard)
    status = ShardState(lake, settings.T_YOUTUBE_COMMENT_STATUS, shard)
    comments.keep_only(set(videos))
    status.keep_only(set(videos))
    log = ScrapeLog(lake, catalog, shard, context.run_id, "commentThreads")
    for call in log.recovered:
        replayed = _replayed_comments(call, videos)
        if replayed is not None:
            vid_status, rows = replayed
            status.put(vid_status["vid"], [vid_status])
            comments.put(vid_status["vid"], [{**r, "scraped_at": call.at} for r in rows])
    to_call = []
    for vid, video in sorted(videos.items()):
        free = _status_without_call(video, now)
        if free is not None:
            if _status_changed(status.rows.get(vid), free):
                status.put(vid, [free])
                comments.put(vid, [])
        elif config.force or _comments_due(status.rows.get(vid), video):
            to_call.append(vid)
    budget = _budget(youtube, catalog, now, len(log.recovered))
    client = youtube.client(budget, log.record)
    context.log.info(
        f"shard {shard}: {len(to_call)} comment calls due, {budget.remaining} units left today"
    )
    work = lambda vid: (vid, client.comment_threads(vid))  # noqa: E731
    answered = 0
    for n, (vid, result) in enumerate(
        _run_parallel(to_call[:1], to_call[1:], work, youtube.workers()), 1
    ):
        answered += not isinstance(result, ApiFailure) or result.kind is Kind.TERMINAL
        vid_status, rows = _comment_result(vid, result, now)
        status.put(vid, [vid_status])
        if vid_status["status"] != PENDING:
            comments.put(vid, [{**r, "scraped_at": now} for r in rows])
        if n % CHECKPOINT_EVERY == 0:
            checkpoint(log, catalog, comments, status)
            context.log.info(f"shard {shard}: comments {n}/{len(to_call)}")
    written = checkpoint(log, catalog, comments, status) or bool(to_call) or bool(log.recovered)
    log.close()
    statuses = Counter(rows[0]["status"] for rows in status.rows.values())
    failure = _stop_failure(budget, statuses.get(PENDING, 0), now)
    if failure:
        raise failure
    _fail_if_nothing_answered(to_call, answered, status, "commentThreads.list")
    all_comments = [r for rows in comments.rows.values() for r in rows]
    return dg.MaterializeResult(
        metadata={
            "videos": len(videos),
            "calls_due": len(to_call),
            "comments": len(all_comments),
            "unchanged": not written,
            "pending": statuses.get(PENDING, 0),
            "statuses": dg.MetadataValue.md(counts_markdown(statuses, "status")),
            "quota_units_spent": budget.spent,
            "quota_units_left_today": budget.remaining,
            "calls": log.total_calls,
            "preview": dg.MetadataValue.md(
                preview_markdown(all_comments, ("vid", "rank", "like_count", "text"))
            ),
        },
        data_version=table_version(comments.table()),
    )


def _replayed_comments(
    call: CallRecord, videos: dict[str, dict[str, Any]]
) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """The status and rows a journaled comment call gave, when it was an answer (not an error
    worth retrying) for a video of this shard."""
    vid = call.params.get("videoId")
    if call.endpoint != "commentThreads.list" or vid not in videos:
        return None
    if call.outcome == "ok" and call.body:
        result: dict[str, Any] | ApiFailure = json.loads(call.body)
    elif call.http_status:
        result = classify_http_error(call.http_status, call.body)
        if result.kind is not Kind.TERMINAL:
            return None
    else:
        return None
    return _comment_result(vid, result, call.at)


def _comment_status(
    vid: str, status: str, reason: str | None, n: int, now: datetime
) -> dict[str, Any]:
    return {"vid": vid, "status": status, "reason": reason, "n_comments": n, "scraped_at": now}


def _status_without_call(video: dict[str, Any], now: datetime) -> dict[str, Any] | None:
    """The comment status a video gets without spending a unit, or None if a call is needed."""
    vid = video["vid"]
    if video["status"] == "unavailable":
        return _comment_status(vid, "not_found", "video unavailable", 0, now)
    if video["status"] != "ok":
        return _comment_status(vid, PENDING, f"video is {video['status']}", 0, now)
    if video["comment_count"] is None:
        return _comment_status(vid, "comments_disabled", "no commentCount", 0, now)
    if not needs_comment_call(video["comment_count"]):
        return _comment_status(vid, "no_comments", "commentCount is 0", 0, now)
    return None


def _comments_due(previous: list[dict[str, Any]] | None, video: dict[str, Any]) -> bool:
    if not previous:
        return True
    row = previous[0]
    return row["status"] in (PENDING, FAILED) or row["scraped_at"] < video["scraped_at"]


def _comment_result(
    vid: str, result: dict[str, Any] | ApiFailure, now: datetime
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if not isinstance(result, ApiFailure):
        rows = comment_rows(vid, result, "relevance")
        label = "ok" if rows else "no_comments"
        return _comment_status(vid, label, None, len(rows), now), rows
    if result.kind in (Kind.QUOTA, Kind.FATAL):
        return _comment_status(vid, PENDING, result.describe(), 0, now), []
    label = COMMENT_STATUS_BY_REASON.get(result.reason, FAILED)
    return _comment_status(vid, label, result.describe(), 0, now), []
