"""Deterministic offline stand-in for the GiantMIDI-Piano release (MIDI zip + metadata CSV).

Why: the pipeline, its tests and its benchmarks must run without network access or the real
archive, yet meet the same awkward inputs the real release has (commas, Unicode and NFD in
member names, odd video ids, broken or hostile zip entries, quirky metadata). The same
arguments always give byte-identical files, so results can be compared run to run.

Usage: ``python -m mta_pipeline.demo.corpus --out DIR [--count N] [--seed S] [--realistic]``
"""

from __future__ import annotations

import argparse
import io
import math
import multiprocessing
import os
import random
import re
import string
import struct
import tempfile
import time
import unicodedata
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pretty_midi

from mta_pipeline.core.metadata import COLUMNS
from mta_pipeline.demo.realistic import realistic_midi

ARCHIVE_NAME = "midis_demo.zip"
METADATA_NAME = "giantmidi_metadata.csv"
MEMBER_DIR = "midis/"
METADATA_COLUMNS = COLUMNS  # the CSV the ingester reads: one list for both

# Reject codes a correct ingester must assign (values of DemoCorpus.expected_rejects).
EMPTY_FILE = "empty_file"
TRUNCATED_MIDI = "truncated_midi"
NOT_MIDI = "not_midi"
BAD_FILENAME = "bad_filename"
DUPLICATE_ID = "duplicate_id"
NOT_A_MID_FILE = "not_a_mid_file"
DIRECTORY = "directory"
UNSAFE_PATH = "unsafe_path"
PARSE_ERROR = "parse_error"

_ZIP_DATE_TIME = (2020, 10, 1, 0, 0, 0)  # fixed so the archive is byte-identical across runs
_VID_CHARS = string.ascii_letters + string.digits + "-_"
_VID_LAST_CHARS = "AEIMQUYcgkosw048"  # real 11-character YouTube ids end in one of these
_PARALLEL_MIN_JOBS = 100  # below this, worker start-up (~0.5 s) costs more than it saves
_BPM = 120.0  # pretty_midi's default tempo; never changed
_BAR = 4 * 60.0 / _BPM  # seconds per 4/4 bar
_STEP = _BAR / 16  # one sixteenth note

# A MIDI rendering job: (seed, tonic pitch class, mode, bars, target notes, damage code or "").
_Job = tuple[int, int, str, int, int, str]


@dataclass(frozen=True)
class DemoCorpus:
    """Where the demo files are and what a correct ingester must make of them."""

    archive_path: Path
    metadata_path: Path
    good: dict[str, str]  # vid -> member name of every MIDI a correct parser keeps
    expected_rejects: dict[str, str]  # member name -> reject code


@dataclass(frozen=True)
class _Composer:
    surname: str
    firstname: str
    nationality: str
    birth: str
    death: str
    catalogue: str | None  # e.g. "Op. {n}"; None when works are usually cited without one


@dataclass(frozen=True)
class _Piece:
    """One catalogue entry: enough to name the member, render its MIDI and write its row."""

    composer: _Composer
    music: str
    vid: str
    tonic: int
    mode: str
    bars: int
    notes: int
    midi_seed: int
    nfd: bool = False

    @property
    def base_name(self) -> str:
        c = self.composer
        return f"{c.surname}, {c.firstname}, {self.music}, {self.vid}".replace("/", "_")

    @property
    def member(self) -> str:
        name = MEMBER_DIR + self.base_name + ".mid"
        return unicodedata.normalize("NFD", name) if self.nfd else name

    def job(self, damage: str = "") -> _Job:
        return (self.midi_seed, self.tonic, self.mode, self.bars, self.notes, damage)


@dataclass(frozen=True)
class _Awkward:
    """A GOOD piece that must exist because real ingesters trip over it."""

    surname: str
    firstname: str
    music: str
    vid_first: str = ""
    vid_inner: str = ""
    nfd: bool = False


@dataclass(frozen=True)
class _Entry:
    """A zip member: fixed bytes, or a MIDI job rendered (possibly in a worker) at write time."""

    name: str
    data: bytes = b""
    job: _Job | None = None


