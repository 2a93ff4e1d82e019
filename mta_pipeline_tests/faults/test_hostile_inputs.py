"""Hostile inputs: SQL-ish names and comments, runs of one shard at once, S3 gone mid-export,
zips with repeated names and corrupt copies, control characters in names, garbage metadata."""

import http.server
import io
import random
import struct
import subprocess
import sys
import threading
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import pretty_midi
import pytest
import s3fs

from mta_pipeline import config
from mta_pipeline.core import archive
from mta_pipeline.core.metadata import COLUMNS
from mta_pipeline.core.tsv import TSV_COLUMNS
from mta_pipeline.definitions import defs
from mta_pipeline.demo.youtube_emulator import YouTubeEmulator
from mta_pipeline.partitions import vid_to_shard
from mta_pipeline.resources.storage import Storage
from mta_pipeline.runner import materialize
from mta_pipeline_tests.catalog_db import catalog_db
from mta_pipeline_tests.conftest import emulated_youtube, run_assets

MTA = str(Path(sys.executable).with_name("mta"))
EVIL = "x'); DROP TABLE midi_files; --"


def midi(n_notes: int = 8) -> bytes:
    pm = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    piano.notes += [pretty_midi.Note(70, 60 + i, i * 0.5, i * 0.5 + 0.4) for i in range(n_notes)]
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
    with catalog_db() as conn:
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
    with catalog_db() as conn:
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


def query(sql: str) -> list[tuple]:
    with catalog_db() as conn:
        return conn.execute(sql).fetchall()


def write_zip(path: Path, entries: list[tuple[str, bytes, bool]]) -> None:
    """Entries in the given order, names verbatim, stored uncompressed; an entry flagged True has
    its first data byte flipped, so reading it fails its CRC (a corrupt copy)."""
    buf = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buf, "w") as zf:
        warnings.simplefilter("ignore")  # "Duplicate name": on purpose
        for name, data, _ in entries:
            info = zipfile.ZipInfo("placeholder", date_time=(2020, 1, 1, 0, 0, 0))
            info.filename = name
            zf.writestr(info, data)
    raw = bytearray(buf.getvalue())
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as zf:
        infos = zf.infolist()
    for info, (_, _, broken) in zip(infos, entries, strict=True):
        if broken:
            at = info.header_offset
            name_len, extra_len = struct.unpack("<HH", raw[at + 26 : at + 30])
            raw[at + 30 + name_len + extra_len] ^= 0xFF
    path.write_bytes(bytes(raw))


def ingest(path: Path, shard: str, monkeypatch: pytest.MonkeyPatch, instance) -> None:
    monkeypatch.setenv(config.GIANTMIDI_ARCHIVE_URL, str(path))
    assert run_assets(instance, ["giantmidi_archive"]).success
    assert run_assets(instance, ["midi_files", "midi_rejects"], shard).success


