"""A YouTube Data API v3 stand-in served over real HTTP on loopback.

Why: the scraper, its tests and the offline demo must meet what the real API does (its response
shapes, error bodies, quota accounting, flaky transport and messy multilingual text) without
network access or a real key. The real google-api-python-client talks to it unchanged through
``client_options={"api_endpoint": emulator.endpoint}``.

Content is a pure function of ``(seed, vid)``, so any 11-character id has a video and a test can
ask the emulator what a correct scraper must have stored (``video_resource``,
``comment_threads``, ``comment_texts``). Faults come from one seeded RNG drawn twice per charged
request, so a given seed and request order always fail the same way.

Usage: ``python -m mta_pipeline.demo.youtube_emulator [--port 8765] [--latency-ms 50] ...``
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import copy
import functools
import hashlib
import json
import os
import random
import re
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from mta_pipeline.config import ConfigError, env

# Environment variables read by `YouTubeEmulator.from_env` (rates are shares from 0 to 1).
MTA_EMULATOR_LATENCY_MS = "MTA_EMULATOR_LATENCY_MS"
MTA_EMULATOR_5XX_RATE = "MTA_EMULATOR_5XX_RATE"
MTA_EMULATOR_RATE_LIMIT_RATE = "MTA_EMULATOR_RATE_LIMIT_RATE"
MTA_EMULATOR_QUOTA_CAP = "MTA_EMULATOR_QUOTA_CAP"
MTA_EMULATOR_MALFORMED_RATE = "MTA_EMULATOR_MALFORMED_RATE"
MTA_EMULATOR_DROP_RATE = "MTA_EMULATOR_DROP_RATE"

DEFAULT_PORT = 8765
DEFAULT_API_KEY = "demo-key"
VIDEOS_PATH = "/youtube/v3/videos"
COMMENT_THREADS_PATH = "/youtube/v3/commentThreads"
MAX_IDS_PER_CALL = 50

# Video categories: what videos.list and commentThreads.list do for a vid.
DELETED = "deleted"
COMMENTS_DISABLED = "comments_disabled"
NO_COMMENTS = "no_comments"
OK = "ok"
COMMENTS_FORBIDDEN = "comments_forbidden"  # only through `overrides`
COMMENTS_NOT_FOUND = "comments_not_found"  # only through `overrides`
PROCESSING_FAILURE = "processing_failure"  # only through `overrides`
CATEGORIES = (
    DELETED,
    COMMENTS_DISABLED,
    NO_COMMENTS,
    OK,
    COMMENTS_FORBIDDEN,
    COMMENTS_NOT_FOUND,
    PROCESSING_FAILURE,
)
# Per-mille shares of the hashed categories; the rest is OK.
_HASHED_SHARES = ((DELETED, 50), (COMMENTS_DISABLED, 50), (NO_COMMENTS, 70))
# Categories whose commentThreads call returns threads (the rest answer empty or with an error).
_LISTED_WITH_COMMENTS = {OK, COMMENTS_FORBIDDEN, COMMENTS_NOT_FOUND, PROCESSING_FAILURE}

_FAULT_KNOBS = (
    "latency_s",
    "error_5xx_rate",
    "rate_limit_rate",
    "quota_cap",
    "malformed_rate",
    "drop_rate",
)
_VID_RE = re.compile(r"[A-Za-z0-9_-]{11}")
_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_FIRST_UPLOAD = 1167609600  # 2007-01-01T00:00:00Z
_LAST_UPLOAD = 1598918400  # 2020-09-01T00:00:00Z, around the GiantMIDI-Piano release
_NOW = 1748736000  # 2025-06-01T00:00:00Z: no comment is newer
_CONTENT_CACHE = 4096  # videos kept rendered; content is cheap to rebuild

# ---------------------------------------------------------------------------------------------
# Text pools. Invented for this emulator; chosen to exercise what real descriptions and comments
# throw at a scraper: scripts, emoji sequences, entities, tabs, CR LF, timestamps, links, spam.
# ---------------------------------------------------------------------------------------------

# (first names, surname, Russian name, Japanese name)
_COMPOSERS = (
    ("Frédéric", "Chopin", "Фредерик Шопен", "ショパン"),
    ("Franz", "Liszt", "Ференц Лист", "リスト"),
    ("Sergei", "Rachmaninoff", "Сергей Рахманинов", "ラフマニノフ"),
    ("Claude", "Debussy", "Клод Дебюсси", "ドビュッシー"),
    ("Ludwig van", "Beethoven", "Людвиг ван Бетховен", "ベートーヴェン"),
    ("Franz", "Schubert", "Франц Шуберт", "シューベルト"),
    ("Alexander", "Scriabin", "Александр Скрябин", "スクリャービン"),
    ("Johann Sebastian", "Bach", "Иоганн Себастьян Бах", "バッハ"),
    ("Erik", "Satie", "Эрик Сати", "サティ"),
    ("Robert", "Schumann", "Роберт Шуман", "シューマン"),
)
# (English, Russian, Japanese)
_FORMS = (
    ("Nocturne", "Ноктюрн", "ノクターン"),
    ("Ballade", "Баллада", "バラード"),
    ("Étude", "Этюд", "練習曲"),
    ("Prelude", "Прелюдия", "前奏曲"),
    ("Sonata", "Соната", "ソナタ"),
    ("Waltz", "Вальс", "ワルツ"),
    ("Impromptu", "Экспромт", "即興曲"),
    ("Mazurka", "Мазурка", "マズルカ"),
    ("Rhapsody", "Рапсодия", "狂詩曲"),
    ("Fantasy", "Фантазия", "幻想曲"),
)
_KEYS = (
    "C major",
    "C-sharp minor",
    "D-flat major",
    "E-flat major",
    "E minor",
    "F minor",
    "F-sharp major",
    "G minor",
    "A-flat major",
    "B-flat minor",
)
_PERFORMERS = (
    "Anna Lindqvist",
    "Kenji Morita",
    "Mikhail Orlov",
    "Sofia Brandt",
    "Daniel Ortiz",
    "Yuki Tanabe",
    "Olga Petrenko",
    "Lukas Hartmann",
    "Marie Dubois",
    "Tomás Novák",
)
# (channel title, handle without @); several videos share each channel.
_CHANNELS = (
    ("Nocturne Hall", "nocturnehall"),
    ("Classical Piano Archive", "classicalpianoarchive"),
    ("Rolled Chords", "rolledchords"),
    ("Пианист Андрей Волков", "andrey.volkov.piano"),
    ("ピアノの森チャンネル", "piano-no-mori"),
    ("Kammermusik am Abend", "kammermusikabend"),
    ("Pedal & Pulse", "pedalandpulse"),
    ("Vintage Piano Rolls", "vintagepianorolls"),
    ("Étude Lab", "etudelab"),
    ("Salon de Piano", "salondepiano"),
)
_LANGUAGES = ("en", "ru", "ja", "de")
_LANGUAGE_WEIGHTS = (60, 15, 15, 10)
_CHAPTER_NAMES = ("Intro", "Theme", "Development", "Variation I", "Variation II", "Coda", "Finale")
_EMOJI = (
    "❤️",  # variation selector
    "👍🏽",  # skin tone
    "👨‍👩‍👧",  # ZWJ family
    "🙏🏻",
    "😭",
    "🎹",
    "👏🏿",
    "❤️‍🔥",  # ZWJ with a variation selector
    "🥲",
    "✨",
)
_COMMENTS = {
    "en": (
        "This is absolutely beautiful.",
        "{ts} gives me chills every single time",
        "Who else is listening in {year}?",
        "My piano teacher made me learn this and now I can't stop playing it {emoji}",
        "The way {performer} shapes the left hand at {ts}…\nunreal.",
        "I played this at my grandmother's funeral. Thank you for uploading {emoji}",
        "{composer} was a genius {emoji}",
        "The rubato at {ts} is a bit much for me, but the ending is perfect.",
        "Sheet music anyone? I found a free edition here: {url}",
        "Tom & Jerry brought me here",
        'My teacher said "play it like you mean it" and this is exactly that.',
        "<3 <3 <3",
        "Listening while studying for finals\tday 3\nstill going",
        "I'd argue 5 > 4 for this piece & nobody can change my mind",
        "Fun fact: {composer} wrote this at 19.\n\nLet that sink in.",
    ),
    "ru": (
        "Просто волшебно! Слушаю уже в который раз {emoji}",
        "На {ts} мурашки по коже",
        "Кто здесь в {year} году?",
        "{composer_ru} — гений. Спасибо за исполнение!",
        "Играла это в музыкальной школе,\nдо сих пор помню каждую ноту.",
        "Темп на {ts} слишком быстрый, но в целом очень хорошо.",
    ),
    "ja": (
        "素晴らしい演奏です！{emoji}",
        "{ts} のところが本当に好き",
        "{year}年に聴いている人いますか？",
        "ピアノを再開するきっかけになりました。ありがとうございます。",
        "涙が出ました…\n何度でも聴きたい",
        "{composer_ja}の曲の中で一番好きです{emoji}",
    ),
    "de": (
        "Wunderschön gespielt, danke! {emoji}",
        "Bei {ts} bekomme ich jedes Mal Gänsehaut.",
        "Wer hört das auch {year} noch?",
    ),
}
_COMMENT_LANGUAGES = ("en", "ru", "ja", "de")
_COMMENT_LANGUAGE_WEIGHTS = (68, 13, 13, 6)
_UPLOADER_COMMENTS = {
    "en": "Thank you all for listening! {emoji}\r\nSheet music: {url}",
    "ru": "Спасибо всем за тёплые слова! {emoji}\nНоты: {url}",
    "ja": "聴いてくださってありがとうございます！{emoji}\n楽譜：{url}",
    "de": "Danke fürs Zuhören! {emoji}\nNoten: {url}",
}
_DUPLICATES = ("Beautiful ❤️", "Masterpiece.", "🎹🎹🎹", "Chills.", "Браво!", "神")
_SPAM = (
    "🔥 Want to play like this in 30 days? Free lessons here 👉 https://pianoquick.example/free?ref=yt",
    "I made $5,000 this week from home!!! Ask me how: https://cash-now.example/start",
    "Сыграй любую песню за неделю! Бесплатный курс: https://pianoquick.example/ru",
)
_SPAM_BOTS = (
    "@PianoMaster-Lessons",
    "@learn.piano.fast",
    "@Crypto_Queen_88",
    "@user-x7k2mq9p",
    "@melody.bot.2024",
    "@ClassicalGainz",
)
_HANDLE_FIRST = ("emma", "liam", "olivia", "noah", "ava", "mateo", "chloe", "ethan", "mia", "lucas")
_HANDLE_LAST = ("walker", "kim", "rossi", "novak", "smith", "garcia", "berg", "ito", "kowalski")
_HANDLE_UNICODE = ("Анна-к", "Дмитрий", "ピアノ好き", "まゆ", "Zoë")
# Comments that trip naive writers and readers: a leading or unbalanced double quote (CSV/TSV
# quoting), characters textDisplay escapes (& " ' < >), backslashes (a literal "\n" included),
# words pandas reads as missing, and line breaks (LF, CR LF, a trailing one).
_AWKWARD_COMMENTS = (
    '"Clair de lune" played like this is heaven',
    '"{composer} is overrated" they said. Listen to {ts} and say that again.',
    '"and then the coda hits',
    '"Play it again"\nmy cat, apparently',
    'My teacher calls this the "impossible" page, and she\'s right',
    "Can't believe it's {performer}'s first recording",
    "Rachmaninoff & Horowitz would've loved this",
    "{composer} <3",
    "<3 this so much, 5 > 4 and 3 < 5 {emoji}",
    "I typed <b>bold</b> and it stayed literal",
    "¯\\_(ツ)_/¯ still can't play {ts}",
    "C:\\Users\\me\\Music\\{composer}.mp3 has been on repeat for a week",
    "Why does the title show a literal \\n on my phone?",
    "NA",
    "null",
    "nan",
    "N/A",
    "NA tour 2019 brought me here, and this is null and void compared to it",
    "My nan played this every Sunday. NaN mistakes, as she used to say.",
    "Line one\r\nLine two\r\n\r\n— sent from my piano bench",
    "First time hearing this.\nSecond time crying.\nThird time playing it myself.",
    "Bravo!\n",
)
_AWKWARD_COMMENT_SHARE = 0.06  # of ordinary comments
_NO_ORIGINAL_SHARE = 0.05  # threads the API returns without textOriginal
_QUOTED_DESCRIPTION_SHARE = 0.06  # of non-empty descriptions

# ---------------------------------------------------------------------------------------------
# Content
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Content:
    """Everything the API knows about one vid; threads in generation (tie-break) order, and each
    thread's text as its author typed it (by thread id), which a thread may not carry."""

    video: dict[str, Any] | None
    threads: tuple[dict[str, Any], ...]
    texts: Mapping[str, str]


