"""Tests for joining one MIDI file with metadata, video text and comments into a record."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pytest

from mta_pipeline import config, schemas
from mta_pipeline.core.records import N_REPLIES, build_record, clean_comments
from mta_pipeline.core.text_flags import repeated_signatures

VID = "Ab3dEf6hIj0"
SHARD = "00"
UPLOADER = "UCuploader000000000000000"
T0 = datetime(2020, 5, 17, 12, 30, tzinfo=UTC)
SCRAPED = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
REPLY_COLUMNS = [f"reply_{i}" for i in range(1, N_REPLIES + 1)]
TEXT_COLUMNS = [
    "video_title",
    "channel_title",
    "describe_raw",
    "describe",
    *REPLY_COLUMNS,
]
SPAM = "Subscribe to my channel https://youtube.com/c/spammer"


def midi_file(vid: str = VID, surname: str = "Chopin", firstname: str = "Frédéric") -> dict:
    title = "Nocturne in E-flat major, Op.9 No.2"
    return {
        "vid": vid,
        "shard": SHARD,
        "surname": surname,
        "firstname": firstname,
        "title": title,
        "member": f"midis/{surname}, {firstname}, {title}, {vid}.mid",
        "size_bytes": 12_345,
        "sha256": "a" * 64,
        "path": f"/data/midi/{vid}.mid",
    }


def features(vid: str = VID) -> dict:
    return {
        "vid": vid,
        "shard": SHARD,
        "sha256": "a" * 64,
        "duration_s": 271.5,
        "n_notes": 1834,
        "pitch_min": 31,
        "pitch_max": 94,
        "pitch_mean": 63.2,
        "velocity_mean": 58.1,
        "velocity_std": 12.4,
        "notes_per_s": 6.75,
        "pedal_ratio": 0.61,
        "max_polyphony": 7,
        "key_estimate": "D# major",
        "title_key": "D# major",
        "key_matches_title": True,
    }


def meta(row_index: int = 0) -> dict:
    return {
        "row_index": row_index,
        "surname": "Chopin",
        "firstname": "Frédéric",
        "music": "Nocturne in E-flat major, Op.9 No.2",
        "nationality": "Polish",
        "birth": "1810",
        "death": "1849",
        "youtube_title": "Chopin - Nocturne Op. 9 No. 2",
        "youtube_id": VID,
        "similarity": 0.9,
        "piano_solo_prob": 0.99,
        "audio_name": f"Chopin, Frédéric, Nocturne, {VID}.mp3",
        "audio_duration": 271.0,
        "giant_midi_piano": 1,
        "split": "train",
        "surname_in_youtube_title": 1,
    }


def video(
    description: str | None = "Recorded live.&amp;  Thanks!\r\n\r\n\r\n0:00 Nocturne  ",
) -> dict:
    return {
        "vid": VID,
        "shard": SHARD,
        "title": "Chopin - Nocturne Op. 9 No. 2",
        "description": description,
        "channel_id": UPLOADER,
        "channel_title": "Piano Channel",
        "published_at": T0,
        "default_language": "en",
        "default_audio_language": "zxx",
        "view_count": 123_456,
        "like_count": 789,
        "comment_count": 42,
        "status": "ok",
        "reason": None,
        "scraped_at": SCRAPED,
    }


def comment(rank: int, text: str | None, author: str | None = None, **extra: Any) -> dict:
    return {
        "vid": VID,
        "shard": SHARD,
        "rank": rank,
        "comment_id": f"Ugc{rank:04d}",
        "text": text,
        "text_display": text,
        "like_count": 10 - rank,
        "published_at": T0,
        "author_channel_id": author if author is not None else f"UCfan{rank:04d}",
        "author_display_name": f"fan {rank}",
        "reply_count": 0,
        "order": "relevance",
        "scraped_at": SCRAPED,
        **extra,
    }


def comment_status() -> dict:
    return {"vid": VID, "shard": SHARD, "status": "ok", "reason": None, "n_comments": 3}


def record(
    comments: list[dict] | None = None,
    *,
    video_row: dict | None = None,
    meta_row: dict | None = None,
    status: dict | None = None,
    repeated: set[str] | None = None,
    removed: frozenset[str] = frozenset(),
) -> dict:
    return build_record(
        midi_file(),
        features(),
        meta_row,
        video_row,
        comments or [],
        status,
        repeated or set(),
        split="validation",
        removed=removed,
    )


def full_record(comments: list[dict]) -> dict:
    return record(comments, video_row=video(), meta_row=meta(7), status=comment_status())


def validate(rec: dict) -> dict:
    """The record through the published schema and back: fails on a wrong type or name."""
    assert set(rec) == set(schemas.MTA_RECORDS.names)
    table = pa.Table.from_pylist([rec], schema=schemas.MTA_RECORDS)
    schemas.to_table(config.T_MTA_RECORDS, [rec])  # also refuses keys not in the schema
    return table.to_pylist()[0]


# --- Duplicates --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("better", "worse"),
    [
        ("Lovely phrasing", "Lovely phrasing   "),
        ("Rock\u00a0& Roll of the piano", "Rock & Roll of the piano"),
        ("Two\nlines", "Two\r\nlines"),
        ("Bravo", "  Bravo\x00"),
    ],
)
def test_duplicates_after_cleaning_dropped_keeping_better_rank(better: str, worse: str) -> None:
    rows = [comment(4, worse), comment(2, "Something else entirely"), comment(1, better)]
    kept = clean_comments(rows, UPLOADER, set())
    assert [c["rank"] for c in kept] == [1, 2]
    assert kept[0]["comment_id"] == "Ugc0001"
    assert kept[0]["text_raw"] == better


def test_duplicate_with_worse_rank_listed_first_still_loses() -> None:
    rows = [comment(1, "Same words  "), comment(0, "Same  words")]
    kept = clean_comments(rows, UPLOADER, set())
    assert [(c["rank"], c["text"], c["text_raw"]) for c in kept] == [
        (0, "Same words", "Same  words")
    ]


def test_duplicates_in_record_not_repeated_in_replies() -> None:
    rec = full_record([comment(1, "Magnificent"), comment(2, "Magnificent "), comment(3, "Wow")])
    assert [rec[c] for c in REPLY_COLUMNS] == ["Magnificent", "Wow", "", "", ""]
    assert [c["rank"] for c in rec["comments"]] == [1, 3]


def test_case_differences_are_not_exact_duplicates() -> None:
    kept = clean_comments([comment(1, "Bravo"), comment(2, "BRAVO")], UPLOADER, set())
    assert [c["text"] for c in kept] == ["Bravo", "BRAVO"]


@pytest.mark.parametrize("text", [None, "", "   ", "\x00\r\n"])
def test_empty_comments_dropped(text: str | None) -> None:
    kept = clean_comments([comment(1, text), comment(2, "Real text")], UPLOADER, set())
    assert [c["rank"] for c in kept] == [2]


def test_comments_in_rank_order() -> None:
    rows = [comment(r, f"comment number {r}") for r in (5, 0, 3, 1)]
    assert [c["rank"] for c in clean_comments(rows, UPLOADER, set())] == [0, 1, 3, 5]


# --- Spam, repetition, uploader ------------------------------------------------------------


def test_spam_kept_in_comments_but_not_in_replies() -> None:
    rec = full_record(
        [
            comment(1, SPAM),
            comment(2, "https://bit.ly/xyz"),
            comment(3, "Such delicate pianissimo"),
        ]
    )
    assert rec["reply_1"] == "Such delicate pianissimo"
    assert SPAM not in [rec[c] for c in REPLY_COLUMNS]
    assert rec["n_replies"] == 1
    flags = [(c["rank"], c["is_spam"]) for c in rec["comments"]]
    assert flags == [(1, True), (2, True), (3, False)]
    validate(rec)


def test_spam_does_not_use_up_reply_slots() -> None:
    rows = [comment(0, SPAM)] + [comment(r, f"genuine remark number {r}") for r in range(1, 8)]
    rec = full_record(rows)
    assert [rec[c] for c in REPLY_COLUMNS] == [f"genuine remark number {r}" for r in range(1, 6)]
    assert rec["n_replies"] == N_REPLIES
    assert len(rec["comments"]) == 8  # every kept comment, beyond the five replies too


def test_repeated_text_flagged_and_kept_as_reply_unless_it_has_a_link() -> None:
    praise = "Who else is listening to this in 2024?"
    linked = "Great, hear my version at https://youtu.be/abcdefghijk"
    repeated = repeated_signatures(
        [(praise, "UCa", "v1"), (praise, "UCb", "v2"), (linked, "UCc", "v1"), (linked, "UCd", "v2")]
    )
    rec = record([comment(1, praise), comment(2, linked)], video_row=video(), repeated=repeated)
    by_rank = {c["rank"]: c for c in rec["comments"]}
    assert (by_rank[1]["is_repeated"], by_rank[1]["is_spam"]) == (True, False)
    assert (by_rank[2]["is_repeated"], by_rank[2]["is_spam"]) == (True, True)
    assert [rec[c] for c in REPLY_COLUMNS] == [praise, "", "", "", ""]


def test_uploader_comment_flagged_and_kept_in_replies() -> None:
    rec = full_record(
        [comment(1, "Thanks everyone for listening!", author=UPLOADER), comment(2, "Lovely")]
    )
    assert rec["reply_1"] == "Thanks everyone for listening!"
    assert [c["is_uploader"] for c in rec["comments"]] == [True, False]


def test_no_uploader_when_channel_unknown() -> None:
    # An unscraped video has no channel id: a comment without an author is not "the uploader".
    kept = clean_comments([comment(1, "Hello there", author="")], "", set())
    assert kept[0]["is_uploader"] is False
    kept = clean_comments([comment(1, "Hello there", author_channel_id=None)], None, set())
    assert kept[0]["is_uploader"] is False


def test_comment_fields_carried_and_cleaned() -> None:
    row = comment(3, "  Tr&egrave;s beau &amp; émouvant  ", like_count=17, reply_count=2)
    (kept,) = clean_comments([row], UPLOADER, set())
    confidence = kept.pop("lang_confidence")
    assert 0 < confidence <= 1
    assert kept == {
        "rank": 3,
        "comment_id": "Ugc0003",
        "text_raw": "  Tr&egrave;s beau &amp; émouvant  ",
        # `text` is the author's text (textOriginal, or textDisplay decoded at the scrape), so
        # an entity here is one the author typed, and stays.
        "text": "Tr&egrave;s beau &amp; émouvant",
        "lang": "fr",
        "n_chars": 31,
        "has_url": False,
        "is_spam": False,
        "is_repeated": False,
        "is_uploader": False,
        "like_count": 17,
        "published_at": T0,
        "author_channel_id": "UCfan0003",
        "reply_count": 2,
    }
    assert {*kept, "lang_confidence"} == {f.name for f in schemas.COMMENT}


# --- Missing pieces ----------------------------------------------------------------------


@pytest.mark.parametrize("n", range(N_REPLIES + 1))
def test_fewer_than_five_comments_leave_empty_strings(n: int) -> None:
    rec = full_record([comment(r, f"comment text {r}") for r in range(n)])
    replies = [rec[c] for c in REPLY_COLUMNS]
    assert replies == [f"comment text {r}" for r in range(n)] + [""] * (N_REPLIES - n)
    assert rec["n_replies"] == n
    row = validate(rec)
    for column in REPLY_COLUMNS:
        value = row[column]
        assert isinstance(value, str), (column, value)
        assert not (isinstance(value, float) and math.isnan(value))


def test_video_never_scraped() -> None:
    rec = record([], video_row=None, meta_row=None, status=None)
    assert rec["describe"] == ""
    assert rec["describe_raw"] == ""
    assert rec["describe_lang"] is None
    assert rec["video_status"] == "not_scraped"
    assert rec["comments_status"] == "not_scraped"
    assert rec["channel_id"] is None
    assert rec["comments"] == []
    for column in TEXT_COLUMNS:
        assert rec[column] == "", column
    validate(rec)


def test_video_without_description() -> None:
    rec = record([comment(1, "Nice")], video_row=video(description=None))
    assert (rec["describe_raw"], rec["describe"], rec["describe_lang"]) == ("", "", None)
    assert rec["video_status"] == "ok"


@pytest.mark.parametrize("row_index", [0, 1, 10_840])
def test_old_id_is_metadata_row_index(row_index: int) -> None:
    assert record(meta_row=meta(row_index))["old_id"] == row_index


def test_old_id_none_without_metadata() -> None:
    rec = record(meta_row=None)
    assert rec["old_id"] is None
    assert rec["nationality"] is None
    assert rec["giantmidi_split"] is None
    validate(rec)


# --- Describe, joins, schema ---------------------------------------------------------------


def test_describe_raw_kept_and_describe_cleaned() -> None:
    raw = "Recorded live.&amp;  Thanks!\r\n\r\n\r\n0:00 Nocturne  "
    rec = record(video_row=video(description=raw))
    assert rec["describe_raw"] == raw
    assert rec["describe"] == "Recorded live.& Thanks!\n\n0:00 Nocturne"  # entities decoded
    assert rec["describe_lang"] == "en" and 0 < rec["describe_lang_confidence"] <= 1
    assert (rec["describe_n_chars"], rec["describe_has_url"]) == (len(rec["describe"]), False)


def test_full_record_fields() -> None:
    rec = full_record([comment(1, "Magnificent touch")])
    row = validate(rec)
    assert row["vid"] == VID
    assert row["shard"] == SHARD
    assert row["old_id"] == 7
    assert (row["surname"], row["firstname"]) == ("Chopin", "Frédéric")
    assert row["split"] == "validation"  # as composer_splits says
    assert row["giantmidi_split"] == "train"
    assert row["nationality"] == "Polish"
    assert row["youtube_title"] == "Chopin - Nocturne Op. 9 No. 2"
    assert row["caption"].startswith("A ") and row["caption"].endswith(".")
    assert row["duration_s"] == 271.5
    assert row["key_matches_title"] is True
    assert row["video_status"] == "ok"
    assert row["video_title"] == "Chopin - Nocturne Op. 9 No. 2"
    assert row["channel_id"] == UPLOADER
    assert row["published_at"] == T0
    assert row["video_scraped_at"] == SCRAPED
    assert row["view_count"] == 123_456
    assert row["comments_status"] == "ok"
    assert row["comment_order"] == "relevance"
    assert row["comments"][0]["text"] == "Magnificent touch"


def test_curated_is_giantmidis_subset_rule() -> None:
    for release, in_title, curated in [
        (1, 1, True),
        (1, 0, False),
        (0, 1, False),
        (None, 1, False),
    ]:
        row = meta(3)
        row.update(giant_midi_piano=release, surname_in_youtube_title=in_title)
        assert record(meta_row=row)["curated"] is curated
    assert record()["curated"] is False  # not in the metadata


def test_a_removed_comment_leaves_the_comments_and_the_replies() -> None:
    comments = [comment(1, "First comment here"), comment(2, "Second comment here")]
    removed = frozenset({comments[0]["comment_id"]})
    rec = record(comments, video_row=video(), removed=removed)
    assert [c["text"] for c in rec["comments"]] == ["Second comment here"]
    assert rec["reply_1"] == "Second comment here" and rec["reply_2"] == ""


def test_missing_features_become_nulls_not_errors() -> None:
    rec = build_record(midi_file(), {"vid": VID}, None, None, [], None, set(), split="train")
    row = validate(rec)
    assert row["duration_s"] is None
    assert row["key_matches_title"] is None
