"""Token sequences of GiantMIDI-Piano performances for sequence models (miditok REMI).

GiantMIDI-Piano files are transcriptions of live solo piano: one tempo (120 BPM), 4/4, about
3,800 notes a file (up to 45,000), dense chords, varied dynamics and heavy sustain pedal. Each
file becomes one flat int32 sequence of REMI token ids; `config_json` is the tokenizer file a
trainer loads (`load_tokenizer`) to decode them. Bump TOKENIZER_NAME's version whenever the
configuration or the preprocessing here changes, since the ids then change meaning.

REMI counts time in beats (Bar and Position tokens) and this configuration has no Tempo
tokens, so decoded scores play at 120 BPM: right for GiantMIDI, wrong for a file at another
tempo.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import miditok
import numpy as np
import symusic
from miditok.constants import DEFAULT_TOKENIZER_FILE_NAME

from mta_pipeline.core.pool import Item, Progress, load, map_files
from mta_pipeline.core.token_ids import tokenizer_id

TOKENIZER_NAME = "miditok-REMI-v1"
CONFIG_FILE_NAME = DEFAULT_TOKENIZER_FILE_NAME  # "tokenizer.json", what `tokenizer.save` names
TOKEN_DTYPE = np.int32

PITCH_RANGE = (21, 108)  # inclusive: the 88 keys, A0 to C8
# Positions per beat by beat range. At 120 BPM a beat is 0.5 s, so 16 a beat is a 31 ms grid:
# coarser than transcription timing noise on chords, fine enough for trills and rubato. Note
# durations reuse these bins: 31 ms up to 2 s, 125 ms up to 6 s, 0.5 s up to 12 s, so held
# final chords and bass notes are not clipped at 6 s. Only the finest value sets the grid.
BEAT_RES = {(0, 4): 16, (4, 12): 4, (12, 24): 1}
NUM_VELOCITIES = 32  # steps of 4 velocity units: dynamics kept, vocabulary small
SPECIAL_TOKENS = ("PAD", "BOS", "EOS", "MASK")  # miditok's defaults, for trainers
SUSTAIN_CC = 64
PEDAL_DOWN = 64  # the lowest CC64 value that holds the dampers up, as symusic reads it


def tokenizer_config() -> miditok.TokenizerConfig:
    """The REMI configuration for live solo piano; every option that matters is set explicitly
    so a miditok default changing between versions cannot change the ids silently.

    On: velocities (a performance's dynamics are half its expression) and sustain pedal as
    Pedal/PedalOff tokens (transcriptions pedal most of the time; PedalOff rather than a
    pedal Duration keeps presses longer than the duration bins exact).
    Off: Program tokens (one piano; tracks are merged before encoding), Chord tokens (derived
    from the notes, and their detection is slow on dense piano), Rest tokens (Bar and
    Position tokens already place every onset), Tempo and TimeSignature tokens (every file is
    120 BPM 4/4, so they would repeat a constant), PitchDrum tokens (drum tracks are dropped).
    """
    return miditok.TokenizerConfig(
        pitch_range=PITCH_RANGE,
        beat_res=BEAT_RES,
        num_velocities=NUM_VELOCITIES,
        special_tokens=list(SPECIAL_TOKENS),
        use_velocities=True,
        use_sustain_pedals=True,
        sustain_pedal_duration=False,
        use_programs=False,
        use_chords=False,
        use_rests=False,
        use_tempos=False,
        use_time_signatures=False,
        use_key_signatures=False,
        use_control_changes=False,
        use_pitch_bends=False,
        use_pitchdrum_tokens=False,
        remove_duplicated_notes=False,  # done by `_merge_piano`, faster and keeping the loudest
    )


@functools.cache
def make_tokenizer() -> miditok.REMI:
    """The tokenizer of `tokenizer_config`, built once per process."""
    return miditok.REMI(tokenizer_config())


def load_tokenizer(path: str | Path) -> miditok.REMI:
    """How a trainer reloads the tokenizer from `config_json`'s bytes written to `path` (the
    file, or a folder holding CONFIG_FILE_NAME); `decode(tokens, tokenizer=...)` then works."""
    path = Path(path)
    if path.is_dir():
        path = path / CONFIG_FILE_NAME
    return miditok.REMI(params=path)


@functools.cache
@functools.cache
def config_json() -> bytes:
    """What `make_tokenizer().save(...)` writes: the configuration, the class name and the
    miditok, symusic and tokenizers versions. The same bytes in every call and process with the
    same installed versions; a library upgrade changes them, and with them the digest in
    `current_tokenizer()`, so ids made before are made again (assets/midi_tokens.py)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / CONFIG_FILE_NAME
        make_tokenizer().save(path)
        return path.read_bytes()


def current_tokenizer() -> str:
    """The `tokenizer` value of ids made now: TOKENIZER_NAME and the config's digest."""
    return tokenizer_id(TOKENIZER_NAME, config_json())


