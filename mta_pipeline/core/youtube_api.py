"""YouTube Data API v3 responses and errors, as plain data: parsing, classifying, redacting.

What the scraper does with each error follows the table in YOUTUBE_API_NOTES: some end a video
(comments disabled, not found, forbidden), some are retried (rate limits, 5xx, dropped
connections, malformed bodies), `processingFailure` is retried at most twice, `quotaExceeded`
stops all calls, and an invalid key or a disabled API fails the run at once.
"""

from __future__ import annotations

import enum
import html
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mta_pipeline.core.quota import QUOTA_REFUSALS

KEY_RE = re.compile(r"(key=)[^&\s\"'<>]+", re.IGNORECASE)


def redact(text: str, secret: str | None = None) -> str:
    """`text` with every `key=` query value (and the secret itself, wherever it is) hidden."""
    text = KEY_RE.sub(r"\1REDACTED", text)
    return text.replace(secret, "REDACTED") if secret else text


class Kind(enum.Enum):
    TERMINAL = "terminal"  # the answer for this video: record it, no retry
    RETRY = "retry"  # transient: back off and retry, bounded
    RETRY_TWICE = "retry_twice"  # processingFailure: at most two retries
    QUOTA = "quota"  # stop calling; resume after the Pacific midnight
    FATAL = "fatal"  # the key or project is wrong: fail the run at once
    FAILED = "failed"  # an unexpected client error: record, no retry


TERMINAL_REASONS = {"commentsDisabled", "videoNotFound", "forbidden"}
RETRY_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "backendError", "internalError"}
QUOTA_REASONS = QUOTA_REFUSALS
FATAL_REASONS = {"keyInvalid", "accessNotConfigured", "keyExpired", "ipRefererBlocked"}


@dataclass(frozen=True)
class ApiFailure:
    """A call that did not return a usable body: HTTP status (None without a response), the
    machine reason, and a human message already free of the API key."""

    status: int | None
    reason: str
    message: str
    kind: Kind

    def describe(self) -> str:
        code = f"HTTP {self.status} " if self.status else ""
        return f"{code}{self.reason}: {self.message}"[:500]


def classify_http_error(status: int, content: bytes | str | None) -> ApiFailure:
    """Classify an error response by its status and the machine reason in its JSON body."""
    reason, message, details = _error_fields(content)
    if reason in QUOTA_REASONS:
        kind = Kind.QUOTA
    elif reason in FATAL_REASONS or "API_KEY_INVALID" in details:
        kind, reason = Kind.FATAL, "keyInvalid" if "API_KEY_INVALID" in details else reason
    elif reason in TERMINAL_REASONS:
        kind = Kind.TERMINAL
    elif reason == "processingFailure":
        kind = Kind.RETRY_TWICE
    elif reason in RETRY_REASONS or status == 429 or status >= 500:
        kind = Kind.RETRY
    else:
        kind = Kind.FAILED
    return ApiFailure(status, reason or f"http{status}", redact(message), kind)


def transport_failure(exc: BaseException) -> ApiFailure:
    """A dropped connection, timeout or unparsable body: always worth a bounded retry."""
    reason = "malformed_json" if isinstance(exc, ValueError) else "connection"
    return ApiFailure(None, reason, redact(f"{type(exc).__name__}: {exc}"), Kind.RETRY)


def _error_fields(content: bytes | str | None) -> tuple[str, str, str]:
    if isinstance(content, bytes):
        content = content.decode("utf-8", "replace")
    try:
        error = json.loads(content or "")["error"]
    except (ValueError, KeyError, TypeError):
        return "", (content or "")[:200], ""
    errors = error.get("errors") or [{}]
    reason = errors[0].get("reason") or error.get("status") or ""
    details = json.dumps(error.get("details") or [])
    return reason, str(error.get("message") or errors[0].get("message") or ""), details


def _timestamp(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def video_row(item: Mapping[str, Any]) -> dict[str, Any]:
    """A `youtube_videos` row from one `videos.list` item (statistics arrive as strings)."""
    snippet, stats = item.get("snippet") or {}, item.get("statistics") or {}
    return {
        "vid": item["id"],
        "title": snippet.get("title"),
        "description": snippet.get("description"),
        "channel_id": snippet.get("channelId"),
        "channel_title": snippet.get("channelTitle"),
        "published_at": _timestamp(snippet.get("publishedAt")),
        "default_language": snippet.get("defaultLanguage"),
        "default_audio_language": snippet.get("defaultAudioLanguage"),
        "view_count": _int(stats.get("viewCount")),
        "like_count": _int(stats.get("likeCount")),
        "comment_count": _int(stats.get("commentCount")),
        "status": "ok",
        "reason": None,
    }


def comment_text(original: str | None, display: str | None) -> str | None:
    """The comment as its author typed it.

    `textOriginal` is that text, but the API does not always return it. `textDisplay` then is the
    only copy, and even with textFormat=plainText it carries HTML entities (`&amp;`, `&quot;`,
    `&#39;`, `&lt;`, `&gt;`), so it is unescaped. `textOriginal` never is: an author may well have
    typed `&amp;` literally."""
    if original is not None:
        return original
    return html.unescape(display) if display is not None else None


def comment_rows(vid: str, response: Mapping[str, Any], order: str) -> list[dict[str, Any]]:
    """`youtube_comments` rows, ranked 1.. in the order the API returned the threads."""
    rows = []
    for rank, thread in enumerate(response.get("items") or [], 1):
        top = thread["snippet"]["topLevelComment"]
        s = top["snippet"]
        rows.append(
            {
                "vid": vid,
                "rank": rank,
                "comment_id": top.get("id") or thread.get("id"),
                "text": comment_text(s.get("textOriginal"), s.get("textDisplay")),
                "text_display": s.get("textDisplay"),
                "like_count": _int(s.get("likeCount")),
                "published_at": _timestamp(s.get("publishedAt")),
                "author_channel_id": (s.get("authorChannelId") or {}).get("value"),
                "author_display_name": s.get("authorDisplayName"),
                "reply_count": _int(thread["snippet"].get("totalReplyCount")),
                "order": order,
            }
        )
    return rows


def needs_comment_call(comment_count: int | None) -> bool:
    """Absent (disabled) or zero comment counts cost no call."""
    return bool(comment_count)


COMMENT_STATUS_BY_REASON = {
    "commentsDisabled": "comments_disabled",
    "videoNotFound": "not_found",
    "forbidden": "forbidden",
}