_COMPOSERS = tuple(
    _Composer(*fields)
    for fields in (
        ("Chopin", "Frédéric", "Polish", "1810", "1849", "Op. {n}"),
        ("Liszt", "Franz", "Hungarian", "1811", "1886", "S. {n}"),
        ("Beethoven", "Ludwig van", "German", "1770", "1827", "Op. {n}"),
        ("Schubert", "Franz", "Austrian", "1797", "1828", "D. {n}"),
        ("Schumann", "Robert", "German", "1810", "1856", "Op. {n}"),
        ("Schumann", "Clara", "German", "1819", "1896", "Op. {n}"),
        ("Brahms", "Johannes", "German", "1833", "1897", "Op. {n}"),
        ("Mozart", "Wolfgang Amadeus", "Austrian", "1756", "1791", "K. {n}"),
        ("Bach", "Johann Sebastian", "German", "1685", "1750", "BWV {n}"),
        ("Haydn", "Joseph", "Austrian", "1732", "1809", "Hob. XVI:{n}"),
        ("Mendelssohn", "Felix", "German", "1809", "1847", "Op. {n}"),
        ("Debussy", "Claude", "French", "1862", "1918", "L. {n}"),
        ("Ravel", "Maurice", "French", "1875", "1937", "M. {n}"),
        ("Fauré", "Gabriel", "French", "1845", "1924", "Op. {n}"),
        ("Saint-Saëns", "Camille", "French", "1835", "1921", "Op. {n}"),
        ("Chaminade", "Cécile", "French", "1857", "1944", "Op. {n}"),
        ("Satie", "Erik", "French", "1866", "1925", None),
        ("Grieg", "Edvard", "Norwegian", "1843", "1907", "Op. {n}"),
        ("Backer-Grøndahl", "Agathe", "Norwegian", "1847", "1907", "Op. {n}"),
        ("Burgmüller", "Friedrich", "German", "1806", "1874", "Op. {n}"),
        ("Dvořák", "Antonín", "Czech", "1841", "1904", "Op. {n}"),
        ("Janáček", "Leoš", "Czech", "1854", "1928", None),
        ("Smetana", "Bedřich", "Czech", "1824", "1884", None),
        ("Tchaikovsky", "Pyotr", "Russian", "1840", "1893", "Op. {n}"),
        ("Rachmaninoff", "Sergei", "Russian", "1873", "1943", "Op. {n}"),
        ("Scriabin", "Alexander", "Russian", "1872", "1915", "Op. {n}"),
        ("Лядов", "Анатолий", "", "1855", "1914", "Op. {n}"),
        ("Scarlatti", "Domenico", "Italian", "1685", "1757", "K. {n}"),
        ("Clementi", "Muzio", "Italian", "1752", "1832", "Op. {n}"),
        ("Czerny", "Carl", "Austrian", "1791", "1857", "Op. {n}"),
        ("Field", "John", "Irish", "1782", "1837", "H. {n}"),
        ("Kuhlau", "Friedrich", "Danish", "1786", "1832", "Op. {n}"),
        ("Granados", "Enrique", "Spanish", "1867", "1916", None),
        ("Albéniz", "Isaac", "Spanish", "1860", "1909", "Op. {n}"),
        ("Gottschalk", "Louis Moreau", "American", "1829", "1869", "Op. {n}"),
        ("Joplin", "Scott", "American", "unknown", "1917", None),
        ("Anonymous", "", "unknown", "", "", None),
    )
)
_COMPOSER_BY_NAME = {(c.surname, c.firstname): c for c in _COMPOSERS}

# Every GOOD edge case, in priority order (a tiny `count` keeps only the first ones).
_AWKWARD = (
    _Awkward("Chopin", "Frédéric", "Nocturne in E-flat major, Op. 9, No. 2"),
    _Awkward("Dvořák", "Antonín", "Humoresque in G-flat major, Op. 101, No. 7", nfd=True),
    _Awkward("Anonymous", "", "Minuet in G major"),
    _Awkward("Chopin", "Frédéric", "Mazurka in A minor, Op. 17/4"),
    _Awkward("Лядов", "Анатолий", "Prelude in B minor, Op. 11, No. 1"),
    _Awkward("Burgmüller", "Friedrich", "Arabesque in A minor, Op. 100, No. 2", vid_first="-"),
    _Awkward("Backer-Grøndahl", "Agathe", "Étude in F minor, Op. 11, No. 1", vid_inner="_"),
)

