"""Where extracted MIDI bytes should live in the lake: one object per file, or one Parquet a shard.

    .venv/bin/python -m bench.midi_store [--count 10855] [--seed 0] [--write]

Generates (or reuses, from `--cache`) a realistic corpus of `--count` good files
(`generate_corpus(..., realistic=True)`), groups them into the 32 shards (`vid_to_shard`) and reads
every file's bytes into memory first, so no generation or zip reading is timed. Then, for two
layouts:

- A, one object a file: `midi/shard=<k>/<vid>.mid`;
- B, one Parquet a shard: `midi/shard=<k>/part.parquet`, columns vid, sha256, bytes, sorted by vid,
  row groups of `ROW_GROUP_ROWS` files (zstd and uncompressed, both measured);

and two stores, a local folder (writes through `atomic_write`: temporary name, fsync, rename, as
the pipeline writes) and S3 through s3fs against a moto server started in this process (A written
with one batched `fs.pipe({...})` a shard, as a pipeline step would; B with one PUT a shard), it
times: writing all 32 shards (and MB, objects); reading one whole shard back (what `midi_features`
of a shard needs; the median-sized shard, median of `--repeat`); reading every shard back; reading
one file by vid (median over `--sample` random vids: for A one GET; for B the whole shard's Parquet
then a filter, and a ranged read of the footer and the matching row group); and telling that a
shard is unchanged before rewriting it (A: listing, then every object read and hashed; B: size,
then the Parquet read and hashed, as `Storage.write_if_changed` does, or only its vid and sha256
columns read). On S3 it also times a sequential per-file PUT loop on a sample. Every read is
checked against the original bytes (not timed). The local store is read warm (page cache).

Prints the figures with B/A ratios; `--write` also writes them, the machine and the command, and
a recommendation, to bench/MIDI_STORE.md.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import os
import random
import statistics
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar

import fsspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mta_pipeline.atomic import atomic_write
from mta_pipeline.partitions import SHARD_KEYS, vid_to_shard

ROOT = Path(__file__).resolve().parent.parent
ROW_GROUP_ROWS = 32  # ~1 MB of realistic MIDI: a ranged read of one file fetches about that
SEQUENTIAL_PUTS = 300  # files PUT one by one (S3), to compare with the batched pipe
LAYOUTS = ("A", "B zstd", "B none")
Shards = dict[str, dict[str, bytes]]  # shard -> vid -> MIDI bytes
T = TypeVar("T")


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_corpus(cache: Path, count: int, seed: int) -> Shards:
    """The good files' bytes by shard, from a cached corpus, generated first if missing."""
    folder = cache / f"count-{count}-seed-{seed}"
    index = folder / "good.json"
    if not index.exists():
        from mta_pipeline.demo.corpus import generate_corpus  # pool workers import __main__

        seconds, corpus = timed(
            lambda: generate_corpus(folder, count=count, seed=seed, realistic=True)
        )
        atomic_write(index, json.dumps(corpus.good).encode())
        print(f"realistic corpus of {count} files generated in {seconds:.0f} s in {folder}")
    good: dict[str, str] = json.loads(index.read_text())
    shards: Shards = {k: {} for k in SHARD_KEYS}
    with zipfile.ZipFile(folder / "midis_demo.zip") as zf:
        for vid, member in sorted(good.items()):
            shards[vid_to_shard(vid)][vid] = zf.read(member)
    return shards


@dataclass
class Store:
    """A lake root: a local folder (atomic_write) or an s3fs prefix (one PUT an object)."""

    name: str
    fs: fsspec.AbstractFileSystem
    root: str
    local: bool

    def put(self, files: dict[str, bytes]) -> None:
        if not files:
            return
        if self.local:
            for path, data in files.items():
                atomic_write(path, data)
        elif len(files) == 1:
            [(path, data)] = files.items()
            self.fs.pipe_file(path, data)
        else:
            self.fs.pipe(files)


# -- layout A: one object a file ----------------------------------------------------------------


def shard_dir(store: Store, layout: str, shard: str) -> str:
    return f"{store.root}/{layout}/midi/shard={shard}"


def a_write(store: Store, shard: str, files: dict[str, bytes]) -> None:
    prefix = shard_dir(store, "A", shard)
    store.put({f"{prefix}/{vid}.mid": data for vid, data in files.items()})


def a_read_shard(store: Store, shard: str) -> dict[str, bytes]:
    paths = store.fs.find(shard_dir(store, "A", shard))
    found = store.fs.cat(paths) if paths else {}
    return {p.rsplit("/", 1)[1].removesuffix(".mid"): data for p, data in found.items()}


