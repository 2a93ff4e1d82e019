import io
import zipfile

import pretty_midi

from mta_pipeline.core import archive
from mta_pipeline.core.archive import Member, classify_members, midi_structure_problem, read_member

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
    return {v.member: v.code for v in verdicts}


def test_every_bad_name_gets_its_code_and_good_names_are_kept():
    members = [
        Member(GOOD, False, 100),
        Member("midis/extra/", True, 0),
        Member("../x.mid", False, 10),
        Member("/tmp/evil, Name, Title, abcdefghijZ.mid", False, 10),
        Member("midis/..\\evil, A, B, abcdefghijY.mid", False, 10),
        Member("midis/README.txt", False, 10),
        Member("midis/Bach, Johann, Prelude, abc123.mid", False, 10),
        Member("midis/Huge, One, Bomb, abcdefghijX.mid", False, 10**9),
    ]
    got = codes(classify_members(members, max_bytes=1000))
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
    for order in ([a, b], [b, a]):
        verdicts = classify_members([Member(n, False, 10) for n in order], 1000)
        got = codes(verdicts)
        assert got[a] is None and got[b] == archive.DUPLICATE_ID
        assert a in next(v.reason for v in verdicts if v.member == b)


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
        data, reason = read_member(zf, GOOD, max_bytes=1_000_000)
    assert data is None and reason.startswith(archive.TOO_LARGE)


def test_read_member_returns_bytes_of_a_good_file_and_reports_a_corrupt_member():
    payload = midi_bytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(GOOD, payload)
    with zipfile.ZipFile(buf) as zf:
        assert read_member(zf, GOOD, 10**6) == (payload, None)
    raw = bytearray(buf.getvalue())
    start = raw.index(b"PK\x03\x04") + 30 + len(GOOD.encode())
    raw[start + 5 : start + 25] = b"\xff" * 20  # damage the compressed data
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as zf:
        data, reason = read_member(zf, GOOD, 10**6)
    assert data is None and reason.startswith(archive.CORRUPT_MEMBER)
