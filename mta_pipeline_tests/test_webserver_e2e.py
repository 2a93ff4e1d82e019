"""The Dagster webserver as a user (or a script) drives it: runs launched over GraphQL, results in
DuckDB.

A real `dagster-webserver` serves `workspace.yaml` on loopback, with an instance whose run
coordinator launches runs at once (no daemon). Through `DagsterGraphQLClient` the test launches the
unpartitioned GiantMIDI assets, then one shard of every per-video asset, YouTube through the
emulator, and reads back what the runs wrote to the DuckDB catalog.
"""

import collections
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster_graphql import DagsterGraphQLClient

from mta_pipeline import config
from mta_pipeline.partitions import vid_to_shard
from mta_pipeline.resources.scrape_journal import read_ledger
from mta_pipeline.resources.storage import Storage
from mta_pipeline_tests.catalog_db import catalog_db
from mta_pipeline_tests.conftest import emulated_youtube, isolate_env

REPO = Path(__file__).resolve().parents[1]
WEBSERVER = str(Path(sys.executable).with_name("dagster-webserver"))
ASSET_JOB = "__ASSET_JOB"
READY_TIMEOUT_S = 120
RUN_TIMEOUT_S = 180
SETUP_ASSETS = ["giantmidi_archive", "giantmidi_metadata", "mta_removals"]
SHARD_ASSETS = [
    "midi_files",
    "midi_rejects",
    "midi_features",
    "midi_parse_rejects",
    "youtube_videos",
    "youtube_comments",
    "youtube_comment_status",
]
# Splits are decided over the whole corpus, so they run between a shard's files and its records.
CORPUS_ASSETS = ["composer_splits"]
DONE = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}

LOCATIONS_QUERY = """
{ workspaceOrError { __typename
    ... on Workspace { locationEntries { name loadStatus
        locationOrLoadError { __typename
            ... on RepositoryLocation { repositories { name } }
            ... on PythonError { message } } } }
    ... on PythonError { message } } }
"""
RUN_LOGS_QUERY = """
query RunLogs($runId: ID!) { logsForRun(runId: $runId, limit: 5000) { __typename
    ... on EventConnection { events { __typename
        ... on MessageEvent { message level }
        ... on StepEvent { stepKey }
        ... on ErrorEvent { error { message stack } } } }
    ... on PythonError { message } } }
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_instance_yaml(home: Path) -> None:
    """The project's dagster.yaml (telemetry, concurrency pools) with runs launched immediately:
    the default QueuedRunCoordinator needs the daemon, which this test does not start."""
    settings = yaml.safe_load((REPO / "dagster.yaml").read_text()) or {}
    settings.pop("run_queue", None)  # QueuedRunCoordinator settings, refused with run_coordinator
    settings["run_coordinator"] = {
        "module": "dagster.core.run_coordinator",
        "class": "DefaultRunCoordinator",
    }
    settings["telemetry"] = {"enabled": False}
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(settings))


def _tail(path: Path, lines: int = 25) -> str:
    if not path.exists():
        return "(no webserver log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _graphql(port: int, query: str, variables: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        body = json.load(response)
    assert not body.get("errors"), body["errors"]
    return body["data"]


@contextmanager
def webserver(env: dict[str, str], log: Path) -> Iterator[int]:
    """`dagster-webserver` on a free loopback port, ready to serve; the whole process group (code
    server, run workers, step processes) is ended on the way out."""
    port = _free_port()
    args = [WEBSERVER, "-h", "127.0.0.1", "-p", str(port), "-w", str(REPO / "workspace.yaml")]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args,
            cwd=log.parent,  # not the repo: a `.env` there must not leak into the test
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"webserver exited with {proc.returncode}:\n{_tail(log)}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5):
                    break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    pytest.fail(f"webserver not ready in {READY_TIMEOUT_S}s:\n{_tail(log)}")
                time.sleep(0.5)
        yield port
    finally:
        _end_group(proc)


def _end_group(proc: subprocess.Popen) -> None:
    """SIGTERM the webserver's process group, then SIGKILL whatever is left of it (a hung
    webserver, or children still shutting down) so nothing outlives the test."""
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=20)
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def _location(port: int, log: Path) -> tuple[str, str]:
    """The one code location and its one repository, once loaded (a load error fails the test)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        workspace = _graphql(port, LOCATIONS_QUERY)["workspaceOrError"]
        assert workspace["__typename"] == "Workspace", workspace
        entries = workspace["locationEntries"]
        assert len(entries) == 1, entries
        entry = entries[0]
        if entry["loadStatus"] == "LOADED":
            loaded = entry["locationOrLoadError"]
            assert loaded["__typename"] == "RepositoryLocation", f"{loaded}\n{_tail(log)}"
            (repository,) = loaded["repositories"]
            return entry["name"], repository["name"]
        if time.monotonic() > deadline:
            pytest.fail(f"code location not loaded in {READY_TIMEOUT_S}s: {entry}\n{_tail(log)}")
        time.sleep(0.5)


