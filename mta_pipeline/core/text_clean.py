"""Cleaning YouTube text: one small rule per function, applied in `clean_text`.

Rules, in order: Unicode NFC; when the text is HTML (`textDisplay` with textFormat=html), tags
dropped (`<br>` becomes a newline) and entities unescaped, once; plain text keeps a literal
`&amp;` as its author typed it, which keeps cleaning idempotent (`clean(clean(x)) == clean(x)`);
`\\r\\n`, `\\r` and Unicode line/paragraph separators become `\\n`; control characters other than
`\\n` removed (format characters such as the emoji zero-width joiner are kept); runs of spaces and
tabs become one space; spaces at line ends and blank lines beyond one are dropped; the text is
trimmed. Emoji, CJK and Cyrillic pass through untouched.
"""

from __future__ import annotations

import html
import html.entities
import re
import unicodedata

TAG_RE = re.compile(r"<[^>]{0,2000}>")
BR_RE = re.compile(r"<br\s*/?>|</p\s*>", re.IGNORECASE)
NEWLINES_RE = re.compile(r"\r\n|\r|\u2028|\u2029")
SPACES_RE = re.compile(r"[ \t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+")
LINE_END_RE = re.compile(r" *\n *")
BLANK_LINES_RE = re.compile(r"\n{3,}")
# A complete HTML entity, with its `;`: `&amp;`, `&#39;`, `&#x27;`. `html.unescape` alone also
# decodes legacy forms without `;`, which turns the URL query `?a=1&region=us` into `?a=1®ion=us`.
ENTITY_RE = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")


def decode_entities(text: str) -> str:
    """Complete HTML entities decoded (`&amp;` → `&`), everything else untouched.

    For descriptions: the API returns them raw, yet some carry entities (pasted from web pages or
    written by upload tools), and a reader wants the characters. Only complete entities are
    decoded, so URLs and text that merely contain `&` keep their bytes."""
    return ENTITY_RE.sub(_decode_entity, text)


def _decode_entity(match: re.Match[str]) -> str:
    entity = match.group()
    known = entity[1] == "#" or entity[1:] in html.entities.html5
    return html.unescape(entity) if known else entity  # `&notanentity;` is not `¬anentity;`


def drop_tags(text: str) -> str:
    return TAG_RE.sub("", BR_RE.sub("\n", text))


def normalize_newlines(text: str) -> str:
    return NEWLINES_RE.sub("\n", text)


def drop_controls(text: str) -> str:
    """Remove category Cc except newline and tab (tabs are collapsed later)."""
    return "".join(c for c in text if c in "\n\t" or unicodedata.category(c) != "Cc")


def collapse_spaces(text: str) -> str:
    text = SPACES_RE.sub(" ", text)
    text = LINE_END_RE.sub("\n", text)
    return BLANK_LINES_RE.sub("\n\n", text)


def clean_text(raw: str | None, is_html: bool = False) -> str:
    """The cleaned text; None or missing text becomes the empty string."""
    if not raw:
        return ""
    text = unicodedata.normalize("NFC", raw)
    if is_html:
        text = html.unescape(drop_tags(text))
    text = normalize_newlines(text)
    text = drop_controls(text)
    text = collapse_spaces(text)
    return unicodedata.normalize("NFC", text.strip())
