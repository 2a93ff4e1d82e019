"""The `mta` command: `mta demo`, `mta materialize`, `mta query`, `mta ui`.

Every command first reads `.env` from the current folder (Dagster's convention; `mta demo` writes
its settings there), so after `make demo` the other commands need nothing exported. User mistakes
(a missing setting, a bad selection, bad SQL) end with one clear line and exit code 2, never a
stack trace; a failed asset run ends with its error message and exit code 1.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import yaml

from mta_pipeline import config, dotenv_file
from mta_pipeline.atomic import atomic_write

if TYPE_CHECKING:
    from mta_pipeline.lake import Lake
    from mta_pipeline.resources.storage import Storage

EXAMPLE_QUERY = """\
SELECT f.surname, count(*) AS files, round(avg(x.duration_s), 1) AS avg_duration_s,
       round(avg(x.n_notes)) AS avg_notes
FROM midi_files f JOIN midi_features x USING (vid)
GROUP BY f.surname ORDER BY files DESC, f.surname LIMIT 5"""
# `describe` is a DuckDB keyword, so the column of that name must be quoted.
DESCRIBE_QUERY = 'SELECT vid, "describe" FROM dataset LIMIT 3'

NEXT_STEPS = """next, from this folder (the settings come from {settings}):
  mta materialize     # nothing to do: every shard is up to date, so it runs nothing
  make ui             # the Dagster UI with the demo's runs, on http://127.0.0.1:3000
  mta query '{query}'   # "describe" is a DuckDB keyword: quote it
  dg check defs       # or: dagster asset list -m mta_pipeline.definitions"""

# Set to 1 in the `.env` that `mta demo` writes: `mta materialize` and `mta ui` then serve the
# YouTube emulator at YOUTUBE_API_ENDPOINT while they run.


# Keys of dagster.yaml that choose where runs, event logs and schedules are stored.
STORAGE_KEYS = ("storage", "run_storage", "event_log_storage", "schedule_storage")
POSTGRES_STORAGE = {"postgres": {"postgres_url": {"env": config.MTA_DAGSTER_POSTGRES_URL}}}


def dagster_home() -> Path:
    """DAGSTER_HOME as an absolute path: Dagster refuses a relative one, so a relative value is
    taken from the current folder, as a shell would; unset, `<absolute data dir>/dagster`."""
    own_home = config.env(config.DAGSTER_HOME)
    if own_home is None:
        return config.data_dir() / config.DAGSTER_DIR
    return Path(own_home).expanduser().resolve()


def _ensure_dagster_home() -> Path:
    """Export DAGSTER_HOME (absolute); the default `$MTA_DATA_DIR/dagster` gets the repo's
    dagster.yaml written in.

    The default home is mta's even when a variable names it (the `.env` of `mta demo` does), so its
    dagster.yaml follows the repo's. With MTA_DAGSTER_POSTGRES_URL set, that dagster.yaml also
    stores runs, event logs and schedules in Postgres. Any other DAGSTER_HOME is the user's and is
    left alone; if it cannot honour MTA_DAGSTER_POSTGRES_URL (no storage section), that is a
    ConfigError, not a silent fallback to SQLite.
    """
    home = dagster_home()
    own_home = home != config.data_dir() / config.DAGSTER_DIR
    home.mkdir(parents=True, exist_ok=True)
    repo_yaml = Path(__file__).resolve().parent.parent / "dagster.yaml"
    postgres = config.env(config.MTA_DAGSTER_POSTGRES_URL) is not None
    if not own_home and repo_yaml.exists():
        text = dagster_yaml(repo_yaml, postgres=postgres)
        atomic_write(home / "dagster.yaml", text.encode("utf-8"))
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


def _instance():
    import dagster as dg

    _ensure_dagster_home()
    return dg.DagsterInstance.get()


