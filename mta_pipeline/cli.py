"""The `mta` command: `mta demo`, `mta materialize`, `mta query`, `mta ui`.

User mistakes (a missing setting, a bad selection, bad SQL) end with one clear line and exit code
2, never a stack trace; a failed asset run ends with its error message and exit code 1.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from mta_pipeline import config

EXAMPLE_QUERY = """\
SELECT f.surname, count(*) AS files, round(avg(x.duration_s), 1) AS avg_duration_s,
       round(avg(x.n_notes)) AS avg_notes
FROM midi_files f JOIN midi_features x USING (vid)
GROUP BY f.surname ORDER BY files DESC, f.surname LIMIT 5"""


# Keys of dagster.yaml that choose where runs, event logs and schedules are stored.
STORAGE_KEYS = ("storage", "run_storage", "event_log_storage", "schedule_storage")
POSTGRES_STORAGE = {"postgres": {"postgres_url": {"env": config.MTA_DAGSTER_POSTGRES_URL}}}


def _ensure_dagster_home() -> Path:
    """DAGSTER_HOME defaults to `$MTA_DATA_DIR/dagster`, with the repo's dagster.yaml written in.

    With MTA_DAGSTER_POSTGRES_URL set, that dagster.yaml also stores runs, event logs and
    schedules in Postgres. A DAGSTER_HOME the user set is theirs and is left alone; if it cannot
    honour MTA_DAGSTER_POSTGRES_URL (no storage section), that is a ConfigError, not a silent
    fallback to SQLite.
    """
    own_home = config.env(config.DAGSTER_HOME)
    home = Path(own_home or config.data_dir() / config.DAGSTER_DIR)
    home.mkdir(parents=True, exist_ok=True)
    repo_yaml = Path(__file__).resolve().parent.parent / "dagster.yaml"
    postgres = config.env(config.MTA_DAGSTER_POSTGRES_URL) is not None
    if not own_home and repo_yaml.exists():
        _write_atomically(home / "dagster.yaml", dagster_yaml(repo_yaml, postgres=postgres))
    elif own_home and postgres and not _has_storage(home / "dagster.yaml"):
        section = yaml.safe_dump({"storage": POSTGRES_STORAGE}, default_flow_style=True).strip()
        raise config.ConfigError(
            f"{config.MTA_DAGSTER_POSTGRES_URL} is set but {home / 'dagster.yaml'} has no storage "
            f"section: add `{section}` to it, or unset {config.DAGSTER_HOME} so mta writes its own."
        )
    os.environ[config.DAGSTER_HOME] = str(home)
    return home


def dagster_yaml(repo_yaml: Path, *, postgres: bool) -> str:
    """The instance settings: the repo's file, plus Postgres storage read from the environment.

    The storage section names the variable (`{env: MTA_DAGSTER_POSTGRES_URL}`), never its value,
    so no password lands on disk.
    """
    text = repo_yaml.read_text(encoding="utf-8")
    if not postgres:
        return text
    settings = yaml.safe_load(text) or {}
    for key in STORAGE_KEYS:
        settings.pop(key, None)
    settings["storage"] = POSTGRES_STORAGE
    header = f"# Written by `mta` from {repo_yaml}, with {config.MTA_DAGSTER_POSTGRES_URL} set.\n"
    return header + yaml.safe_dump(settings, sort_keys=False)


def _has_storage(path: Path) -> bool:
    settings = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None
    return isinstance(settings, dict) and any(key in settings for key in STORAGE_KEYS)


def _write_atomically(path: Path, text: str) -> None:
    """Temporary name then rename: parallel `mta` processes never read a half-written file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _instance():
    import dagster as dg

    _ensure_dagster_home()
    return dg.DagsterInstance.get()


def cmd_materialize(args: argparse.Namespace) -> int:
    from mta_pipeline.definitions import defs
    from mta_pipeline.runner import materialize

    with _instance() as instance:
        outcome = materialize(
            defs,
            instance,
            args.select,
            args.shard,
            force_refresh=args.force,
            only_stale=not args.all,
        )
    return _report_failures(outcome.failures) if not outcome.ok else 0


