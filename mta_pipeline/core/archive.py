"""Deciding which GiantMIDI zip members are MIDI files we keep, and why the others are rejected.

Member names are never used as paths: good files are written as `<vid>.mid`, and a name that is
absolute or climbs out with `..` is rejected outright, so extraction cannot escape its folder.
"""

from __future__ import annotations

import hashlib
import struct
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from mta_pipeline.core.filenames import FilenameError, ParsedName, basename, parse_member_name

# Reject codes: the first word of `midi_rejects.reason`.
DIRECTORY = "directory"
UNSAFE_PATH = "unsafe_path"
NOT_A_MID_FILE = "not_a_mid_file"
TOO_LARGE = "too_large"
BAD_FILENAME = "bad_filename"
DUPLICATE_ID = "duplicate_id"
EMPTY_FILE = "empty_file"
NOT_MIDI = "not_midi"
TRUNCATED_MIDI = "truncated_midi"
CORRUPT_MEMBER = "corrupt_member"
PARSE_ERROR = "parse_error"


@dataclass(frozen=True)
class Member:
    """A zip entry: what the archive's directory says about it."""

    name: str
    is_dir: bool
    size: int


@dataclass(frozen=True)
class Verdict:
    """A member is kept (`parsed` set, `reason` None) or rejected with `reason` = 'code: detail'."""

    member: str
    parsed: ParsedName | None
    reason: str | None

    @property
    def code(self) -> str | None:
        return self.reason.split(":", 1)[0] if self.reason else None


def members_of(zf: zipfile.ZipFile) -> list[Member]:
    return [Member(i.filename, i.is_dir(), i.file_size) for i in zf.infolist()]


def is_unsafe_path(name: str) -> bool:
    """Absolute, drive-letter, backslash or `..` names could write outside the target folder."""
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return True
    return "\\" in name or any(part == ".." for part in name.split("/"))


def try_parse(name: str) -> ParsedName | None:
    try:
        return parse_member_name(name)
    except FilenameError:
        return None


def classify_members(members: Iterable[Member], max_bytes: int) -> list[Verdict]:
    """Judge members by name and declared size alone; content is checked on extraction.

    Of several members with one id, the one whose name sorts first is kept, so the choice does
    not depend on the order inside the zip.
    """
    verdicts: list[Verdict] = []
    kept: dict[str, str] = {}
    for m in sorted(members, key=lambda m: m.name):
        reason = _name_reason(m, max_bytes)
        parsed = None
        if reason is None:
            try:
                parsed = parse_member_name(m.name)
            except FilenameError as exc:
                reason = f"{BAD_FILENAME}: {exc}"
        if parsed is not None and parsed.vid in kept:
            reason = f"{DUPLICATE_ID}: id {parsed.vid} is also in {kept[parsed.vid]!r}"
            parsed = None
        elif parsed is not None:
            kept[parsed.vid] = m.name
        verdicts.append(Verdict(m.name, parsed, reason))
    return verdicts


def _name_reason(m: Member, max_bytes: int) -> str | None:
    if m.is_dir:
        return f"{DIRECTORY}: directory entry"
    if is_unsafe_path(m.name):
        return f"{UNSAFE_PATH}: path would leave the extraction folder"
    if not basename(m.name).lower().endswith(".mid"):
        return f"{NOT_A_MID_FILE}: not a .mid file"
    if m.size > max_bytes:
        return (
            f"{TOO_LARGE}: {m.size} bytes uncompressed, limit is {max_bytes} (MTA_MAX_MEMBER_BYTES)"
        )
    return None


def midi_structure_problem(data: bytes) -> str | None:
    """Why `data` is not a whole Standard MIDI File, as a reject reason, or None if it is.

    Checks only the chunk framing (header, declared track count, chunk lengths), which catches
    empty, non-MIDI and truncated files cheaply before any parsing.
    """
    if not data:
        return f"{EMPTY_FILE}: zero bytes"
    if not data.startswith(b"MThd") or len(data) < 14:
        return f"{NOT_MIDI}: no MThd header (starts with {data[:16]!r})"
    header_len = struct.unpack(">I", data[4:8])[0]
    n_tracks = struct.unpack(">H", data[10:12])[0]
    offset, tracks = 8 + header_len, 0
    while offset + 8 <= len(data):
        kind = data[offset : offset + 4]
        length = struct.unpack(">I", data[offset + 4 : offset + 8])[0]
        end = offset + 8 + length
        if end > len(data):
            return f"{TRUNCATED_MIDI}: chunk {kind!r} needs {end} bytes, file has {len(data)}"
        tracks += kind == b"MTrk"
        offset = end
    if tracks < n_tracks:
        return f"{TRUNCATED_MIDI}: header declares {n_tracks} tracks, file has {tracks}"
    return None


def read_member(zf: zipfile.ZipFile, name: str, max_bytes: int) -> tuple[bytes | None, str | None]:
    """The member's bytes, or a reject reason; never reads more than `max_bytes` + 1 bytes.

    The declared size in the zip directory can lie (zip bombs), so the read itself is bounded.
    """
    try:
        with zf.open(name) as fh:
            data = fh.read(max_bytes + 1)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError) as exc:
        return None, f"{CORRUPT_MEMBER}: {type(exc).__name__}: {exc}"
    if len(data) > max_bytes:
        return None, f"{TOO_LARGE}: more than {max_bytes} bytes uncompressed (MTA_MAX_MEMBER_BYTES)"
    problem = midi_structure_problem(data)
    return (None, problem) if problem else (data, None)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
