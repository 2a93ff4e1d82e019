"""Hostile inputs: SQL-ish names and comments, runs of one shard at once, S3 gone mid-export."""

import io
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import pretty_midi
import s3fs

from mta_pipeline import config
from mta_pipeline.core.tsv import TSV_COLUMNS
from mta_pipeline.definitions import defs
from mta_pipeline.demo.youtube_emulator import YouTubeEmulator
from mta_pipeline.partitions import vid_to_shard
from mta_pipeline.resources.storage import Storage
from mta_pipeline.runner import materialize
from mta_pipeline_tests.conftest import emulated_youtube

MTA = str(Path(sys.executable).with_name("mta"))
EVIL = "x'); DROP TABLE midi_files; --"


def midi() -> bytes:
    pm = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    piano.notes += [pretty_midi.Note(70, 60 + i, i * 0.5, i * 0.5 + 0.4) for i in range(8)]
    pm.instruments.append(piano)
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


def test_sql_ish_names_and_comments_are_data(data_env, instance, monkeypatch, tmp_path):
    vid = "Sq1_-Inject"
    member = f'midis/O\'Brien; {EVIL}, Ann "Q", Sonata in C major, {vid}.mid'
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(member, midi())
    monkeypatch.setenv(config.GIANTMIDI_ARCHIVE_URL, str(archive))
    monkeypatch.delenv(config.GIANTMIDI_METADATA_URL)
    emulator = YouTubeEmulator(api_keys=(config.DEMO_API_KEY,), titles={vid: EVIL})
    monkeypatch.setenv(config.YOUTUBE_API_ENDPOINT, emulator.start())
    monkeypatch.setenv(config.YOUTUBE_API_KEY, config.DEMO_API_KEY)
    try:
        outcome = materialize(defs, instance, "*", [vid_to_shard(vid)], echo=lambda _: None)
    finally:
        emulator.stop()
    assert outcome.ok, outcome.failures
    with duckdb.connect(str(config.duckdb_path()), read_only=True) as conn:
        surname, title = conn.execute("SELECT surname, title FROM midi_files").fetchone()
        video_title = conn.execute("SELECT video_title FROM mta_records").fetchone()[0]
        tables = {r[0] for r in conn.execute("SHOW TABLES").fetchall()}
    assert surname == f"O'Brien; {EVIL}" and title == "Sonata in C major"
    assert video_title == EVIL and "midi_files" in tables


def test_two_runs_of_the_same_shard_at_once(data_env, corpus):
    shard = vid_to_shard(sorted(corpus.good)[0])
    assert (
        subprocess.run(
            [MTA, "materialize", "--select", "giantmidi_archive"], capture_output=True, timeout=300
        ).returncode
        == 0
    )
    args = [MTA, "materialize", "--select", "midi_files,midi_features", "--shard", shard, "--all"]
    with ThreadPoolExecutor(2) as pool:
        runs = list(
            pool.map(
                lambda _: subprocess.run(args, capture_output=True, text=True, timeout=300),
                range(2),
            )
        )
    for run in runs:
        assert run.returncode == 0, run.stderr
        assert "lock" not in (run.stdout + run.stderr).lower()
    expected = sum(1 for v in corpus.good if vid_to_shard(v) == shard)
    with duckdb.connect(str(config.duckdb_path()), read_only=True) as conn:
        rows = conn.execute(
            "SELECT count(*), count(DISTINCT vid) FROM midi_features WHERE shard = ?", [shard]
        ).fetchone()
    assert rows == (expected, expected)


def test_s3_gone_mid_export_fails_clearly_and_keeps_the_old_export(
    data_env, instance, s3_server, monkeypatch
):
    from moto.server import ThreadedMotoServer

    server, s3_endpoint = s3_server
    monkeypatch.setenv(config.MTA_LAKE_URL, "s3://lake/mta")
    monkeypatch.setenv(config.MTA_S3_ENDPOINT_URL, s3_endpoint)
    shard = "00"
    with emulated_youtube(monkeypatch):
        assert materialize(defs, instance, "*", [shard], echo=lambda _: None).ok
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_endpoint}, skip_instance_cache=True)
    tsv = f"lake/mta/release/{config.TSV_FILE}"
    old = fs.cat(tsv)
    host, port = s3_endpoint.removeprefix("http://").split(":")
    real_write = Storage.write
    state = {}

    def server_dies_first(self, relpath, payload):
        if relpath.endswith(config.TSV_FILE) and "stopped" not in state:
            state["stopped"] = True
            server.stop()  # S3 goes away the moment the export starts writing
        return real_write(self, relpath, payload)

    monkeypatch.setattr(Storage, "write", server_dies_first)
    header_only = ("\t".join(TSV_COLUMNS) + "\n").encode()  # a new, well-formed export
    monkeypatch.setattr("mta_pipeline.assets.release.tsv_bytes", lambda rows: header_only)
    outcome = materialize(defs, instance, "mta_tsv", echo=lambda _: None, only_stale=False)
    assert not outcome.ok
    assert "cannot write s3://lake/mta/release/midi_text_dataset.tsv" in outcome.failures[0]
    restarted = ThreadedMotoServer(ip_address=host, port=int(port), verbose=False)
    restarted.start()
    try:
        assert fs.cat(tsv) == old  # moto keeps its buckets in this process
        monkeypatch.setattr(Storage, "write", real_write)
        assert materialize(defs, instance, "mta_tsv", echo=lambda _: None, only_stale=False).ok
        assert fs.cat(tsv) == header_only
    finally:
        restarted.stop()