def _rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _digest_token(text: str, length: int) -> str:
    """A stable URL-safe token, so one author or channel always gets the same id."""
    raw = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).decode()
    return raw.rstrip("=")[:length]


def _channel_id(handle: str) -> str:
    return "UC" + _digest_token(f"channel:{handle}", 22)


def _etag(payload: Any) -> str:
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(hashlib.sha1(blob).digest()).decode().rstrip("=")


def _clock(seconds: int, padded: bool) -> str:
    """A video timestamp as people type it: 4:05, 1:01:22 or, padded, 00:04:05, 01:01:22."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if padded:
        return f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _random_vid(rng: random.Random) -> str:
    return "".join(rng.choice(_ID_CHARS) for _ in range(10)) + rng.choice("AEIMQUYcgkosw048")


def _chapters(rng: random.Random, duration: int) -> list[str]:
    """A chapter list starting at 0:00; long compilations get hour marks."""
    padded = duration >= 3600 and rng.random() < 0.6
    count = rng.randint(3, len(_CHAPTER_NAMES))
    marks = sorted(rng.sample(range(20, duration - 10), count - 1))
    names = ["Intro", *_CHAPTER_NAMES[1 : count - 1], "Finale"]
    return [f"{_clock(t, padded)} {n}" for t, n in zip([0, *marks], names, strict=True)]


@dataclass(frozen=True)
class _Piece:
    """The musical facts a video's title, description and comments talk about."""

    composer: tuple[str, str, str, str]
    form: tuple[str, str, str]
    key: str
    opus: int
    performer: str
    year: int
    duration: int


