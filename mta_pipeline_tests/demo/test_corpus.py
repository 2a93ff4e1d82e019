"""Tests for the offline GiantMIDI-Piano demo corpus: determinism, edge cases, valid content."""

from __future__ import annotations

import csv
import io
import random
import re
import struct
import unicodedata
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pretty_midi
import pytest

from mta_pipeline.demo import corpus as demo
from mta_pipeline.demo.corpus import DemoCorpus, generate_corpus, main

COUNT = 20
VID_AT_END = re.compile(r", ([A-Za-z0-9_-]{11})\.mid$")
KEY_IN_TITLE = re.compile(r"\bin ([A-G](?:-sharp|-flat)?) (major|minor)\b")
PITCH_CLASS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
# Krumhansl-Kessler key profiles, as a typical key estimator would use them.
ALL_CODES = {
    "empty_file",
    "truncated_midi",
    "not_midi",
    "bad_filename",
    "duplicate_id",
    "not_a_mid_file",
    "directory",
    "unsafe_path",
    "parse_error",
}
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> DemoCorpus:
    return generate_corpus(tmp_path_factory.mktemp("demo"), count=COUNT, seed=0)


@pytest.fixture(scope="module")
def members(corpus: DemoCorpus) -> dict[str, bytes]:
    with zipfile.ZipFile(corpus.archive_path) as archive:
        names = archive.namelist()
        assert len(names) == len(set(names)), "member names must be unique"
        return {name: archive.read(name) for name in names}


@pytest.fixture(scope="module")
def metadata(corpus: DemoCorpus) -> pd.DataFrame:
    return pd.read_csv(
        corpus.metadata_path, sep="\t", quoting=csv.QUOTE_NONE, dtype=str, keep_default_na=False
    )


def _parse(data: bytes) -> pretty_midi.PrettyMIDI:
    return pretty_midi.PrettyMIDI(io.BytesIO(data))


def _chunks(data: bytes) -> list[tuple[bytes, int, int]]:
    """(tag, declared length, bytes actually present) per chunk."""
    chunks, offset = [], 0
    while offset + 8 <= len(data):
        (length,) = struct.unpack(">I", data[offset + 4 : offset + 8])
        chunks.append((data[offset : offset + 4], length, len(data) - offset - 8))
        offset += 8 + length
    return chunks


def _vid(name: str) -> str | None:
    match = VID_AT_END.search(name)
    return match.group(1) if match else None


def _by_code(corpus: DemoCorpus) -> dict[str, list[str]]:
    by_code: dict[str, list[str]] = {}
    for name, code in corpus.expected_rejects.items():
        by_code.setdefault(code, []).append(name)
    return by_code


def _title_key(name: str) -> tuple[int, str] | None:
    match = KEY_IN_TITLE.search(name)
    if match is None:
        return None
    letter, *accidental = match.group(1).split("-")
    shift = {"sharp": 1, "flat": -1}[accidental[0]] if accidental else 0
    return (PITCH_CLASS[letter] + shift) % 12, match.group(2)


def _estimate_key(midi: pretty_midi.PrettyMIDI) -> tuple[int, str]:
    weights = np.zeros(12)
    for note in midi.instruments[0].notes:
        weights[note.pitch % 12] += note.end - note.start
    candidates = [
        (np.corrcoef(weights, np.roll(profile, tonic))[0, 1], tonic, mode)
        for tonic in range(12)
        for profile, mode in ((MAJOR_PROFILE, "major"), (MINOR_PROFILE, "minor"))
    ]
    _, tonic, mode = max(candidates)
    return tonic, mode


def test_same_arguments_give_identical_files(corpus: DemoCorpus, tmp_path: Path) -> None:
    again = generate_corpus(tmp_path, count=COUNT, seed=0)
    assert again.archive_path.read_bytes() == corpus.archive_path.read_bytes()
    assert again.metadata_path.read_bytes() == corpus.metadata_path.read_bytes()
    assert again.good == corpus.good
    assert again.expected_rejects == corpus.expected_rejects


def test_other_seed_gives_other_corpus(corpus: DemoCorpus, tmp_path: Path) -> None:
    other = generate_corpus(tmp_path, count=COUNT, seed=1)
    assert other.archive_path.read_bytes() != corpus.archive_path.read_bytes()
    assert set(other.good) != set(corpus.good)