def _report_failures(failures: list[str]) -> int:
    print(f"{len(failures)} run(s) failed:", file=sys.stderr)
    for failure in failures:
        print(f"  {failure}", file=sys.stderr)
    return 1


def cmd_query(args: argparse.Namespace) -> int:
    import duckdb

    from mta_pipeline.resources.catalog import DuckDBCatalog

    try:
        with DuckDBCatalog().connect(read_only=True) as conn:
            rel = conn.sql(args.sql)
            print(rel if rel is not None else "ok")
    except duckdb.Error as exc:
        print(f"mta query: {exc}", file=sys.stderr)
        return 2
    return 0


def _demo_environment(data_dir: Path, count: int) -> None:
    """Generate the demo corpus (once per count) and point the settings at it."""
    from mta_pipeline.demo.corpus import generate_corpus

    demo_dir = data_dir / config.DEMO_DIR
    stamp = demo_dir / f"corpus-{count}.done"
    archive = demo_dir / "midis_demo.zip"
    metadata = demo_dir / "giantmidi_metadata.csv"
    if not (stamp.exists() and archive.exists() and metadata.exists()):
        print(f"generating the demo corpus ({count} MIDI files) in {demo_dir} ...")
        started = time.perf_counter()
        for old in demo_dir.glob("corpus-*.done"):
            old.unlink()
        corpus = generate_corpus(demo_dir, count=count)
        archive, metadata = corpus.archive_path, corpus.metadata_path
        stamp.touch()
        print(f"  done in {time.perf_counter() - started:.1f}s")
    os.environ[config.GIANTMIDI_ARCHIVE_URL] = str(archive)
    os.environ[config.GIANTMIDI_METADATA_URL] = str(metadata)


@contextmanager
def _demo_youtube(demo_dir: Path) -> Iterator[str]:
    """Start the offline YouTube emulator, point the settings at it, stop it afterwards."""
    from mta_pipeline.demo.youtube_emulator import YouTubeEmulator

    titles = _demo_titles(demo_dir / "giantmidi_metadata.csv")
    emulator = YouTubeEmulator.from_env(api_keys=(config.DEMO_API_KEY,), titles=titles)
    endpoint = emulator.start()
    os.environ[config.YOUTUBE_API_ENDPOINT] = endpoint
    os.environ[config.YOUTUBE_API_KEY] = config.DEMO_API_KEY
    try:
        yield endpoint
    finally:
        emulator.stop()


def _demo_titles(metadata: Path) -> dict[str, str]:
    """The demo videos' YouTube titles, so the emulator's videos match the corpus."""
    from mta_pipeline.core.metadata import read_metadata

    df, _ = read_metadata(metadata.read_text(encoding="utf-8"))
    known = df.dropna(subset=["youtube_id", "youtube_title"])
    return dict(zip(known["youtube_id"], known["youtube_title"], strict=True))


def cmd_demo(args: argparse.Namespace) -> int:
    from mta_pipeline.definitions import defs
    from mta_pipeline.runner import materialize

    data_dir = config.data_dir()
    os.environ[config.MTA_DATA_DIR] = str(data_dir)
    _demo_environment(data_dir, args.count)
    started = time.perf_counter()
    with _demo_youtube(data_dir / config.DEMO_DIR) as endpoint:
        print(f"YouTube Data API emulator listening on {endpoint}")
        print("materializing every asset for every shard ...")
        with _instance() as instance:
            outcome = materialize(defs, instance, "*")
    if not outcome.ok:
        return _report_failures(outcome.failures)
    print(f"\ndemo finished in {time.perf_counter() - started:.1f}s ({outcome.runs} runs)")
    print(f"  DuckDB catalog : {config.duckdb_path()}")
    print(f"  lake (Parquet) : {config.lake_url()}")
    print(f"  MIDI files     : {data_dir / config.MIDI_DIR}")
    print(f"  Dagster home   : {os.environ[config.DAGSTER_HOME]}  (browse it with `make ui`)")
    _print_youtube_summary()
    print(f'\nexample: mta query "{" ".join(EXAMPLE_QUERY.split())}"')
    return cmd_query(argparse.Namespace(sql=EXAMPLE_QUERY))