_KEYED_FORMS = (
    "Nocturne in {key}, {cat}, No. {no}",
    "Prelude in {key}, {cat}, No. {no}",
    "Étude in {key}, {cat}, No. {no}",
    "Mazurka in {key}, {cat}, No. {no}",
    "Intermezzo in {key}, {cat}, No. {no}",
    "Piano Sonata No. {no} in {key}, {cat}",
    "Sonata in {key}, {cat}",
    "Waltz in {key}, {cat}",
    "Impromptu in {key}, {cat}",
    "Ballade No. {no} in {key}, {cat}",
    "Scherzo in {key}, {cat}",
    "Polonaise in {key}, {cat}",
    "Rondo in {key}, {cat}",
    "Variations in {key}, {cat}",
    "Minuet in {key}",
    "Fantasia in {key}",
)
_UNKEYED_FORMS = (
    "Song without Words, {cat}, No. {no}",
    "Romance, {cat}, No. {no}",
    "Capriccio, {cat}, No. {no}",
    "Berceuse, {cat}",
    "Barcarolle, {cat}",
    "Humoresque, {cat}",
    "Toccata, {cat}",
    "Variations on an Original Theme, {cat}",
    "Album Leaf",
    "Lullaby",
)
_KEY_NAMES = {
    "major": (
        ("C", 0), ("G", 7), ("D", 2), ("A", 9), ("E", 4), ("B", 11), ("F-sharp", 6),
        ("C-sharp", 1), ("F", 5), ("B-flat", 10), ("E-flat", 3), ("A-flat", 8),
        ("D-flat", 1), ("G-flat", 6),
    ),
    "minor": (
        ("A", 9), ("E", 4), ("B", 11), ("F-sharp", 6), ("C-sharp", 1), ("G-sharp", 8),
        ("D-sharp", 3), ("D", 2), ("G", 7), ("C", 0), ("F", 5), ("B-flat", 10), ("E-flat", 3),
    ),
}  # fmt: skip
_KEY_RE = re.compile(r"\bin ([A-G](?:-sharp|-flat)?) (major|minor)\b")
_SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
_SECOND_CHORDS = (0, 3, 5, 1)  # scale-degree roots: I, IV, vi, ii
_THIRD_CHORDS = (3, 1, 4, 5)  # IV, ii, V, vi; each phrase then ends on V
_MELODY_STEPS = (-3, -2, -1, 0, 1, 2, 3)
_MELODY_STEP_WEIGHTS = (1, 3, 6, 2, 6, 3, 1)

_NOT_MIDI_HTML = (
    b'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
    b"<title>429 Too Many Requests</title></head>\n<body><h1>Too Many Requests</h1>\n"
    b"<p>We're sorry, but your computer may be sending automated queries.</p></body></html>\n"
)
_README = (
    b"GiantMIDI-Piano demo archive\n\n"
    b"Synthetic stand-in generated by mta_pipeline.demo.corpus; no real recordings or\n"
    b"transcriptions are included. Member names follow 'surname, firstname, music, id.mid'.\n"
)