def _piece(rng: random.Random) -> _Piece:
    long = rng.random() < 0.2  # a full-recital compilation
    return _Piece(
        composer=rng.choice(_COMPOSERS),
        form=rng.choice(_FORMS),
        key=rng.choice(_KEYS),
        opus=rng.randint(1, 120),
        performer=rng.choice(_PERFORMERS),
        year=rng.randint(1998, 2020),
        duration=rng.randint(3700, 5400) if long else rng.randint(120, 1500),
    )


def _title(piece: _Piece, language: str) -> str:
    first, surname, ru_name, ja_name = piece.composer
    en_form, ru_form, ja_form = piece.form
    if language == "ru":
        return f"{ru_name} — {ru_form}, соч. {piece.opus} | {piece.performer}"
    if language == "ja":
        return f"{ja_name}：{ja_form} 作品{piece.opus}【{piece.performer}】"
    return f"{first} {surname} - {en_form} in {piece.key}, Op. {piece.opus}"


def _description(rng: random.Random, piece: _Piece, language: str, handle: str) -> str:
    """A description in the video's language, with the odd real-world mess mixed in."""
    if rng.random() < 0.04:
        return ""
    first, surname, ru_name, ja_name = piece.composer
    score = f"https://imslp.org/wiki/{piece.form[0]}_Op.{piece.opus}_({surname},_{first})"
    score = score.replace(" ", "_")
    lines = {
        "en": [f"{first} {surname} – {piece.form[0]} in {piece.key}", ""],
        "ru": [f"{ru_name} — {piece.form[1]}, соч. {piece.opus}", ""],
        "ja": [f"{ja_name}：{piece.form[2]} 作品{piece.opus}", ""],
        "de": [f"{first} {surname} – {piece.form[0]} op. {piece.opus}", ""],
    }[language]
    label = {"en": "Performer", "ru": "Исполнитель", "ja": "演奏", "de": "Interpret"}[language]
    if rng.random() < 0.6:
        lines += [f"{label}:\t{piece.performer}", f"Recorded:\t{piece.year}"]
    else:
        lines.append(f"{label}: {piece.performer} ({piece.year})")
    if rng.random() < 0.4:
        lines += ["", *_chapters(rng, piece.duration)]
    if rng.random() < 0.6:
        lines += ["", f"Sheet music: {score}", f"Subscribe: https://www.youtube.com/@{handle}"]
    if rng.random() < 0.25:
        lines.append("Recorded live at Hart &amp; Cole Hall, the &quot;encore&quot; take.")
    if rng.random() < 0.3:
        lines.append(f"Thanks for watching {rng.choice(_EMOJI)}")
    if rng.random() < 0.5:
        lines += ["", f"#piano #{surname.lower()} #classicalmusic"]
    return ("\r\n" if rng.random() < 0.35 else "\n").join(lines)


def _declared_language(rng: random.Random, language: str) -> str | None:
    """defaultLanguage: often missing, sometimes simply wrong, as uploaders leave it."""
    roll = rng.random()
    if roll < 0.4:
        return None
    if roll < 0.75:
        return language
    return rng.choice([code for code in (*_LANGUAGES, "fr", "it") if code != language])


def _with_etag(kind: str, item_id: str, **fields: Any) -> dict[str, Any]:
    """A resource in the API's key order, its etag a hash of the rest."""
    body = {"kind": kind, "id": item_id, **fields}
    return {"kind": kind, "etag": _etag(body), "id": item_id, **fields}


def _thumbnails(vid: str) -> dict[str, Any]:
    sizes = (("default", "", 120, 90), ("medium", "mq", 320, 180), ("high", "hq", 480, 360))
    return {
        name: {"url": f"https://i.ytimg.com/vi/{vid}/{prefix}default.jpg", "width": w, "height": h}
        for name, prefix, w, h in sizes
    }


def _quoted_description(awkward: random.Random, piece: _Piece, description: str) -> str:
    """Now and then a description that opens with a double quote and a tab (raw, as typed)."""
    if not description or awkward.random() >= _QUOTED_DESCRIPTION_SHARE:
        return description
    newline = "\r\n" if "\r\n" in description else "\n"
    return (
        f'"{piece.form[0]} in {piece.key}"\t– {piece.performer}\t{piece.year}{newline}{description}'
    )


def _snippet(
    rng: random.Random,
    awkward: random.Random,
    vid: str,
    title: str | None,
    piece: _Piece,
    language: str,
    handle: str,
) -> dict[str, Any]:
    """videos.list snippet, in the API's field order; optional fields sometimes missing."""
    channel_title = next(name for name, h in _CHANNELS if h == handle)
    title = title if title is not None else _title(piece, language)
    description = _quoted_description(awkward, piece, _description(rng, piece, language, handle))
    snippet: dict[str, Any] = {
        "publishedAt": _rfc3339(rng.uniform(_FIRST_UPLOAD, _LAST_UPLOAD)),
        "channelId": _channel_id("@" + handle),
        "title": title,
        "description": description,
        "thumbnails": _thumbnails(vid),
        "channelTitle": channel_title,
    }
    if rng.random() < 0.8:
        snippet["tags"] = ["piano", piece.composer[1], piece.form[0], "classical music"]
    snippet |= {"categoryId": "10", "liveBroadcastContent": "none"}
    declared = _declared_language(rng, language)
    if declared:
        snippet["defaultLanguage"] = declared
    snippet["localized"] = {"title": title, "description": description}
    snippet["defaultAudioLanguage"] = rng.choice(("zxx", "en", language))
    return snippet