def _print_youtube_summary() -> None:
    from mta_pipeline.resources.catalog import DuckDBCatalog

    catalog = DuckDBCatalog()
    videos = catalog.scalar(f"SELECT count(*) FROM {config.T_YOUTUBE_VIDEOS}", default=0)
    ok = catalog.scalar(
        f"SELECT count(*) FROM {config.T_YOUTUBE_VIDEOS} WHERE status = 'ok'", default=0
    )
    comments = catalog.scalar(f"SELECT count(*) FROM {config.T_YOUTUBE_COMMENTS}", default=0)
    units = catalog.scalar(f"SELECT sum(units) FROM {config.T_YOUTUBE_QUOTA}", default=0)
    per_video = units / videos if videos else 0
    print(
        f"  YouTube        : {videos} videos ({ok} available), {comments} comments, "
        f"{units} quota units ({per_video:.3f} per video)"
    )


def cmd_ui(args: argparse.Namespace) -> int:
    """Start `dagster dev` (webserver + daemon) on workspace.yaml. Without GIANTMIDI_ARCHIVE_URL
    the demo corpus is used and, without YOUTUBE_API_KEY, the YouTube emulator runs beside the UI
    for as long as it does, so runs launched from the UI work offline as `make demo` does."""
    _ensure_dagster_home()
    demo = config.data_dir() / config.DEMO_DIR
    demo_mode = not config.env(config.GIANTMIDI_ARCHIVE_URL) and (demo / "midis_demo.zip").exists()
    if demo_mode:
        print(f"GIANTMIDI_ARCHIVE_URL is not set: using the demo corpus in {demo}")
        os.environ[config.GIANTMIDI_ARCHIVE_URL] = str(demo / "midis_demo.zip")
        os.environ[config.GIANTMIDI_METADATA_URL] = str(demo / "giantmidi_metadata.csv")
    os.environ[config.MTA_DATA_DIR] = str(config.data_dir())
    root = Path(__file__).resolve().parent.parent
    dagster = Path(sys.executable).with_name("dagster")
    workspace = str(root / "workspace.yaml")
    argv = [str(dagster), "dev", "-w", workspace, "-h", args.host, "-p", str(args.port)]
    if not (demo_mode and not config.env(config.YOUTUBE_API_KEY)):
        os.execv(argv[0], argv)
    with _demo_youtube(demo) as endpoint:
        print(f"YOUTUBE_API_KEY is not set: YouTube Data API emulator on {endpoint}")
        child = subprocess.Popen(argv)
        try:
            return child.wait()
        except KeyboardInterrupt:
            child.send_signal(signal.SIGINT)
            return child.wait()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mta", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the whole pipeline on the generated offline demo")
    demo.add_argument("--count", type=int, default=200, help="good MIDI files to generate")
    demo.set_defaults(func=cmd_demo)
    mat = sub.add_parser("materialize", help="materialize assets in-process, shard by shard")
    mat.add_argument("--select", default="*", help="Dagster asset selection, e.g. '*midi_features'")
    mat.add_argument("--shard", action="append", help="shard key (repeatable); default: all")
    mat.add_argument(
        "--all",
        action="store_true",
        help="run every selected shard, even those Dagster reports up to date",
    )
    mat.add_argument(
        "--force",
        action="store_true",
        help="YouTube assets fetch again even what was scraped within MTA_YOUTUBE_REFRESH_DAYS",
    )
    mat.set_defaults(func=cmd_materialize)
    query = sub.add_parser("query", help="run SQL on the DuckDB catalog and print the result")
    query.add_argument("sql")
    query.set_defaults(func=cmd_query)
    ui = sub.add_parser("ui", help="start the Dagster UI and daemon on this project")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(func=cmd_ui)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    from mta_pipeline.core.download import ArchiveError
    from mta_pipeline.core.metadata import MetadataError
    from mta_pipeline.runner import SelectionError

    try:
        sys.exit(args.func(args))
    except (
        config.ConfigError,
        ArchiveError,
        MetadataError,
        SelectionError,
        FileNotFoundError,
    ) as exc:
        print(f"mta {args.command}: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
