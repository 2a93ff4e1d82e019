"""Lake-only runs (issue 13) against today's local disk, at full size: whole graph, rerun, queries.

    .venv/bin/python -m bench.lake_only --count 10855 [--old-tree PATH] [--new-tree PATH] [--write]

One realistic corpus of `--count` files (`generate_corpus(..., realistic=True)`, what `mta demo
--realistic` writes; generated once into `--cache` and reused) serves three configurations:

- A, today's local disk: the code of `--old-tree` (a worktree at 03c66e1; made, and removed
  afterwards, when not given): archive and extracted MIDI files on local disk, every step
  publishing into the local DuckDB catalog; local lake (`$MTA_DATA_DIR/lake`);
- B, lake-only (`--new-tree`, default this repository): archive and MIDI bytes in the lake, steps
  write the lake only, the catalog synced from it when read; local lake;
- C, the same code with `MTA_LAKE_URL=s3://lake/C` on a moto server (`moto_server`, its own
  process, on loopback).

Every figure is the wall time of one `mta` command in a new process, run from an empty folder
(no `.env`) with `PYTHONPATH=<tree>`, so the tree's own `mta_pipeline` is imported (each child
prints the module's file, and the bench stops if it is not under the tree). The YouTube Data API
emulator runs in this process (one per configuration, `--latency-ms`, 0 by default, so the full
run measures the pipeline rather than the emulator's waits; the demo's titles). Per configuration:

1. `mta materialize` on a new data dir (the whole graph);
2. `mta materialize` again, nothing changed;
3. `mta query EXAMPLE_QUERY` (cli.py's, midi_files joined with midi_features) on the run's data
   dir: A's catalog as the run left it, B/C's as the run synced it;
4. from a new, empty `MTA_DATA_DIR` pointed at the configuration's lake: A `mta catalog rebuild`
   then `mta query` (the old code has no sync: its queries need a catalog); B/C `mta query`
   (syncs the empty catalog from the lake, then answers), then `mta query` again (synced);
5. B/C: `mta query --lake` (views over the lake's Parquet, no catalog);
6. one shard's `midi_features` (`mta materialize --shard 05 --select midi_features --all`) on a
   new Dagster instance, so nothing is reused and every file is parsed: A in its data dir (its
   MIDI files on local disk), B/C from a new, empty data dir (the shard's MIDI bytes read from
   the lake). The step's own duration comes from the instance's step stats; the command's wall
   time includes B/C's catalog sync at its end.

The 1-minute load average is printed beside each figure (the machine may be shared). `--write`
replaces the section "Lake-only runs (issue 13)" in bench/BENCHMARKS.md with the results.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OLD_COMMIT = "03c66e1"
SECTION = "## Lake-only runs (issue 13)"
BUCKET = "lake"
SHARD = "05"
TABLE_LINE_STARTS = "┌│├└"  # how DuckDB prints a relation
# Settings the children must not inherit from this shell: each command gets exactly its own.
OWN_SETTINGS = ("MTA_", "GIANTMIDI_", "YOUTUBE_", "DAGSTER_", "AWS_", "PYTHONPATH")
# The child: `mta <argv>` as the `mta` script runs it, after saying which package it imported.
CHILD = (
    "import sys, mta_pipeline\n"
    "print('mta_pipeline from', mta_pipeline.__file__, flush=True)\n"
    "from mta_pipeline.cli import main\n"
    "main(sys.argv[1:])\n"
)
FULL, RERUN, QUERY, EMPTY, REBUILD, EMPTY_QUERY, SYNCED, LAKE, STEP, STEP_CMD = (
    "full run of the whole graph (`mta materialize`, new data dir)",
    "no-change rerun (`mta materialize` again)",
    "`mta query`, the run's data dir (A: its catalog; B/C: synced at the run's end)",
    "`mta query` from a new empty data dir (A: `mta catalog rebuild` + `mta query`)",
    "  A: `mta catalog rebuild` alone",
    "  A: `mta query` after it",
    "`mta query` again in that dir (catalog synced)",
    "`mta query --lake` (views over the lake's Parquet, no catalog)",
    f"one shard's `midi_features` step (shard {SHARD}, new instance; step stats)",
    f"  the command (`mta materialize --shard {SHARD} --select midi_features --all`)",
)
ROWS = (FULL, RERUN, QUERY, EMPTY, REBUILD, EMPTY_QUERY, SYNCED, LAKE, STEP, STEP_CMD)


@dataclass
class Figure:
    seconds: float
    load: float  # 1-minute load average when it started


@dataclass
class Config:
    name: str
    title: str
    tree: Path
    lake_url: str = ""  # empty: the default, `$MTA_DATA_DIR/lake`
    figures: dict[str, Figure] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)


def load1() -> float:
    return os.getloadavg()[0]


def base_env(s3_endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(OWN_SETTINGS)}
    if s3_endpoint:
        env.update(
            AWS_ACCESS_KEY_ID="x",
            AWS_SECRET_ACCESS_KEY="x",
            AWS_DEFAULT_REGION="us-east-1",
            MTA_S3_ENDPOINT_URL=s3_endpoint,
        )
    return env


def mta(cfg: Config, argv: list[str], env: dict[str, str], cwd: Path, name: str) -> Figure:
    """`mta <argv>` with `cfg.tree`'s package, from `cwd`, timed; its output to `cwd/<name>.log`;
    the bench stops when it fails or imported another tree."""
    cwd.mkdir(parents=True, exist_ok=True)
    log = cwd / f"{name}.log"
    load = load1()
    started = time.perf_counter()
    with log.open("w") as out:
        code = subprocess.call(
            [sys.executable, "-c", CHILD, *argv],
            cwd=cwd,
            env={**env, "PYTHONPATH": str(cfg.tree)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    seconds = time.perf_counter() - started
    text = log.read_text(errors="replace")
    first = text.splitlines()[0] if text else ""
    expected = str(cfg.tree / "mta_pipeline" / "__init__.py")
    if first != f"mta_pipeline from {expected}":
        sys.exit(f"bench: {cfg.name} `mta {' '.join(argv)}` imported {first!r}, not {expected}")
    if code != 0:
        tail = "\n".join(text.splitlines()[-20:])
        sys.exit(f"bench: {cfg.name} `mta {' '.join(argv)}` failed (exit {code}), {log}:\n{tail}")
    print(f"  {cfg.name} {name}: {seconds:.1f} s (load {load:.2f})", flush=True)
    return Figure(seconds, load)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto(folder: Path) -> tuple[subprocess.Popen, str]:
    """moto's S3 server in its own process on loopback, with the bucket made."""
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=(folder / "moto.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    s3fs_fs(endpoint).mkdir(BUCKET)
    return server, endpoint


def s3fs_fs(endpoint: str):
    import s3fs

    os.environ.update(AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return s3fs.S3FileSystem(
        client_kwargs={"endpoint_url": endpoint}, skip_instance_cache=True, use_listings_cache=False
    )


def lake_contents(url: str, endpoint: str) -> dict[str, tuple[int, int]]:
    """Bytes and objects under the lake, by top folder."""
    if url.startswith("s3://"):
        found = s3fs_fs(endpoint).find(url.removeprefix("s3://"), detail=True)
        prefix = url.removeprefix("s3://").rstrip("/") + "/"
        items = [(p.removeprefix(prefix), int(i["size"])) for p, i in found.items()]
    else:
        root = Path(url)
        items = [
            (str(p.relative_to(root)), p.stat().st_size) for p in root.rglob("*") if p.is_file()
        ]
    out: dict[str, tuple[int, int]] = {}
    for rel, size in items:
        top = rel.split("/", 1)[0] if "/" in rel else "(top)"
        b, n = out.get(top, (0, 0))
        out[top] = (b + size, n + 1)
    return out


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def step_seconds(home: Path, asset: str) -> tuple[float, dict]:
    """The duration of the step materializing `asset` (the newest run in the instance at
    `home`) from the instance's step stats, and the step's materialization metadata."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home)) as instance:
        records = instance.fetch_materializations(dg.AssetKey(asset), limit=1).records
        if not records:
            sys.exit(f"bench: no materialization of {asset} in {home}")
        record = records[0]
        stats = instance.get_run_step_stats(record.run_id)
        meta = {k: v.value for k, v in record.asset_materialization.metadata.items()}
    times = [s.end_time - s.start_time for s in stats if s.start_time and s.end_time]
    return max(times), meta


def corpus_for(cache: Path, count: int) -> tuple[Path, Path]:
    """(archive, metadata) of the realistic corpus of `count` files, generated once."""
    from mta_pipeline.demo.corpus import ARCHIVE_NAME, METADATA_NAME, generate_corpus

    folder = cache / f"count-{count}-seed-0"
    if not (folder / ".done").exists():
        started = time.perf_counter()
        corpus = generate_corpus(folder, count=count, seed=0, realistic=True)
        (folder / ".done").write_text(f"{len(corpus.good)}\n")
        print(f"corpus of {count} realistic files in {time.perf_counter() - started:.0f} s")
    return folder / ARCHIVE_NAME, folder / METADATA_NAME


def run_config(
    cfg: Config,
    work: Path,
    archive: Path,
    metadata: Path,
    latency_ms: float,
    s3_endpoint: str,
) -> None:
    from mta_pipeline import config
    from mta_pipeline.cli import EXAMPLE_QUERY, _demo_titles
    from mta_pipeline.demo.youtube_emulator import YouTubeEmulator

    print(f"{cfg.name}: {cfg.title}", flush=True)
    folder = work / cfg.name
    data = folder / "data"
    lake_url = cfg.lake_url or str(data / config.LAKE_DIR)
    env = base_env(s3_endpoint if cfg.lake_url.startswith("s3://") else "")
    env.update(
        {
            config.MTA_DATA_DIR: str(data),
            config.GIANTMIDI_ARCHIVE_URL: str(archive),
            config.GIANTMIDI_METADATA_URL: str(metadata),
            config.YOUTUBE_API_KEY: config.DEMO_API_KEY,
        }
    )
    if cfg.lake_url:
        env[config.MTA_LAKE_URL] = cfg.lake_url
    emulator = YouTubeEmulator(
        api_keys=(config.DEMO_API_KEY,),
        latency_s=latency_ms / 1000,
        titles=_demo_titles(metadata),
    )
    env[config.YOUTUBE_API_ENDPOINT] = emulator.start()
    try:
        cfg.figures[FULL] = mta(cfg, ["materialize"], env, folder, "full")
        cfg.notes["quota units"] = str(emulator.units_used)
        cfg.figures[RERUN] = mta(cfg, ["materialize"], env, folder, "rerun")
        cfg.notes["rerun quota units"] = str(emulator.units_used - int(cfg.notes["quota units"]))
    finally:
        emulator.stop()
    cfg.figures[QUERY] = mta(cfg, ["query", EXAMPLE_QUERY], env, folder, "query")
    cfg.notes["answer"] = answer_lines(folder / "query.log")

    empty = folder / "empty"
    empty_env = {**env, config.MTA_DATA_DIR: str(empty / "data"), config.MTA_LAKE_URL: lake_url}
    if cfg.name == "A":
        rebuild = mta(cfg, ["catalog", "rebuild"], empty_env, empty, "rebuild")
        after = mta(cfg, ["query", EXAMPLE_QUERY], empty_env, empty, "query")
        cfg.figures[REBUILD], cfg.figures[EMPTY_QUERY] = rebuild, after
        cfg.figures[EMPTY] = Figure(rebuild.seconds + after.seconds, rebuild.load)
    else:
        cfg.figures[EMPTY] = mta(cfg, ["query", EXAMPLE_QUERY], empty_env, empty, "query")
        cfg.figures[SYNCED] = mta(cfg, ["query", EXAMPLE_QUERY], empty_env, empty, "query-again")
        cfg.figures[LAKE] = mta(cfg, ["query", "--lake", EXAMPLE_QUERY], env, folder, "query-lake")
        for log in ("query.log", "query-again.log"):
            if answer_lines(empty / log) != cfg.notes["answer"]:
                cfg.notes["DIFFERENT ANSWER"] = str(empty / log)
        if answer_lines(folder / "query-lake.log") != cfg.notes["answer"]:
            cfg.notes["DIFFERENT ANSWER --lake"] = str(folder / "query-lake.log")

    shard = folder / "shard"
    home = shard / "dagster"
    home.mkdir(parents=True)
    shard_env = {**env, config.DAGSTER_HOME: str(home)}
    if cfg.name != "A":  # a new machine: empty data dir, the configuration's lake
        shard_env.update({config.MTA_DATA_DIR: str(shard / "data"), config.MTA_LAKE_URL: lake_url})
    argv = ["materialize", "--shard", SHARD, "--select", "midi_features", "--all"]
    cfg.figures[STEP_CMD] = mta(cfg, argv, shard_env, shard, "features")
    step_s, meta = step_seconds(home, config.T_MIDI_FEATURES)
    cfg.figures[STEP] = Figure(step_s, cfg.figures[STEP_CMD].load)
    cfg.notes["shard step"] = (
        f"{meta.get('parsed')} files parsed, {meta.get('reused')} reused, parse "
        f"{float(meta.get('seconds') or 0):.2f} s"
    )

    contents = lake_contents(lake_url, s3_endpoint)
    cfg.notes["lake"] = (
        f"{sum(b for b, _ in contents.values()) / 1e6:.1f} MB in "
        f"{sum(n for _, n in contents.values()):,} objects"
    )
    cfg.notes["lake by folder"] = ", ".join(
        f"{top} {b / 1e6:.1f} MB/{n}" for top, (b, n) in sorted(contents.items())
    )
    local = folder_bytes(data) - (folder_bytes(Path(lake_url)) if not cfg.lake_url else 0)
    cfg.notes["data dir outside the lake"] = f"{local / 1e6:.1f} MB"
    catalog = data / config.DUCKDB_FILE
    cfg.notes["catalog"] = f"{catalog.stat().st_size / 1e6:.1f} MB" if catalog.exists() else "-"


def answer_lines(log: Path) -> str:
    """The query's printed table: its box-drawn lines (DuckDB's progress bar, which a slow
    query prints on S3, is left out)."""
    lines = log.read_text(errors="replace").splitlines()
    return "\n".join(line for line in lines if line[:1] in TABLE_LINE_STARTS)


def git(*argv: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), *argv], capture_output=True, text=True, check=True
    ).stdout.strip()


def tree_label(tree: Path) -> str:
    commit = subprocess.run(
        ["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(tree), "status", "--porcelain", "--", "mta_pipeline"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return f"{commit}{' + uncommitted edits to mta_pipeline/' if dirty else ''} ({tree})"


def cell(fig: Figure | None) -> tuple[str, str]:
    return ("", "") if fig is None else (f"{fig.seconds:.1f}", f"{fig.load:.2f}")


def ratio(fig: Figure | None, base: Figure | None) -> str:
    return f"{fig.seconds / base.seconds:.2f}x" if fig and base else ""


def table(configs: list[Config]) -> list[str]:
    a = configs[0]
    head = ["wall seconds (load: 1-min average at its start)"]
    for c in configs:
        head += [f"{c.name} s", "load"]
    head += [f"{c.name}/A" for c in configs[1:]]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    for row in ROWS:
        if not any(row in c.figures for c in configs):
            continue
        cells = [row]
        for c in configs:
            cells += cell(c.figures.get(row))
        base = a.figures.get(QUERY if row in (SYNCED, LAKE) else row)
        cells += [ratio(c.figures.get(row), base) for c in configs[1:]]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def write_section(lines: list[str]) -> None:
    path = ROOT / "bench" / "BENCHMARKS.md"
    text = path.read_text(encoding="utf-8")
    start = text.find(SECTION)
    if start >= 0:
        end = text.find("\n## ", start + len(SECTION))
        text = text[:start].rstrip("\n") + ("\n\n" + text[end + 1 :] if end >= 0 else "")
    path.write_text(text.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote the section to {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_855)
    parser.add_argument("--old-tree", type=Path, help=f"a checkout of {OLD_COMMIT}")
    parser.add_argument("--new-tree", type=Path, default=ROOT, help="default: this repository")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="YouTube emulator latency")
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "mta_bench_lake_only"
    )
    parser.add_argument("--only", default="ABC", help="configurations to run, e.g. AB")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the configurations already measured (same count and tree) in "
        "`--cache`/results-<count>.json, measure only the others",
    )
    parser.add_argument("--write", action="store_true", help="write the section to BENCHMARKS.md")
    args = parser.parse_args()
    from bench.run import machine

    started = time.perf_counter()
    load_start = os.getloadavg()
    archive, metadata = corpus_for(args.cache, args.count)
    with tempfile.TemporaryDirectory(prefix="mta-bench-lake-only-") as tmp:
        work = Path(tmp)
        old_tree = args.old_tree
        if old_tree is None:
            old_tree = work / "old-tree"
            git("worktree", "add", "--detach", str(old_tree), OLD_COMMIT)
        server, endpoint = start_moto(work)
        configs = [
            Config("A", f"today's local disk ({OLD_COMMIT}), local lake", old_tree.resolve()),
            Config("B", "lake-only, local lake", args.new_tree.resolve()),
            Config("C", "lake-only, S3 lake (moto)", args.new_tree.resolve(), f"s3://{BUCKET}/C"),
        ]
        configs = [c for c in configs if c.name in args.only]
        labels = {c.name: tree_label(c.tree) for c in configs}
        results = args.cache / f"results-{args.count}.json"
        saved = json.loads(results.read_text()) if args.resume and results.exists() else {}
        try:
            for cfg in configs:
                held = saved.get(cfg.name)
                if held and held["label"] == labels[cfg.name]:
                    cfg.figures = {k: Figure(*v) for k, v in held["figures"].items()}
                    cfg.notes = held["notes"]
                    print(f"{cfg.name}: kept from {results}", flush=True)
                    continue
                run_config(cfg, work, archive, metadata, args.latency_ms, endpoint)
                saved[cfg.name] = {
                    "label": labels[cfg.name],
                    "figures": {k: [f.seconds, f.load] for k, f in cfg.figures.items()},
                    "notes": cfg.notes,
                }
                results.write_text(json.dumps(saved, indent=1))
        finally:
            server.terminate()
            server.wait()
            if args.old_tree is None:
                git("worktree", "remove", "--force", str(old_tree))
    total = time.perf_counter() - started
    load_end = os.getloadavg()

    command = " ".join([".venv/bin/python -m bench.lake_only", *sys.argv[1:]])
    out = [
        SECTION,
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `{command}` ({total / 60:.0f} "
        f"minutes in all). Machine: {machine()}. Load average (1, 5, 15 min) "
        f"{', '.join(f'{x:.2f}' for x in load_start)} at the start, "
        f"{', '.join(f'{x:.2f}' for x in load_end)} at the end: the machine was shared, so "
        "read each figure with the load beside it.",
        f"Corpus: {args.count} realistic files (`generate_corpus(count={args.count}, seed=0, "
        f"realistic=True)`, as `mta demo --realistic`), {archive.stat().st_size / 1e6:.0f} MB "
        "of zip. YouTube emulator in the bench's process, "
        f"{args.latency_ms:g} ms latency, for every configuration.",
        "",
        *[f"- {c.name}: {c.title}; code {labels[c.name]}" for c in configs],
        "",
        *table(configs),
        "",
        "Every figure is one `mta` command in a new process (Python start-up and imports "
        "included), from a folder without `.env`. Ratios are against A's same row; the two "
        "rows of B/C's second query and `--lake` are against A's query on its catalog.",
        "",
    ]
    for c in configs:
        notes = "; ".join(f"{k}: {v}" for k, v in c.notes.items() if k != "answer")
        out.append(f"- {c.name}: {notes}")
    answers = {c.notes.get("answer") for c in configs}
    out += [
        "",
        f"The answer to the example query was {'the same' if len(answers) == 1 else 'NOT the same'}"
        " in every configuration.",
    ]
    print("\n".join(out))
    print("\n" + json.dumps({c.name: c.notes.get("answer") for c in configs}, indent=1)[:3000])
    if args.write:
        write_section(out)


if __name__ == "__main__":
    main()