def a_read_one(store: Store, vid: str) -> bytes:
    return store.fs.cat_file(f"{shard_dir(store, 'A', vid_to_shard(vid))}/{vid}.mid")


def a_listing(store: Store, shard: str) -> dict[str, int]:
    listed = store.fs.find(shard_dir(store, "A", shard), detail=True)
    return {p.rsplit("/", 1)[1].removesuffix(".mid"): int(i["size"]) for p, i in listed.items()}


def a_unchanged(store: Store, shard: str, files: dict[str, bytes]) -> bool:
    """Names and sizes from one listing, then every object read and hashed."""
    if a_listing(store, shard) != {vid: len(data) for vid, data in files.items()}:
        return False
    held = a_read_shard(store, shard)
    return all(sha(held[vid]) == sha(data) for vid, data in files.items())


# -- layout B: one Parquet a shard --------------------------------------------------------------


def b_path(store: Store, layout: str, shard: str) -> str:
    return f"{shard_dir(store, layout, shard)}/part.parquet"


def b_bytes(files: dict[str, bytes], compression: str) -> bytes:
    vids = sorted(files)
    data = pa.table(
        {
            "vid": pa.array(vids, pa.string()),
            "sha256": pa.array([sha(files[v]) for v in vids], pa.string()),
            "bytes": pa.array([files[v] for v in vids], pa.binary()),
        }
    )
    buf = io.BytesIO()
    pq.write_table(data, buf, compression=compression, row_group_size=ROW_GROUP_ROWS)
    return buf.getvalue()


def b_write(store: Store, layout: str, shard: str, files: dict[str, bytes]) -> None:
    store.put({b_path(store, layout, shard): b_bytes(files, layout.split()[1])})


def b_read_shard(store: Store, layout: str, shard: str) -> dict[str, bytes]:
    data = pq.read_table(io.BytesIO(store.fs.cat_file(b_path(store, layout, shard))))
    return dict(zip(data["vid"].to_pylist(), data["bytes"].to_pylist(), strict=True))


def b_read_one_whole(store: Store, layout: str, vid: str) -> bytes:
    data = pq.read_table(io.BytesIO(store.fs.cat_file(b_path(store, layout, vid_to_shard(vid)))))
    return data.filter(pc.equal(data["vid"], vid))["bytes"][0].as_py()


def b_read_columns(
    store: Store, layout: str, shard: str, columns: list[str], vid: str | None = None
) -> pa.Table:
    """Only the footer and the column chunks needed (ranged GETs, no read-ahead)."""
    with store.fs.open(b_path(store, layout, shard), "rb", cache_type="none") as fh:
        filters = [("vid", "=", vid)] if vid else None
        return pq.read_table(fh, columns=columns, filters=filters)


def b_read_one_ranged(store: Store, layout: str, vid: str) -> bytes:
    return b_read_columns(store, layout, vid_to_shard(vid), ["bytes"], vid)["bytes"][0].as_py()


def b_unchanged_whole(store: Store, layout: str, shard: str, files: dict[str, bytes]) -> bool:
    """`Storage.write_if_changed`: build the new Parquet, compare size, read the old, hash."""
    new = b_bytes(files, layout.split()[1])
    path = b_path(store, layout, shard)
    return store.fs.size(path) == len(new) and sha(store.fs.cat_file(path)) == sha(new)


def b_unchanged_digest(store: Store, layout: str, shard: str, files: dict[str, bytes]) -> bool:
    """Only the vid and sha256 columns read, compared with the new files' digests."""
    held = b_read_columns(store, layout, shard, ["vid", "sha256"])
    new = {vid: sha(data) for vid, data in files.items()}
    return dict(zip(held["vid"].to_pylist(), held["sha256"].to_pylist(), strict=True)) == new


# -- measuring -----------------------------------------------------------------------------------

WRITE = "write all 32 shards, s"
MB = "  MB written"
OBJECTS = "  objects written (PUTs, or files renamed)"
SEQ_MS = "A by sequential PUTs instead (sample), ms a file"
SEQ_ALL = "  the same, every file (extrapolated), s"
READ_SHARD = "read one whole shard, s"
READ_ALL = "read all 32 shards, s"
READ_ONE = "read one file by vid, ms (B: whole shard, then filter)"
READ_RANGED = "  B: ranged read (footer + one row group), ms"
CHECK = "no-change check of one shard, s: full compare"
CHECK_LIST = "  A: listing only (names and sizes, no content)"
CHECK_DIGEST = "  B: vid and sha256 columns only"
METRICS = (WRITE, MB, OBJECTS, SEQ_MS, SEQ_ALL, READ_SHARD, READ_ALL, READ_ONE, READ_RANGED)
METRICS += (CHECK, CHECK_LIST, CHECK_DIGEST)