class _VidFactory:
    """Hands out YouTube-like 11-character ids, never the same one twice."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._used: set[str] = set()

    def new(self, first: str = "", inner: str = "") -> str:
        while True:
            chars = [*self._rng.choices(_VID_CHARS, k=10), self._rng.choice(_VID_LAST_CHARS)]
            if first:
                chars[0] = first
            if inner:
                chars[self._rng.randrange(1, 10)] = inner
            vid = "".join(chars)
            if vid not in self._used:
                self._used.add(vid)
                return vid


# --- catalogue -------------------------------------------------------------------------------


def _key_of(music: str) -> tuple[int, str] | None:
    """Tonic pitch class and mode named in a title, so the MIDI can be written in that key."""
    match = _KEY_RE.search(music)
    if match is None:
        return None
    name, mode = match.groups()
    return dict(_KEY_NAMES[mode])[name], mode


def _title(rng: random.Random, composer: _Composer) -> str:
    """A plausible title; most name a key, and catalogue numbers bring commas."""
    keyed = rng.random() < 0.85
    form = rng.choice(_KEYED_FORMS if keyed else _UNKEYED_FORMS)
    mode = rng.choice(("major", "major", "minor"))
    key_name = rng.choice(_KEY_NAMES[mode])[0]
    cat = composer.catalogue.format(n=rng.randint(1, 120)) if composer.catalogue else ""
    parts = [part for part in form.split(", ") if cat or "{cat}" not in part]
    return ", ".join(parts).format(key=f"{key_name} {mode}", cat=cat, no=rng.randint(1, 12))


def _plan(rng: random.Random) -> tuple[int, int]:
    """Bars and target note count: 20-180 s and 200-1500 notes, skewed to shorter pieces."""
    seconds = rng.triangular(20.0, 180.0, 60.0)
    density = rng.triangular(3.0, 10.0, 4.0)  # notes per second
    notes = min(1500, max(200, round(seconds * density)))
    return max(10, round(seconds / _BAR)), notes


def _piece(
    rng: random.Random,
    composer: _Composer,
    music: str,
    vid: str,
    nfd: bool = False,
) -> _Piece:
    key = _key_of(music)
    if key is None:
        key = (rng.randrange(12), rng.choice(("major", "minor")))
    bars, notes = _plan(rng)
    return _Piece(composer, music, vid, *key, bars, notes, rng.getrandbits(63), nfd)


def _random_piece(rng: random.Random, vids: _VidFactory) -> _Piece:
    composer = rng.choice(_COMPOSERS)
    return _piece(rng, composer, _title(rng, composer), vids.new())


def _good_pieces(rng: random.Random, vids: _VidFactory, count: int) -> list[_Piece]:
    """`count` GOOD pieces: the awkward edge cases first, then ordinary random ones."""
    pieces = [
        _piece(
            rng,
            _COMPOSER_BY_NAME[(a.surname, a.firstname)],
            a.music,
            vids.new(a.vid_first, a.vid_inner),
            a.nfd,
        )
        for a in _AWKWARD[:count]
    ]
    pieces += [_random_piece(rng, vids) for _ in range(count - len(pieces))]
    return pieces


def _duplicate_pair(rng: random.Random, good: list[_Piece]) -> _Piece:
    """Give the last good piece a same-id twin; whichever name sorts first stays GOOD.

    Mimics one video matched to two catalogue entries of the same composer.
    """
    anchor = good[-1]
    music = anchor.music
    while music == anchor.music:
        music = _title(rng, anchor.composer)
    twin = _piece(rng, anchor.composer, music, anchor.vid)
    if twin.member < anchor.member:
        good[-1], twin = twin, anchor
    return twin


# --- MIDI ------------------------------------------------------------------------------------


def _pitch_from(pitch_class: int, low: int) -> int:
    """Lowest MIDI pitch >= `low` with the given pitch class."""
    return low + (pitch_class - low) % 12


def _chord(tonic: int, mode: str, degree: int) -> list[int]:
    """Triad pitch classes (root, third, fifth); minor keys raise the dominant's third."""
    scale = _SCALES[mode]
    pcs = [(tonic + scale[(degree + k) % 7]) % 12 for k in (0, 2, 4)]
    if mode == "minor" and degree == 4:
        pcs[1] = (tonic + 11) % 12
    return pcs


def _progression(rng: random.Random, bars: int) -> list[int]:
    """Chord roots per bar: four-bar phrases I-x-y-V, ending the piece on I (tonic emphasis)."""
    roots: list[int] = []
    while len(roots) < bars:
        roots += [0, rng.choice(_SECOND_CHORDS), rng.choice(_THIRD_CHORDS), 4]
    roots = roots[:bars]
    roots[-1] = 0
    return roots


