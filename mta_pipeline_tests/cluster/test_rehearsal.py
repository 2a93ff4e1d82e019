"""A cluster rehearsal (issue 13): every step as its own Dagster run in its own OS process, each
with a new, empty MTA_DATA_DIR, sharing only an S3 lake (moto's server), the YouTube emulator (the
external API) and one DAGSTER_HOME whose runs and event logs live in Postgres, builds the lake one
machine's `mta materialize` builds.

The corpus has two good MIDI files; its archive members fall in 9 of the 32 shards, and 2 of those
hold the 3 files `midi_files` keeps (one fails to parse later). Those "file shards" get a
`dagster asset materialize` process per step. The other member shards hold only rejects: every
step of theirs writes an empty table, so they run as one `mta materialize --shard …` process per
sharded stage (each run still recorded in Postgres, the process in its own new data dir). The 23
shards without any member hold nothing, and neither setup runs them (32 shards on moto take this
box four minutes in one process alone).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from graphlib import TopologicalSorter
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import s3fs
from moto.server import ThreadedMotoServer

from mta_pipeline import cli, config, schemas
from mta_pipeline.core.archive import PARSE_ERROR
from mta_pipeline.definitions import defs
from mta_pipeline.demo.corpus import DemoCorpus, generate_corpus
from mta_pipeline.lake import parquet_bytes
from mta_pipeline.partitions import assign_shard, vid_to_shard
from mta_pipeline.runner import plan
from mta_pipeline_tests.conftest import emulated_youtube
from mta_pipeline_tests.postgres_server import (  # noqa: F401 (fixtures)
    PostgresServer,
    postgres_server,
    postgres_url,
)

MTA = str(Path(sys.executable).with_name("mta"))
DAGSTER = str(Path(sys.executable).with_name("dagster"))
REPO_YAML = Path(cli.__file__).resolve().parent.parent / "dagster.yaml"
BUCKET = "lake"
AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
# The CLI process is the step's own process already; the multiprocess executor would start a
# second one per step (and import everything again), which test_multiprocess.py covers.
IN_PROCESS = json.dumps({"execution": {"config": {"in_process": {}}}})
PARALLEL = 6  # a wave's processes at once (the widest wave: 3 steps of 2 shards), as nodes would
TIMEOUT_S = 900
# Columns holding the wall-clock time of a call or scrape, or the run that made it: two setups
# cannot agree on them. Every other column is compared.
WALL_CLOCK = {
    config.T_YOUTUBE_VIDEOS: ("scraped_at",),
    config.T_YOUTUBE_COMMENTS: ("scraped_at",),
    config.T_YOUTUBE_COMMENT_STATUS: ("scraped_at",),
    config.T_MTA_RECORDS: ("video_scraped_at", "comments_scraped_at"),
    # day_pt is the Pacific date of `at`; run_id and call_id are minted per run and per call.
    config.T_YOUTUBE_QUOTA: ("day_pt", "run_id", "at", "call_id"),
    config.RELEASE_DIR: ("video_scraped_at", "comments_scraped_at"),
}
RAW_WALL_CLOCK = ("received_at", "call_id")
# The card's one line derived from the scrape times (dates only).
CARD_SCRAPE_DATES = re.compile(r"scraped \d{4}-\d{2}-\d{2} to \d{4}-\d{2}-\d{2}")
COUNTS = re.compile(r"counts:(\d+),(\d+),(\d+)")


# -- the plan: the graph's steps in dependency order ---------------------------------------------


@dataclass(frozen=True)
class Step:
    """One `AssetsDefinition` (all its keys: a multi-asset cannot be subset) at its depth."""

    keys: tuple[str, ...]
    partitioned: bool
    level: int


def graph_steps() -> list[Step]:
    """Every step of the definitions, at its depth in the step graph (0: no inputs)."""
    assets = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)]
    owner = {key: n for n, a in enumerate(assets) for key in a.keys}
    needs: dict[int, set[int]] = {n: set() for n in range(len(assets))}
    for spec in defs.resolve_all_asset_specs():
        for dep in spec.deps:
            if dep.asset_key in owner and owner[dep.asset_key] != owner[spec.key]:
                needs[owner[spec.key]].add(owner[dep.asset_key])
    level: dict[int, int] = {}
    for n in TopologicalSorter(needs).static_order():
        level[n] = max((level[d] + 1 for d in needs[n]), default=0)
    steps = [
        Step(
            tuple(sorted(k.to_user_string() for k in assets[n].keys)),
            assets[n].partitions_def is not None,
            level[n],
        )
        for n in level
    ]
    return sorted(steps, key=lambda s: (s.level, s.keys))


def sharded_stages(steps: list[Step]) -> list[Step]:
    """The sharded stages `mta materialize` cuts the graph into (runner.plan), each as a batch
    at the depth of its first step."""
    stages, _ = plan(defs, "*", None)
    batches = []
    for stage in stages:
        if stage.partitioned:
            keys = tuple(sorted(k.to_user_string() for k in stage.keys))
            level = min(s.level for s in steps if set(s.keys) <= set(keys))
            batches.append(Step(keys, True, level))
    return batches


# -- processes -----------------------------------------------------------------------------------


@dataclass
class Launch:
    """One OS process: a step's run (or a batch of runs) in its own new data dir."""

    label: str
    argv: list[str]
    env: dict[str, str]
    data_dir: Path
    keys: tuple[str, ...] = ()
    shard: str | None = None
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0

    def start(self, cwd: Path) -> subprocess.Popen:
        assert not self.data_dir.exists(), f"{self.label}: {self.data_dir} is not new"
        self.seconds = time.monotonic()
        return subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def finish(self, proc: subprocess.Popen) -> Launch:
        self.stdout, self.stderr = proc.communicate(timeout=TIMEOUT_S)
        self.seconds = time.monotonic() - self.seconds
        self.returncode = proc.returncode
        assert self.returncode == 0, (
            f"{self.label} exited {self.returncode}\n{self.stdout[-3000:]}\n{self.stderr[-3000:]}"
        )
        return self

    def run(self, cwd: Path) -> Launch:
        return self.finish(self.start(cwd))