@dataclass
class Figures:
    """One store, every layout: metric -> layout -> value."""

    store: str
    values: dict[str, dict[str, float]] = field(default_factory=dict)

    def set(self, metric: str, layout: str, value: float) -> None:
        self.values.setdefault(metric, {})[layout] = value

    def get(self, metric: str, layout: str) -> float:
        return self.values[metric][layout]


@dataclass(frozen=True)
class Run:
    """What every measurement needs: the store, the corpus, the shard and vids to read."""

    store: Store
    shards: Shards
    shard: str  # the one shard read and checked
    sample: list[str]  # vids read one at a time
    repeat: int

    def median_s(self, fn: Callable[[], object]) -> float:
        return statistics.median(timed(fn)[0] for _ in range(self.repeat))

    def median_ms(self, read: Callable[[str], bytes]) -> float:
        every = {vid: data for held in self.shards.values() for vid, data in held.items()}
        times = []
        for vid in self.sample:
            seconds, data = timed(lambda vid=vid: read(vid))
            assert data == every[vid], vid
            times.append(seconds * 1000)
        return statistics.median(times)


def measure_layout(
    run: Run,
    fig: Figures,
    layout: str,
    write: Callable[[str, dict[str, bytes]], None],
    read_shard: Callable[[str], dict[str, bytes]],
) -> None:
    """The figures both layouts share; the caller adds its own."""
    store, shards, shard = run.store, run.shards, run.shard
    fig.set(WRITE, layout, sum(timed(lambda k=k: write(k, shards[k]))[0] for k in SHARD_KEYS))
    fig.set(MB, layout, store.fs.du(f"{store.root}/{layout}") / 1e6)
    assert read_shard(shard) == shards[shard]
    fig.set(READ_SHARD, layout, run.median_s(lambda: read_shard(shard)))
    seconds, back = timed(lambda: {k: read_shard(k) for k in SHARD_KEYS})
    assert back == shards
    fig.set(READ_ALL, layout, seconds)


def measure_a(run: Run, fig: Figures) -> None:
    store, shard, files = run.store, run.shard, run.shards[run.shard]
    measure_layout(run, fig, "A", partial(a_write, store), partial(a_read_shard, store))
    fig.set(OBJECTS, "A", sum(map(len, run.shards.values())))
    fig.set(READ_ONE, "A", run.median_ms(partial(a_read_one, store)))
    assert a_unchanged(store, shard, files)
    fig.set(CHECK, "A", run.median_s(lambda: a_unchanged(store, shard, files)))
    fig.set(CHECK_LIST, "A", run.median_s(lambda: a_listing(store, shard)))


def measure_b(run: Run, fig: Figures, layout: str) -> None:
    store, shard, files = run.store, run.shard, run.shards[run.shard]
    write, read = partial(b_write, store, layout), partial(b_read_shard, store, layout)
    measure_layout(run, fig, layout, write, read)
    fig.set(OBJECTS, layout, len(SHARD_KEYS))
    fig.set(READ_ONE, layout, run.median_ms(partial(b_read_one_whole, store, layout)))
    fig.set(READ_RANGED, layout, run.median_ms(partial(b_read_one_ranged, store, layout)))
    assert b_unchanged_whole(store, layout, shard, files)
    fig.set(CHECK, layout, run.median_s(lambda: b_unchanged_whole(store, layout, shard, files)))
    assert b_unchanged_digest(store, layout, shard, files)
    digest_s = run.median_s(lambda: b_unchanged_digest(store, layout, shard, files))
    fig.set(CHECK_DIGEST, layout, digest_s)


def measure_sequential(run: Run, fig: Figures, seed: int) -> None:
    """A sample of files PUT one request after the other (no batching), S3 only."""
    fs = run.store.fs
    files = [(k, vid, data) for k, held in run.shards.items() for vid, data in held.items()]
    picked = random.Random(seed).sample(files, min(SEQUENTIAL_PUTS, len(files)))
    prefix = f"{run.store.root}/sequential/midi"
    seconds = sum(
        timed(lambda k=k, v=v, d=d: fs.pipe_file(f"{prefix}/shard={k}/{v}.mid", d))[0]
        for k, v, d in picked
    )
    fig.set(SEQ_MS, "A", seconds / len(picked) * 1000)
    fig.set(SEQ_ALL, "A", seconds / len(picked) * len(files))