class _Voice:
    """Collects notes with a little human timing jitter, like a transcription has."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.notes: list[pretty_midi.Note] = []

    def add(self, pitch: int, start: float, length: float, velocity: float) -> None:
        start = max(0.0, start + self.rng.gauss(0.0, 0.008))
        end = start + max(0.05, length)
        velocity = min(110, max(30, round(velocity)))
        self.notes.append(pretty_midi.Note(velocity, pitch, start, end))


def _accompany(voice: _Voice, chord: list[int], pattern: str, t0: float, level: float) -> int:
    """Bass plus chord tones for one bar; returns how many notes were added."""
    rng = voice.rng
    bass = _pitch_from(chord[0], 36)
    tones = sorted(_pitch_from(pc, 53) for pc in chord)
    voice.add(bass, t0, _BAR * 0.95, level - 6 + rng.gauss(0, 5))
    if pattern == "sustain":
        for pitch in tones:
            voice.add(pitch, t0 + rng.uniform(0, 0.02), _BAR * 0.9, level - 12 + rng.gauss(0, 5))
        return 1 + len(tones)
    if pattern == "block":
        for beat in (0, 2):
            for pitch in tones:
                start = t0 + beat * 0.5 + rng.uniform(0, 0.02)
                voice.add(pitch, start, 0.9, level - 12 + rng.gauss(0, 5))
        return 1 + 2 * len(tones)
    cycle = [tones[0], tones[1], tones[2], tones[1]]  # arpeggio in eighth notes
    for step in range(1, 8):
        voice.add(cycle[step % 4], t0 + step * 0.25, 0.45, level - 14 + rng.gauss(0, 5))
    return 8


def _melody_pitch(tonic: int, mode: str, degree: int, root: int) -> int:
    scale = _SCALES[mode]
    offset = scale[degree % 7]
    if mode == "minor" and root == 4 and offset == 10:
        offset = 11  # leading tone over the dominant
    return 60 + tonic + 12 * (degree // 7) + offset


def _snap_to_chord(tonic: int, mode: str, degree: int, chord: list[int], root: int) -> int:
    """Move a strong-beat melody degree onto the nearest chord tone."""
    for delta in (0, -1, 1, -2, 2):
        candidate = min(11, max(0, degree + delta))
        if _melody_pitch(tonic, mode, candidate, root) % 12 in chord:
            return candidate
    return degree


def _melody(
    voice: _Voice,
    key: tuple[int, str],
    chord: list[int],
    root: int,
    t0: float,
    count: int,
    level: float,
    degree: int,
    dyads: bool,
) -> int:
    """About `count` notes on a sixteenth grid over the bar; returns the last scale degree.

    Dyads (a chord tone under a strong-beat note) only over light accompaniment, so
    polyphony stays at about six voices.
    """
    rng = voice.rng
    tonic, mode = key
    grid = range(2, 16, 2) if count <= 8 else range(1, 16)
    onsets = sorted({0, *rng.sample(grid, min(count, len(grid) + 1) - 1)})
    added = 0
    for i, onset in enumerate(onsets):
        step = rng.choices(_MELODY_STEPS, _MELODY_STEP_WEIGHTS)[0]
        degree = min(11, max(0, degree + step))
        if onset % 8 == 0:
            degree = _snap_to_chord(tonic, mode, degree, chord, root)
        pitch = _melody_pitch(tonic, mode, degree, root)
        end = onsets[i + 1] if i + 1 < len(onsets) else 16
        length = (end - onset) * _STEP * rng.uniform(0.75, 0.95)
        velocity = level + 12 + (6 if onset == 0 else 0) + rng.gauss(0, 6)
        voice.add(pitch, t0 + onset * _STEP, length, velocity)
        added += 1
        if dyads and onset % 8 == 0 and added < count and rng.random() < 0.3:
            under = max(p for p in (_pitch_from(pc, pitch - 9) for pc in chord) if p <= pitch - 3)
            voice.add(under, t0 + onset * _STEP, length, velocity - 8)
            added += 1
    return degree


def _compose(
    rng: random.Random, tonic: int, mode: str, bars: int, target: int
) -> list[pretty_midi.Note]:
    """A melody over bass and chords in the given key, about `target` notes over `bars` bars."""
    voice = _Voice(rng)
    degree = 7
    pattern, level = "block", 60.0
    for bar, root in enumerate(_progression(rng, bars)):
        per_bar = round((target - len(voice.notes)) / (bars - bar))
        if bar % 4 == 0:
            level = rng.uniform(40, 88)
            light = per_bar <= 8
            pattern = "sustain" if light else rng.choice(("block", "arpeggio", "sustain"))
        t0 = bar * _BAR
        chord = _chord(tonic, mode, root)
        accompaniment = _accompany(voice, chord, pattern, t0, level)
        count = max(1, min(16, per_bar - accompaniment))
        dyads = pattern == "arpeggio"
        degree = _melody(voice, (tonic, mode), chord, root, t0, count, level, degree, dyads)
    voice.notes.sort(key=lambda note: (note.start, note.pitch))
    return voice.notes


def _pedal(rng: random.Random, bars: int) -> list[pretty_midi.ControlChange]:
    """Sustain pedal (CC64) changed at every bar over one stretch of the piece."""
    first = rng.randrange(0, max(1, bars // 3))
    last = rng.randint(min(bars, first + max(1, bars // 3)), bars)
    changes = []
    for bar in range(first, last):
        changes.append(pretty_midi.ControlChange(64, 127, bar * _BAR + 0.05))
        changes.append(pretty_midi.ControlChange(64, 0, bar * _BAR + _BAR - 0.08))
    return changes


def _chunks(data: bytes) -> Iterator[tuple[int, bytes, int]]:
    """(offset, tag, declared length) of each Standard MIDI File chunk."""
    offset = 0
    while offset + 8 <= len(data):
        (length,) = struct.unpack(">I", data[offset + 4 : offset + 8])
        yield offset, data[offset : offset + 4], length
        offset += 8 + length


def _last_track(data: bytes) -> tuple[int, int]:
    offset, tag, length = list(_chunks(data))[-1]
    if tag != b"MTrk" or offset + 8 + length != len(data):
        raise ValueError("expected the file to end with a complete MTrk chunk")
    return offset, length


def _truncate(data: bytes) -> bytes:
    """Cut inside the last track so its declared length exceeds the bytes left."""
    _, length = _last_track(data)
    return data[: len(data) - max(1, length // 2)]


def _corrupt(data: bytes) -> bytes:
    """Insert an undefined status byte (0xF4) before End of Track, fixing the chunk length.

    The chunk structure stays valid, but any MIDI parser must fail on the event itself.
    """
    offset = _last_track(data)[0]
    body = data[offset + 8 :]
    if not body.endswith(b"\xff\x2f\x00"):
        raise ValueError("expected the track to end with End of Track")
    body = body[:-3] + b"\xf4\x3c\xc8\x00\xff\x2f\x00"
    return data[:offset] + b"MTrk" + struct.pack(">I", len(body)) + body


class _FixedTempoMIDI(pretty_midi.PrettyMIDI):
    """PrettyMIDI for files that keep the default 120 BPM throughout.

    Why: `write` converts every event time with a numpy search over the tempo map, which is
    about a third of the cost of a 10,855-file corpus. With one fixed tempo the conversion is a
    multiplication; the written bytes are the same (checked by the tests).
    """

    def time_to_tick(self, time: float) -> int:
        return math.floor(time * self.resolution * _BPM / 60.0 + 0.5)


def _render_midi(job: _Job, midi_class: type[pretty_midi.PrettyMIDI] = _FixedTempoMIDI) -> bytes:
    """MIDI bytes for one job; pure, so workers and the main process agree byte for byte."""
    seed, tonic, mode, bars, notes, damage = job
    rng = random.Random(seed)
    piano = pretty_midi.Instrument(program=0, name="Piano")
    piano.notes = _compose(rng, tonic, mode, bars, notes)
    piano.control_changes = _pedal(rng, bars)
    midi = midi_class()
    midi.instruments.append(piano)
    buffer = io.BytesIO()
    midi.write(buffer)
    return _damaged(buffer.getvalue(), damage)


def _render_realistic(job: _Job) -> bytes:
    """A performance at real GiantMIDI-Piano size in the job's key (bars and notes unused)."""
    seed, tonic, mode, _bars, _notes, damage = job
    return _damaged(realistic_midi(random.Random(seed), tonic, mode), damage)


