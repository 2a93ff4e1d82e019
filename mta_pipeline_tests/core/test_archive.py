import io
import itertools
import zipfile

import pretty_midi
import pytest

from mta_pipeline.core import archive
from mta_pipeline.core.archive import (
    Member,
    entry_reader,
    judge_members,
    midi_structure_problem,
    read_member,
    screen_names,
)

GOOD = "midis/Bach, Johann Sebastian, Prelude in C major, abcdefghijk.mid"


def midi_bytes(n_notes: int = 8) -> bytes:
    pm = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    for i in range(n_notes):
        piano.notes.append(pretty_midi.Note(80, 60 + i % 12, i * 0.5, i * 0.5 + 0.4))
    pm.instruments.append(piano)
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


def codes(verdicts):
    return {v.member.name: v.code for v in verdicts}


def members(*names: str, size: int = 10) -> list[Member]:
    return [Member(name, name.endswith("/"), size, i) for i, name in enumerate(names)]


def reading(contents: dict[int, bytes]):
    """A reader serving each entry's bytes by index, as `entry_reader` does from a zip."""

    def read(m: Member) -> tuple[bytes | None, str | None]:
        if contents[m.index] == b"CORRUPT":
            return None, f"{archive.CORRUPT_MEMBER}: BadZipFile: Bad CRC-32"
        problem = midi_structure_problem(contents[m.index])
        return (None, problem) if problem else (contents[m.index], None)

    return read


def outcome(names: list[str], contents: list[bytes]) -> list[tuple]:
    """What judge_members decides, as comparable rows (entry order left out)."""
    verdicts = judge_members(members(*names), 1000, reading(dict(enumerate(contents))))
    return [(v.member.name, v.reason, v.data) for v in verdicts]


def test_every_bad_name_gets_its_code_and_good_names_are_kept():
    named = members(
        GOOD,
        "midis/extra/",
        "../x.mid",
        "/tmp/evil, Name, Title, abcdefghijZ.mid",
        "midis/..\\evil, A, B, abcdefghijY.mid",
        "midis/README.txt",
        "midis/Bach, Johann, Prelude, abc123.mid",
    )
    named.append(Member("midis/Huge, One, Bomb, abcdefghijX.mid", False, 10**9, len(named)))
    got = codes(screen_names(named, max_bytes=1000))
    assert got == {
        GOOD: None,
        "midis/extra/": archive.DIRECTORY,
        "../x.mid": archive.UNSAFE_PATH,
        "/tmp/evil, Name, Title, abcdefghijZ.mid": archive.UNSAFE_PATH,
        "midis/..\\evil, A, B, abcdefghijY.mid": archive.UNSAFE_PATH,
        "midis/README.txt": archive.NOT_A_MID_FILE,
        "midis/Bach, Johann, Prelude, abc123.mid": archive.BAD_FILENAME,
        "midis/Huge, One, Bomb, abcdefghijX.mid": archive.TOO_LARGE,
    }


def test_duplicate_ids_keep_the_first_name_whatever_the_zip_order():
    a = "midis/Bach, J, Prelude (take 1), abcdefghijk.mid"
    b = "midis/Bach, J, Prelude (take 2), abcdefghijk.mid"
    good = midi_bytes()
    for order in ([a, b], [b, a]):
        verdicts = list(judge_members(members(*order), 1000, reading({0: good, 1: good})))
        got = codes(verdicts)
        assert got[a] is None and got[b] == archive.DUPLICATE_ID
        assert a in next(v.reason for v in verdicts if v.member.name == b)


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        (b"CORRUPT", archive.CORRUPT_MEMBER),
        (b"<html>", archive.NOT_MIDI),
        (b"", archive.EMPTY_FILE),
        (midi_bytes()[:-10], archive.TRUNCATED_MIDI),
    ],
)
def test_a_valid_file_beats_a_broken_one_of_its_id_whatever_the_order(bad, code):
    """The broken entry sorts first (or has the very same name): the valid one is still kept and
    the broken one gets its own content reject, in both zip orders."""
    first = "midis/Bach, J, Prelude (a), abcdefghijk.mid"
    later = "midis/Bach, J, Prelude (b), abcdefghijk.mid"
    good = midi_bytes()
    for bad_name, good_name in ((first, later), (later, later)):
        forward = outcome([bad_name, good_name], [bad, good])
        backward = outcome([good_name, bad_name], [good, bad])
        assert forward == backward
        assert [(name, data) for name, reason, data in forward if not reason] == [(good_name, good)]
        ((name, reason),) = [(name, reason) for name, reason, _ in forward if reason]
        assert name == bad_name and reason.startswith(f"{code}: ")


def test_two_valid_entries_of_one_name_keep_the_smaller_sha256_in_every_order():
    name = "midis/Bach, J, Prelude, abcdefghijk.mid"
    files = [midi_bytes(8), midi_bytes(9), midi_bytes(10)]
    smallest = min(files, key=archive.sha256_hex)
    results = {tuple(outcome([name] * 3, list(order))) for order in itertools.permutations(files)}
    assert len(results) == 1
    (rows,) = results
    assert [data for _, reason, data in rows if reason is None] == [smallest]
    rejected = [reason for _, reason, _ in rows if reason]
    assert len(rejected) == 2
    assert all(
        r.startswith(archive.DUPLICATE_ID) and archive.sha256_hex(smallest)[:12] in r
        for r in rejected
    )


def test_structure_check_catches_empty_html_and_truncated_files():
    good = midi_bytes()
    assert midi_structure_problem(good) is None
    assert midi_structure_problem(b"").startswith(archive.EMPTY_FILE)
    assert midi_structure_problem(b"<!DOCTYPE html><html>").startswith(archive.NOT_MIDI)
    assert midi_structure_problem(good[:-10]).startswith(archive.TRUNCATED_MIDI)
    assert midi_structure_problem(good[:14]).startswith(archive.TRUNCATED_MIDI)


def test_read_member_is_bounded_even_when_the_directory_lies():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(GOOD, b"MThd" + b"\0" * 5_000_000)  # compresses to a few KB
    with zipfile.ZipFile(buf) as zf:
        data, reason = read_member(zf, zf.getinfo(GOOD), max_bytes=1_000_000)
    assert data is None and reason.startswith(archive.TOO_LARGE)


def test_read_member_returns_bytes_of_a_good_file_and_reports_a_corrupt_member():
    payload = midi_bytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(GOOD, payload)
    with zipfile.ZipFile(buf) as zf:
        assert read_member(zf, zf.getinfo(GOOD), 10**6) == (payload, None)
    raw = bytearray(buf.getvalue())
    start = raw.index(b"PK\x03\x04") + 30 + len(GOOD.encode())
    raw[start + 5 : start + 25] = b"\xff" * 20  # damage the compressed data
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as zf:
        data, reason = read_member(zf, zf.getinfo(GOOD), 10**6)
    assert data is None and reason.startswith(archive.CORRUPT_MEMBER)


def test_entries_of_one_name_are_each_read_through_their_own_entry():
    first, second = midi_bytes(8), midi_bytes(9)
    buf = io.BytesIO()
    with (
        pytest.warns(UserWarning, match="Duplicate name"),
        zipfile.ZipFile(buf, "w") as zf,
    ):
        zf.writestr(GOOD, first)
        zf.writestr(GOOD, second)
    with zipfile.ZipFile(buf) as zf:
        read = entry_reader(zf, 10**6)
        assert [read(m) for m in archive.members_of(zf)] == [(first, None), (second, None)]
