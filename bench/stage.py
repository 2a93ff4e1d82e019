"""One `mta materialize` in a child process, timed, with the peak memory of its process tree.

The parent (`run_stage`) starts `python -m bench.stage OUT.json materialize --select ...` with the
settings in the environment and samples, every `interval` seconds, the resident memory of the
child and of every process below it (the feature pool's workers, the forkserver) from /proc. The
child runs the command exactly as the `mta` script does (`mta_pipeline.cli`), then
writes its time and own peak RSS (`getrusage`) to OUT.json.

Figures (MiB): `main_peak` the child's own peak RSS (getrusage); `largest_worker` the largest
peak (VmHWM) of a multiprocessing process below it (pool workers, the forkserver, the resource
tracker); `largest_other` the same for the rest (Dagster's log capture: `tail -F` and
`watch_orphans.py` per run); `tree_peak` the most resident memory of the whole tree at one
sample (a sum of RSS, so pages shared between processes count once per process: an upper
bound). getrusage's RUSAGE_CHILDREN is no use here: a child forked from a big parent starts with
the parent's resident pages counted in its peak.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)  # so the child finds `bench` from any folder


@dataclass
class StageRun:
    returncode: int
    wall_s: float  # the whole command, Python start-up and imports included
    command_s: float  # inside the command (definitions loaded, runs, records)
    main_peak_mib: float
    tree_peak_mib: float
    largest_worker_mib: float
    largest_other_mib: float
    workers: int  # distinct multiprocessing processes seen below the child
    others: int  # distinct other processes seen below the child
    log: Path = field(default_factory=Path)


def _ppids() -> dict[int, int]:
    parents = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parents[int(entry)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    return parents


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, ppid in _ppids().items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def _memory_kib(pid: int) -> tuple[int, int] | None:
    """(VmRSS, VmHWM) of a live process, KiB."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    values = {
        k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in lines) if k[:2] == "Vm"
    }
    if "VmRSS" not in values:
        return None  # a zombie
    return values["VmRSS"], values.get("VmHWM", values["VmRSS"])


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


class _Sampler(threading.Thread):
    def __init__(self, root: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.stop = threading.Event()
        self.peaks: dict[int, int] = {}
        self.pool: set[int] = set()  # multiprocessing's processes (workers, forkserver, tracker)
        self.tree_peak = 0

    def run(self) -> None:
        root_cmdline = _cmdline(self.root)
        while not self.stop.is_set():
            total = 0
            for pid in _tree(self.root):
                cmdline = _cmdline(pid) if pid != self.root else root_cmdline
                if pid != self.root and cmdline == root_cmdline:
                    continue  # forked from the child, not yet exec'd: its pages are the child's
                memory = _memory_kib(pid)
                if memory:
                    total += memory[0]
                    if b"multiprocessing" in cmdline:
                        self.pool.add(pid)
                    self.peaks[pid] = max(self.peaks.get(pid, 0), memory[1])
            self.tree_peak = max(self.tree_peak, total)
            self.stop.wait(self.interval)


def run_stage(
    argv: list[str], env: dict[str, str], cwd: Path, log: Path, interval: float = 0.1
) -> StageRun:
    """Run `mta <argv>` in a child process from `cwd` (whose .env, if any, it reads, as `mta`
    does), its output to `log`; timings and memory as described in the module docstring."""
    report = log.with_suffix(".json")
    report.unlink(missing_ok=True)
    started = time.perf_counter()
    with log.open("w") as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "bench.stage", str(report), *argv],
            cwd=cwd,
            env={**env, "PYTHONPATH": os.pathsep.join(filter(None, (ROOT, env.get("PYTHONPATH"))))},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        sampler = _Sampler(child.pid, interval)
        sampler.start()
        returncode = child.wait()
        wall = time.perf_counter() - started
        sampler.stop.set()
        sampler.join()
    own = json.loads(report.read_text()) if report.exists() else {}
    below = {pid: kib for pid, kib in sampler.peaks.items() if pid != child.pid}
    pool = [kib for pid, kib in below.items() if pid in sampler.pool]
    others = [kib for pid, kib in below.items() if pid not in sampler.pool]
    return StageRun(
        returncode=returncode,
        wall_s=wall,
        command_s=own.get("seconds", wall),
        main_peak_mib=own.get("self_kib", sampler.peaks.get(child.pid, 0)) / 1024,
        tree_peak_mib=sampler.tree_peak / 1024,
        largest_worker_mib=max(pool, default=0) / 1024,
        largest_other_mib=max(others, default=0) / 1024,
        workers=len(pool),
        others=len(others),
        log=log,
    )


def main() -> None:
    report, argv = Path(sys.argv[1]), sys.argv[2:]
    from mta_pipeline import dotenv_file
    from mta_pipeline.cli import build_parser, run

    args = build_parser().parse_args(argv)
    args.from_dotenv = dotenv_file.load(Path.cwd())
    started = time.perf_counter()
    code = run(args)
    gc.collect()  # as `mta` does after a command
    seconds = time.perf_counter() - started
    report.write_text(
        json.dumps(
            {
                "returncode": code,
                "seconds": seconds,
                "self_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            }
        )
    )
    sys.exit(code)


if __name__ == "__main__":
    main()
