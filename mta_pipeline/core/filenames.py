"""GiantMIDI file names: `Surname, Firstname, Title, <11-char YouTube id>.mid`.

The id is taken from the right and the names from the left because titles contain commas
("Sonata in C minor, Op. 13"). First names may be empty ("Anonymous, , Minuet, id").
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

VID_RE = re.compile(r"[A-Za-z0-9_-]{11}")
SEP = ", "


class FilenameError(ValueError):
    """The name does not follow the GiantMIDI rule; the message says what is wrong."""


@dataclass(frozen=True)
class ParsedName:
    surname: str
    firstname: str
    title: str
    vid: str


def basename(member: str) -> str:
    """The last path component of a zip member name (zip names always use `/`)."""
    return member.rstrip("/").rsplit("/", 1)[-1]


def is_valid_vid(vid: str) -> bool:
    return VID_RE.fullmatch(vid) is not None


def parse_member_name(member: str) -> ParsedName:
    """Parse a member name (any folder prefix) into NFC-normalized composer, title and id."""
    name = unicodedata.normalize("NFC", basename(member))
    if not name.lower().endswith(".mid"):
        raise FilenameError(f"{name!r} does not end in .mid")
    stem = name[: -len(".mid")]
    head, sep, vid = stem.rpartition(SEP)
    if not sep or not is_valid_vid(vid):
        raise FilenameError(f"{name!r} does not end in ', <11-character YouTube id>.mid'")
    parts = head.split(SEP, 2)
    if len(parts) != 3 or not parts[0].strip():
        raise FilenameError(f"{name!r} is not 'Surname, Firstname, Title, id.mid'")
    surname, firstname, title = (p.strip() for p in parts)
    return ParsedName(surname=surname, firstname=firstname, title=title, vid=vid)