def _statistics(rng: random.Random, comment_count: int | None) -> dict[str, str]:
    """Counts as strings, as the API sends them; no commentCount when comments are off."""
    views = int(10 ** rng.uniform(2.3, 7.7))
    stats = {
        "viewCount": str(views),
        "likeCount": str(int(views * rng.uniform(0.002, 0.03))),
        "favoriteCount": "0",
    }
    if comment_count is not None:
        stats["commentCount"] = str(comment_count)
    return stats


@dataclass(frozen=True)
class _Author:
    handle: str  # "@…"
    channel_id: str


def _author(handle: str) -> _Author:
    return _Author(handle, _channel_id(handle))


def _random_author(rng: random.Random) -> _Author:
    roll = rng.random()
    if roll < 0.2:
        name = "user-" + "".join(
            rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(8)
        )
    elif roll < 0.35:
        name = f"{rng.choice(_HANDLE_UNICODE)}{rng.randint(1, 999)}"
    else:
        name = f"{rng.choice(_HANDLE_FIRST)}{rng.choice(_HANDLE_LAST)}{rng.randint(1, 9999)}"
    return _author("@" + name)


def _comment_text(rng: random.Random, awkward: random.Random, piece: _Piece) -> str:
    """One ordinary comment: a template in some language, sometimes two joined by CR LF, now and
    then replaced by an awkward one (drawn from `awkward`, so `rng` draws as it always did)."""
    if rng.random() < 0.04:
        vid = _random_vid(rng)
        text = rng.choice(
            (f"https://youtu.be/{vid}", f"https://www.youtube.com/watch?v={vid}&t=95s")
        )
    else:
        language = rng.choices(_COMMENT_LANGUAGES, _COMMENT_LANGUAGE_WEIGHTS)[0]
        text = _fill(rng, rng.choice(_COMMENTS[language]), piece)
        if rng.random() < 0.06:
            text += "\r\n" + _fill(rng, rng.choice(_COMMENTS[language]), piece)
        if rng.random() < 0.2:
            text += " " + "".join(rng.choices(_EMOJI, k=rng.randint(1, 3)))
    if awkward.random() < _AWKWARD_COMMENT_SHARE:
        return _fill(awkward, awkward.choice(_AWKWARD_COMMENTS), piece)
    return text


def _fill(rng: random.Random, template: str, piece: _Piece) -> str:
    return template.format(
        ts=_clock(rng.randint(0, piece.duration), False),
        year=rng.randint(2019, 2025),
        emoji=rng.choice(_EMOJI),
        composer=piece.composer[1],
        composer_ru=piece.composer[2],
        composer_ja=piece.composer[3],
        performer=piece.performer,
        url=f"https://imslp.org/wiki/Special:Search?search={piece.composer[1]}",
    )


def _comment_plan(
    rng: random.Random, awkward: random.Random, piece: _Piece, language: str, uploader: _Author
) -> list[tuple[_Author, str, str]]:
    """(author, text, kind) of every top-level comment of an OK video, kind in
    normal/uploader/spam/duplicate; 1 to 40 of them."""
    count = rng.randint(1, 40)
    specials: list[tuple[_Author, str, str]] = []
    if rng.random() < 0.3:
        template = _UPLOADER_COMMENTS[language]
        specials.append((uploader, _fill(rng, template, piece), "uploader"))
    for _ in range(rng.choice((0, 0, 1, 2))):
        specials.append((_author(rng.choice(_SPAM_BOTS)), rng.choice(_SPAM), "spam"))
    if rng.random() < 0.2:
        text = rng.choice(_DUPLICATES)
        authors = {_random_author(rng) for _ in range(rng.randint(2, 3))}
        specials += [(author, text, "duplicate") for author in sorted(authors, key=str)]
    plan = specials[:count]
    while len(plan) < count:
        plan.append((_random_author(rng), _comment_text(rng, awkward, piece), "normal"))
    rng.shuffle(plan)
    return plan


def _likes(rng: random.Random, kind: str) -> int:
    if kind == "spam":
        return rng.randint(0, 2)
    if kind == "uploader":
        return rng.randint(5, 800)
    return min(int(rng.paretovariate(1.1)) - 1, 250_000)


def _thread(
    rng: random.Random,
    vid: str,
    video_snippet: dict[str, Any],
    author: _Author,
    text: str,
    kind: str,
    with_original: bool,
) -> dict[str, Any]:
    """One commentThread resource as textFormat=plainText returns it (html is rendered per
    request): textDisplay is the text with HTML entities, textOriginal the raw text, when sent."""
    channel_id = video_snippet["channelId"]
    uploaded = datetime.fromisoformat(video_snippet["publishedAt"]).timestamp()
    published = rng.uniform(uploaded + 60, _NOW)
    edited = published if rng.random() < 0.85 else min(published + rng.uniform(60, 2e6), _NOW)
    comment_id = "Ug" + rng.choice("wxyz") + "".join(rng.choices(_ID_CHARS, k=17)) + "4AaABAg"
    avatar = _digest_token(f"avatar:{author.handle}", 40)
    snippet = {
        "channelId": channel_id,
        "videoId": vid,
        "textDisplay": plain_display(text),
        "textOriginal": text,
        "authorDisplayName": author.handle,
        "authorProfileImageUrl": f"https://yt3.ggpht.com/ytc/{avatar}=s48-c-k-c0x00ffffff-no-rj",
        "authorChannelUrl": f"http://www.youtube.com/{author.handle}",
        "authorChannelId": {"value": author.channel_id},
        "canRate": True,
        "viewerRating": "none",
        "likeCount": _likes(rng, kind),
        "publishedAt": _rfc3339(published),
        "updatedAt": _rfc3339(edited),
    }
    if not with_original:
        del snippet["textOriginal"]  # "not always returned", says the API reference
    replies = 0 if kind == "spam" else min(int(rng.paretovariate(2.0)) - 1, 60)
    thread_snippet = {
        "channelId": channel_id,
        "videoId": vid,
        "topLevelComment": _with_etag("youtube#comment", comment_id, snippet=snippet),
        "canReply": True,
        "totalReplyCount": replies,
        "isPublic": True,
    }
    return _with_etag("youtube#commentThread", comment_id, snippet=thread_snippet)