def environment(
    data_dir: Path,
    lake_url: str,
    s3_endpoint: str,
    corpus: DemoCorpus,
    youtube_endpoint: str,
    home: Path | None = None,
    postgres: str | None = None,
) -> dict[str, str]:
    """The shell's environment without any project setting, then exactly these settings."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("MTA_", "GIANTMIDI_", "YOUTUBE_", "AWS_"))
        and name != config.DAGSTER_HOME
    }
    env.update(AWS)
    env.update(
        {
            config.MTA_DATA_DIR: str(data_dir),
            config.MTA_LAKE_URL: lake_url,
            config.MTA_S3_ENDPOINT_URL: s3_endpoint,
            config.GIANTMIDI_ARCHIVE_URL: str(corpus.archive_path),
            config.GIANTMIDI_METADATA_URL: str(corpus.metadata_path),
            config.YOUTUBE_API_ENDPOINT: youtube_endpoint,
            config.YOUTUBE_API_KEY: config.DEMO_API_KEY,
            config.MTA_FEATURE_WORKERS: "1",
        }
    )
    if home is not None:
        env[config.DAGSTER_HOME] = str(home)
    if postgres is not None:
        env[config.MTA_DAGSTER_POSTGRES_URL] = postgres
    return env


def shared_home(home: Path) -> Path:
    """A DAGSTER_HOME of our own that several processes share: the repo's settings with runs,
    event logs and schedules in the database MTA_DAGSTER_POSTGRES_URL names (mta leaves such a
    home's dagster.yaml alone, and checks it has a storage section)."""
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text(cli.dagster_yaml(REPO_YAML, postgres=True))
    return home


def run_wave(launches: list[Launch], cwd: Path) -> None:
    with ThreadPoolExecutor(PARALLEL) as pool:
        list(pool.map(lambda launch: launch.run(cwd), launches))


# -- reading a lake ------------------------------------------------------------------------------


def s3(endpoint: str) -> s3fs.S3FileSystem:
    return s3fs.S3FileSystem(
        key=AWS["AWS_ACCESS_KEY_ID"],
        secret=AWS["AWS_SECRET_ACCESS_KEY"],
        client_kwargs={"endpoint_url": endpoint},
        skip_instance_cache=True,
        use_listings_cache=False,
    )


def lake_files(endpoint: str, prefix: str) -> dict[str, bytes]:
    """Every object under `s3://lake/<prefix>/`, by path relative to it."""
    fs = s3(endpoint)
    root = f"{BUCKET}/{prefix}/"
    paths = fs.find(root)
    return {path.removeprefix(root): body for path, body in fs.cat(paths).items()}


def normal_path(relpath: str) -> str:
    """A lake path without what a run's wall clock and ids put in it: a ledger part's and a raw
    file's day and name (run id, sequence, random suffix); the units a ledger part holds stay."""
    relpath = re.sub(r"/day=[^/]+/[^/]*?(-u\d+(?:-refused)?\.parquet)$", r"/<part>\1", relpath)
    return re.sub(r"/date=[^/]+/[^/]+\.jsonl$", "/<part>.jsonl", relpath)


def comparable(bodies: list[bytes], drop: tuple[str, ...]) -> tuple[list[str], bytes]:
    """Parquet files (the parts a normalised path stands for) as one table less the `drop`
    columns, rows sorted: as readable rows (for the diff) and as the bytes of that table written
    again (for the byte-for-byte comparison)."""
    table = pa.concat_tables(pq.read_table(io.BytesIO(body)) for body in bodies)
    table = table.drop_columns([c for c in drop if c in table.column_names])
    keys = [json.dumps(r, sort_keys=True, default=repr) for r in table.to_pylist()]
    order = pa.array(sorted(range(len(keys)), key=keys.__getitem__), pa.int64())
    return sorted(keys), parquet_bytes(table.take(order))


def grouped(files: dict[str, bytes]) -> dict[str, list[bytes]]:
    groups: dict[str, list[bytes]] = {}
    for relpath, body in sorted(files.items()):
        groups.setdefault(normal_path(relpath), []).append(body)
    return groups


def raw_lines(bodies: list[bytes]) -> list[str]:
    """Raw API responses, less the time they arrived and the call's id."""
    lines = []
    for body in bodies:
        for line in body.decode("utf-8").splitlines():
            record = json.loads(line)
            for name in RAW_WALL_CLOCK:
                record.pop(name)
            lines.append(json.dumps(record, sort_keys=True, ensure_ascii=False))
    return sorted(lines)


def assert_same_file(relpath: str, ours: list[bytes], theirs: list[bytes]) -> None:
    """`relpath` (normalised) holds the same in both lakes: bytes, or for files carrying wall-clock
    columns, the same rows of every other column (sorted), written again byte for byte."""
    table = relpath.split("/", 1)[0]
    assert len(ours) == len(theirs), relpath
    if relpath.startswith(f"{config.RAW_YOUTUBE_DIR}/") and relpath.endswith(".jsonl"):
        assert raw_lines(ours) == raw_lines(theirs), relpath
    elif relpath == f"{config.RAW_YOUTUBE_DIR}/index.parquet":
        listed = [
            sorted(map(normal_path, pq.read_table(io.BytesIO(b[0])).column("path").to_pylist()))
            for b in (ours, theirs)
        ]
        assert listed[0] == listed[1]
    elif relpath == f"{config.RELEASE_DIR}/{config.DATASET_CARD}":
        cards = [CARD_SCRAPE_DATES.subn("scraped <dates>", b[0].decode()) for b in (ours, theirs)]
        assert cards[0][1] == cards[1][1] == 2, "the card no longer says when it was scraped"
        assert cards[0][0] == cards[1][0]
    elif relpath.endswith(".parquet") and table in WALL_CLOCK:
        mine, yours = comparable(ours, WALL_CLOCK[table]), comparable(theirs, WALL_CLOCK[table])
        assert mine[0] == yours[0], relpath
        assert mine[1] == yours[1], relpath
    else:
        assert ours == theirs, f"{relpath} differs"


# -- the rehearsal -------------------------------------------------------------------------------


@dataclass
class Rehearsal:
    root: Path
    s3_endpoint: str
    youtube_endpoint: str
    corpus: DemoCorpus
    member_shards: list[str]
    file_shards: list[str]
    single: Launch
    home: Path
    steps: list[Launch] = field(default_factory=list)
    batches: list[Launch] = field(default_factory=list)

    def env(self, data_dir: Path, lake: str, **kwargs: object) -> dict[str, str]:
        return environment(
            data_dir, lake, self.s3_endpoint, self.corpus, self.youtube_endpoint, **kwargs
        )


@pytest.fixture(scope="module")
def s3_endpoint_module() -> Iterator[str]:
    """moto's S3 server on loopback with an empty `lake` bucket, for the module (conftest's
    `s3_server` is per test; the runs here are shared by the module's tests)."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    requests = logging.getLogger("werkzeug")  # a line per request: thousands, all captured
    level = requests.level
    requests.setLevel(logging.WARNING)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))
        s3(endpoint).mkdir(BUCKET)
        yield endpoint
    finally:
        server.stop()
        requests.setLevel(level)


@pytest.fixture(scope="module")
def rehearsal_corpus(tmp_path_factory: pytest.TempPathFactory) -> DemoCorpus:
    return generate_corpus(tmp_path_factory.mktemp("rehearsal-corpus"), count=2, seed=4)


def shards_of(corpus: DemoCorpus) -> tuple[list[str], list[str]]:
    """Shards holding an archive member, and those holding a file `midi_files` keeps (the good
    ones and the one that fails to parse later)."""
    with zipfile.ZipFile(corpus.archive_path) as zf:
        members = {assign_shard(info.filename) for info in zf.infolist()}
    kept = {vid_to_shard(vid) for vid in corpus.good}
    kept |= {assign_shard(m) for m, code in corpus.expected_rejects.items() if code == PARSE_ERROR}
    return sorted(members), sorted(kept)


@pytest.fixture(scope="module")
def rehearsal(
    tmp_path_factory: pytest.TempPathFactory,
    s3_endpoint_module: str,
    rehearsal_corpus: DemoCorpus,
    postgres_url: str,  # noqa: F811 (fixture)
) -> Iterator[Rehearsal]:
    """The single-machine reference (in the background: it shares nothing with the cluster but
    the emulator, whose answers depend only on the video id), then the cluster, wave by wave."""
    root = tmp_path_factory.mktemp("rehearsal")
    cwd = root / "cwd"  # no `.env` here: `mta` and `dagster` read one from their folder
    cwd.mkdir()
    members, files = shards_of(rehearsal_corpus)
    background: list[subprocess.Popen] = []
    with pytest.MonkeyPatch.context() as mp, emulated_youtube(mp) as emulator:
        r = Rehearsal(
            root,
            s3_endpoint_module,
            emulator.endpoint,
            rehearsal_corpus,
            members,
            files,
            single=Launch("single machine", [], {}, root / "single" / "data"),
            home=shared_home(root / "cluster-home"),
        )
        # The single machine: its own data dir and SQLite instance under it (mta's default), so
        # nothing it materialized can make a cluster step look up to date or reuse its rows.
        r.single.argv = [MTA, "materialize", *(a for s in members for a in ("--shard", s))]
        r.single.env = r.env(r.single.data_dir, f"s3://{BUCKET}/single")
        try:
            single = r.single.start(cwd)
            background.append(single)
            mp.setenv(config.MTA_DAGSTER_POSTGRES_URL, postgres_url)
            with dg.DagsterInstance.from_config(str(r.home)):
                pass  # the schema is created once, before processes race to create it
            run_cluster(r, cwd, postgres_url, background)
            r.single.finish(single)
        finally:
            for proc in background:  # left running only when the rehearsal failed
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        yield r


def run_cluster(r: Rehearsal, cwd: Path, postgres: str, background: list[subprocess.Popen]) -> None:
    """Every step as a run of its own, level by level of the step graph; a level's steps (of
    each file shard) at once. The batches of the rejects-only shards run beside the waves until
    the next corpus-wide step reads what they write."""
    steps = graph_steps()
    batches = sharded_stages(steps)
    rejects_only = [s for s in r.member_shards if s not in r.file_shards]
    running: dict[int, list[tuple[Launch, subprocess.Popen]]] = {}
    for level in sorted({s.level for s in steps}):
        for launch, proc in running.pop(level, []):
            r.batches.append(launch.finish(proc))
        wave = [
            cluster_step(r, step, shard, postgres)
            for step in steps
            if step.level == level
            for shard in (r.file_shards if step.partitioned else [None])
        ]
        for batch in (b for b in batches if b.level == level):
            until = min(s.level for s in steps if s.level > level and not s.partitioned)
            launch = cluster_batch(r, batch, rejects_only, postgres)
            background.append(launch.start(cwd))
            running.setdefault(until, []).append((launch, background[-1]))
        run_wave(wave, cwd)
        r.steps += wave
    assert not running, "a batch was never joined"


def cluster_step(r: Rehearsal, step: Step, shard: str | None, postgres: str) -> Launch:
    """`dagster asset materialize` of one step (one shard): a run in the shared instance."""
    name = f"{step.level}-{step.keys[0]}-{shard or 'all'}"
    data_dir = r.root / "cluster" / name / "data"
    argv = [DAGSTER, "asset", "materialize", "-m", "mta_pipeline.definitions"]
    argv += ["--select", ",".join(step.keys), "--config-json", IN_PROCESS]
    argv += ["--partition", shard] if shard else []
    env = r.env(data_dir, f"s3://{BUCKET}/cluster", home=r.home, postgres=postgres)
    return Launch(f"step {name}", argv, env, data_dir, step.keys, shard)


def cluster_batch(r: Rehearsal, batch: Step, shards: list[str], postgres: str) -> Launch:
    """One `mta materialize` process for a sharded stage of the shards that hold only rejects."""
    name = f"{batch.level}-{batch.keys[0]}-rejects-only"
    data_dir = r.root / "cluster" / name / "data"
    argv = [MTA, "materialize", "--select", ",".join(batch.keys)]
    argv += [a for s in shards for a in ("--shard", s)]
    env = r.env(data_dir, f"s3://{BUCKET}/cluster", home=r.home, postgres=postgres)
    return Launch(f"batch {name}", argv, env, data_dir, batch.keys)


# -- tests ---------------------------------------------------------------------------------------


def test_every_step_ran_in_its_own_process_and_new_data_dir(rehearsal: Rehearsal) -> None:
    assert len(rehearsal.file_shards) >= 2  # corpus-wide steps gather shards made apart
    steps = graph_steps()
    sharded = [s for s in steps if s.partitioned]
    assert len(rehearsal.steps) == len(steps) - len(sharded) + len(sharded) * len(
        rehearsal.file_shards
    )
    assert {(s.keys, s.shard) for s in rehearsal.steps} == {
        (s.keys, shard)
        for s in steps
        for shard in (rehearsal.file_shards if s.partitioned else [None])
    }
    dirs = [launch.data_dir for launch in [*rehearsal.steps, *rehearsal.batches]]
    assert len(set(dirs)) == len(dirs)
    archive = json.loads(lake_files(rehearsal.s3_endpoint, "cluster/archive")["archive.json"])
    for launch in rehearsal.steps:
        assert launch.returncode == 0
        # Steps write the lake only: none opened a catalog in its data dir.
        assert not (launch.data_dir / config.DUCKDB_FILE).exists(), launch.label
        if "midi_files" in launch.keys:  # it fetched the archive from the lake, not a neighbour
            cached = sorted(p.name for p in (launch.data_dir / config.ARCHIVE_DIR).glob("*.zip"))
            assert cached == [f"{archive['sha256']}.zip"], launch.label


def test_the_cluster_lake_equals_the_single_machine_lake(rehearsal: Rehearsal) -> None:
    single = grouped(lake_files(rehearsal.s3_endpoint, "single"))
    cluster = grouped(lake_files(rehearsal.s3_endpoint, "cluster"))
    assert sorted(cluster) == sorted(single)
    tables = {path.split("/", 1)[0] for path in single}
    assert set(schemas.SCHEMAS) | {"archive", config.MIDI_DIR, "raw", config.RELEASE_DIR} <= tables
    for relpath in sorted(single):
        if not relpath.startswith(f"{config.RELEASE_DIR}/"):
            assert_same_file(relpath, cluster[relpath], single[relpath])
    # The shards the plan gave a process per step are exactly those holding files.
    held = {
        path.split("/")[1].removeprefix("shard=")
        for path, bodies in single.items()
        if path.startswith(f"{config.T_MIDI_FILES}/")
        and pq.read_table(io.BytesIO(bodies[0])).num_rows
    }
    assert sorted(held) == rehearsal.file_shards
    midi = {p: b for p, b in single.items() if p.startswith(f"{config.MIDI_DIR}/shard=")}
    assert len(midi) == len(rehearsal.member_shards)
    assert all(cluster[p] == b for p, b in midi.items())  # each shard's MIDI bytes, as bytes


def test_the_cluster_release_equals_the_single_machine_release(rehearsal: Rehearsal) -> None:
    single = lake_files(rehearsal.s3_endpoint, "single/release")
    cluster = lake_files(rehearsal.s3_endpoint, "cluster/release")
    assert sorted(cluster) == sorted(single)
    assert cluster[config.TSV_FILE] == single[config.TSV_FILE]
    midi = [p for p in single if p.startswith("midi/")]
    assert len(midi) == len(rehearsal.corpus.good)
    for relpath in sorted(single):
        if relpath != ".manifest.json":
            name = f"{config.RELEASE_DIR}/{relpath}"
            assert_same_file(name, [cluster[relpath]], [single[relpath]])
    # The manifest: the same files, the same digests but of the files carrying scrape times,
    # whose digests are those of the files beside them.
    manifests = [json.loads(lake[".manifest.json"]) for lake in (cluster, single)]
    assert sorted(manifests[0]) == sorted(manifests[1]) == sorted(set(single) - {".manifest.json"})
    for relpath, digest in manifests[0].items():
        if relpath.startswith("data/"):
            assert digest == sha256(cluster[relpath])
            assert manifests[1][relpath] == sha256(single[relpath])
        else:
            assert digest == manifests[1][relpath], relpath


def sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def test_the_postgres_instance_holds_every_cluster_run(
    rehearsal: Rehearsal,
    postgres_url: str,  # noqa: F811 (fixture)
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(config.MTA_DAGSTER_POSTGRES_URL, postgres_url)
    rejects_only = len(rehearsal.member_shards) - len(rehearsal.file_shards)
    with dg.DagsterInstance.from_config(str(rehearsal.home)) as instance:
        assert "Postgres" in type(instance.run_storage).__name__
        runs = instance.get_runs()
        assert len(runs) == len(rehearsal.steps) + rejects_only * len(rehearsal.batches)
        assert {run.status for run in runs} == {dg.DagsterRunStatus.SUCCESS}
        launched = Counter((launch.keys, launch.shard) for launch in rehearsal.steps)
        by_step = Counter(
            (
                tuple(sorted(k.to_user_string() for k in run.asset_selection or ())),
                run.tags.get("dagster/partition"),
            )
            for run in runs
            if not run.job_name.startswith("mta_stage_")
        )
        assert by_step == launched
        pids = set()
        for run in runs:
            [start] = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_START)
            pids.add(start.dagster_event.pid)
        # one process per step; a batch's runs share its process
        assert len(pids) == len(rehearsal.steps) + len(rehearsal.batches)
        assert instance.get_materialized_partitions(dg.AssetKey(config.T_MIDI_FILES)) == set(
            rehearsal.member_shards
        )


def shard_counts(endpoint: str, prefix: str, shard: str) -> tuple[int, int, int]:
    """Rows of midi_files, midi_features and midi_rejects (both stages) of a shard's lake files."""
    files = lake_files(endpoint, prefix)

    def rows(table: str) -> int:
        parts = [b for p, b in files.items() if p.startswith(f"{table}/shard={shard}/")]
        assert parts, f"no {table} for shard {shard} in {prefix}"
        return sum(pq.read_table(io.BytesIO(b)).num_rows for b in parts)

    return rows(config.T_MIDI_FILES), rows(config.T_MIDI_FEATURES), rows(config.T_MIDI_REJECTS)


