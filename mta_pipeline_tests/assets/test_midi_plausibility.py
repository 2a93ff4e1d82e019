"""Implausible MIDI files are rejects of `midi_features`, with either parser, and stay rejects on
a rerun without being parsed again."""

import io
import zipfile
from collections import defaultdict
from pathlib import Path

import pretty_midi
import pytest

from mta_pipeline import config
from mta_pipeline.core.midi_backends import BACKENDS
from mta_pipeline.partitions import vid_to_shard
from mta_pipeline_tests.catalog_db import catalog_db
from mta_pipeline_tests.conftest import run_assets

SLOW_BPM = 3.58  # a tempo word of 0xFFFFFF µs a beat


def midi(notes: int, *, tempo: float = 120.0, drum: bool = False, at: float = 0.0) -> bytes:
    """`notes` half-second notes from `at` seconds, their ticks those of a 120-BPM piece: at
    another tempo every time stretches, as when a broken tempo word sneaks in."""
    stretch = 120.0 / tempo
    pm = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    inst = pretty_midi.Instrument(program=0, is_drum=drum)
    for i in range(notes):
        start = (at + 0.5 * i) * stretch
        inst.notes.append(pretty_midi.Note(80, 60 + i % 12, start, start + 0.4 * stretch))
    pm.instruments.append(inst)
    buffer = io.BytesIO()
    pm.write(buffer)
    return buffer.getvalue()


FILES = {  # name: (bytes, the reject code, or None for a good file)
    "piece": (midi(16), None),
    "slow": (midi(600, tempo=SLOW_BPM), "implausible_tempo"),  # 5 minutes become 2.8 hours
    "drums": (midi(16, drum=True), "no_pitched_notes"),
    "empty": (midi(0), "no_pitched_notes"),
    "long": (midi(2, at=4 * 3600.0), "implausible_duration"),
}


def one_shard_vids(names: list[str]) -> tuple[str, dict[str, str]]:
    """A shard and an 11-character id in it for each name, so one partition holds them all."""
    by_shard: dict[str, list[str]] = defaultdict(list)
    for i in range(10_000):
        vid = f"Plausib{i:04d}"
        shard = vid_to_shard(vid)
        by_shard[shard].append(vid)
        if len(by_shard[shard]) == len(names):
            return shard, dict(zip(names, by_shard[shard], strict=True))
    raise AssertionError("no shard with enough ids")


def table(sql: str) -> list[tuple]:
    with catalog_db() as conn:
        return conn.execute(sql).fetchall()


@pytest.mark.parametrize("backend", BACKENDS)
def test_implausible_files_are_rejects_not_features(
    data_env, instance, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, backend: str
) -> None:
    shard, vids = one_shard_vids(list(FILES))
    archive = tmp_path / "plausibility.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, (data, _) in FILES.items():
            zf.writestr(f"midis/Tester, Ann, {name.title()}, {vids[name]}.mid", data)
    monkeypatch.setenv(config.GIANTMIDI_ARCHIVE_URL, str(archive))
    monkeypatch.setenv(config.MTA_MIDI_BACKEND, backend)
    assert run_assets(instance, ["giantmidi_archive"]).success
    assert run_assets(instance, ["midi_files", "midi_rejects"], shard).success

    def features_run() -> dict[str, object]:
        result = run_assets(instance, ["midi_features", "midi_parse_rejects"], shard)
        assert result.success
        events = result.get_asset_materialization_events()
        return {
            str(e.asset_key.path[-1]): {k: v.value for k, v in e.materialization.metadata.items()}
            for e in events
        }

    first = features_run()
    assert table("SELECT vid FROM midi_features") == [(vids["piece"],)]
    rejects = table("SELECT vid, reason, stage, sha256 FROM midi_rejects")
    expected = {vids[name]: code for name, (_, code) in FILES.items() if code}
    assert {vid: reason.split(":", 1)[0] for vid, reason, _, _ in rejects} == expected
    assert {stage for _, _, stage, _ in rejects} == {"midi_features"}
    sha256 = dict(table("SELECT vid, sha256 FROM midi_files"))
    assert all(sha == sha256[vid] for vid, _, _, sha in rejects)  # so a rerun can skip them
    slow = next(reason for vid, reason, _, _ in rejects if vid == vids["slow"])
    assert slow.startswith(f"implausible_tempo: {SLOW_BPM:.2f} bpm")
    assert "| no_pitched_notes | 2 |" in first["midi_parse_rejects"]["rejects_by_reason"]
    assert first["midi_features"]["parsed"] == len(FILES)

    again = features_run()
    assert again["midi_features"]["parsed"] == 0
    assert again["midi_features"]["reused"] == len(FILES)
    assert table("SELECT vid FROM midi_features") == [(vids["piece"],)]
    assert table("SELECT vid, reason, stage, sha256 FROM midi_rejects") == rejects
