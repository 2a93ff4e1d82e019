"""The removal list (`MTA_REMOVALS`): video and comment ids kept out of every record and release.

A plain text file, one id per line; `#` starts a comment, blank lines are ignored. An 11-character
YouTube id (letters, digits, `-`, `_`) removes the whole video: its record, MIDI file and text. Any
other id is a comment id (YouTube's are 20 or more characters) and removes that comment from the
record's `comments` and replies. Anything else on a line is an error that names the line, so a
typo never silently keeps a text its author asked to remove.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

VID_RE = re.compile(r"[A-Za-z0-9_-]{11}")
COMMENT_ID_RE = re.compile(r"[A-Za-z0-9_.-]{12,100}")


class RemovalListError(ValueError):
    """The removal list is unreadable or holds a line that is not an id."""


@dataclass(frozen=True)
class Removals:
    vids: frozenset[str] = field(default_factory=frozenset)
    comment_ids: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_rows(cls, rows: list[dict[str, str]]) -> Removals:
        """The list back from its `mta_removals` table rows."""
        return cls(
            frozenset(r["id"] for r in rows if r["kind"] == "vid"),
            frozenset(r["id"] for r in rows if r["kind"] == "comment"),
        )

    def rows(self) -> list[dict[str, str]]:
        """The `mta_removals` table rows, sorted (same list, same bytes)."""
        return [{"kind": "vid", "id": v} for v in sorted(self.vids)] + [
            {"kind": "comment", "id": c} for c in sorted(self.comment_ids)
        ]


def parse_removals(text: str, source: str = "MTA_REMOVALS") -> Removals:
    vids: set[str] = set()
    comments: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        item = line.split("#", 1)[0].strip()
        if not item:
            continue
        if VID_RE.fullmatch(item):
            vids.add(item)
        elif COMMENT_ID_RE.fullmatch(item):
            comments.add(item)
        else:
            raise RemovalListError(
                f"{source} line {number}: {item[:80]!r} is neither an 11-character YouTube "
                "video id nor a comment id (one id per line, # for comments)"
            )
    return Removals(frozenset(vids), frozenset(comments))
