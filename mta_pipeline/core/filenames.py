"""GiantMIDI file names: `Surname, Firstname, Title, <11-char YouTube id>.mid`.

The id is taken from the right and the names from the left because titles contain commas
("Sonata in C minor, Op. 13"). First names may be empty ("Anonymous, , Minuet, id").

Names are data from an archive we do not control. The parsed fields are made single-line text:
each run of tabs and line breaks becomes one space and other control characters (NUL, ESC, DEL,
C1) are removed, so a surname or title cannot split a TSV row or a log line, or drive a
terminal. The file stays in the dataset: its id and bytes are what matter, and a stray control
character in a display name is no reason to lose them. The member name itself is kept verbatim
(`midi_files.member`), so the entry can still be found in the archive.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

VID_RE = re.compile(r"[A-Za-z0-9_-]{11}")
SEP = ", "
# Tabs and line breaks (C0, NEL, Unicode line and paragraph separators): a run of them, with the
# spaces around it, becomes one space.
BREAKS = "\t\n\v\f\r\x1c\x1d\x1e\x1f\x85\u2028\u2029"
BREAKS_RE = re.compile(f"(?: *[{BREAKS}])+ *")


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


def clean_field(text: str) -> str:
    """One line of printable text: breaks become a space, other control characters go."""
    text = "".join(c for c in text if c in BREAKS or unicodedata.category(c) != "Cc")
    return BREAKS_RE.sub(" ", text).strip()


def parse_member_name(member: str) -> ParsedName:
    """Parse a member name (any folder prefix) into NFC-normalized composer, title and id.

    The name is split before its fields are cleaned, so a control character can neither make
    nor hide a `, ` separator."""
    name = unicodedata.normalize("NFC", basename(member))
    if not name.lower().endswith(".mid"):
        raise FilenameError(f"{name!r} does not end in .mid")
    stem = name[: -len(".mid")]
    head, sep, vid = stem.rpartition(SEP)
    if not sep or not is_valid_vid(vid):
        raise FilenameError(f"{name!r} does not end in ', <11-character YouTube id>.mid'")
    parts = [clean_field(p) for p in head.split(SEP, 2)]
    if len(parts) != 3 or not parts[0]:
        raise FilenameError(f"{name!r} is not 'Surname, Firstname, Title, id.mid'")
    surname, firstname, title = parts
    return ParsedName(surname=surname, firstname=firstname, title=title, vid=vid)
