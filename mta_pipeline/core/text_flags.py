"""Flags on cleaned text: language, spam, link-only, promotion.

Language comes from py3langid, whose model ships inside the package (no download, no network).
Texts with no letters get `und`. Repetition is judged over the whole corpus: the same
normalized text (20+ characters) posted by several authors or on several videos. Spam is a
comment that is only links, a promotion (an invitation to subscribe, follow or visit a channel, a
giveaway, with a link or a channel), or a repeated text that carries a link.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

URL_RE = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
PROMO_RE = re.compile(
    r"\b(subscribe|sub to|check out my|visit my|follow me|my channel|giveaway|free gift|"
    r"promo code|discount|whatsapp|telegram)\b",
    re.IGNORECASE,
)
UNDETERMINED = "und"
MIN_REPEATS = 2  # distinct authors or videos that make a repeated text spam
MIN_SPAM_CHARS = 20  # shorter repeated texts are ordinary praise


@lru_cache(maxsize=1)
def _identifier():
    import py3langid

    return py3langid


def detect_lang(text: str) -> str:
    """ISO 639-1 code of the text's language, or `und` when it has no letters."""
    letters = URL_RE.sub(" ", text)
    if not any(unicodedata.category(c).startswith("L") for c in letters):
        return UNDETERMINED
    lang, _ = _identifier().classify(letters)
    return UNDETERMINED if lang == "zxx" else lang


def signature(text: str) -> str:
    """The text as spam detection compares it: casefolded, URLs kept, spacing and punctuation
    at the ends ignored."""
    return " ".join(text.casefold().split()).strip(" .!?,")


def is_link_only(text: str) -> bool:
    rest = URL_RE.sub("", text)
    return bool(URL_RE.search(text)) and not any(c.isalnum() for c in rest)


def is_promotion(text: str) -> bool:
    return bool(PROMO_RE.search(text)) and (bool(URL_RE.search(text)) or "channel" in text.lower())


def repeated_signatures(posts: Iterable[tuple[str, str | None, str]]) -> set[str]:
    """Signatures of texts posted by several authors or on several videos.

    `posts` are (cleaned text, author channel id, vid) over the whole corpus.
    """
    authors: dict[str, set[str | None]] = {}
    videos: dict[str, set[str]] = {}
    for text, author, vid in posts:
        sig = signature(text)
        if len(sig) < MIN_SPAM_CHARS:  # "Bravo!" or "Beautiful!" from many people is praise
            continue
        authors.setdefault(sig, set()).add(author)
        videos.setdefault(sig, set()).add(vid)
    return {
        sig
        for sig in authors
        if len(authors[sig]) >= MIN_REPEATS or len(videos[sig]) >= MIN_REPEATS
    }


def is_repeated(text: str, repeated: set[str]) -> bool:
    return signature(text) in repeated


def is_spam(text: str, repeated: set[str]) -> bool:
    """Link-only, a promotion, or a repeated text carrying a link.

    A repeated text without a link is kept: praise and memes ("Who else is listening in 2024?")
    recur across videos from real people, and bot copies of them cannot be told apart from the
    text alone. `is_repeated` is stored too, for users who want the stricter rule.
    """
    return (
        is_link_only(text)
        or is_promotion(text)
        or (is_repeated(text, repeated) and bool(URL_RE.search(text)))
    )
