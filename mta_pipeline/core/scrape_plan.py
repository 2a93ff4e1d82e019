"""What a YouTube scrape fetches and what each answer means: pure functions, no I/O.

The one definition of "due" lives here and serves the assets, the daily schedule and the `mta`
command alike: a video is due when it was never scraped, is pending or failed, or was scraped
longer ago than the refresh period; its comments are due when they were never fetched, are pending
or failed, or are older than the video's own scrape.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from mta_pipeline.core.quota import batch_that_fits, reset_message
from mta_pipeline.core.refresh import ShardScrape
from mta_pipeline.core.youtube_api import (
    COMMENT_STATUS_BY_REASON,
    ApiFailure,
    Kind,
    classify_http_error,
    comment_rows,
    needs_comment_call,
    video_row,
)

PENDING, FAILED = "pending", "failed"
Row = dict[str, Any]
Result = dict[str, Any] | ApiFailure


class Call(Protocol):
    """A journaled API call (resources.youtube.CallRecord)."""

    endpoint: str
    params: dict[str, Any]
    outcome: str
    http_status: int | None
    body: str | None
    at: datetime


# -- due-ness ------------------------------------------------------------------------------------


def video_due(row: Mapping[str, Any] | None, fresh_after: datetime) -> bool:
    if not row:
        return True
    return row["status"] in (PENDING, FAILED) or row["scraped_at"] < fresh_after


def comments_due(previous: Mapping[str, Any] | None, video: Mapping[str, Any]) -> bool:
    if not previous:
        return True
    return previous["status"] in (PENDING, FAILED) or previous["scraped_at"] < video["scraped_at"]


def shard_scrapes(
    files: Iterable[Mapping[str, Any]],
    videos: Iterable[Mapping[str, Any]],
    fresh_after: datetime,
) -> list[ShardScrape]:
    """Per shard of `files` (midi_files rows): videos due, pending ones, the oldest scrape."""
    by_vid = {v["vid"]: v for v in videos}
    stats: dict[str, list] = {}
    for f in files:
        row = by_vid.get(f["vid"])
        s = stats.setdefault(f["shard"], [0, 0, 0, None])
        s[0] += 1
        s[1] += video_due(row, fresh_after)
        s[2] += not row or row["status"] in (PENDING, FAILED)
        if row and (s[3] is None or row["scraped_at"] < s[3]):
            s[3] = row["scraped_at"]
    return [ShardScrape(shard, *s) for shard, s in sorted(stats.items())]


def due_shards(
    files: Iterable[Mapping[str, Any]],
    videos: Iterable[Mapping[str, Any]],
    comment_status: Iterable[Mapping[str, Any]],
    fresh_after: datetime,
) -> set[str]:
    """Shards with videos due for a scrape, or comments still pending or failed."""
    due = {s.shard for s in shard_scrapes(files, videos, fresh_after) if s.due}
    return due | {r["shard"] for r in comment_status if r["status"] in (PENDING, FAILED)}


# -- planning ------------------------------------------------------------------------------------


def plan_batches(due: Sequence[str], remaining: int) -> tuple[list[list[str]], int]:
    """Batches of up to 50 ids such that each batch and its comment calls are paid for; and how
    many of `due` they cover."""
    batches, start = [], 0
    while start < len(due):
        size = batch_that_fits(remaining, len(due) - start)
        if size == 0:
            break
        batches.append(list(due[start : start + size]))
        remaining -= 1 + size
        start += size
    return batches, start


# -- statuses and rows ---------------------------------------------------------------------------


def video_status(vid: str, status: str, reason: str | None, now: datetime) -> Row:
    return {"vid": vid, "status": status, "reason": reason, "scraped_at": now}


def comment_status(vid: str, status: str, reason: str | None, n: int, now: datetime) -> Row:
    return {"vid": vid, "status": status, "reason": reason, "n_comments": n, "scraped_at": now}


def status_changed(previous: Sequence[Mapping[str, Any]] | None, new: Mapping[str, Any]) -> bool:
    """Whether a status row says something new (the time alone is not news: an unchanged rerun
    must not rewrite the shard)."""
    if not previous:
        return True
    return (previous[0]["status"], previous[0]["reason"]) != (new["status"], new["reason"])


def batch_rows(ids: Sequence[str], result: Result, now: datetime) -> dict[str, Row]:
    """Rows for one videos.list batch: listed ids are ok, missing ones unavailable; a failed call
    marks the batch pending (quota, stop) or failed (anything else)."""
    if isinstance(result, ApiFailure):
        status = PENDING if result.kind in (Kind.QUOTA, Kind.FATAL) else FAILED
        return {vid: video_status(vid, status, result.describe(), now) for vid in ids}
    rows = {item["id"]: {**video_row(item), "scraped_at": now} for item in result.get("items", [])}
    for vid in ids:
        rows.setdefault(
            vid, video_status(vid, "unavailable", "not in the videos.list response", now)
        )
    return {vid: rows[vid] for vid in ids}


def status_without_call(video: Mapping[str, Any], now: datetime) -> Row | None:
    """The comment status a video gets without spending a unit, or None if a call is needed."""
    vid = video["vid"]
    if video["status"] == "unavailable":
        return comment_status(vid, "not_found", "video unavailable", 0, now)
    if video["status"] != "ok":
        return comment_status(vid, PENDING, f"video is {video['status']}", 0, now)
    if video["comment_count"] is None:
        return comment_status(vid, "comments_disabled", "no commentCount", 0, now)
    if not needs_comment_call(video["comment_count"]):
        return comment_status(vid, "no_comments", "commentCount is 0", 0, now)
    return None


def comment_result(vid: str, result: Result, now: datetime) -> tuple[Row, list[Row]]:
    """The comment status and rows one commentThreads.list answer gives."""
    if not isinstance(result, ApiFailure):
        rows = comment_rows(vid, result, "relevance")
        label = "ok" if rows else "no_comments"
        return comment_status(vid, label, None, len(rows), now), rows
    if result.kind in (Kind.QUOTA, Kind.FATAL):
        return comment_status(vid, PENDING, result.describe(), 0, now), []
    label = COMMENT_STATUS_BY_REASON.get(result.reason, FAILED)
    return comment_status(vid, label, result.describe(), 0, now), []


# -- journal replay ------------------------------------------------------------------------------


def replayed_videos(call: Call, shard_vids: set[str]) -> dict[str, Row]:
    """The video rows a journaled videos.list answer gives for this shard's videos."""
    if call.endpoint != "videos.list" or call.outcome != "ok" or not call.body:
        return {}
    ids = [v for v in call.params["id"].split(",") if v in shard_vids]
    return batch_rows(ids, json.loads(call.body), call.at)