def tokenize(data: bytes) -> np.ndarray:
    """REMI token ids (int32, one flat sequence) of MIDI file bytes; empty without a note on
    the 88 keys (PITCH_RANGE).

    All non-drum tracks become one piano track first, so a multi-track file gives one
    sequence. Parse errors (symusic's RuntimeError) propagate for the caller to record.
    """
    tokenizer = make_tokenizer()
    score = symusic.Score.from_midi(data)
    piano = _merge_piano(score.resample(tokenizer.time_division, min_dur=1))
    if piano is None:
        return np.empty(0, dtype=TOKEN_DTYPE)
    (sequence,) = tokenizer.encode(piano)  # one sequence per track, and there is one track
    return np.asarray(sequence.ids, dtype=TOKEN_DTYPE)


def decode(
    tokens: Sequence[int] | np.ndarray, tokenizer: miditok.REMI | None = None
) -> symusic.Score:
    """The score of `tokens`: one piano track with pedals (and their CC64 messages), at
    `tokenizer.time_division` (16) ticks per beat and 120 BPM. Defaults to `make_tokenizer()`."""
    if tokenizer is None:
        tokenizer = make_tokenizer()
    ids = np.asarray(tokens, dtype=np.int64).tolist()
    return tokenizer.decode([miditok.TokSequence(ids=ids)])


def _merge_piano(score: symusic.Score) -> symusic.Score | None:
    """One piano track (program 0) of the notes and sustain presses of all non-drum tracks of
    a score already on the tokenizer's grid, or None without a note in PITCH_RANGE.

    Notes of one pitch whose onsets fell on the same grid step (a repeated transcription onset,
    or the same key in two tracks) merge into one with the longest duration and the highest
    velocity. Program 0 matters: without Program tokens miditok only knows `Pedal_0`.
    """
    tracks = [track for track in score.tracks if not track.is_drum]
    if not tracks:
        return None
    notes = _concat([track.notes.numpy() for track in tracks], ("time", "pitch"))
    in_range = (notes["pitch"] >= PITCH_RANGE[0]) & (notes["pitch"] <= PITCH_RANGE[1])
    if not in_range.any():
        return None
    piano = symusic.Track(name="Piano", program=0)
    piano.notes = symusic.Note.from_numpy(
        **_merge_repeats({k: v[in_range] for k, v in notes.items()})
    )
    presses = [_sustain_presses(track.controls.numpy()) for track in tracks]
    piano.pedals = symusic.Pedal.from_numpy(**_concat(presses, ("time", "duration")))
    merged = symusic.Score(score.ticks_per_quarter)
    merged.tracks.append(piano)
    return merged


def _sustain_presses(controls: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Sustain presses (time, duration) of one track's control changes: down from a CC64 value
    of 64 up, a press never released dropped (both as symusic reads pedals), and presses that
    fell within one grid step dropped (miditok would write a zero-length pedal).

    Read here rather than from symusic's `track.pedals`: symusic 0.6.0 starts the first press
    of any channel but 0 at tick 0 (a second piano track is on channel 1).
    """
    sustain = controls["number"] == SUSTAIN_CC
    order = np.argsort(controls["time"][sustain], kind="stable")
    times = controls["time"][sustain][order]
    down = controls["value"][sustain][order] >= PEDAL_DOWN
    was_down = np.concatenate(([False], down[:-1]))
    releases = times[~down & was_down]
    presses = times[down & ~was_down][: releases.size]
    held = releases > presses
    return {"time": presses[held], "duration": (releases - presses)[held]}


def _concat(arrays: list[dict[str, np.ndarray]], order: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Structure-of-arrays of several event lists (at least one) in one, sorted by `order`."""
    joined = {key: np.concatenate([a[key] for a in arrays]) for key in arrays[0]}
    sort = np.lexsort([joined[key] for key in reversed(order)])
    return {key: values[sort] for key, values in joined.items()}


def _merge_repeats(notes: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Notes sorted by (time, pitch, ...) with each (time, pitch) repeat merged into its first,
    taking the group's longest duration and highest velocity."""
    first = np.ones(notes["time"].size, dtype=bool)
    first[1:] = (notes["time"][1:] != notes["time"][:-1]) | (
        notes["pitch"][1:] != notes["pitch"][:-1]
    )
    if first.all():
        return notes
    starts = np.flatnonzero(first)
    return {
        "time": notes["time"][starts],
        "duration": np.maximum.reduceat(notes["duration"], starts),
        "pitch": notes["pitch"][starts],
        "velocity": np.maximum.reduceat(notes["velocity"], starts),
    }


@dataclass(frozen=True)
class TokenResult:
    """A file's token ids, or the exception that stopped its tokenization."""

    path: str
    tokens: np.ndarray | None
    error: str | None


def tokenize_file(item: Item) -> TokenResult:
    """Never raises for a bad file: the error becomes a reject reason in the caller. `item` is a
    path or `(name, bytes)`."""
    path = item if isinstance(item, str) else item[0]
    try:
        return TokenResult(path, tokenize(load(item)[1]), None)
    except Exception as exc:
        return TokenResult(path, None, f"{type(exc).__name__}: {exc}"[:240])


def tokenize_all(
    paths: Sequence[Item], workers: int | None = None, progress: Progress | None = None
) -> list[TokenResult]:
    """Token ids of every file, in order, on every core."""
    return map_files(tokenize_file, paths, ("mta_pipeline.core.midi_tokens",), workers, progress)
