"""Flags on cleaned text: language, spam, link-only, promotion.

Language comes from py3langid 0.4 (Naive Bayes over byte n-grams; the model ships inside the
package, so no download and no network), restricted to `LANGUAGES`, with `und` below `UND_BELOW`.
Chosen by `bench/langid.py` on 513 hand-written comments in 24 languages and language-less texts:
93.0 % right, 88.1 % on texts of 20 characters or fewer (py3langid over all its languages without
a threshold, as before: 87.5 % and 78.5 %). lingua's high-accuracy mode over the same languages
scores the same overall (93.0 %, 88.9 % short) but takes 12-18 s and about 1 GB per process to
load its models, too much for a 2-core box and for tests; its low-accuracy mode scores 81-84 %.
py3langid loads in under 1 s and takes about 0.1 ms a text. Texts with no letters get `und`.

Repetition is judged over the whole corpus: the same normalized text (20+ characters) posted by
several authors or on several videos. Spam is a comment that is only links, a promotion (an
invitation to subscribe, follow or visit a channel, a giveaway, with a link or a channel), or a
repeated text that carries a link.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from py3langid.langid import LanguageIdentifier

URL_RE = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
PROMO_RE = re.compile(
    r"\b(subscribe|sub to|check out my|visit my|follow me|my channel|giveaway|free gift|"
    r"promo code|discount|whatsapp|telegram)\b",
    re.IGNORECASE,
)
UNDETERMINED = "und"
MIN_REPEATS = 2  # distinct authors or videos that make a repeated text spam
MIN_SPAM_CHARS = 20  # shorter repeated texts are ordinary praise
N_REPLIES = 5  # reply_1..reply_5

# Languages a comment under a classical-piano video is written in: those with a large audience on
# YouTube, plus every language with a script of its own (it cannot be mistaken for another). Left
# out are Latin, dialects, and small languages whose speakers mostly also write a larger neighbour
# and whose models claim short texts of others: over all languages "Какая музыка!" was `be`,
# "Perfect" `la`, "Qué maravilla" `oc`, "Schitterend" `lb`, "Lindo demais" `gl`.
_LANGUAGE_CODES = """
    am ar az bg bn ca cs da de el en es et eu fa fi fr gu he hi hr hu hy id is it ja ka kk km
    kn ko lo lt lv mk ml mr ms my ne nl no pa pl pt ro ru si sk sl sq sr sv sw ta te th tl tr uk
    ur uz vi zh
"""
LANGUAGES = tuple(_LANGUAGE_CODES.split())
# Below this confidence the answer is `und`. py3langid's normalized probabilities are spread
# over all of LANGUAGES, so a real but short comment ("Underbart", "Bravissimo!") often gets only
# 0.1-0.3, while names, catalogue numbers and interjections ("Chopin", "BWV 846", "Bravo!",
# "ok") get under 0.1. 0.10 maximizes accuracy on bench/langid_samples.tsv (93.0 %, from 90.4 %
# without a threshold); 0.09 to 0.15 are within 0.2 points, 0.2 and above lose real comments.
UND_BELOW = 0.10


@lru_cache(maxsize=1)
def _identifier() -> LanguageIdentifier:
    """py3langid's model restricted to LANGUAGES, loaded once per process (under 1 s)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(LANGUAGES)
    return identifier


def detect_language(text: str) -> tuple[str, float]:
    """(ISO 639-1 code or `und`, confidence in 0..1) of the text, URLs left out.

    `und` with confidence 0.0 for a text without letters; `und` with the best language's
    confidence when that is below UND_BELOW. The same text always gives the same answer.
    """
    letters = URL_RE.sub(" ", text)
    if not any(unicodedata.category(c).startswith("L") for c in letters):
        return UNDETERMINED, 0.0
    lang, confidence = _identifier().classify(letters)
    confidence = min(max(confidence, 0.0), 1.0)
    return (UNDETERMINED if confidence < UND_BELOW else lang), confidence


def detect_lang(text: str) -> str:
    """ISO 639-1 code of the text's language, or `und` (see `detect_language`)."""
    return detect_language(text)[0]


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


def reply_comments(kept: Iterable[Any]) -> list[Any]:
    """The comments that become `reply_1..reply_5`: the first kept ones that are not spam.
    Here, beside the spam rule, so the records and the release's `clean_en` share it without
    the release importing the records' MIDI feature code."""
    return [c for c in kept if not c["is_spam"]][:N_REPLIES]
