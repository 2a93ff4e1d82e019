"""Joining one shard's MIDI files with GiantMIDI metadata, video text and comments.

One record per good MIDI file (one that parsed: it has features). Missing text is the empty
string, never None, in the text columns. Within a video, comments whose cleaned text repeats an
earlier (better-ranked) one are dropped. `reply_1..reply_5` are the kept comments that are not
spam, in relevance order; every kept comment, spam included, is in `comments` with its flags.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mta_pipeline.core.midi_features import FEATURE_COLUMNS
from mta_pipeline.core.splits import split_for
from mta_pipeline.core.text_clean import clean_text
from mta_pipeline.core.text_flags import detect_lang, is_repeated, is_spam

N_REPLIES = 5
FEATURE_FIELDS = ("sha256", *FEATURE_COLUMNS, "title_key", "key_matches_title")

Row = Mapping[str, Any]


def clean_comments(
    rows: Iterable[Row], channel_id: str | None, repeated: set[str]
) -> list[dict[str, Any]]:
    """Comments in rank order, cleaned and flagged, exact duplicates (after cleaning) dropped."""
    seen: set[str] = set()
    kept = []
    for row in sorted(rows, key=lambda r: r["rank"]):
        text = clean_text(row.get("text"))
        if not text or text in seen:
            continue
        seen.add(text)
        author = row.get("author_channel_id")
        kept.append(
            {
                "rank": row["rank"],
                "comment_id": row.get("comment_id"),
                "text_raw": row.get("text") or "",
                "text": text,
                "lang": detect_lang(text),
                "is_spam": is_spam(text, repeated),
                "is_repeated": is_repeated(text, repeated),
                "is_uploader": bool(author) and author == channel_id,
                "like_count": row.get("like_count"),
                "published_at": row.get("published_at"),
                "author_channel_id": author,
                "reply_count": row.get("reply_count"),
            }
        )
    return kept


def build_record(
    file: Row,
    features: Row,
    meta: Row | None,
    video: Row | None,
    comments: Iterable[Row],
    comment_status: Row | None,
    repeated: set[str],
) -> dict[str, Any]:
    video = video or {}
    meta = meta or {}
    description_raw = video.get("description") or ""
    description = clean_text(description_raw)
    kept = clean_comments(comments, video.get("channel_id"), repeated)
    replies = [c["text"] for c in kept if not c["is_spam"]][:N_REPLIES]
    replies += [""] * (N_REPLIES - len(replies))
    record: dict[str, Any] = {
        "vid": file["vid"],
        "shard": file["shard"],
        "old_id": meta.get("row_index"),
        "surname": file["surname"],
        "firstname": file["firstname"],
        "title": file["title"],
        "member": file["member"],
        "split": split_for(file["surname"], file["firstname"]),
        "nationality": meta.get("nationality"),
        "birth": meta.get("birth"),
        "death": meta.get("death"),
        "giantmidi_youtube_title": meta.get("youtube_title"),
        "giantmidi_split": meta.get("split"),
        **{k: features.get(k) for k in FEATURE_FIELDS},
        "video_status": video.get("status") or "not_scraped",
        "video_title": video.get("title") or "",
        "channel_id": video.get("channel_id"),
        "channel_title": video.get("channel_title") or "",
        "published_at": video.get("published_at"),
        "default_language": video.get("default_language"),
        "default_audio_language": video.get("default_audio_language"),
        "view_count": video.get("view_count"),
        "like_count": video.get("like_count"),
        "comment_count": video.get("comment_count"),
        "video_scraped_at": video.get("scraped_at"),
        "describe_raw": description_raw,
        "describe": description,
        "describe_lang": detect_lang(description) if description else None,
        "comments_status": (comment_status or {}).get("status") or "not_scraped",
        "comments_scraped_at": (comment_status or {}).get("scraped_at"),
        "comment_order": "relevance",
        "n_replies": sum(1 for r in replies if r),
        "comments": kept,
    }
    for i, text in enumerate(replies, 1):
        record[f"reply_{i}"] = text
    return record
