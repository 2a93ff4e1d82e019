"""Credentials and signatures in GIANTMIDI_ARCHIVE_URL and GIANTMIDI_METADATA_URL reach no file,
event log, metadata value, message or output line, whatever the download does.

Secrets are planted in the userinfo and the query string of both URLs; the GiantMIDI assets then
run against a real HTTP server on loopback for each failure class (HTTP 500, 403, 401, 404, a
failure while streaming, a refused port, a host that does not resolve) and once successfully
through Basic auth. Afterwards every byte under the test's folder (DAGSTER_HOME with its SQLite
event logs, the data folder, the lake), every table and everything printed is searched.
"""

import json
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow.parquet as pq
import pytest

from mta_pipeline import config
from mta_pipeline.automation import giantmidi_archive_sensor
from mta_pipeline.definitions import defs
from mta_pipeline.resources.giantmidi import GiantMidiSource
from mta_pipeline.resources.storage import Storage
from mta_pipeline.runner import materialize
from mta_pipeline_tests.http_source import SourceServer, free_port

USER, PASSWORD = "PLANTED-user-3e1f", "PLANTED-pass-9b7c"
SIGNATURE, TOKEN = "PLANTED-sig-51c2", "PLANTED-token-d04a"
SECRETS = (USER, PASSWORD, SIGNATURE, TOKEN)
QUERY = f"X-Amz-Signature={SIGNATURE}&token={TOKEN}"
SELECTION = "giantmidi_archive,giantmidi_metadata"
MTA = str(Path(sys.executable).with_name("mta"))
# route on the server (or another host) -> what the message must say
FAILURES = {
    "status/500": "HTTP 500 Internal Server Error",
    "status/403": "HTTP 403 Forbidden",
    "status/401": "HTTP 401 Unauthorized",
    "status/404": "HTTP 404 Not Found",
    "flaky": "HTTP 500 Internal Server Error",
    "refused": "connection refused by 127.0.0.1:",
    "dns": "nonexistent.invalid does not resolve",
}


@pytest.fixture
def source(corpus):
    files = {
        "midis.zip": corpus.archive_path.read_bytes(),
        "meta.csv": corpus.metadata_path.read_bytes(),
    }
    with SourceServer(files, USER, PASSWORD) as server:
        yield server


def planted(server: SourceServer, route: str) -> tuple[str, str]:
    """The archive and metadata URLs of `route`, each with credentials and a signed query."""
    userinfo = f"{USER}:{PASSWORD}"
    if route == "refused":
        port = free_port()
        base = f"http://{userinfo}@127.0.0.1:{port}"
        return f"{base}/midis.zip?{QUERY}", f"{base}/meta.csv?{QUERY}"
    if route == "dns":
        base = f"http://{userinfo}@nonexistent.invalid"  # .invalid never resolves
        return f"{base}/midis.zip?{QUERY}", f"{base}/meta.csv?{QUERY}"
    return tuple(server.url(name, route, userinfo, QUERY) for name in ("midis.zip", "meta.csv"))


def point_at(monkeypatch: pytest.MonkeyPatch, urls: tuple[str, str]) -> None:
    monkeypatch.setenv(config.GIANTMIDI_ARCHIVE_URL, urls[0])
    monkeypatch.setenv(config.GIANTMIDI_METADATA_URL, urls[1])


def leaks_in(root: Path) -> list[str]:
    """Every file under `root` holding a planted secret: raw bytes (the SQLite event logs and
    run storage included), Parquet values and metadata, DuckDB tables."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        bodies = [path.read_bytes()]
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            bodies.append(json.dumps(table.to_pylist(), default=str).encode())
            bodies.append(str(table.schema.metadata).encode())
        if path.suffix == ".duckdb":
            with duckdb.connect(str(path), read_only=True) as conn:
                tables = conn.execute("SELECT table_name FROM information_schema.tables")
                for (name,) in tables.fetchall():
                    rows = conn.execute(f'FROM "{name}"').fetchall()
                    bodies.append(json.dumps(rows, default=str).encode())
        found += [f"{path}: {s}" for s in SECRETS for b in bodies if s.encode() in b]
    return found


def test_no_failure_class_and_no_success_leaks_a_secret(
    data_env, source, monkeypatch, capfd, tmp_path
):
    home = tmp_path / "dagster_home"
    home.mkdir()
    said: list[str] = []
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        for route, reason in FAILURES.items():
            point_at(monkeypatch, planted(source, route))
            with pytest.raises(config.ConfigError) as err:
                materialize(defs, instance, SELECTION, echo=said.append)
            assert reason in str(err.value), (route, str(err.value))
            assert "does not exist" not in str(err.value)
            said.append(str(err.value))
        point_at(monkeypatch, planted(source, "auth"))
        assert materialize(defs, instance, SELECTION, echo=said.append).ok
        assert source.auth_seen and set(source.auth_seen) == {source.expected_auth}
        runs = instance.get_runs()
        assert len(runs) == len(FAILURES) + 1
        events = [str(e) for r in runs for e in instance.all_logs(r.run_id)]
        failed = dg.DagsterEventType.STEP_FAILURE
        failures = [e for r in runs for e in instance.all_logs(r.run_id, of_type=failed)]
        assert len(failures) == 2 * len(FAILURES)  # each run: the archive and the metadata
        latest = instance.get_latest_materialization_event(dg.AssetKey("giantmidi_archive"))
        shown = latest.asset_materialization.metadata["source"].value
        assert shown == f"http://{source.address}/auth/midis.zip"
    out, err = capfd.readouterr()
    printed = "\n".join([*said, *events, out, err])
    assert not [s for s in SECRETS if s in printed]
    assert leaks_in(tmp_path) == []


def test_the_mta_command_prints_and_stores_no_secret(data_env, source, monkeypatch):
    monkeypatch.delenv(config.DAGSTER_HOME)  # mta's own instance, inside the data folder
    point_at(monkeypatch, planted(source, "status/500"))
    failed = subprocess.run(
        [MTA, "materialize", "--select", SELECTION], capture_output=True, text=True, timeout=120
    )
    assert failed.returncode == 2, failed.stderr
    assert "HTTP 500 Internal Server Error: the server failed" in failed.stderr
    point_at(monkeypatch, planted(source, "auth"))
    done = subprocess.run(
        [MTA, "materialize", "--select", SELECTION], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert (data_env / "dagster" / "dagster.yaml").exists()
    printed = failed.stdout + failed.stderr + done.stdout + done.stderr
    assert not [s for s in SECRETS if s in printed], printed
    assert leaks_in(data_env.parent) == []


def test_the_archive_sensor_says_why_and_keys_runs_without_secrets(data_env, source):
    storage = Storage(data_dir=str(data_env))

    def evaluate(route: str) -> dg.SensorResult | dg.SkipReason:
        resource = GiantMidiSource(archive_url=planted(source, route)[0])
        assert not [s for s in SECRETS if s in repr(resource)]
        resources = {"giantmidi": resource, "storage": storage}
        with dg.build_sensor_context(resources=resources) as context:
            return giantmidi_archive_sensor(context)

    skipped = evaluate("status/503")
    assert isinstance(skipped, dg.SkipReason)
    assert "HTTP 503 Service Unavailable" in skipped.skip_message
    requested = evaluate("auth")
    assert isinstance(requested, dg.SensorResult) and len(requested.run_requests) == 1
    shown = [skipped.skip_message, requested.cursor, requested.run_requests[0].run_key]
    assert f"http://{source.address}/auth/midis.zip" in requested.cursor
    assert not [s for s in SECRETS for text in shown if s in text]