def _damaged(data: bytes, damage: str) -> bytes:
    if damage == TRUNCATED_MIDI:
        return _truncate(data)
    if damage == PARSE_ERROR:
        return _corrupt(data)
    return data


def _worker_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _render_all(
    jobs: list[_Job], render: Callable[[_Job], bytes] = _render_midi
) -> Iterator[bytes]:
    """Render jobs in order; large batches use all cores (pretty_midi writing dominates)."""
    workers = _worker_count()
    if len(jobs) < _PARALLEL_MIN_JOBS or workers < 2:
        yield from map(render, jobs)
        return
    # spawn, not fork: callers such as Dagster may have threads running.
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        yield from pool.map(render, jobs, chunksize=32)
    finally:  # on early exit, drop queued work instead of rendering the rest
        pool.shutdown(wait=True, cancel_futures=True)


# --- archive and metadata --------------------------------------------------------------------


def _bad_entries(
    rng: random.Random, vids: _VidFactory, twin: _Piece
) -> tuple[list[_Entry], dict[str, str], list[_Piece]]:
    """Every broken or hostile member once, with its reject code and any metadata rows."""
    entries: list[_Entry] = []
    rejects: dict[str, str] = {}
    listed: list[_Piece] = []

    def add(entry: _Entry, code: str) -> None:
        entries.append(entry)
        rejects[entry.name] = code

    for code in (EMPTY_FILE, TRUNCATED_MIDI, NOT_MIDI, PARSE_ERROR):
        piece = _random_piece(rng, vids)
        listed.append(piece)
        if code == EMPTY_FILE:
            add(_Entry(piece.member), code)
        elif code == NOT_MIDI:
            add(_Entry(piece.member, _NOT_MIDI_HTML), code)
        else:
            add(_Entry(piece.member, job=piece.job(code)), code)
    add(_Entry(twin.member, job=twin.job()), DUPLICATE_ID)

    stray = _random_piece(rng, vids)
    c = stray.composer
    add(
        _Entry(f"{MEMBER_DIR}{c.surname}, {c.firstname}, Prelude, abc123.mid", job=stray.job()),
        BAD_FILENAME,
    )
    add(_Entry(f"{MEMBER_DIR}README.txt", _README), NOT_A_MID_FILE)
    add(_Entry(f"{MEMBER_DIR}extra/"), DIRECTORY)
    add(_Entry("../x.mid", job=_random_piece(rng, vids).job()), UNSAFE_PATH)
    evil = _random_piece(rng, vids)
    add(_Entry(f"/tmp/evil, Name, Title, {evil.vid}.mid", job=evil.job()), UNSAFE_PATH)
    return entries, rejects, listed