def _run_errors(port: int, run_id: str) -> str:
    """The run's error events from its event log, with the stack of the first failure."""
    logs = _graphql(port, RUN_LOGS_QUERY, {"runId": run_id})["logsForRun"]
    if logs["__typename"] != "EventConnection":
        return f"no event log: {logs}"
    lines: list[str] = []
    stack_shown = False
    for event in logs["events"]:
        error = event.get("error")
        if not error and event.get("level") not in ("ERROR", "CRITICAL"):
            continue
        lines.append(f"{event['__typename']} {event.get('stepKey') or ''}: {event.get('message')}")
        if error:
            lines.append(f"  {error['message'].strip()}")
            if not stack_shown and error.get("stack"):
                lines.append("".join(error["stack"][-4:]).rstrip())
                stack_shown = True
    return "\n".join(lines) or "no error events"


def _launch_and_wait(
    client: DagsterGraphQLClient,
    port: int,
    location: tuple[str, str],
    assets: list[str],
    log: Path,
    tags: dict[str, str] | None = None,
) -> str:
    run_id = client.submit_job_execution(
        ASSET_JOB,
        repository_location_name=location[0],
        repository_name=location[1],
        tags=tags,
        asset_selection=[dg.AssetKey(name) for name in assets],
    )
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while (status := client.get_run_status(run_id)) not in DONE:
        if time.monotonic() > deadline:
            pytest.fail(f"run {run_id} of {assets} still {status} after {RUN_TIMEOUT_S}s")
        time.sleep(0.5)
    assert status == dg.DagsterRunStatus.SUCCESS, (
        f"run {run_id} of {assets} ended {status}:\n{_run_errors(port, run_id)}\n"
        f"webserver log:\n{_tail(log)}"
    )
    return run_id


def test_partitioned_run_launched_over_graphql(tmp_path, corpus, monkeypatch):
    isolate_env(monkeypatch, tmp_path, corpus)
    _write_instance_yaml(Path(os.environ[config.DAGSTER_HOME]))
    by_shard = collections.Counter(vid_to_shard(vid) for vid in corpus.good)
    shard, n_files = by_shard.most_common(1)[0]
    vids = sorted(vid for vid in corpus.good if vid_to_shard(vid) == shard)
    assert n_files == len(vids) > 1, "the corpus should give some shard several files"
    log = tmp_path / "webserver.log"

    with emulated_youtube(monkeypatch):
        env = dict(os.environ)
        with webserver(env, log) as port:
            location = _location(port, log)
            client = DagsterGraphQLClient("127.0.0.1", port_number=port, timeout=60)
            _launch_and_wait(client, port, location, SETUP_ASSETS, log)
            _launch_and_wait(
                client, port, location, SHARD_ASSETS, log, tags={"dagster/partition": shard}
            )
            _launch_and_wait(client, port, location, CORPUS_ASSETS, log)
            _launch_and_wait(
                client, port, location, ["mta_records"], log, tags={"dagster/partition": shard}
            )

    with catalog_db() as db:

        def rows(sql: str) -> list[tuple]:
            return db.execute(sql).fetchall()

        assert rows("SELECT vid, shard FROM midi_files ORDER BY vid") == [(v, shard) for v in vids]
        assert rows("SELECT vid, shard FROM mta_records ORDER BY vid") == [(v, shard) for v in vids]
        videos = rows("SELECT vid, shard, status FROM youtube_videos ORDER BY vid")
        assert [(v, s) for v, s, _ in videos] == [(v, shard) for v in vids]
        assert {status for *_, status in videos} <= {"ok", "unavailable"}, videos
    ledger = read_ledger(Storage(data_dir=os.environ[config.MTA_DATA_DIR]))
    assert ledger.num_rows > 0  # the quota ledger in the lake, the store of record
    assert set(ledger.column("shard").to_pylist()) == {shard}
