"""Shared fixtures: a generated corpus, an isolated data dir and environment per test."""

import os
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest

from mta_pipeline import config
from mta_pipeline.demo.corpus import DemoCorpus, generate_corpus
from mta_pipeline.demo.youtube_emulator import YouTubeEmulator

SMALL = 40


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> DemoCorpus:
    return generate_corpus(tmp_path_factory.mktemp("corpus"), count=SMALL, seed=7)


def isolate_env(mp: pytest.MonkeyPatch, root: Path, corpus: DemoCorpus) -> Path:
    """Point every setting at `root` and the small corpus; nothing from the shell leaks in."""
    for name in list(os.environ):
        if name.startswith(("MTA_", "GIANTMIDI_", "YOUTUBE_")):
            mp.delenv(name)
    mp.chdir(root)  # a `.env` in the repo (left by `make demo`) must not reach `mta`
    data = root / "data"
    mp.setenv(config.MTA_DATA_DIR, str(data))
    mp.setenv(config.GIANTMIDI_ARCHIVE_URL, str(corpus.archive_path))
    mp.setenv(config.GIANTMIDI_METADATA_URL, str(corpus.metadata_path))
    mp.setenv(config.DAGSTER_HOME, str(root / "dagster"))
    mp.setenv(config.MTA_FEATURE_WORKERS, "2")
    for name, default in config.SETTING_DEFAULTS.items():
        if not os.environ.get(name):
            mp.setenv(name, default)
    return data


@pytest.fixture
def data_env(tmp_path: Path, corpus: DemoCorpus, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolate_env(monkeypatch, tmp_path, corpus)


@pytest.fixture
def instance(data_env: Path):
    """An in-memory Dagster instance: runs are real, their event log is not kept."""
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


@pytest.fixture(scope="module")
def materialized(tmp_path_factory: pytest.TempPathFactory, corpus: DemoCorpus):
    """Every GiantMIDI asset of every shard, materialized once for a test module."""
    from mta_pipeline.definitions import defs
    from mta_pipeline.runner import materialize

    with pytest.MonkeyPatch.context() as mp, dg.DagsterInstance.ephemeral() as inst:
        data = isolate_env(mp, tmp_path_factory.mktemp("materialized"), corpus)
        lines: list[str] = []
        outcome = materialize(defs, inst, "group:giantmidi", echo=lines.append)
        assert outcome.ok, outcome.failures
        yield data, inst, lines


@pytest.fixture
def s3_server(monkeypatch: pytest.MonkeyPatch):
    """A real S3-compatible HTTP server on loopback (moto's server mode) with a `lake` bucket;
    yields (server, endpoint)."""
    import s3fs
    from moto.server import ThreadedMotoServer

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # moto keeps its state per process: start every test from an empty server.
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint}, skip_instance_cache=True)
    fs.mkdir("lake")
    try:
        yield server, endpoint
    finally:
        server.stop()


@pytest.fixture
def s3_endpoint(s3_server) -> str:
    return s3_server[1]


@contextmanager
def emulated_youtube(mp: pytest.MonkeyPatch, **faults) -> Iterator[YouTubeEmulator]:
    """The project's YouTube emulator on loopback, with the settings pointing at it."""
    emulator = YouTubeEmulator(api_keys=(config.DEMO_API_KEY,), seed=5, **faults)
    mp.setenv(config.YOUTUBE_API_ENDPOINT, emulator.start())
    mp.setenv(config.YOUTUBE_API_KEY, config.DEMO_API_KEY)
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture(scope="module")
def full_pipeline(tmp_path_factory: pytest.TempPathFactory, corpus: DemoCorpus):
    """The whole graph, YouTube through the emulator, materialized once for a test module."""
    from mta_pipeline.definitions import defs
    from mta_pipeline.runner import materialize

    with pytest.MonkeyPatch.context() as mp, dg.DagsterInstance.ephemeral() as inst:
        data = isolate_env(mp, tmp_path_factory.mktemp("full"), corpus)
        with emulated_youtube(mp) as emulator:
            outcome = materialize(defs, inst, "*", echo=lambda _: None)
            assert outcome.ok, outcome.failures
            yield data, inst, emulator


def run_assets(
    instance: dg.DagsterInstance, keys: list[str], partition: str | None = None, **kwargs
) -> dg.ExecuteInProcessResult:
    """Materialize `keys` (and their checks) with the project's resources, as `mta` does."""
    from mta_pipeline.definitions import defs

    return dg.materialize(
        [*defs.assets, *defs.asset_checks],
        selection=keys,
        partition_key=partition,
        instance=instance,
        resources=defs.resources,
        raise_on_error=False,
        **kwargs,
    )