def warm_up(run: Run) -> None:
    """Untimed: the first zstd encode costs ~0.5 s (codec and thread pool set-up), and the
    first S3 request opens the connection."""
    files = dict(list(run.shards[run.shard].items())[:4])
    for compression in ("zstd", "none"):
        pq.read_table(io.BytesIO(b_bytes(files, compression)))
    path = f"{run.store.root}/warm-up/file"
    run.store.put({path: b"warm"})
    assert run.store.fs.cat_file(path) == b"warm"
    run.store.fs.rm(path)


def measure(run: Run, seed: int) -> Figures:
    fig = Figures(run.store.name)
    warm_up(run)
    for layout in LAYOUTS:
        print(f"  {run.store.name}, layout {layout}", flush=True)
        if layout == "A":
            measure_a(run, fig)
        else:
            measure_b(run, fig, layout)
    if not run.store.local:
        measure_sequential(run, fig, seed)
    return fig


def moto_store() -> tuple[Store, Callable[[], None]]:
    """s3fs against a moto server on loopback (in this process), with a `lake` bucket."""
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    import s3fs
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line a request otherwise

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    fs = s3fs.S3FileSystem(
        client_kwargs={"endpoint_url": f"http://{host}:{port}"},
        skip_instance_cache=True,
        use_listings_cache=False,
    )
    fs.mkdir("lake")
    return Store("S3 (moto)", fs, "lake", local=False), server.stop


# -- report --------------------------------------------------------------------------------------


def cell(value: float | None) -> str:
    if value is None:
        return ""
    if value >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:.3g}"


def table(fig: Figures) -> list[str]:
    lines = [
        f"| {fig.store} | A: a file | B: Parquet, zstd | B: Parquet, none | B zstd / A |",
        "|---|---:|---:|---:|---:|",
    ]
    for metric in METRICS:
        by_layout = fig.values.get(metric, {})
        if not by_layout:
            continue
        a, b = by_layout.get("A"), by_layout.get("B zstd")
        ratio = f"{b / a:.3g}×" if a and b is not None else ""
        shown = " | ".join(cell(by_layout.get(layout)) for layout in LAYOUTS)
        lines.append(f"| {metric} | {shown} | {ratio} |")
    return lines