def _zip_info(name: str) -> zipfile.ZipInfo:
    """Fixed-time, Unix-mode entry; the name is set after construction so it stays verbatim."""
    info = zipfile.ZipInfo("placeholder", date_time=_ZIP_DATE_TIME)
    info.filename = name
    info.create_system = 3
    if name.endswith("/"):
        info.external_attr = (0o40755 << 16) | 0x10
    else:
        info.external_attr = 0o100644 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
    return info


@contextmanager
def _atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temp path next to `final`; move it into place only if the block succeeds."""
    fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_archive(
    path: Path, entries: list[_Entry], render: Callable[[_Job], bytes] = _render_midi
) -> None:
    entries = sorted(entries, key=lambda entry: entry.name)
    jobs = [entry.job for entry in entries if entry.job is not None]
    with (
        closing(_render_all(jobs, render)) as rendered,
        _atomic_path(path) as tmp,
        zipfile.ZipFile(tmp, "w") as archive,
    ):
        for entry in entries:
            data = next(rendered) if entry.job is not None else entry.data
            archive.writestr(_zip_info(entry.name), data)


def _youtube_title(rng: random.Random, piece: _Piece) -> str:
    c = piece.composer
    full = f"{c.firstname} {c.surname}".strip()
    return rng.choice(
        (
            f"{full} - {piece.music}",
            f"{c.surname}: {piece.music}",
            f"{piece.music} ({full})",
            f"{c.surname.upper()} {piece.music} - piano",
            f"{piece.music} | Piano",
        )
    )


def _row(rng: random.Random, piece: _Piece, released: bool) -> list[str]:
    """A metadata row; pieces left out of the release have a low solo-piano probability."""
    c = piece.composer
    title = _youtube_title(rng, piece)
    surname_in_title = bool(c.surname) and c.surname.casefold() in title.casefold()
    prob = rng.uniform(0.5, 1.0) if released else rng.uniform(0.0, 0.49)
    split = rng.choices(("train", "validation", "test"), (8, 1, 1))[0]
    row = [
        c.surname,
        c.firstname,
        piece.music,
        c.nationality,
        c.birth,
        c.death,
        title,
        piece.vid,
        str(round(rng.uniform(0.6, 1.0) if released else rng.uniform(0.2, 1.0), 2)),
        f"{prob:.4f}",
        unicodedata.normalize("NFC", piece.base_name),
        f"{piece.bars * _BAR + rng.uniform(0.3, 4.0):.2f}",
        "1" if released else "0",
        split,
        "1" if surname_in_title else "0",
    ]
    if any(ch in field for field in row for ch in '\t\n\r"'):
        raise ValueError(f"metadata field would need quoting: {row}")
    return row


def _write_metadata(path: Path, rows: list[list[str]]) -> None:
    rows = sorted(rows, key=lambda row: (row[0], row[1], row[2], row[7]))
    lines = ["\t".join(METADATA_COLUMNS), *("\t".join(row) for row in rows)]
    with _atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="\n")


def generate_corpus(
    out_dir: Path, count: int = 200, seed: int = 0, *, realistic: bool = False
) -> DemoCorpus:
    """Write the demo archive and metadata into `out_dir` and say what an ingester should find.

    `count` is the number of GOOD MIDI files. With fewer than 7, only the first awkward edge
    cases are included. Same arguments give byte-identical files. `realistic` writes every
    MIDI body at real GiantMIDI-Piano size (`demo.realistic`: 3,800 notes and 7 minutes on
    average) instead of a short piece; names, rejects and metadata stay the same (so the
    metadata's `audio_duration` no longer matches the MIDI's length).
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    vids = _VidFactory(rng)
    good = _good_pieces(rng, vids, count)
    twin = _duplicate_pair(rng, good)
    bad, rejects, listed = _bad_entries(rng, vids, twin)
    extras = [_random_piece(rng, vids) for _ in range(max(1, round(count / 10)))]

    entries = [_Entry(piece.member, job=piece.job()) for piece in good] + bad
    rows = [_row(rng, piece, True) for piece in good + listed]
    rows += [_row(rng, piece, False) for piece in extras]

    corpus = DemoCorpus(
        archive_path=out_dir / ARCHIVE_NAME,
        metadata_path=out_dir / METADATA_NAME,
        good={piece.vid: piece.member for piece in good},
        expected_rejects=rejects,
    )
    _write_archive(corpus.archive_path, entries, _render_realistic if realistic else _render_midi)
    _write_metadata(corpus.metadata_path, rows)
    return corpus


def main(argv: list[str] | None = None) -> None:
    """CLI entry point; prints a one-line summary."""
    parser = argparse.ArgumentParser(description="Generate the offline GiantMIDI-Piano demo.")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--count", type=int, default=200, help="number of GOOD MIDI files")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument(
        "--realistic", action="store_true", help="MIDI files at real GiantMIDI-Piano size"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    corpus = generate_corpus(args.out, count=args.count, seed=args.seed, realistic=args.realistic)
    print(
        f"wrote {corpus.archive_path} ({len(corpus.good)} good, "
        f"{len(corpus.expected_rejects)} expected rejects) and {corpus.metadata_path} "
        f"in {time.perf_counter() - started:.1f}s"
    )


if __name__ == "__main__":
    main()
