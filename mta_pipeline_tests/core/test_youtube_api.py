import json
from datetime import UTC, datetime

import pytest

from mta_pipeline.core.youtube_api import (
    COMMENT_STATUS_BY_REASON,
    Kind,
    classify_http_error,
    comment_rows,
    comment_text,
    needs_comment_call,
    redact,
    transport_failure,
    video_row,
)


def body(reason: str, domain: str = "youtube.commentThread", details=None) -> bytes:
    error = {
        "code": 0,
        "message": f"msg {reason}",
        "errors": [{"reason": reason, "domain": domain}],
    }
    if details:
        error["details"] = details
    return json.dumps({"error": error}).encode()


@pytest.mark.parametrize(
    ("status", "content", "kind", "reason"),
    [
        (403, body("commentsDisabled"), Kind.TERMINAL, "commentsDisabled"),
        (404, body("videoNotFound"), Kind.TERMINAL, "videoNotFound"),
        (403, body("forbidden"), Kind.TERMINAL, "forbidden"),
        (403, body("quotaExceeded", "youtube.quota"), Kind.QUOTA, "quotaExceeded"),
        (403, body("rateLimitExceeded", "usageLimits"), Kind.RETRY, "rateLimitExceeded"),
        (429, body("userRateLimitExceeded"), Kind.RETRY, "userRateLimitExceeded"),
        (400, body("processingFailure"), Kind.RETRY_TWICE, "processingFailure"),
        (503, body("backendError"), Kind.RETRY, "backendError"),
        (502, b"<html>Bad Gateway</html>", Kind.RETRY, "http502"),
        (400, body("keyInvalid"), Kind.FATAL, "keyInvalid"),
        (
            400,
            body("badRequest", "global", [{"@type": "ErrorInfo", "reason": "API_KEY_INVALID"}]),
            Kind.FATAL,
            "keyInvalid",
        ),
        (403, body("accessNotConfigured", "usageLimits"), Kind.FATAL, "accessNotConfigured"),
        (400, body("invalidFilters"), Kind.FAILED, "invalidFilters"),
    ],
)
def test_every_error_row_of_the_notes_is_classified(status, content, kind, reason):
    failure = classify_http_error(status, content)
    assert (failure.kind, failure.reason) == (kind, reason)


def test_terminal_comment_errors_map_to_statuses():
    assert COMMENT_STATUS_BY_REASON == {
        "commentsDisabled": "comments_disabled",
        "videoNotFound": "not_found",
        "forbidden": "forbidden",
    }


def test_redact_hides_key_values_and_the_secret_anywhere():
    url = "http://h/youtube/v3/videos?part=snippet&key=AIzaSECRET&alt=json"
    assert "AIzaSECRET" not in redact(url) and "key=REDACTED&alt=json" in redact(url)
    assert redact("token AIzaSECRET here", "AIzaSECRET") == "token REDACTED here"
    failure = transport_failure(ConnectionResetError(f"reset while fetching {url}"))
    assert failure.kind is Kind.RETRY and "AIzaSECRET" not in failure.message


def test_video_row_types_statistics_and_keeps_missing_comment_count_as_none():
    row = video_row(
        {
            "id": "abcdefghijk",
            "snippet": {
                "title": "T",
                "description": "D\r\nx",
                "publishedAt": "2020-01-02T03:04:05Z",
            },
            "statistics": {"viewCount": "12", "likeCount": "3"},
        }
    )
    assert row["published_at"] == datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert (row["view_count"], row["like_count"], row["comment_count"]) == (12, 3, None)
    assert not needs_comment_call(row["comment_count"]) and not needs_comment_call(0)
    assert needs_comment_call(4)


def test_comment_rows_rank_in_response_order_and_keep_the_original_text():
    thread = lambda cid, text, likes: {  # noqa: E731
        "id": cid,
        "snippet": {
            "totalReplyCount": 1,
            "topLevelComment": {
                "id": cid,
                "snippet": {
                    "textOriginal": text,
                    "textDisplay": text.replace("&", "&amp;"),
                    "likeCount": likes,
                    "publishedAt": "2021-05-06T07:08:09Z",
                    "authorChannelId": {"value": "UCx"},
                    "authorDisplayName": "@a",
                },
            },
        },
    }
    rows = comment_rows(
        "v" * 11, {"items": [thread("c1", "A & B", 9), thread("c2", "ok", 1)]}, "relevance"
    )
    assert [(r["rank"], r["comment_id"], r["text"]) for r in rows] == [
        (1, "c1", "A & B"),
        (2, "c2", "ok"),
    ]
    assert rows[0]["text_display"] == "A &amp; B" and rows[0]["author_channel_id"] == "UCx"


@pytest.mark.parametrize(
    ("original", "display", "text"),
    [
        ('"Clair de lune" & me', "&quot;Clair de lune&quot; &amp; me", '"Clair de lune" & me'),
        ("Tom &amp; Jerry", "Tom &amp;amp; Jerry", "Tom &amp; Jerry"),  # typed literally: kept
        ("as typed", "&lt;b&gt;as shown&lt;/b&gt;", "as typed"),  # the original wins
        ("", "", ""),
        (None, "&quot;Clair de lune&quot; played like this", '"Clair de lune" played like this'),
        (None, "it&#39;s 5 &gt; 4 &lt;3\r\nR&amp;B", "it's 5 > 4 <3\r\nR&B"),
        (None, "Tom &amp;amp; Jerry", "Tom &amp; Jerry"),  # unescaped once, not twice
        (None, "¯\\_(ツ)_/¯ NA", "¯\\_(ツ)_/¯ NA"),
        (None, None, None),
    ],
)
def test_comment_text_is_the_original_else_the_display_unescaped(original, display, text):
    assert comment_text(original, display) == text


def test_comment_rows_decode_the_display_of_a_thread_without_original_text():
    snippet = {"textDisplay": "&quot;Bravo&quot; &amp; &#39;encore&#39;", "likeCount": 0}
    thread = {"id": "c1", "snippet": {"topLevelComment": {"id": "c1", "snippet": snippet}}}
    (row,) = comment_rows("v" * 11, {"items": [thread]}, "relevance")
    assert row["text"] == "\"Bravo\" & 'encore'"
    assert row["text_display"] == "&quot;Bravo&quot; &amp; &#39;encore&#39;"