@functools.lru_cache(maxsize=_CONTENT_CACHE)
def _content(seed: int, vid: str, category: str, title: str | None) -> _Content:
    """The whole API state of one vid; cached, so callers must never mutate what they get.

    `awkward` draws the rarer text cases apart from `rng`, so adding them left every other
    field of a seed's content as it was."""
    if category == DELETED:
        return _Content(None, (), {})
    rng = random.Random(f"{seed}:{vid}")
    awkward = random.Random(f"{seed}:{vid}:awkward")
    piece = _piece(rng)
    language = rng.choices(_LANGUAGES, _LANGUAGE_WEIGHTS)[0]
    handle = rng.choice(_CHANNELS)[1]
    snippet = _snippet(rng, awkward, vid, title, piece, language, handle)
    threads: tuple[dict[str, Any], ...] = ()
    texts: dict[str, str] = {}
    if category in _LISTED_WITH_COMMENTS:
        plan = _comment_plan(rng, awkward, piece, language, _author("@" + handle))
        for author, text, kind in plan:
            with_original = awkward.random() >= _NO_ORIGINAL_SHARE
            thread = _thread(rng, vid, snippet, author, text, kind, with_original)
            threads += (thread,)
            texts[thread["id"]] = text
    count = None
    if category != COMMENTS_DISABLED:
        replies = sum(t["snippet"]["totalReplyCount"] for t in threads)
        count = len(threads) + replies + (rng.randint(0, 3) if threads else 0)  # + held ones
    statistics = _statistics(rng, count)
    video = _with_etag("youtube#video", vid, snippet=snippet, statistics=statistics)
    return _Content(video, threads, texts)


def _hashed_category(seed: int, vid: str) -> str:
    if not _VID_RE.fullmatch(vid):
        return DELETED  # the real API simply knows no such video
    digest = hashlib.sha256(f"{seed}:category:{vid}".encode()).digest()
    bucket = int.from_bytes(digest[:4], "big") % 1000
    for category, share in _HASHED_SHARES:
        if bucket < share:
            return category
        bucket -= share
    return OK


def _ordered(threads: Iterable[dict[str, Any]], order: str) -> list[dict[str, Any]]:
    """relevance: most liked first; time: newest first. The sort is stable (reverse included),
    so generation order breaks ties and every page boundary is reproducible."""
    field = "likeCount" if order == "relevance" else "publishedAt"
    return sorted(
        threads, key=lambda t: t["snippet"]["topLevelComment"]["snippet"][field], reverse=True
    )


# ---------------------------------------------------------------------------------------------
# Rendering: html textDisplay, list responses, page tokens
# ---------------------------------------------------------------------------------------------

_LINKABLE = re.compile(
    r"(?P<url>https?://[^\s<>\"']+)|(?P<ts>(?<![\w:])(?:\d{1,2}:)?\d{1,2}:[0-5]\d(?![\w:]))"
)


def _escape(text: str) -> str:
    """HTML-escape as YouTube's textDisplay does (apostrophes as &#39;); `&` first, so
    `html.unescape` gives the text back exactly."""
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#39;")
    )


def _seconds(clock: str) -> int:
    total = 0
    for part in clock.split(":"):
        total = total * 60 + int(part)
    return total


def plain_display(text: str) -> str:
    """textDisplay for textFormat=plainText: no tags, line breaks kept, but entities all the
    same (`&amp; &quot; &#39; &lt; &gt;`), as the real API sends it."""
    return _escape(text)


def html_display(text: str, vid: str) -> str:
    """textDisplay for textFormat=html: escaped, <br> line breaks, URLs and timestamps as links."""
    out: list[str] = []
    pos = 0
    for match in _LINKABLE.finditer(text):
        out.append(_escape(text[pos : match.start()]))
        if url := match.group("url"):
            out.append(f'<a href="{_escape(url)}">{_escape(url)}</a>')
        else:
            clock = match.group("ts")
            href = f"https://www.youtube.com/watch?v={vid}&amp;t={_seconds(clock)}"
            out.append(f'<a href="{href}">{clock}</a>')
        pos = match.end()
    out.append(_escape(text[pos:]))
    return "".join(out).replace("\r\n", "<br>").replace("\n", "<br>").replace("\r", "<br>")


def _as_html(thread: dict[str, Any], text: str) -> dict[str, Any]:
    """A copy of `thread` whose textDisplay is `text` as HTML; the cached original stays
    untouched (textOriginal, when the thread has it, is raw in both formats)."""
    top = thread["snippet"]["topLevelComment"]
    snippet = top["snippet"]
    html = html_display(text, snippet["videoId"])
    top = {**top, "snippet": {**snippet, "textDisplay": html}}
    return {**thread, "snippet": {**thread["snippet"], "topLevelComment": top}}


def _page_token(vid: str, order: str, offset: int) -> str:
    raw = json.dumps([vid, order, offset], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _page_offset(token: str, vid: str, order: str) -> int:
    """The offset a token stands for; tokens are only valid for the same video and order."""
    try:
        padded = token + "=" * (-len(token) % 4)
        token_vid, token_order, offset = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, TypeError, binascii.Error):
        raise _invalid_page_token() from None
    if token_vid != vid or token_order != order or not isinstance(offset, int) or offset < 0:
        raise _invalid_page_token()
    return offset


def _list_response(kind: str, items: list[Any], per_page: int, next_token: str | None) -> dict:
    body: dict[str, Any] = {"kind": kind, "etag": _etag([kind, items, next_token])}
    if next_token:
        body["nextPageToken"] = next_token
    body["pageInfo"] = {"totalResults": len(items), "resultsPerPage": per_page}
    body["items"] = items
    return body


# ---------------------------------------------------------------------------------------------
# Errors, in the API's body shape
# ---------------------------------------------------------------------------------------------

_STATUS = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
_VIDEO_ID_DOC = '<code><a href="/youtube/v3/docs/commentThreads/list#videoId">videoId</a></code>'


