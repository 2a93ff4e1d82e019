"""Deciding which GiantMIDI zip members are MIDI files we keep, and why the others are rejected.

Member names are never used as paths: good files are written as `<vid>.mid`, and a name that is
absolute or climbs out with `..` is rejected outright, so extraction cannot escape its folder.
Nor are they used to open entries: a zip may hold two entries of one name, so each is read
through its own directory entry and judged once.
"""

from __future__ import annotations

import hashlib
import struct
import zipfile
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace

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
    """A zip entry: what the archive's directory says about it. Names can repeat in a zip, so
    `index`, the entry's position in the directory, is what tells two entries apart."""

    name: str
    is_dir: bool
    size: int
    index: int


@dataclass(frozen=True)
class Verdict:
    """One entry's fate: kept (`reason` None, with its bytes in `data`) or rejected with `reason` =
    'code: detail'. `parsed` is set whenever the name parses, so a reject still names its id."""

    member: Member
    parsed: ParsedName | None
    reason: str | None
    data: bytes | None = None
    sha256: str | None = None  # of a valid entry that lost its id: tells same-name entries apart

    @property
    def code(self) -> str | None:
        return self.reason.split(":", 1)[0] if self.reason else None


# Reads one entry's bytes, or says why they are unusable: (data, None) or (None, reason).
Reader = Callable[[Member], tuple[bytes | None, str | None]]


def members_of(zf: zipfile.ZipFile) -> list[Member]:
    return [Member(i.filename, i.is_dir(), i.file_size, n) for n, i in enumerate(zf.infolist())]


def entry_reader(zf: zipfile.ZipFile, max_bytes: int) -> Reader:
    """Reads a member through its own directory entry, never by name: with two entries of one
    name, `zf.open(name)` reads the last one whichever was checked."""
    infos = zf.infolist()
    return lambda m: read_member(zf, infos[m.index], max_bytes)


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


def screen_names(members: Iterable[Member], max_bytes: int) -> list[Verdict]:
    """Judge members by name and declared size alone: a verdict with a reason is final, one
    without is a candidate whose content is still to be read."""
    verdicts: list[Verdict] = []
    for m in members:
        reason = _name_reason(m, max_bytes)
        try:
            parsed = parse_member_name(m.name)
        except FilenameError as exc:
            parsed, reason = None, reason or f"{BAD_FILENAME}: {exc}"
        verdicts.append(Verdict(m, parsed, reason))
    return verdicts


def judge_members(members: Iterable[Member], max_bytes: int, read: Reader) -> Iterator[Verdict]:
    """Every member exactly once, kept or rejected, the same whatever the order inside the zip.

    Names are judged first; the candidates left are read one YouTube id at a time (memory holds
    one id's files). An entry whose bytes fail the structural checks gets its own reject; of the
    valid ones the name that sorts first is kept (equal names: the smaller sha256, so same-name
    entries are told apart by content, not position) and the others are `duplicate_id` rejects
    naming it. So a corrupt copy never pushes a valid one out of the dataset.
    """
    by_vid: dict[str, list[Verdict]] = defaultdict(list)
    final: list[Verdict] = []
    for v in screen_names(members, max_bytes):
        if v.reason is None and v.parsed is not None:
            by_vid[v.parsed.vid].append(v)
        else:
            final.append(v)
    yield from sorted(final, key=_order)
    for vid in sorted(by_vid):
        yield from _choose(vid, by_vid[vid], read)


def _choose(vid: str, candidates: list[Verdict], read: Reader) -> list[Verdict]:
    """The candidates of one id, read: the first valid one kept, every other one rejected."""
    out: list[Verdict] = []
    valid: list[tuple[str, str, Verdict, bytes]] = []
    for v in candidates:
        data, reason = read(v.member)
        if data is None:
            out.append(replace(v, reason=reason))
        else:
            valid.append((v.member.name, sha256_hex(data), v, data))
    if valid:
        (name, sha, kept, data), *others = sorted(valid, key=lambda t: t[:2])
        out.append(replace(kept, data=data))
        reason = f"{DUPLICATE_ID}: id {vid} is kept from {name!r} (sha256 {sha[:12]})"
        out += [replace(v, reason=reason, sha256=other) for _, other, v, _ in others]
    return sorted(out, key=_order)


def _order(v: Verdict) -> tuple[str, str]:
    return v.member.name, v.reason or ""


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


def read_member(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, max_bytes: int
) -> tuple[bytes | None, str | None]:
    """The entry's bytes, or a reject reason; never reads more than `max_bytes` + 1 bytes.

    The declared size in the zip directory can lie (zip bombs), so the read itself is bounded.
    """
    try:
        with zf.open(info) as fh:
            data = fh.read(max_bytes + 1)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError) as exc:
        return None, f"{CORRUPT_MEMBER}: {type(exc).__name__}: {exc}"
    if len(data) > max_bytes:
        return None, f"{TOO_LARGE}: more than {max_bytes} bytes uncompressed (MTA_MAX_MEMBER_BYTES)"
    problem = midi_structure_problem(data)
    return (None, problem) if problem else (data, None)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
