"""MIDI features per shard; files that fail to parse or are implausible (`midi_plausibility`)
become rejects (stage `midi_features`)."""

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import dagster as dg

from mta_pipeline import config, schemas
from mta_pipeline.assets.rejects import reject_rate_check, reject_row
from mta_pipeline.assets.results import (
    ran_this_code,
    shard_blobs,
    shard_files,
    step_outputs,
    table_result,
)
from mta_pipeline.code_versions import code_version
from mta_pipeline.core.feature_batch import FeatureResult, extract_all
from mta_pipeline.core.keys import keys_match, parse_title_key
from mta_pipeline.partitions import shard_partitions
from mta_pipeline.resources.giantmidi import GiantMidiSource
from mta_pipeline.resources.storage import DEFAULT_PART, Storage
from mta_pipeline.summaries import (
    counts_markdown,
    histogram_markdown,
    preview_markdown,
    scatter_markdown,
)

VERSION = code_version(__name__)
STAGE = "midi_features"
PARSE_REJECTS = "midi_parse_rejects"
Cached = dict[tuple[str, str], tuple[dict | None, dict | None]]
BACKEND = "midi_backend"  # metadata: the parser of the run (MTA_MIDI_BACKEND)


@dg.multi_asset(
    specs=step_outputs(
        VERSION,
        [config.T_MIDI_FILES],
        {"python", "parquet"},
        midi_features="Duration, notes, range, dynamics, density, pedalling, polyphony and key "
        "of each MIDI file of the shard.",
        midi_parse_rejects="Files of the shard that fail to parse or are implausible (no piano "
        "note, a broken tempo, hours long): rows of the `midi_rejects` table with stage "
        "`midi_features`.",
    ),
    check_specs=[
        dg.AssetCheckSpec(
            "midi_parse_rejects_rate",
            asset=PARSE_REJECTS,
            description="Few of the shard's files fail to parse.",
        )
    ],
    group_name="giantmidi",
    partitions_def=shard_partitions,
)
def midi_features(
    context: dg.AssetExecutionContext, giantmidi: GiantMidiSource, storage: Storage
) -> Iterator[Any]:
    """Parses only files whose bytes (sha256) are new since the last run of the same code."""
    shard = context.partition_key
    files = shard_files(storage, shard)
    backend = giantmidi.backend()
    cached = _cached(context, storage, shard, backend)
    todo = [f for f in files if (f["vid"], f["sha256"]) not in cached]
    started = time.perf_counter()
    results = extract_all(
        shard_blobs(storage, shard, todo),
        giantmidi.workers(),
        lambda done, total: context.log.info(f"shard {shard}: features {done}/{total}"),
        backend,
    )
    elapsed = time.perf_counter() - started
    parsed = {(f["vid"], f["sha256"]): r for f, r in zip(todo, results, strict=True)}
    rows, rejects = [], []
    for f in files:
        key = (f["vid"], f["sha256"])
        if key in cached:  # the title may have changed with the same bytes: its key is redone
            row, reject = cached[key]
            row = row and {**row, **_title_fields(f["title"], row["key_estimate"])}
        else:
            row, reject = _feature_row(f, shard, parsed[key])
        rows += [row] if row else []
        rejects += [reject] if reject else []
    features_t = schemas.to_table(config.T_MIDI_FEATURES, rows)
    rejects_t = schemas.to_table(config.T_MIDI_REJECTS, rejects)
    written, rejects_written = storage.publish_parts(
        [
            (config.T_MIDI_FEATURES, features_t, shard, DEFAULT_PART),
            (config.T_MIDI_REJECTS, rejects_t, shard, STAGE),
        ]
    )
    with_key = [r for r in rows if r["key_matches_title"] is not None]
    yield table_result(
        config.T_MIDI_FEATURES,
        features_t,
        asset_key=config.T_MIDI_FEATURES,
        written=written,
        code_version=VERSION,
        uri=storage.table_uri(config.T_MIDI_FEATURES, shard),
        preview=("vid", "duration_s", "n_notes", "key_estimate", "title_key"),
        metadata={
            "files": len(rows),
            "parsed": len(todo),
            "reused": len(files) - len(todo),
            BACKEND: backend,
            **parse_speed(todo, results, elapsed),
            "notes": sum(r["n_notes"] for r in rows),
            "titles_naming_a_key": len(with_key),
            "key_matches_title": sum(bool(r["key_matches_title"]) for r in with_key),
            "durations": dg.MetadataValue.md(
                histogram_markdown([r["duration_s"] for r in rows], "duration (s)")
            ),
        },
    )
    yield table_result(
        config.T_MIDI_REJECTS,
        rejects_t,
        asset_key=PARSE_REJECTS,
        written=rejects_written,
        code_version=VERSION,
        uri=storage.table_uri(config.T_MIDI_REJECTS, shard, STAGE),
        preview=("member", "reason"),
        metadata={
            "rejects": len(rejects),
            "rejects_by_reason": dg.MetadataValue.md(
                counts_markdown(Counter(r["reason"].split(":", 1)[0] for r in rejects), "reason")
            ),
        },
    )
    yield reject_rate_check("midi_parse_rejects_rate", PARSE_REJECTS, rejects, len(files))