class _ApiError(Exception):
    """An API error response; raised anywhere in request handling, rendered once."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        domain: str = "global",
        location: str | None = None,
        details: tuple[dict[str, Any], ...] = (),
    ) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.domain, self.location, self.details = domain, location, details

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "message": self.message,
            "domain": self.domain,
            "reason": self.reason,
        }
        if self.location:
            error |= {"locationType": "parameter", "location": self.location}
        payload: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "errors": [error],
            "status": _STATUS[self.code],
        }
        if self.details:
            payload["details"] = list(self.details)
        return {"error": payload}


def _error_info(reason: str) -> dict[str, Any]:
    return {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": reason,
        "domain": "googleapis.com",
        "metadata": {"service": "youtube.googleapis.com"},
    }


def _missing_key() -> _ApiError:
    msg = "The request is missing a valid API key."
    return _ApiError(403, "forbidden", msg)


def _bad_key() -> _ApiError:
    msg = "API key not valid. Please pass a valid API key."
    return _ApiError(400, "badRequest", msg, details=(_error_info("API_KEY_INVALID"),))


def _disabled_key() -> _ApiError:
    msg = (
        "YouTube Data API v3 has not been used in this project before or it is disabled. "
        "Enable it in the Google Cloud console, then retry."
    )
    details = (_error_info("SERVICE_DISABLED"),)
    return _ApiError(403, "accessNotConfigured", msg, "usageLimits", details=details)


def _quota_exceeded() -> _ApiError:
    msg = (
        "The request cannot be completed because you have exceeded your "
        '<a href="/youtube/v3/getting-started#quota">quota</a>.'
    )
    return _ApiError(403, "quotaExceeded", msg, "youtube.quota")


def _rate_limited() -> _ApiError:
    msg = "The request cannot be completed because you have exceeded your rate limit."
    return _ApiError(403, "rateLimitExceeded", msg, "usageLimits")


def _backend_error(code: int) -> _ApiError:
    msg = "Backend Error" if code == 500 else "The service is currently unavailable."
    return _ApiError(code, "backendError", msg)


def _comments_disabled() -> _ApiError:
    msg = f"The video identified by the {_VIDEO_ID_DOC} parameter has disabled comments."
    return _ApiError(403, "commentsDisabled", msg, "youtube.commentThread", "videoId")


def _video_not_found() -> _ApiError:
    msg = f"The video identified by the {_VIDEO_ID_DOC} parameter could not be found."
    return _ApiError(404, "videoNotFound", msg, "youtube.commentThread", "videoId")


def _comments_forbidden() -> _ApiError:
    msg = (
        "The comment thread could not be retrieved because the request is not properly authorized."
    )
    return _ApiError(403, "forbidden", msg, "youtube.commentThread")


def _processing_failure() -> _ApiError:
    msg = "The API server failed to successfully process the request."
    return _ApiError(400, "processingFailure", msg, "youtube.commentThread")


def _required(name: str) -> _ApiError:
    return _ApiError(400, "required", f"Required parameter: {name}", location=name)


def _invalid(name: str, value: str, rule: str) -> _ApiError:
    return _ApiError(400, "invalid", f"Invalid value '{value}'. {rule}", location=name)


def _invalid_page_token() -> _ApiError:
    msg = "The request specifies an invalid page token."
    return _ApiError(400, "invalidPageToken", msg, "youtube.parameter", "pageToken")


def _unknown_path(path: str) -> _ApiError:
    return _ApiError(404, "notFound", f"Not Found: {path}")


# ---------------------------------------------------------------------------------------------
# Request handling
# ---------------------------------------------------------------------------------------------

_VIDEO_PARTS = {
    "id",
    "snippet",
    "statistics",
    "contentDetails",
    "status",
    "localizations",
    "player",
    "topicDetails",
}
_THREAD_PARTS = {"id", "snippet", "replies"}
_DROP = "drop"
_MALFORMED = "malformed"


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes


def _query(raw: str) -> dict[str, str]:
    """Query parameters, repeated ones joined by commas as the API reads them."""
    parsed = parse_qs(raw, keep_blank_values=True)
    return {name: ",".join(values) for name, values in parsed.items()}


def _parts(params: Mapping[str, str], known: set[str]) -> set[str]:
    raw = params.get("part", "")
    parts = {p.strip() for p in raw.split(",") if p.strip()}
    if not parts:
        raise _required("part")
    unknown = sorted(parts - known)
    if unknown:
        msg = f"'{unknown[0]}' is not a valid part for this method."
        raise _ApiError(400, "unknownPart", msg, "youtube.part", "part")
    return parts


def _encode(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _rate(name: str, value: Any) -> float:
    rate = float(value)
    if not 0.0 <= rate <= 1.0:  # also refuses NaN
        raise ValueError(f"{name} must be a share between 0 and 1, got {value!r}")
    return rate


class YouTubeEmulator:
    """The YouTube Data API v3 (videos.list, commentThreads.list) on 127.0.0.1.

    Every request carrying a key from `api_keys` costs one unit, failed ones too, until
    `quota_cap`; then it answers 403 quotaExceeded without charging. Fault rates are shares of
    charged requests: a drop resets the connection with no response, malformed is a 200 whose
    JSON body is cut short.
    """

    def __init__(
        self,
        *,
        api_keys: Iterable[str] = (DEFAULT_API_KEY,),
        disabled_keys: Iterable[str] = (),
        latency_s: float = 0.0,
        error_5xx_rate: float = 0.0,
        rate_limit_rate: float = 0.0,
        quota_cap: int | None = None,
        malformed_rate: float = 0.0,
        drop_rate: float = 0.0,
        seed: int = 0,
        titles: Mapping[str, str] | None = None,
        overrides: Mapping[str, str] | None = None,
    ) -> None:
        self._api_keys = frozenset(api_keys)
        self._disabled_keys = frozenset(disabled_keys)
        self._seed = seed
        self._titles = dict(titles or {})
        self._overrides = dict(overrides or {})
        bad = sorted(set(self._overrides.values()) - set(CATEGORIES))
        if bad:
            raise ValueError(f"unknown category {bad[0]!r}; use one of {', '.join(CATEGORIES)}")
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._units = 0
        self._requests: list[tuple[str, dict[str, str]]] = []
        self._knobs: dict[str, Any] = {}
        self.set_faults(
            latency_s=latency_s,
            error_5xx_rate=error_5xx_rate,
            rate_limit_rate=rate_limit_rate,
            quota_cap=quota_cap,
            malformed_rate=malformed_rate,
            drop_rate=drop_rate,
        )
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._endpoint: str | None = None
        self._routes: dict[str, Callable[[dict[str, str]], dict[str, Any]]] = {
            VIDEOS_PATH: self._videos_list,
            COMMENT_THREADS_PATH: self._comment_threads_list,
        }

    @classmethod
    def from_env(cls, **kwargs: Any) -> YouTubeEmulator:
        """An emulator whose fault knobs come from MTA_EMULATOR_* variables; kwargs win."""
        settings: dict[str, Any] = {}
        readers: tuple[tuple[str, str, Callable[[str], Any]], ...] = (
            (MTA_EMULATOR_LATENCY_MS, "latency_s", lambda raw: float(raw) / 1000),
            (MTA_EMULATOR_5XX_RATE, "error_5xx_rate", float),
            (MTA_EMULATOR_RATE_LIMIT_RATE, "rate_limit_rate", float),
            (MTA_EMULATOR_QUOTA_CAP, "quota_cap", int),
            (MTA_EMULATOR_MALFORMED_RATE, "malformed_rate", float),
            (MTA_EMULATOR_DROP_RATE, "drop_rate", float),
        )
        for name, knob, parse in readers:
            raw = env(name)
            if raw is None:
                continue
            try:
                settings[knob] = parse(raw)
                cls._check_knob(knob, settings[knob])
            except ValueError:
                hint = "milliseconds >= 0" if knob == "latency_s" else "a share from 0 to 1"
                hint = "a whole number >= 0" if knob == "quota_cap" else hint
                raise ConfigError(f"{name}={raw!r} is invalid; set it to {hint}.") from None
        return cls(**{**settings, **kwargs})

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, port: int = 0) -> str:
        """Serve on 127.0.0.1 (a free port unless `port`) in a daemon thread; the endpoint."""
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        server = _Server(("127.0.0.1", port), _Handler)
        server.emulator = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="youtube-emulator",
            daemon=True,
        )
        self._thread.start()
        self._endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        return self._endpoint

    def stop(self) -> None:
        """Stop serving and cut idle keep-alive connections; safe to call twice."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> YouTubeEmulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        if self._endpoint is None:
            raise RuntimeError("call start() first: the emulator has no endpoint yet")
        return self._endpoint

    # -- observation -------------------------------------------------------------------------

    @property
    def units_used(self) -> int:
        with self._lock:
            return self._units

    @property
    def requests(self) -> list[tuple[str, dict[str, str]]]:
        """(path, query parameters without the key) of every request received, in order."""
        with self._lock:
            return [(path, dict(params)) for path, params in self._requests]

    def category(self, vid: str) -> str:
        return self._overrides.get(vid) or _hashed_category(self._seed, vid)

    def video_resource(self, vid: str) -> dict[str, Any] | None:
        """The videos.list item for vid with part=snippet,statistics; None when deleted."""
        video = self._content(vid).video
        return copy.deepcopy(video)

    def comment_threads(self, vid: str, order: str = "relevance") -> list[dict[str, Any]]:
        """Every thread commentThreads.list pages through for vid (textFormat=plainText, so a
        few lack textOriginal: `comment_texts` has their text); empty when the call answers
        with an error or no comments."""
        if order not in ("relevance", "time"):
            raise ValueError(f"order must be 'relevance' or 'time', got {order!r}")
        if self.category(vid) != OK:
            return []
        return copy.deepcopy(_ordered(self._content(vid).threads, order))

    def comment_texts(self, vid: str, order: str = "relevance") -> list[str]:
        """The text each author typed, thread by thread as `comment_threads` lists them: what a
        scraper must store, also for the threads that come without textOriginal."""
        texts = self._content(vid).texts
        return [texts[thread["id"]] for thread in self.comment_threads(vid, order)]

    # -- control -----------------------------------------------------------------------------

    def set_faults(self, **knobs: Any) -> None:
        """Change latency_s, error_5xx_rate, rate_limit_rate, quota_cap, malformed_rate or
        drop_rate while serving."""
        unknown = sorted(set(knobs) - set(_FAULT_KNOBS))
        if unknown:
            raise TypeError(f"unknown fault knob {unknown[0]!r}; use {', '.join(_FAULT_KNOBS)}")
        for knob, value in knobs.items():
            self._check_knob(knob, value)
        with self._lock:
            merged = {**self._knobs, **knobs}
            rates = sum(v for k, v in merged.items() if k.endswith("_rate"))
            if rates > 1.0 + 1e-9:
                raise ValueError(f"fault rates add up to {rates:g}; keep their sum at most 1")
            self._knobs = merged

    def reset_quota(self) -> None:
        with self._lock:
            self._units = 0

    @staticmethod
    def _check_knob(knob: str, value: Any) -> None:
        if knob == "quota_cap":
            if value is not None and (isinstance(value, bool) or int(value) != value or value < 0):
                raise ValueError(f"quota_cap must be a whole number >= 0 or None, got {value!r}")
        elif knob == "latency_s":
            if not float(value) >= 0.0:
                raise ValueError(f"latency_s must be >= 0, got {value!r}")
        else:
            _rate(knob, value)

    # -- serving -----------------------------------------------------------------------------

    def _content(self, vid: str) -> _Content:
        return _content(self._seed, vid, self.category(vid), self._titles.get(vid))

    def _answer(self, raw_path: str) -> _Reply | None:
        """The reply to one GET of `raw_path`; None means drop the connection unanswered."""
        url = urlsplit(raw_path)
        params = _query(url.query)
        key = params.pop("key", None)
        with self._lock:
            self._requests.append((url.path, dict(params)))
            latency = self._knobs["latency_s"]
        if latency:
            time.sleep(latency)
        route = self._routes.get(url.path)
        try:
            if route is None:
                raise _unknown_path(url.path)
            fault = self._admit(key)
            if fault == _DROP:
                return None
            body = _encode(route(params))
            if fault == _MALFORMED:
                return _Reply(200, body[: max(1, len(body) // 2)])
            return _Reply(200, body)
        except _ApiError as error:
            return _Reply(error.code, _encode(error.body()))

    def _admit(self, key: str | None) -> str | None:
        """Check the key, charge one unit and draw this request's fault, atomically."""
        if not key:
            raise _missing_key()
        if key in self._disabled_keys:
            raise _disabled_key()
        if key not in self._api_keys:
            raise _bad_key()
        with self._lock:
            cap = self._knobs["quota_cap"]
            if cap is not None and self._units >= cap:
                raise _quota_exceeded()
            self._units += 1
            roll, flip = self._rng.random(), self._rng.random()
            knobs = dict(self._knobs)
        for fault in ("drop_rate", "error_5xx_rate", "rate_limit_rate", "malformed_rate"):
            if roll < knobs[fault]:
                break
            roll -= knobs[fault]
        else:
            return None
        if fault == "error_5xx_rate":
            raise _backend_error(503 if flip < 0.5 else 500)
        if fault == "rate_limit_rate":
            raise _rate_limited()
        return _DROP if fault == "drop_rate" else _MALFORMED

    def _videos_list(self, params: dict[str, str]) -> dict[str, Any]:
        parts = _parts(params, _VIDEO_PARTS)
        if "id" not in params:
            msg = "No filter selected. Expected one of: id, chart, myRating (the emulator: id)."
            raise _ApiError(400, "missingRequiredParameter", msg, "youtube.parameter", "id")
        if "maxResults" in params:
            msg = "The maxResults parameter cannot be used together with the id parameter."
            raise _ApiError(400, "invalidFilters", msg, "youtube.parameter", "maxResults")
        ids = [vid.strip() for vid in params["id"].split(",") if vid.strip()]
        if len(ids) > MAX_IDS_PER_CALL:
            msg = f"The request specifies more than {MAX_IDS_PER_CALL} video ids."
            raise _ApiError(400, "invalidFilters", msg, "youtube.video", "id")
        items = []
        for vid in dict.fromkeys(ids):
            video = self._content(vid).video
            if video is not None:
                items.append(_video_parts(video, parts))
        return _list_response("youtube#videoListResponse", items, len(items), None)

    def _comment_threads_list(self, params: dict[str, str]) -> dict[str, Any]:
        parts = _parts(params, _THREAD_PARTS)
        vid = params.get("videoId")
        if not vid:
            msg = "No filter selected. Expected one of: videoId (the emulator supports no other)."
            raise _ApiError(400, "missingRequiredParameter", msg, "youtube.parameter", "videoId")
        order, html, per_page = _thread_options(params)
        offset = _page_offset(params["pageToken"], vid, order) if params.get("pageToken") else 0
        threads = self._threads_or_error(vid)
        ordered = _ordered(threads, order)
        page = ordered[offset : offset + per_page]
        more = offset + per_page < len(ordered)
        token = _page_token(vid, order, offset + per_page) if more else None
        if html:
            texts = self._content(vid).texts
            page = [_as_html(thread, texts[thread["id"]]) for thread in page]
        items = [_thread_parts(thread, parts) for thread in page]
        return _list_response("youtube#commentThreadListResponse", items, per_page, token)

    def _threads_or_error(self, vid: str) -> tuple[dict[str, Any], ...]:
        category = self.category(vid)
        if category in (DELETED, COMMENTS_NOT_FOUND):
            raise _video_not_found()
        if category == COMMENTS_DISABLED:
            raise _comments_disabled()
        if category == COMMENTS_FORBIDDEN:
            raise _comments_forbidden()
        if category == PROCESSING_FAILURE:
            raise _processing_failure()
        return self._content(vid).threads


def _thread_options(params: Mapping[str, str]) -> tuple[str, bool, int]:
    """(order, html?, maxResults) with the API's defaults: time, html, 20."""
    order = params.get("order", "time")
    if order not in ("time", "relevance", "orderUnspecified"):
        raise _invalid("order", order, "Expected one of: time, relevance.")
    text_format = params.get("textFormat", "html")
    if text_format not in ("html", "plainText", "textFormatUnspecified"):
        raise _invalid("textFormat", text_format, "Expected one of: html, plainText.")
    raw = params.get("maxResults", "20")
    try:
        per_page = int(raw)
    except ValueError:
        per_page = 0
    if not 1 <= per_page <= 100:
        raise _invalid("maxResults", raw, "Values must be within the range: [1, 100]")
    return ("relevance" if order == "relevance" else "time"), text_format != "plainText", per_page


def _video_parts(video: dict[str, Any], parts: set[str]) -> dict[str, Any]:
    item = {"kind": video["kind"], "etag": video["etag"], "id": video["id"]}
    item.update({p: video[p] for p in ("snippet", "statistics") if p in parts})
    return item


def _thread_parts(thread: dict[str, Any], parts: set[str]) -> dict[str, Any]:
    item = {"kind": thread["kind"], "etag": thread["etag"], "id": thread["id"]}
    if "snippet" in parts:
        item["snippet"] = thread["snippet"]
    return item


# ---------------------------------------------------------------------------------------------
# HTTP plumbing
# ---------------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    """A threaded server that can cut its open keep-alive connections on stop."""

    daemon_threads = True
    block_on_close = False  # idle keep-alive handlers must not hold up stop()
    emulator: YouTubeEmulator

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def track(self, conn: socket.socket, is_open: bool) -> None:
        with self._open_lock:
            (self._open.add if is_open else self._open.discard)(conn)

    def close_connections(self) -> None:
        with self._open_lock:
            conns = list(self._open)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet: a client hanging up is routine, and nothing here may print a key."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so httplib2 reuses its connection
    timeout = 60  # an idle keep-alive connection is closed after this
    server: _Server
    server_version: ClassVar[str] = "ESF"
    sys_version: ClassVar[str] = ""

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in two writes: without this, Nagle's algorithm and the client's
        # delayed ACK add about 40 ms to every response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, True)

    def finish(self) -> None:
        self.server.track(self.connection, False)
        with contextlib.suppress(OSError):
            super().finish()

    def do_GET(self) -> None:
        reply = self.server.emulator._answer(self.path)
        if reply is None:
            self._reset()
            return
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def _reset(self) -> None:
        """Abort the connection (RST, no response), the way a dropping network does.

        An orderly close would look like a stale keep-alive to httplib2, which silently sends the
        request again; a reset reaches the caller as ConnectionResetError."""
        self.close_connection = True
        self.server.track(self.connection, False)
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        os.close(self.connection.detach())

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: request lines carry the API key."""


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mta_pipeline.demo.youtube_emulator",
        description="Serve a YouTube Data API v3 emulator on 127.0.0.1 until Ctrl-C.",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--api-key", action="append", dest="api_keys", metavar="KEY")
    parser.add_argument("--disabled-key", action="append", dest="disabled_keys", metavar="KEY")
    parser.add_argument("--latency-ms", type=float)
    parser.add_argument("--error-5xx-rate", type=float)
    parser.add_argument("--rate-limit-rate", type=float)
    parser.add_argument("--quota-cap", type=int)
    parser.add_argument("--malformed-rate", type=float)
    parser.add_argument("--drop-rate", type=float)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Serve until Ctrl-C; prints the endpoint (never a key) on one line."""
    parser = _parser()
    options = vars(parser.parse_args(argv))
    port = options.pop("port")
    latency_ms = options.pop("latency_ms")
    kwargs = {name: value for name, value in options.items() if value is not None}
    if latency_ms is not None:
        kwargs["latency_s"] = latency_ms / 1000
    try:
        emulator = YouTubeEmulator.from_env(**kwargs)
    except (ConfigError, ValueError) as exc:
        parser.error(str(exc))
    # A parent that ignores SIGINT (some process managers, Dagster's own runners) would pass the
    # ignoring on to us: restore the default so Ctrl-C always stops the server.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:  # from the first moment the endpoint is shown, Ctrl-C must stop the server cleanly
        print(emulator.start(port), flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