def test_a_corrupt_copy_never_pushes_out_a_valid_file_whatever_the_zip_order(
    data_env, instance, monkeypatch, tmp_path
):
    """Per id: same-name entries (corrupt + valid; two valid), a corrupt or HTML entry whose name
    sorts first. Forward and reversed zips give the same rows and files, one row per entry."""
    candidates = (f"Dupe{i:07d}" for i in range(10_000))
    shard = vid_to_shard("Dupe0000000")
    same, first, twins, html = [v for v in candidates if vid_to_shard(v) == shard][:4]
    good, other, third = midi(8), midi(9), midi(10)
    entries = [
        (f"midis/Dup, Same, Name, {same}.mid", good, True),
        (f"midis/Dup, Same, Name, {same}.mid", good, False),
        (f"midis/Aaa, First, Copy, {first}.mid", other, True),
        (f"midis/Zzz, Later, Copy, {first}.mid", other, False),
        (f"midis/Two, Same, Name, {twins}.mid", other, False),
        (f"midis/Two, Same, Name, {twins}.mid", third, False),
        (f"midis/Aaa, Html, Page, {html}.mid", b"<!DOCTYPE html><html></html>", False),
        (f"midis/Bbb, Real, File, {html}.mid", good, False),
    ]
    results = []
    for n, order in enumerate((entries, entries[::-1])):
        write_zip(tmp_path / f"order{n}.zip", order)
        ingest(tmp_path / f"order{n}.zip", shard, monkeypatch, instance)
        files = sorted(query("SELECT vid, member, sha256 FROM midi_files"))
        rejects = sorted(query("SELECT member, split_part(reason, ':', 1), vid FROM midi_rejects"))
        held = Storage(data_dir=str(data_env)).read_midi(shard)
        extracted = {f"{vid}.mid": data for vid, data in held.items()}
        results.append((files, rejects, extracted))
    assert results[0] == results[1]
    files, rejects, extracted = results[0]
    assert len(files) + len(rejects) == len(entries)
    smaller = min(other, third, key=archive.sha256_hex)
    assert files == sorted(
        [
            (same, f"midis/Dup, Same, Name, {same}.mid", archive.sha256_hex(good)),
            (first, f"midis/Zzz, Later, Copy, {first}.mid", archive.sha256_hex(other)),
            (twins, f"midis/Two, Same, Name, {twins}.mid", archive.sha256_hex(smaller)),
            (html, f"midis/Bbb, Real, File, {html}.mid", archive.sha256_hex(good)),
        ]
    )
    assert rejects == sorted(
        [
            (f"midis/Dup, Same, Name, {same}.mid", archive.CORRUPT_MEMBER, same),
            (f"midis/Aaa, First, Copy, {first}.mid", archive.CORRUPT_MEMBER, first),
            (f"midis/Two, Same, Name, {twins}.mid", archive.DUPLICATE_ID, twins),
            (f"midis/Aaa, Html, Page, {html}.mid", archive.NOT_MIDI, html),
        ]
    )
    assert extracted[f"{twins}.mid"] == smaller and extracted[f"{same}.mid"] == good


def test_control_characters_in_names_become_single_line_fields(data_env, instance, monkeypatch):
    """Tabs and line breaks become one space, other control characters go; the member name is
    kept verbatim. (zipfile itself cuts a name at NUL, so NUL is covered in test_filenames.)"""
    vid = "Ctrl_chars1"
    member = f"midis/O'Brien\n\x1b[2J, Ann\t\x7f, Sonata\r\n in\tC\x9b major\u2028, {vid}.mid"
    path = data_env.parent / "controls.zip"
    write_zip(path, [(member, midi(), False)])
    ingest(path, vid_to_shard(vid), monkeypatch, instance)
    rows = query("SELECT surname, firstname, title, member FROM midi_files")
    assert rows == [("O'Brien [2J", "Ann", "Sonata in C major", member)]
    assert query("SELECT count(*) FROM midi_rejects") == [(0,)]


GARBAGE = {
    "random_binary": random.Random(0).randbytes(4096),
    "utf16_with_bom": ("\t".join(COLUMNS) + "\n").encode("utf-16"),
    "utf16_without_bom": ("\t".join(COLUMNS) + "\n").encode("utf-16-le"),
    "latin1": ("\t".join(COLUMNS) + "\nDvo\u0159\u00e1k\n").encode("cp1250"),
    "html_page": b"<!DOCTYPE html>\n<html><body><h1>403 Forbidden</h1></body></html>\n",
    "wrong_columns": b"name,id\nBach,abcdefghijk\n",
    "ragged_rows": "\n".join(["\t".join(COLUMNS), "\t".join(COLUMNS), "x\t" * 20]).encode(),
    "empty": b"",
}


@pytest.mark.parametrize("kind", sorted(GARBAGE))
def test_garbage_metadata_is_a_one_line_error_naming_the_file(
    data_env, instance, monkeypatch, tmp_path, kind
):
    (tmp_path / "meta.csv").write_bytes(GARBAGE[kind])
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/meta.csv"
    monkeypatch.setenv(config.GIANTMIDI_METADATA_URL, f"{url}?X-Amz-Signature=SECRET")
    try:
        with pytest.raises(config.ConfigError) as raised:  # `mta` exits 2 with this message
            materialize(defs, instance, "giantmidi_metadata", echo=lambda _: None)
    finally:
        server.shutdown()
    message = str(raised.value)
    assert "\n" not in message and "SECRET" not in message
    assert f"{url} (GIANTMIDI_METADATA_URL) is not GiantMIDI's metadata CSV" in message
    assert f"tab-separated UTF-8 text with a header naming the columns {', '.join(COLUMNS)}" in (
        message
    )