def recommendation(local: Figures, s3: Figures, shards: Shards) -> str:
    counts = [len(held) for held in shards.values()]
    largest = max(sum(map(len, held.values())) for held in shards.values())

    def b_a(fig: Figures, metric: str) -> str:
        a, b = fig.get(metric, "A"), fig.get(metric, "B zstd")
        return f"{cell(b)} s against {cell(a)} s ({b / a:.2g}×)"

    saved = 1 - s3.get(MB, "B zstd") / s3.get(MB, "B none")
    digest_note = (
        ": several ranged GETs cost more than one whole GET on loopback"
        if s3.get(CHECK_DIGEST, "B zstd") > s3.get(CHECK, "B zstd")
        else ""
    )
    local_write = (
        "one fsync and rename a shard instead of one a file"
        if local.get(WRITE, "B zstd") < local.get(WRITE, "A")
        else "encoding costs more than the fsyncs it saves"
    )
    return (
        "**Recommendation: B, one Parquet a shard** (`midi/shard=<k>/part.parquet`: vid, "
        "sha256, bytes, sorted by vid; zstd). On S3 it writes the corpus in "
        f"{b_a(s3, WRITE)}, reads a shard in {b_a(s3, READ_SHARD)} and the corpus in "
        f"{b_a(s3, READ_ALL)}: one PUT and one GET a shard instead of {min(counts)}–"
        f"{max(counts)} (median {statistics.median(counts):.0f}), and S3 bills, throttles and "
        "adds latency per request. One PUT is atomic: a reader sees the old "
        "shard or the new one whole, and a crash leaves the old one, where a shard of ~340 "
        "objects can be left part old, part new, with vids that left the shard to be found by "
        "listing and deleted. Compare-then-write is one HEAD and one GET of one object "
        f"({s3.get(CHECK, 'B zstd'):.3f} s; reading only the vid and sha256 columns, which "
        f"also says which files changed, {s3.get(CHECK_DIGEST, 'B zstd'):.3f} s{digest_note}) "
        "against a "
        f"listing and ~340 GETs for A ({s3.get(CHECK, 'A'):.3f} s; the listing alone, "
        f"{s3.get(CHECK_LIST, 'A'):.3f} s, compares sizes, not content). `midi_features` reads "
        "a whole shard, which is exactly B's one GET. Random access by vid is B's weak side "
        f"({s3.get(READ_ONE, 'B zstd'):.0f} ms a file fetching the whole shard, "
        f"{s3.get(READ_RANGED, 'B zstd'):.0f} ms with a ranged read of the footer and one "
        f"row group of {ROW_GROUP_ROWS} files, against {s3.get(READ_ONE, 'A'):.0f} ms for A's "
        "GET), but nothing in the pipeline reads one file at a time, and the release can "
        "still write `.mid` files from the shard tables. Memory: B holds a shard's bytes at "
        f"once (at most {largest / 1e6:.1f} MB of MIDI here, a few times that while the "
        "Parquet buffer, Arrow and Python copies coexist): small, and `midi_features` parses "
        "the whole shard anyway. zstd rather than none: it saves "
        f"{saved:.0%} of the bytes ({s3.get(MB, 'B zstd'):.0f} against "
        f"{s3.get(MB, 'B none'):.0f} MB) for little time either way, and it is what "
        "`parquet_bytes` already uses for every lake table. On local disk B writes in "
        f"{b_a(local, WRITE)} ({local_write}) and "
        f"reads the corpus in {b_a(local, READ_ALL)}; there the absolute times are small "
        "whichever layout."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_855)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="runs of the one-shard figures")
    parser.add_argument("--sample", type=int, default=50, help="vids read one at a time")
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "mta_bench_midi_store"
    )
    parser.add_argument("--write", action="store_true", help="write bench/MIDI_STORE.md")
    args = parser.parse_args()
    started = time.perf_counter()

    shards = load_corpus(args.cache, args.count, args.seed)
    total = sum(len(d) for held in shards.values() for d in held.values())
    n = sum(map(len, shards.values()))
    by_count = sorted(SHARD_KEYS, key=lambda k: (len(shards[k]), k))
    shard = by_count[len(by_count) // 2]  # the median-sized shard
    sample = random.Random(args.seed).sample(
        sorted(v for h in shards.values() for v in h), min(args.sample, n)
    )
    corpus = (
        f"{n} realistic files (`generate_corpus(count={args.count}, seed={args.seed}, "
        f"realistic=True)`), {total / 1e6:.1f} MB of MIDI, {total / n / 1e3:.1f} kB a file; "
        f"{min(map(len, shards.values()))}–{max(map(len, shards.values()))} files a shard"
    )
    print(corpus, flush=True)

    with tempfile.TemporaryDirectory(prefix="midi_store_") as tmp:
        store = Store("local disk", fsspec.filesystem("file"), tmp, local=True)
        local = measure(Run(store, shards, shard, sample, args.repeat), args.seed)
    store, stop = moto_store()
    try:
        s3 = measure(Run(store, shards, shard, sample, args.repeat), args.seed)
    finally:
        stop()
    figs = [local, s3]

    elapsed = time.perf_counter() - started
    body = [line for fig in figs for line in [*table(fig), ""]]
    print("\n".join(body))
    advice = recommendation(local, s3, shards)
    print(advice)
    print(f"\nbench.midi_store took {elapsed:.0f} s")
    if args.write:
        from bench.run import machine

        command = " ".join([".venv/bin/python -m bench.midi_store", *sys.argv[1:]])
        out = [
            "# MIDI bytes in the lake: one object a file (A) or one Parquet a shard (B)",
            "",
            f"Command: `{command}` ({elapsed:.0f} s in all, with the corpus generated or read).",
            f"Machine: {machine()}.",
            f"Corpus: {corpus}.",
            "",
            "Seconds unless stated; one run each for the whole-corpus figures, median of "
            f"{args.repeat} for one shard, median of {len(sample)} random vids for one file. "
            "Local: a temporary folder, written with `atomic_write` (fsync, rename), read warm. "
            "S3: s3fs against moto's server on loopback in the same process; A is written one "
            "batched `fs.pipe({...})` a shard (s3fs's concurrency), B one PUT a shard. Client "
            "and server share the GIL and the server answers about one request at a time, so "
            "the batching buys A little here (compare the sequential PUTs): A's S3 times are an "
            "upper bound, as real S3 serves requests in parallel, while B stays one request a "
            "shard. Parquet row groups hold "
            f"{ROW_GROUP_ROWS} files. The shard read and checked: {shard} "
            f"({len(shards[shard])} files, the median count).",
            "",
            *body,
            advice,
            "",
        ]
        (ROOT / "bench" / "MIDI_STORE.md").write_text("\n".join(out))
        print("wrote bench/MIDI_STORE.md")


if __name__ == "__main__":
    main()
