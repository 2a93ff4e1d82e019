"""Joining one shard's MIDI files with GiantMIDI metadata, video text and comments.

One record per good MIDI file (one that parsed: it has features). Missing text is the empty
string, never None, in the text columns. Within a video, comments whose cleaned text repeats an
earlier (better-ranked) one are dropped, and so are comments on the removal list.
`reply_1..reply_5` are the kept comments that are not spam, in relevance order; every kept
comment, spam included, is in `comments` with its flags. GiantMIDI's curation columns come from
its metadata; `curated` is its own subset rule (`giant_midi_piano = 1` and
`surname_in_youtube_title = 1`). Descriptions are raw text from the API, with complete HTML
entities decoded (`text_clean.decode_entities`) before cleaning.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mta_pipeline.core.captions import caption
from mta_pipeline.core.midi_features import FEATURE_COLUMNS
from mta_pipeline.core.text_clean import clean_text, decode_entities
from mta_pipeline.core.text_flags import (
    N_REPLIES,
    URL_RE,
    detect_language,
    is_repeated,
    is_spam,
    reply_comments,
)

FEATURE_FIELDS = ("sha256", *FEATURE_COLUMNS, "title_key", "key_matches_title")
CURATION_FIELDS = (
    "music",
    "nationality",
    "birth",
    "death",
    "youtube_title",
    "similarity",
    "piano_solo_prob",
    "audio_duration",
    "giant_midi_piano",
    "surname_in_youtube_title",
)

Row = Mapping[str, Any]


def text_stats(text: str) -> dict[str, Any]:
    """Language (code and confidence), length in characters, and whether it holds a link."""
    lang, confidence = detect_language(text) if text else (None, None)
    return {
        "lang": lang,
        "lang_confidence": confidence,
        "n_chars": len(text),
        "has_url": bool(URL_RE.search(text)),
    }


def is_curated(meta: Row) -> bool:
    """GiantMIDI's curated subset: in its release and the surname found in the video title."""
    return meta.get("giant_midi_piano") == 1 and meta.get("surname_in_youtube_title") == 1


def clean_comments(
    rows: Iterable[Row],
    channel_id: str | None,
    repeated: set[str],
    removed: frozenset[str] = frozenset(),
) -> list[dict[str, Any]]:
    """Comments in rank order, cleaned and flagged; exact duplicates (after cleaning) and
    comments whose id is on the removal list dropped."""
    seen: set[str] = set()
    kept = []
    for row in sorted(rows, key=lambda r: r["rank"]):
        text = clean_text(row.get("text"))
        if not text or text in seen or row.get("comment_id") in removed:
            continue
        seen.add(text)
        author = row.get("author_channel_id")
        kept.append(
            {
                "rank": row["rank"],
                "comment_id": row.get("comment_id"),
                "text_raw": row.get("text") or "",
                "text": text,
                **text_stats(text),
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
    split: str,
    removed: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    video = video or {}
    meta = meta or {}
    description_raw = video.get("description") or ""
    description = clean_text(decode_entities(description_raw))
    describe_stats = text_stats(description)
    kept = clean_comments(comments, video.get("channel_id"), repeated, removed)
    replies = [c["text"] for c in reply_comments(kept)]
    replies += [""] * (N_REPLIES - len(replies))
    record: dict[str, Any] = {
        "vid": file["vid"],
        "shard": file["shard"],
        "old_id": meta.get("row_index"),
        "surname": file["surname"],
        "firstname": file["firstname"],
        "title": file["title"],
        "member": file["member"],
        "split": split,
        **{k: meta.get(k) for k in CURATION_FIELDS},
        "giantmidi_split": meta.get("split"),
        "curated": is_curated(meta),
        **{k: features.get(k) for k in FEATURE_FIELDS},
        "caption": caption(features),
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
        **{f"describe_{k}": v for k, v in describe_stats.items()},
        "comments_status": (comment_status or {}).get("status") or "not_scraped",
        "comments_scraped_at": (comment_status or {}).get("scraped_at"),
        "comment_order": "relevance",
        "n_replies": sum(1 for r in replies if r),
        "comments": kept,
    }
    for i, text in enumerate(replies, 1):
        record[f"reply_{i}"] = text
    return record