def replayed_comments(call: Call, videos: Mapping[str, Any]) -> tuple[Row, list[Row]] | None:
    """The status and rows a journaled comment call gave, when it was an answer (not an error
    worth retrying) for a video of this shard."""
    vid = call.params.get("videoId")
    if call.endpoint != "commentThreads.list" or vid not in videos:
        return None
    if call.outcome == "ok" and call.body:
        result: Result = json.loads(call.body)
    elif call.http_status:
        result = classify_http_error(call.http_status, call.body)
        if result.kind is not Kind.TERMINAL:
            return None
    else:
        return None
    return comment_result(vid, result, call.at)


# -- how a run ends ------------------------------------------------------------------------------

# The stop reason of a step whose journal append failed (a full disk): it calls no more.
JOURNAL_UNWRITABLE = "journal_unwritable"

KEY_HINTS = {
    "accessNotConfigured": "enable the YouTube Data API v3 for the key's Google Cloud project",
    "keyInvalid": "check YOUTUBE_API_KEY: the API rejected it",
}


def stop_message(reason: ApiFailure | None, pending: int, now: datetime) -> str | None:
    """Why the run fails when the API stopped it (quota gone, a key that cannot work) or the
    journal could not be written, or None."""
    if reason is None or reason.reason == "budget":
        return None
    if reason.reason == JOURNAL_UNWRITABLE:
        return (
            f"the scrape journal cannot be written ({reason.message}); calls stopped, finished "
            f"videos are kept and {pending} are pending: free space and rerun."
        )
    if reason.kind is Kind.QUOTA:
        return (
            f"YouTube quota exceeded ({reason.reason}); finished videos are kept and {pending} "
            f"are pending. {reset_message(now)}: rerun then, only pending videos are fetched."
        )
    hint = KEY_HINTS.get(reason.reason, "check YOUTUBE_API_KEY and the project's API settings")
    return f"YouTube refused the request ({reason.describe()}): {hint}."


def nothing_answered_message(
    calls: int, answered: int, statuses: Iterable[Mapping[str, Any]], endpoint: str
) -> str | None:
    """A run whose every call failed is a failed run, though the statuses are recorded."""
    if not calls or answered:
        return None
    reasons = Counter(r["reason"] for r in statuses if r["status"] == FAILED)
    if not reasons:
        return None
    reason, n = reasons.most_common(1)[0]
    return (
        f"all {calls} {endpoint} calls failed ({n}x {reason}); the videos are recorded as "
        "failed and the next run fetches them again."
    )
