"""Tests for the realistic-size performances: size distribution, shape, bytes, corpus hook."""

from __future__ import annotations

import io
import random
import zipfile

import numpy as np
import pretty_midi
import pytest

from mta_pipeline.core.midi_features import extract_features
from mta_pipeline.demo import realistic
from mta_pipeline.demo.corpus import generate_corpus


def _parse(data: bytes) -> pretty_midi.PrettyMIDI:
    return pretty_midi.PrettyMIDI(io.BytesIO(data))


def test_same_seed_same_bytes_other_seed_other_bytes():
    first = realistic.realistic_midi(random.Random(3), 2, "minor")
    assert realistic.realistic_midi(random.Random(3), 2, "minor") == first
    assert realistic.realistic_midi(random.Random(4), 2, "minor") != first


def test_note_counts_follow_the_real_distribution():
    counts = np.array([realistic.sample_note_count(random.Random(seed)) for seed in range(300)])
    assert 2_000 <= np.median(counts) <= 3_600
    assert 3_000 <= counts.mean() <= 4_800
    many = [realistic.sample_note_count(random.Random(seed)) for seed in range(20_000)]
    assert max(many) > 40_000
    assert max(many) <= realistic.MAX_NOTES
    assert min(many) >= realistic.MIN_NOTES


def test_rendered_performances_keep_the_sampled_note_count():
    for seed in range(20):
        wanted = realistic.sample_note_count(random.Random(seed))
        notes = realistic.realistic_performance(random.Random(seed)).starts.size
        assert notes >= 0.99 * wanted


@pytest.mark.parametrize("seed", range(4))
def test_fast_writer_matches_pretty_midi_byte_for_byte(seed):
    performance = realistic.realistic_performance(random.Random(seed), seed, "major")
    buffer = io.BytesIO()
    performance.to_pretty_midi().write(buffer)
    assert realistic.midi_bytes(performance) == buffer.getvalue()


def test_a_file_looks_like_a_giantmidi_transcription():
    data = realistic.realistic_midi(random.Random(1), 9, "minor")
    midi = _parse(data)
    features = extract_features(data)
    assert midi.resolution == 384
    assert midi.get_tempo_changes()[1].tolist() == [120.0]
    assert [(ts.numerator, ts.denominator) for ts in midi.time_signature_changes] == [(4, 4)]
    (piano,) = midi.instruments
    assert piano.program == 0 and not piano.is_drum
    pedal = {cc.value for cc in piano.control_changes if cc.number == 64}
    assert pedal == {0, 127}
    assert 0.3 <= features["pedal_ratio"] <= 0.9
    assert features["max_polyphony"] > 4
    assert 4.0 <= features["notes_per_s"] <= 16.0
    velocities = np.array([note.velocity for note in piano.notes])
    assert velocities.min() >= 15 and velocities.max() <= 115
    assert 50 <= velocities.mean() <= 80
    assert features["key_estimate"] == "A minor"


def test_realistic_corpus_has_the_same_members_and_parsable_good_files(tmp_path):
    plain = generate_corpus(tmp_path / "plain", count=3, seed=5)
    real = generate_corpus(tmp_path / "real", count=3, seed=5, realistic=True)
    assert real.good == plain.good
    assert real.expected_rejects == plain.expected_rejects
    assert real.metadata_path.read_bytes() == plain.metadata_path.read_bytes()
    with zipfile.ZipFile(real.archive_path) as archive:
        for member in real.good.values():
            midi = _parse(archive.read(member))
            assert sum(len(inst.notes) for inst in midi.instruments) >= realistic.MIN_NOTES