def _storage() -> Storage:
    """The storage resource as the definitions configure it, from the same settings (imported
    here: `mta query` must not pay for Dagster's import)."""
    from mta_pipeline.resources.storage import Storage

    return Storage(
        data_dir=str(config.data_dir()),
        lake_url=config.env(config.MTA_LAKE_URL) or "",
        s3_endpoint_url=config.env(config.MTA_S3_ENDPOINT_URL) or "",
    )


def _say_catalog_rebuilds() -> None:
    """The one-line notice of a catalog rebuilt from the lake goes to stderr."""
    logger = logging.getLogger("mta_pipeline.resources.catalog")
    if logger.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("mta: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)  # a catalog found missing is said too, not only a damaged one
    logger.propagate = False


def cmd_materialize(args: argparse.Namespace) -> int:
    with demo_youtube_if_configured():
        from mta_pipeline.definitions import defs
        from mta_pipeline.runner import materialize

        _say_catalog_rebuilds()
        with _instance() as instance:
            outcome = materialize(
                defs,
                instance,
                args.select,
                args.shard,
                force_refresh=args.force,
                only_stale=not args.all,
            )
        # The runs wrote the lake only; this machine's catalog follows now (a lost or damaged
        # one is rebuilt), so `mta query` and a DuckDB client opening mta.duckdb see the result.
        storage = _storage()
        try:
            print(f"catalog {storage.catalog_path}: {storage.sync_catalog().summary()}")
        except Exception as exc:  # the runs' outcome stands; `mta query` syncs again
            print(
                f"mta materialize: warning: the catalog {storage.catalog_path} was not brought "
                f"up to date with the lake ({one_line(exc)}); `mta query` will try again",
                file=sys.stderr,
            )
        return _report_failures(outcome.failures) if not outcome.ok else 0


def cmd_catalog_rebuild(args: argparse.Namespace) -> int:
    """Rebuild every catalog table from the lake, then print each table's row count."""
    storage = _storage()
    started = time.monotonic()
    tables = storage.rebuild_catalog()
    print(
        f"rebuilt {storage.catalog_path} from {storage.lake_root}: {tables} tables "
        f"in {time.monotonic() - started:.1f}s"
    )
    for table, rows in storage.row_counts().items():
        print(f"  {table:<24} {rows:>9,} rows")
    return 0


def _sync_for_query(lake: Lake) -> bool:
    """Bring the catalog up to date with the lake before a query; False (with one line said)
    when there is nothing to query. A lake that cannot be read leaves an existing catalog to
    answer as last synced, with a warning: the query still answers, and says from what."""
    from mta_pipeline import lake_index
    from mta_pipeline.lake import LakeError

    path = config.duckdb_path()
    existed = path.exists() and path.stat().st_size > 0
    try:
        # Every table read through (0.2 s at full size): a truncated catalog is rebuilt here,
        # not found half-way through the user's query.
        _, report = lake_index.on_synced(path, lake, lambda conn: None, read_through=True)
    except LakeError as exc:
        if not existed or not path.exists():
            raise
        print(
            f"mta query: warning: {one_line(exc)}; answering from the catalog {path} as last "
            "brought up to date",
            file=sys.stderr,
        )
        return True
    if report.tables == 0:
        print(
            f"mta query: the lake at {lake.root} holds no tables yet; run `mta demo` or "
            "`mta materialize` first.",
            file=sys.stderr,
        )
        return False
    return True


def _report_failures(failures: list[str]) -> int:
    print(f"{len(failures)} run(s) failed:", file=sys.stderr)
    for failure in failures:
        print(f"  {failure}", file=sys.stderr)
    return 1


def cmd_query(args: argparse.Namespace) -> int:
    """Read-only SQL on the catalog (brought up to date with the lake first) or, with `--lake`,
    on views straight over the lake's Parquet; sandboxed unless `--allow-files`: it reads the
    lake and no other file, and writes none (see query_sandbox). Imports DuckDB, fsspec and the
    lake index but no Dagster, so it starts fast; the relation is printed and dropped before
    the connection closes."""
    import duckdb

    from mta_pipeline import lake_index, query_sandbox
    from mta_pipeline.lake import Lake
    from mta_pipeline.resources.catalog import is_damaged, open_catalog

    sandboxed = not getattr(args, "allow_files", False)  # `mta demo` passes only `sql`
    _say_catalog_rebuilds()
    lake = Lake(config.lake_url(), config.env(config.MTA_S3_ENDPOINT_URL) or "")

    def answer(conn: duckdb.DuckDBPyConnection) -> None:
        if sandboxed:
            query_sandbox.confine(conn, args.sql, lake.root)
        rel = conn.sql(args.sql)
        print(rel if rel is not None else "ok")
        del rel

    try:
        if getattr(args, "lake", False):
            with duckdb.connect() as conn:
                lake_index.lake_views(conn, lake)
                answer(conn)
        else:
            if not _sync_for_query(lake):
                return 2
            with open_catalog(config.duckdb_path(), read_only=True) as conn:
                if not lake.is_local:  # `read_parquet('s3://…')` in the SQL reads the lake too
                    conn.register_filesystem(lake.fs())
                answer(conn)
    except query_sandbox.FilesRefusedError as exc:
        print(f"mta query: {exc}", file=sys.stderr)
        return 2
    except duckdb.Error as exc:
        line = query_sandbox.error_line(exc, config.lake_url()) if sandboxed else one_line(exc)
        if is_damaged(exc):
            line += "; the catalog file is damaged: `mta catalog rebuild` rebuilds it from the lake"
        print(f"mta query: {line}", file=sys.stderr)
        return 2
    return 0


def _demo_environment(data_dir: Path, count: int, realistic: bool = False) -> tuple[Path, Path]:
    """Generate the demo corpus (once per count and kind) and point the settings at it;
    (archive, metadata)."""
    from mta_pipeline.demo.corpus import ARCHIVE_NAME, METADATA_NAME, generate_corpus

    demo_dir = data_dir / config.DEMO_DIR
    stamp = demo_dir / f"corpus-{count}{'-realistic' if realistic else ''}.done"
    archive = demo_dir / ARCHIVE_NAME
    metadata = demo_dir / METADATA_NAME
    if not (stamp.exists() and archive.exists() and metadata.exists()):
        kind = "realistic " if realistic else ""
        print(f"generating the demo corpus ({count} {kind}MIDI files) in {demo_dir} ...")
        started = time.perf_counter()
        for old in demo_dir.glob("corpus-*.done"):
            old.unlink()
        corpus = generate_corpus(demo_dir, count=count, realistic=realistic)
        archive, metadata = corpus.archive_path, corpus.metadata_path
        stamp.touch()
        print(f"  done in {time.perf_counter() - started:.1f}s")
    os.environ[config.GIANTMIDI_ARCHIVE_URL] = str(archive)
    os.environ[config.GIANTMIDI_METADATA_URL] = str(metadata)
    return archive, metadata


def demo_settings(archive: Path, metadata: Path, endpoint: str) -> dict[str, str]:
    """What `mta demo` writes to `.env`: every path absolute, so the file works from any folder
    and for `dagster dev` and `dg` as well as `mta`."""
    return {
        config.MTA_DATA_DIR: str(config.data_dir()),
        config.DAGSTER_HOME: str(dagster_home()),
        config.GIANTMIDI_ARCHIVE_URL: str(archive.resolve()),
        config.GIANTMIDI_METADATA_URL: str(metadata.resolve()),
        config.YOUTUBE_API_ENDPOINT: endpoint,
        config.YOUTUBE_API_KEY: config.DEMO_API_KEY,
        config.MTA_DEMO: "1",
    }


def save_demo_settings(folder: Path, settings: dict[str, str]) -> Path:
    """Write the demo's settings to `folder/.env`, or beside the user's own `.env` (never
    modified), saying so in one line; the file written."""
    saved = dotenv_file.save_demo_settings(folder, settings)
    if saved.beside_own:
        print(
            f"{folder / dotenv_file.ENV_FILE} is your own file and was left alone; the demo's "
            f"settings are in {saved.path}: add its lines to your .env to use the demo without "
            "`mta demo`."
        )
    return saved.path


def _forget_own_demo_settings(from_dotenv: dict[str, str]) -> None:
    """Drop the settings that came from a `.env` written by `mta demo`: the demo recomputes them,
    and a stale one (an old DAGSTER_HOME) must not pass for the user's choice."""
    if dotenv_file.is_demo_file(Path.cwd() / dotenv_file.ENV_FILE):
        for name, value in from_dotenv.items():
            if os.environ.get(name) == value:
                del os.environ[name]


def _loopback_port(endpoint: str | None) -> int | None:
    """The port of an `http://127.0.0.1:<port>` (or localhost) endpoint, else None."""
    url = urlsplit(endpoint or "")
    if url.scheme != "http" or url.hostname not in ("127.0.0.1", "localhost"):
        return None
    try:
        return url.port
    except ValueError:
        return None


@contextmanager
def demo_youtube_if_configured(*, fixed_port: bool = False) -> Iterator[str | None]:
    """In demo mode (MTA_DEMO=1, from the `.env` that `mta demo` writes), serve the YouTube
    emulator on the port of YOUTUBE_API_ENDPOINT for the duration of the block, so `mta
    materialize` after `make demo` works with nothing exported; otherwise do nothing (yields None).

    When that port is taken, a free one is used and exported for this process; with `fixed_port`
    (`mta ui`, whose Dagster processes read YOUTUBE_API_ENDPOINT from `.env` themselves) that is a
    ConfigError instead. A key other than the demo's is refused rather than sent to a local port.
    """
    if config.env(config.MTA_DEMO) != "1":
        yield None
        return
    if config.env(config.YOUTUBE_API_KEY) not in (None, config.DEMO_API_KEY):
        raise config.ConfigError(
            f"{config.MTA_DEMO}=1 (set by `mta demo` in .env) but {config.YOUTUBE_API_KEY} is not "
            "the "
            f"demo's key: delete .env to use your own settings, or unset {config.YOUTUBE_API_KEY} "
            "to run the demo."
        )
    port = _loopback_port(config.env(config.YOUTUBE_API_ENDPOINT))
    with _demo_youtube(config.data_dir() / config.DEMO_DIR, port, fixed_port=fixed_port) as url:
        print(f"demo mode ({config.MTA_DEMO}=1): YouTube Data API emulator on {url}")
        yield url


@contextmanager
def _demo_youtube(
    demo_dir: Path, port: int | None = None, *, fixed_port: bool = False
) -> Iterator[str]:
    """Start the offline YouTube emulator on `port` (default: the emulator's own, 8765; a free
    one if it is taken, unless `fixed_port`), point the settings at it, stop it afterwards."""
    from mta_pipeline.demo.corpus import METADATA_NAME
    from mta_pipeline.demo.youtube_emulator import DEFAULT_PORT, YouTubeEmulator

    port = port or DEFAULT_PORT
    metadata = demo_dir / METADATA_NAME
    if not metadata.exists():
        raise config.ConfigError(
            f"the demo corpus is missing ({metadata} not found): run `mta demo` again, or "
            "delete .env to use your own settings."
        )
    titles = _demo_titles(metadata)
    emulator = YouTubeEmulator.from_env(api_keys=(config.DEMO_API_KEY,), titles=titles)
    try:
        endpoint = emulator.start(port)
    except OSError as exc:
        if fixed_port:
            raise config.ConfigError(
                f"the YouTube emulator cannot listen on port {port} of "
                f"{config.YOUTUBE_API_ENDPOINT} ({exc.strerror}): stop what holds it (another "
                "`mta` command?), or run `mta demo` again to choose a free port."
            ) from None
        endpoint = emulator.start(0)
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
    """Generate the corpus, serve the emulator, save the settings to `.env` (before the run, so
    an interrupted demo can be finished with `mta materialize`), materialize everything."""
    _forget_own_demo_settings(getattr(args, "from_dotenv", {}))
    from mta_pipeline.definitions import defs
    from mta_pipeline.runner import materialize

    data_dir = config.data_dir()
    os.environ[config.MTA_DATA_DIR] = str(data_dir)
    archive, metadata = _demo_environment(data_dir, args.count, args.realistic)
    started = time.perf_counter()
    with _demo_youtube(data_dir / config.DEMO_DIR) as endpoint:
        os.environ[config.MTA_DEMO] = "1"
        settings_file = save_demo_settings(Path.cwd(), demo_settings(archive, metadata, endpoint))
        print(f"YouTube Data API emulator listening on {endpoint}")
        print(f"settings saved to {settings_file}")
        print("materializing every asset for every shard ...")
        with _instance() as instance:
            outcome = materialize(defs, instance, "*")
    if not outcome.ok:
        return _report_failures(outcome.failures)
    print(f"\ndemo finished in {time.perf_counter() - started:.1f}s ({outcome.runs} runs)")
    _storage().sync_catalog()  # the runs wrote the lake; the catalog follows for the queries
    release = f"{config.lake_url().rstrip('/')}/{config.RELEASE_DIR}"
    print(f"  release        : {release}  (datasets.load_dataset({release!r}))")
    print(f"  TSV dataset    : {release}/{config.TSV_FILE}")
    print(f"  dataset card   : {release}/{config.DATASET_CARD}")
    print(f"  tokenizer      : {release}/{config.TOKENIZER_FILE}  (decodes the `tokens` column)")
    print(f"  DuckDB catalog : {config.duckdb_path()}")
    print(f"  lake (Parquet) : {config.lake_url()}")
    print(f"  MIDI bytes     : {config.lake_url()}/{config.MIDI_DIR}/shard=<k>/part.parquet")
    print(f"  Dagster home   : {os.environ[config.DAGSTER_HOME]}")
    print(f"  settings       : {settings_file}")
    _print_youtube_summary()
    print(f'\nexample: mta query "{" ".join(EXAMPLE_QUERY.split())}"')
    code = cmd_query(argparse.Namespace(sql=EXAMPLE_QUERY))
    print(NEXT_STEPS.format(settings=settings_file.name, query=DESCRIBE_QUERY))
    return code


def _print_youtube_summary() -> None:
    from mta_pipeline.resources.catalog import open_catalog

    with open_catalog(config.duckdb_path(), read_only=True) as conn:
        videos, ok = conn.execute(
            f"SELECT count(*), count(*) FILTER (status = 'ok') FROM {config.T_YOUTUBE_VIDEOS}"
        ).fetchone()
        (comments,) = conn.execute(f"SELECT count(*) FROM {config.T_YOUTUBE_COMMENTS}").fetchone()
        (units,) = conn.execute(
            f"SELECT coalesce(sum(units), 0) FROM {config.T_YOUTUBE_QUOTA}"
        ).fetchone()
    per_video = units / videos if videos else 0
    print(
        f"  YouTube        : {videos} videos ({ok} available), {comments} comments, "
        f"{units} quota units ({per_video:.3f} per video)"
    )


def cmd_ui(args: argparse.Namespace) -> int:
    """Start `dg dev` (Dagster's webserver + daemon; `dagster dev` is superseded by it) on
    workspace.yaml. In demo mode (MTA_DEMO=1 in
    the `.env` of `mta demo`) the YouTube emulator runs beside the UI for as long as it does, so
    runs launched from the UI work offline as `make demo` does. Without GIANTMIDI_ARCHIVE_URL the
    demo corpus is used if there is one and, without YOUTUBE_API_KEY too, that is demo mode."""
    from mta_pipeline.demo.corpus import ARCHIVE_NAME, METADATA_NAME

    _ensure_dagster_home()
    demo = config.data_dir() / config.DEMO_DIR
    if not config.env(config.GIANTMIDI_ARCHIVE_URL) and (demo / ARCHIVE_NAME).exists():
        print(f"GIANTMIDI_ARCHIVE_URL is not set: using the demo corpus in {demo}")
        os.environ[config.GIANTMIDI_ARCHIVE_URL] = str(demo / ARCHIVE_NAME)
        os.environ[config.GIANTMIDI_METADATA_URL] = str(demo / METADATA_NAME)
        if not config.env(config.YOUTUBE_API_KEY):
            os.environ[config.MTA_DEMO] = "1"
    os.environ[config.MTA_DATA_DIR] = str(config.data_dir())
    root = Path(__file__).resolve().parent.parent
    dg = Path(sys.executable).with_name("dg")
    workspace = str(root / "workspace.yaml")
    argv = [str(dg), "dev", "-w", workspace, "-h", args.host, "-p", str(args.port)]
    if config.env(config.MTA_DEMO) != "1":
        os.execv(argv[0], argv)
    with demo_youtube_if_configured(fixed_port=True):
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
    demo.add_argument(
        "--realistic",
        action="store_true",
        help="MIDI files at real GiantMIDI-Piano size (3,800 notes, 7 minutes on average)",
    )
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
    catalog = sub.add_parser("catalog", help="the DuckDB catalog: `mta catalog rebuild`")
    catalog_sub = catalog.add_subparsers(dest="action", required=True)
    rebuild = catalog_sub.add_parser(
        "rebuild", help="rebuild every DuckDB table from the lake (the store of record)"
    )
    rebuild.set_defaults(func=cmd_catalog_rebuild)
    query = sub.add_parser(
        "query",
        help="run SQL on the DuckDB catalog (brought up to date with the lake first) and print "
        "the result",
    )
    query.add_argument("sql")
    query.add_argument(
        "--lake",
        action="store_true",
        help="no catalog: the tables are views reading the lake's Parquet where it is (through "
        "s3fs on S3), slower a query but nothing to load",
    )
    query.add_argument(
        "--allow-files",
        action="store_true",
        help="let the SQL read and write any file you can (by default it reads only the catalog "
        "and the lake, and writes no file)",
    )
    query.set_defaults(func=cmd_query)
    ui = sub.add_parser("ui", help="start the Dagster UI and daemon on this project")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(func=cmd_ui)
    return parser


# The exceptions that are user mistakes (exit 2, one line), by module and name: matching names
# instead of importing the classes spares `mta query` the import of the runner, hence Dagster.
USER_ERRORS = frozenset(
    {
        ("mta_pipeline.config", "ConfigError"),
        ("mta_pipeline.core.download", "ArchiveError"),
        ("mta_pipeline.core.metadata", "MetadataError"),
        ("mta_pipeline.runner", "SelectionError"),
        ("mta_pipeline.resources.catalog", "CatalogDamagedError"),
        ("mta_pipeline.resources.catalog", "CatalogBusyError"),
        ("mta_pipeline.lake", "LakeError"),
        ("builtins", "FileNotFoundError"),
    }
)


def is_user_error(exc: BaseException) -> bool:
    return any((cls.__module__, cls.__name__) in USER_ERRORS for cls in type(exc).__mro__)


def one_line(exc: BaseException) -> str:
    """The first non-blank line of the message: a user mistake is reported in exactly one line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def run(args: argparse.Namespace) -> int:
    """The command's exit code; a user mistake is one line on stderr and 2, never a traceback."""
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if not is_user_error(exc):
            raise
        print(f"mta {args.command}: {one_line(exc)}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> None:
    """Load `.env` from the current folder (the environment wins), run the command, exit.

    The command runs in its own frame and a garbage collection follows it, so every DuckDB
    connection and relation it made (including those held by a caught exception's traceback)
    is released while DuckDB is still loaded, not left for interpreter shutdown.
    """
    args = build_parser().parse_args(argv)
    args.from_dotenv = dotenv_file.load(Path.cwd())
    code = run(args)
    gc.collect()
    sys.exit(code)