def test_a_shard_on_new_machines_counts_what_one_machine_counts(
    rehearsal: Rehearsal,
    postgres_server: PostgresServer,  # noqa: F811 (fixture)
    tmp_path: Path,
) -> None:
    """The issue's "Done when": the archive, then a shard's midi_files, then its midi_features,
    each from a new empty data dir, then `mta query` from another: the counts of one machine."""
    counts = {s: shard_counts(rehearsal.s3_endpoint, "single", s) for s in rehearsal.file_shards}
    shard = max(rehearsal.file_shards, key=lambda s: (counts[s][2], s))  # the most rejects
    expected = counts[shard]
    assert expected[0] and expected[1] and expected[2], expected
    database = "dagster_done_when"
    postgres_server.admin(f'CREATE DATABASE "{database}"')
    try:
        home = shared_home(tmp_path / "home")
        lake = f"s3://{BUCKET}/done-when"

        def mta(n: int, *args: str) -> str:
            data_dir = tmp_path / f"machine-{n}" / "data"
            env = rehearsal.env(data_dir, lake, home=home, postgres=postgres_server.url(database))
            launch = Launch(f"machine {n}: mta {' '.join(args)}", [MTA, *args], env, data_dir)
            return launch.run(tmp_path).stdout

        assert " ok in " in mta(1, "materialize", "--select", "giantmidi_archive")
        for n, selection in enumerate(("midi_files", "midi_features"), 2):
            out = mta(n, "materialize", "--shard", shard, "--select", selection)
            assert f"shard {shard} ok in " in out, out  # it ran: nothing here said up to date
        sql = (
            f"SELECT 'counts:' || (SELECT count(*) FROM midi_files WHERE shard = '{shard}') || ',' "
            f"|| (SELECT count(*) FROM midi_features WHERE shard = '{shard}') || ',' "
            f"|| (SELECT count(*) FROM midi_rejects WHERE shard = '{shard}') AS c"
        )
        from_catalog = COUNTS.search(mta(4, "query", sql))
        from_lake = COUNTS.search(mta(5, "query", "--lake", sql))
    finally:
        postgres_server.admin(f'DROP DATABASE "{database}" WITH (FORCE)')
    assert from_catalog and tuple(map(int, from_catalog.groups())) == expected
    assert from_lake and tuple(map(int, from_lake.groups())) == expected
    assert shard_counts(rehearsal.s3_endpoint, "done-when", shard) == expected