def _feature_row(f: dict, shard: str, result: FeatureResult) -> tuple[dict | None, dict | None]:
    """The features row of a parsed file, or its reject: it failed to parse or is implausible."""
    reason = result.reject_reason
    if reason is not None:
        return None, reject_row(f["member"], shard, reason, STAGE, f["vid"], f["sha256"])
    row = {
        "vid": f["vid"],
        "shard": shard,
        "sha256": f["sha256"],
        **result.features,
        **_title_fields(f["title"], result.features["key_estimate"]),
        "parser": result.parser,
    }
    return row, None


def parse_speed(
    todo: list[dict], results: list[FeatureResult], elapsed: float
) -> dict[str, object]:
    """How fast this run parsed: per file, per note, the slowest files, parsers used, and
    parse time against note count (a file's time is measured in its worker)."""
    timed = [
        (f["vid"], r.features["n_notes"], 1000 * r.seconds)
        for f, r in zip(todo, results, strict=True)
        if r.features is not None
    ]
    notes = sum(n for _, n, _ in timed)
    slowest = sorted(timed, key=lambda t: -t[2])[:5]
    return {
        "seconds": round(elapsed, 3),
        "ms_per_file": round(1000 * elapsed / max(1, len(todo)), 2),
        "parsed_notes_per_s": round(notes / elapsed) if elapsed > 0 else 0,
        "parsers": dg.MetadataValue.md(
            counts_markdown(Counter(r.parser or "none (rejected)" for r in results), "parser")
        ),
        "slowest_files": dg.MetadataValue.md(
            preview_markdown(
                [{"vid": v, "notes": n, "ms": round(ms, 2)} for v, n, ms in slowest],
                ("vid", "notes", "ms"),
            )
        ),
        "parse_time_by_notes": dg.MetadataValue.md(
            scatter_markdown([(n, ms) for _, n, ms in timed], "notes", "ms per file")
        ),
    }


def _title_fields(title: str, key_estimate: object) -> dict[str, object]:
    """The key a title names, and whether the estimate agrees with it."""
    title_key = parse_title_key(title)
    return {"title_key": title_key, "key_matches_title": keys_match(key_estimate, title_key)}


def _cached(
    context: dg.AssetExecutionContext, storage: Storage, shard: str, backend: str
) -> Cached:
    """Rows of the shard's last materialization by (vid, sha256), when it ran this code version
    (its `code_version` metadata) and parser: an unchanged file is then not parsed again."""
    if not ran_this_code(context, config.T_MIDI_FEATURES, VERSION, **{BACKEND: backend}):
        return {}
    cached: Cached = {}
    for row in storage.read_rows(config.T_MIDI_FEATURES, shard):
        cached[(row["vid"], row["sha256"])] = (row, None)
    rejects = storage.read_table(config.T_MIDI_REJECTS, shard, STAGE)
    for reject in rejects.to_pylist() if rejects is not None else []:
        if reject["sha256"]:  # the parse failed on exactly these bytes
            cached[(reject["vid"], reject["sha256"])] = (None, reject)
    return cached