def test_worker_processes_write_the_same_bytes(
    corpus: DemoCorpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo, "_PARALLEL_MIN_JOBS", 1)
    parallel = generate_corpus(tmp_path, count=COUNT, seed=0)
    assert parallel.archive_path.read_bytes() == corpus.archive_path.read_bytes()


def test_fixed_tempo_writer_matches_plain_pretty_midi() -> None:
    for seed in range(5):
        job = (random.Random(seed).getrandbits(63), seed, "minor", 12, 250, "")
        assert demo._render_midi(job) == demo._render_midi(job, pretty_midi.PrettyMIDI)


def test_layout_and_atomic_writes(corpus: DemoCorpus, members: dict[str, bytes]) -> None:
    assert corpus.archive_path.name == "midis_demo.zip"
    assert corpus.metadata_path.name == "giantmidi_metadata.csv"
    assert sorted(p.name for p in corpus.archive_path.parent.iterdir()) == [
        "giantmidi_metadata.csv",
        "midis_demo.zip",
    ]
    assert len(corpus.good) == COUNT
    assert set(members) == set(corpus.good.values()) | set(corpus.expected_rejects)
    assert not set(corpus.good.values()) & set(corpus.expected_rejects)
    for vid, name in corpus.good.items():
        assert name.startswith("midis/") and "/" not in name[len("midis/") :]
        assert _vid(name) == vid
    with zipfile.ZipFile(corpus.archive_path) as archive:
        assert {info.date_time for info in archive.infolist()} == {(2020, 10, 1, 0, 0, 0)}


def test_awkward_good_names(corpus: DemoCorpus, metadata: pd.DataFrame) -> None:
    names = list(corpus.good.values())
    vids = list(corpus.good)
    assert any(", Nocturne in E-flat major, Op. 9, No. 2, " in name for name in names)
    for letter in "éüø":
        assert any(letter in unicodedata.normalize("NFC", name) for name in names), letter
    assert any(re.match(r"midis/[а-яА-Я]+, [а-яА-Я]+, ", name) for name in names)
    nfd = [name for name in names if unicodedata.normalize("NFC", name) != name]
    assert len(nfd) == 1 and "Dvořák" in unicodedata.normalize("NFC", nfd[0])
    assert nfd[0] == unicodedata.normalize("NFD", nfd[0])
    assert any(vid.startswith("-") for vid in vids)
    assert any("_" in vid for vid in vids)
    assert any(name.startswith("midis/Anonymous, , Minuet in G major, ") for name in names)
    slashed = [music for music in metadata["music"] if "/" in music]
    assert slashed and all(any(m.replace("/", "_") in n for n in names) for m in slashed)


def test_bad_members(corpus: DemoCorpus, members: dict[str, bytes]) -> None:
    codes = Counter(corpus.expected_rejects.values())
    assert codes == Counter({**dict.fromkeys(ALL_CODES, 1), "unsafe_path": 2})
    (empty,), (truncated,) = _by_code(corpus)["empty_file"], _by_code(corpus)["truncated_midi"]
    (html,), (bad_name,) = _by_code(corpus)["not_midi"], _by_code(corpus)["bad_filename"]
    (twin,), (readme,) = _by_code(corpus)["duplicate_id"], _by_code(corpus)["not_a_mid_file"]
    (folder,), (broken,) = _by_code(corpus)["directory"], _by_code(corpus)["parse_error"]

    assert members[empty] == b""
    tag, declared, present = _chunks(members[truncated])[-1]
    assert members[truncated].startswith(b"MThd") and tag == b"MTrk" and declared > present
    assert not members[html].startswith(b"MThd") and b"<html" in members[html]
    assert bad_name.endswith(".mid") and _vid(bad_name) is None
    assert _vid(twin) in corpus.good and corpus.good[_vid(twin)] < twin
    assert readme == "midis/README.txt" and folder == "midis/extra/"
    with zipfile.ZipFile(corpus.archive_path) as archive:
        assert archive.getinfo(folder).is_dir()
    dotdot, evil = sorted(_by_code(corpus)["unsafe_path"])
    assert dotdot == "../x.mid"
    assert evil.startswith("/tmp/evil, Name, Title, ") and _vid(evil)
    for name in (empty, truncated, html, broken, evil):
        assert _vid(name) and _vid(name) not in corpus.good, name


