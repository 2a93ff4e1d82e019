"""The DuckDB catalog derived from the lake: rebuilding it, checking it, and a lost or damaged one.

    .venv/bin/python -m bench.catalog [--count 10855] [--repeat 3] [--data DIR]

Builds the demo (`mta demo --count N`, every asset, YouTube emulator scrape included) in a
temporary folder, or in `--data DIR` (reused when it already holds a finished build), and runs
every `mta` command from that folder, so each reads the demo's `.env` as a user's would. Then:

- (a) `mta catalog rebuild` as a new process: wall time, time inside the command, peak RSS;
- (b) the read-through check alone, `Storage(data_dir=...).sync_catalog()` (every table read
  through, then a sync with nothing changed) in this process
  (what `mta materialize` does first), median of `--repeat`;
- (c) a no-change `mta materialize` on an intact catalog, new process;
- (d) `mta.duckdb` deleted, then `mta materialize` (rebuild, then nothing due);
- (e) `mta.duckdb` truncated to half its size, then `mta materialize`.

After (a), (d) and (e) every table's row count must equal the count taken after the demo, and
`youtube_quota` (one ledger row per call) must not have grown: the emulator that `mta
materialize` starts in demo mode got no request. Each new process is run as bench.stage runs it
(the `mta` command's own code, from the demo's folder), timed from outside, with its own peak RSS
(getrusage in the child) and its CPU time (RUSAGE_CHILDREN before and after); the load average
is printed beside each figure, since the machine may be shared. An edit to `mta_pipeline`'s
sources during the benchmark moves code versions (shards due again), so it is detected and said.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.run import checked, folder_bytes, machine
from bench.stage import StageRun, run_stage
from mta_pipeline import config

# Settings `mta demo` writes to `.env`; the environment wins over `.env`, so a value exported in
# this shell must not reach the children (they would build or read another data dir).
OWN_SETTINGS = ("MTA_", "GIANTMIDI_", "YOUTUBE_", "DAGSTER_")
DEMO_DONE = ".bench-catalog-demo.done"  # in the demo folder, once `mta demo` succeeded
PACKAGE = Path(config.__file__).resolve().parent


@dataclass
class Step:
    """One `mta` command in a new process."""

    name: str
    run: StageRun
    cpu_s: float  # user + system CPU of the child and everything it waited for
    load: tuple[float, float, float]  # load average just before it started
    code: str  # digest of the pipeline's sources when it started


def code_digest() -> str:
    """The pipeline's sources: an edit to them changes asset code versions, so shards that were
    up to date are due again and a "no-change" run is not one."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*.py")):
        digest.update(str(path.relative_to(PACKAGE)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def child_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(OWN_SETTINGS)}


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def mta(name: str, argv: list[str], folder: Path) -> Step:
    """`mta <argv>` from `folder` in a new process (bench.stage), its output to `<name>.log`."""
    load, code = os.getloadavg(), code_digest()
    cpu = children_cpu()
    run = checked(
        run_stage(argv, child_env(), cwd=folder, log=folder / f"bench-{name}.log"),
        "mta " + " ".join(argv),
    )
    step = Step(name, run, children_cpu() - cpu, load, code)
    print(
        f"{name}: {run.wall_s:.1f} s wall ({run.command_s:.1f} s inside the command, "
        f"{step.cpu_s:.1f} s CPU), peak {run.main_peak_mib:.0f} MiB, load {load[0]:.2f}",
        flush=True,
    )
    return step


def log_lines(step: Step, *needles: str) -> list[str]:
    text = step.run.log.read_text(errors="replace").splitlines()
    return [line.strip() for line in text if any(n in line for n in needles)]


def runs_started(step: Step) -> int:
    """Dagster runs the command started (the runner says `... ok in <s>s` for each)."""
    return sum(1 for line in log_lines(step, " ok in ") if not line.startswith("mta:"))


def compare(expected: dict[str, int], found: dict[str, int]) -> list[str]:
    """The tables whose row count differs, one `table: expected -> found` each."""
    return [
        f"{t}: {expected.get(t, 'missing')} -> {found.get(t, 'missing')}"
        for t in sorted(set(expected) | set(found))
        if expected.get(t) != found.get(t)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_855)
    parser.add_argument("--repeat", type=int, default=3, help="runs of the in-process check (b)")
    parser.add_argument(
        "--data",
        help="folder of the demo (kept): reused when it holds a finished build of --count, "
        "else built there; default a temporary folder, removed afterwards",
    )
    args = parser.parse_args()
    from mta_pipeline.resources.storage import Storage  # Dagster: here, not at import

    started_all = time.perf_counter()
    load_start, code_start = os.getloadavg(), code_digest()
    with tempfile.TemporaryDirectory(prefix="mta-bench-catalog-") as tmp:
        folder = Path(args.data).resolve() if args.data else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        done = folder / DEMO_DONE
        demo: Step | None = None
        if done.exists() and done.read_text().strip() == str(args.count):
            print(f"reusing the demo of {args.count} files in {folder}", flush=True)
        else:
            print(f"mta demo --count {args.count} in {folder} ...", flush=True)
            demo = mta("demo", ["demo", "--count", str(args.count)], folder)
            done.write_text(f"{args.count}\n")
        data_dir = folder / config.DEFAULT_DATA_DIR
        storage = Storage(data_dir=str(data_dir))
        db = storage.catalog_path
        assert db.is_file(), f"no catalog at {db}: is {folder} a demo folder?"

        # 2. what the catalog holds after the demo
        counts = storage.row_counts()
        quota = counts.get(config.T_YOUTUBE_QUOTA, -1)
        demo_db_bytes = db.stat().st_size
        lake = Path(storage.lake_root)
        lake_bytes = folder_bytes(lake)
        lake_files = sum(1 for _ in lake.rglob("*.parquet"))
        print(
            f"catalog {demo_db_bytes / 1e6:.1f} MB, lake {lake_bytes / 1e6:.1f} MB in "
            f"{lake_files} Parquet files; {len(counts)} tables, "
            f"{sum(counts.values()):,} rows, youtube_quota {quota:,}",
            flush=True,
        )

        # (a) rebuild on demand
        rebuild = mta("rebuild", ["catalog", "rebuild"], folder)
        rebuilt_db_bytes = db.stat().st_size
        after_rebuild = compare(counts, storage.row_counts())

        # (b) the read-through check alone, in this process
        checks, check_load = [], os.getloadavg()
        for _ in range(args.repeat):
            started = time.perf_counter()
            storage.sync_catalog()
            checks.append(time.perf_counter() - started)
        check_s = statistics.median(checks)
        print(
            f"check: {check_s:.2f} s (median of {args.repeat}: "
            f"{', '.join(f'{s:.2f}' for s in checks)}), load {check_load[0]:.2f}",
            flush=True,
        )

        # (c) a no-change materialize on an intact catalog
        nochange = mta("no-change", ["materialize"], folder)
        after_nochange = compare(counts, storage.row_counts())

        # (d) the catalog deleted
        wal = db.with_name(db.name + ".wal")
        had_wal = wal.exists()
        db.unlink()
        lost = mta("deleted", ["materialize"], folder)
        after_lost = compare(counts, storage.row_counts())

        # (e) the catalog truncated to half its size
        before_aside = set(folder.rglob(f"{db.name}.damaged-*"))
        half = db.stat().st_size // 2
        os.truncate(db, half)
        damaged = mta("truncated", ["materialize"], folder)
        after_damaged = compare(counts, storage.row_counts())
        moved_aside = sorted(set(folder.rglob(f"{db.name}.damaged-*")) - before_aside)
        final_db_bytes = db.stat().st_size
    total_s = time.perf_counter() - started_all
    load_end, code_end = os.getloadavg(), code_digest()

    def same(diff: list[str]) -> str:
        return "yes" if not diff else f"NO ({'; '.join(diff)})"

    def quota_line(diff: list[str]) -> str:
        grew = [d for d in diff if d.startswith(f"{config.T_YOUTUBE_QUOTA}:")]
        return "unchanged" if not grew else grew[0]

    print()
    print(f"machine: {machine()}")
    print(
        f"load average (1, 5, 15 min): {', '.join(f'{x:.2f}' for x in load_start)} at the start, "
        f"{', '.join(f'{x:.2f}' for x in load_end)} at the end"
    )
    print(
        f"demo: {args.count} files (`mta demo --count {args.count}`), "
        + (
            f"built in {demo.run.wall_s:.0f} s ({demo.cpu_s:.0f} s CPU)"
            if demo
            else "reused from an earlier build"
        )
    )
    print(
        f"lake: {lake_bytes / 1e6:.1f} MB in {lake_files} Parquet files; catalog: "
        f"{demo_db_bytes / 1e6:.1f} MB after the demo, {rebuilt_db_bytes / 1e6:.1f} MB rebuilt "
        f"({rebuilt_db_bytes / max(1, lake_bytes):.1f}x the lake)"
    )
    print(f"rows: {sum(counts.values()):,} in {len(counts)} tables")
    for table, rows in counts.items():
        print(f"  {table:<24} {rows:>10,}")
    print()
    table = [
        ["step", "wall s", "in cmd s", "CPU s", "peak MiB", "runs", "load", "rows equal", "quota"],
        [f"(b) Storage.sync_catalog() in-process, median of {args.repeat}", f"{check_s:.2f}"]
        + [""] * 4
        + [f"{check_load[0]:.2f}", "", ""],
    ]
    for label, step, diff in (
        ("(a) mta catalog rebuild", rebuild, after_rebuild),
        ("(c) mta materialize, no change, intact catalog", nochange, after_nochange),
        ("(d) mta materialize, mta.duckdb deleted", lost, after_lost),
        (f"(e) mta materialize, mta.duckdb cut to {half / 1e6:.1f} MB", damaged, after_damaged),
    ):
        table.append(
            [
                label,
                f"{step.run.wall_s:.1f}",
                f"{step.run.command_s:.1f}",
                f"{step.cpu_s:.1f}",
                f"{step.run.main_peak_mib:.0f}",
                "" if step is rebuild else str(runs_started(step)),
                f"{step.load[0]:.2f}",
                same(diff),
                quota_line(diff),
            ]
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    left = {0, 7, 8}  # text columns; the figures are right-aligned

    def cells(row: list[str]) -> str:
        return (
            "| "
            + " | ".join(
                c.ljust(w) if i in left else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
            + " |"
        )

    print(cells(table[0]))
    print(
        "|"
        + "|".join(
            ("-" * (w + 2)) if i in left else ("-" * (w + 1) + ":") for i, w in enumerate(widths)
        )
        + "|"
    )
    for row in table[1:]:
        print(cells(row))
    print(
        "runs: Dagster runs the command started (a no-change run still starts the one that checks "
        "the sources); load: 1-minute load average when the step started; quota: the "
        "youtube_quota ledger's row count against the demo's (one row per emulator call)"
    )
    print()
    nochange_s = nochange.run.wall_s
    print(
        f"(b)/(c): the check is {100 * check_s / nochange_s:.1f} % of a no-change materialize "
        f"({check_s:.2f} s of {nochange_s:.1f} s; {100 * check_s / nochange.run.command_s:.1f} % "
        "of its time inside the command)"
    )
    print(
        f"(d)/(c): {lost.run.wall_s / nochange_s:.2f}x, (e)/(c): "
        f"{damaged.run.wall_s / nochange_s:.2f}x; (a) rebuild alone {rebuild.run.command_s:.1f} s "
        "inside its command"
    )
    print(f"(a) peak RSS {rebuild.run.main_peak_mib:.0f} MiB (getrusage of the process)")
    for label, step in (("(d)", lost), ("(e)", damaged)):
        said = log_lines(step, "mta: ", "DuckDB catalog")
        print(f"{label} said: {' / '.join(said) if said else 'nothing about the catalog'}")
    print(
        f"(d) a WAL beside the deleted file: {'yes' if had_wal else 'no'}; (e) moved aside: "
        f"{', '.join(p.name for p in moved_aside) or 'nothing'}; catalog after (e) "
        f"{final_db_bytes / 1e6:.1f} MB"
    )
    steps = [s for s in (demo, rebuild, nochange, lost, damaged) if s is not None]
    moved = [s.name for s in steps if s.code != code_start] + (
        ["the end"] if code_end != code_start else []
    )
    if moved:
        print(
            f"WARNING: mta_pipeline's sources changed during the benchmark ({code_start} at the "
            f"start, {code_end} at the end; changed before: {', '.join(moved)}): shards whose "
            "code version moved ran again, so a 'no change' figure after it is not one"
        )
    else:
        print(f"code: mta_pipeline's sources unchanged during the benchmark ({code_start})")
    if runs_started(nochange) > 1:
        print(
            f"WARNING: (c) started {runs_started(nochange)} Dagster runs: it was not a no-change "
            "run (shards were due), so the (b)/(c) ratio understates the check's share"
        )
    print(f"total: {total_s:.0f} s")
    if any((after_rebuild, after_nochange, after_lost, after_damaged)):
        sys.exit("bench: a row count differs from the demo's (see the table)")


if __name__ == "__main__":
    main()