def test_parse_error_member_has_valid_chunks_but_fails(
    corpus: DemoCorpus, members: dict[str, bytes]
) -> None:
    (name,) = _by_code(corpus)["parse_error"]
    data = members[name]
    chunks = _chunks(data)
    assert [tag for tag, _, _ in chunks] == [b"MThd", b"MTrk", b"MTrk"]
    assert sum(8 + length for _, length, _ in chunks) == len(data)
    with pytest.raises(Exception):  # noqa: B017 - any parser exception is the point
        _parse(data)


def test_good_files_are_piano_midi(corpus: DemoCorpus, members: dict[str, bytes]) -> None:
    for name in corpus.good.values():
        midi = _parse(members[name])
        (piano,) = midi.instruments
        assert piano.program == 0 and not piano.is_drum
        assert 150 <= len(piano.notes) <= 1600, name
        assert 15 <= midi.get_end_time() <= 200, name
        _, tempi = midi.get_tempo_changes()
        assert list(tempi) == pytest.approx([120.0])
        assert [(ts.numerator, ts.denominator) for ts in midi.time_signature_changes] == [(4, 4)]
        velocities = [note.velocity for note in piano.notes]
        assert min(velocities) >= 30 and max(velocities) <= 110 and len(set(velocities)) > 20
        pedal = {cc.value for cc in piano.control_changes if cc.number == 64}
        assert pedal == {0, 127}


def test_notes_follow_the_title_key(corpus: DemoCorpus, members: dict[str, bytes]) -> None:
    keyed = [(name, _title_key(name)) for name in corpus.good.values() if _title_key(name)]
    hits = sum(_estimate_key(_parse(members[name])) == key for name, key in keyed)
    assert len(keyed) >= COUNT // 2 and hits >= 0.8 * len(keyed)


def test_metadata(corpus: DemoCorpus, metadata: pd.DataFrame) -> None:
    text = corpus.metadata_path.read_text(encoding="utf-8")
    assert '"' not in text and unicodedata.normalize("NFC", text) == text
    assert list(metadata.columns) == list(demo.METADATA_COLUMNS)
    assert metadata["youtube_id"].is_unique
    released = metadata[metadata["giant_midi_piano"] == "1"].set_index("youtube_id")
    assert set(corpus.good) <= set(released.index)
    assert (metadata["giant_midi_piano"] == "0").sum() == round(COUNT / 10)
    for vid, name in corpus.good.items():
        base = unicodedata.normalize("NFC", name)[len("midis/") : -len(".mid")]
        assert released.loc[vid, "audio_name"] == base
    for name in _by_code(corpus)["empty_file"] + _by_code(corpus)["parse_error"]:
        assert _vid(name) in released.index
    assert "train" in set(metadata["split"]) <= {"train", "validation", "test"}
    assert set(metadata["giant_midi_piano"]) == {"0", "1"}
    assert set(metadata["surname_in_youtube_title"]) <= {"0", "1"}
    for column in ("similarity", "piano_solo_prob"):
        assert metadata[column].astype(float).between(0, 1).all()
    assert (metadata["audio_duration"].astype(float) > 0).all()
    assert {"", "unknown"} <= set(metadata["nationality"]) | set(metadata["birth"])
    flagged = metadata[metadata["surname_in_youtube_title"] == "1"]
    pairs = zip(flagged["surname"], flagged["youtube_title"], strict=True)
    assert all(surname.casefold() in title.casefold() for surname, title in pairs)


def test_tiny_count_still_has_every_bad_member(tmp_path: Path) -> None:
    tiny = generate_corpus(tmp_path, count=1, seed=0)
    assert len(tiny.good) == 1
    assert set(tiny.expected_rejects.values()) == ALL_CODES
    with pytest.raises(ValueError):
        generate_corpus(tmp_path, count=0)


def test_cli_prints_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["--out", str(tmp_path), "--count", "8", "--seed", "3"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and "8 good" in lines[0]
    assert (tmp_path / "midis_demo.zip").is_file()
    assert (tmp_path / "giantmidi_metadata.csv").is_file()
