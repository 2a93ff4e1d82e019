"""GiantMIDI ingestion: the archive, the MIDI files per shard, their features, the metadata."""

import hashlib
import json
import os
import time
import zipfile
from collections import Counter
from pathlib import Path

import dagster as dg
import fsspec
import pyarrow as pa

from mta_pipeline import config, schemas
from mta_pipeline.assets.persist import store, table_version
from mta_pipeline.core import archive
from mta_pipeline.core.download import ArchiveError, display_url, download, source_fingerprint
from mta_pipeline.core.feature_batch import FeatureResult, extract_all
from mta_pipeline.core.keys import keys_match, parse_title_key
from mta_pipeline.core.metadata import read_metadata
from mta_pipeline.partitions import assign_shard, shard_partitions
from mta_pipeline.resources.catalog import DuckDBCatalog
from mta_pipeline.resources.giantmidi import GiantMidiSource
from mta_pipeline.resources.lake import LakeResource
from mta_pipeline.summaries import counts_markdown, histogram_markdown, preview_markdown

GROUP = "giantmidi"
CODE_VERSION_TAG = "dagster/code_version"


@dg.asset(group_name=GROUP, code_version="1", kinds={"python"})
def giantmidi_archive(
    context: dg.AssetExecutionContext, giantmidi: GiantMidiSource
) -> dg.MaterializeResult:
    """The GiantMIDI zip, fetched once into the data dir; refetched only when the source changes."""
    url = giantmidi.require_archive_url()
    dest, state_path = giantmidi.archive_path, giantmidi.archive_state_path
    expected = giantmidi.expected_sha256()
    fingerprint = source_fingerprint(url)
    state = json.loads(state_path.read_text()) if state_path.exists() else None
    unchanged = (
        state is not None
        and state["fingerprint"] == fingerprint
        and dest.exists()
        and dest.stat().st_size == state["size"]
        and (not expected or expected.lower() == state["sha256"])
    )
    if unchanged:
        context.log.info(f"archive unchanged at {display_url(url)}; not downloading")
        sha, size = state["sha256"], state["size"]
    else:
        context.log.info(f"downloading {display_url(url)} to {dest}")

        def progress(done: int, total: int | None) -> None:
            share = f" ({100 * done / total:.0f}%)" if total else ""
            context.log.info(f"archive: {done / 1e6:.1f} MB{share}")

        fetched = download(url, dest, expected, progress)
        sha, size = fetched.sha256, fetched.size
        state = {"fingerprint": fingerprint, "size": size, "sha256": sha}
        tmp = state_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(state, indent=1))
        os.replace(tmp, state_path)
    with zipfile.ZipFile(dest) as zf:
        n_members = len(zf.infolist())
    return dg.MaterializeResult(
        metadata={
            "source": display_url(url),
            "path": dg.MetadataValue.path(str(dest)),
            "size_bytes": size,
            "sha256": sha,
            "members": n_members,
            "unchanged": unchanged,
        },
        data_version=dg.DataVersion(sha),
    )


def _open_archive(giantmidi: GiantMidiSource) -> zipfile.ZipFile:
    path = giantmidi.archive_path
    if not path.exists():
        raise ArchiveError(f"no archive at {path}: materialize giantmidi_archive first.")
    return zipfile.ZipFile(path)


def _write_if_changed(path: Path, data: bytes, sha256: str) -> None:
    same_size = path.exists() and path.stat().st_size == len(data)
    if same_size and hashlib.sha256(path.read_bytes()).hexdigest() == sha256:
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


@dg.asset(
    group_name=GROUP,
    code_version="1",
    automation_condition=dg.AutomationCondition.eager(),
    partitions_def=shard_partitions,
    deps=[giantmidi_archive],
    kinds={"python", "duckdb", "parquet"},
)
def midi_files(
    context: dg.AssetExecutionContext,
    giantmidi: GiantMidiSource,
    lake: LakeResource,
    catalog: DuckDBCatalog,
) -> dg.MaterializeResult:
    """The shard's MIDI files, extracted as `<vid>.mid`, names parsed; bad members are rejects."""
    shard = context.partition_key
    limit = giantmidi.member_limit()
    out_dir = giantmidi.midi_dir(shard)
    out_dir.mkdir(parents=True, exist_ok=True)
    files, rejects = [], []
    with _open_archive(giantmidi) as zf:
        verdicts = [
            v
            for v in archive.classify_members(archive.members_of(zf), limit)
            if assign_shard(v.member) == shard
        ]
        for v in verdicts:
            data, reason = (None, v.reason)
            if v.parsed is not None:
                data, reason = archive.read_member(zf, v.member, limit)
            if reason is not None:
                parsed = v.parsed or archive.try_parse(v.member)
                vid = parsed.vid if parsed else None
                rejects.append(_reject(v.member, shard, reason, "midi_files", vid))
                continue
            assert v.parsed is not None and data is not None
            sha = archive.sha256_hex(data)
            path = out_dir / f"{v.parsed.vid}.mid"
            _write_if_changed(path, data, sha)
            files.append(
                {
                    "vid": v.parsed.vid,
                    "shard": shard,
                    "surname": v.parsed.surname,
                    "firstname": v.parsed.firstname,
                    "title": v.parsed.title,
                    "member": v.member,
                    "size_bytes": len(data),
                    "sha256": sha,
                    "path": str(path),
                }
            )
    keep = {f"{f['vid']}.mid" for f in files}
    for stale in out_dir.glob("*.mid"):
        if stale.name not in keep:
            stale.unlink()
    files_t = schemas.to_table(config.T_MIDI_FILES, files)
    rejects_t = schemas.to_table(config.T_MIDI_REJECTS, rejects)
    written = _store_shard(lake, catalog, config.T_MIDI_FILES, shard, files_t)
    written |= _store_rejects(lake, catalog, shard, "midi_files", rejects_t)
    codes = Counter(r["reason"].split(":", 1)[0] for r in rejects)
    context.log.info(f"shard {shard}: {len(files)} files, {len(rejects)} rejects {dict(codes)}")
    return dg.MaterializeResult(
        metadata={
            "files": len(files),
            "rejects": len(rejects),
            "unchanged": not written,
            "rejects_by_reason": dg.MetadataValue.md(counts_markdown(codes, "reason")),
            "bytes": sum(f["size_bytes"] for f in files),
            "preview": dg.MetadataValue.md(
                preview_markdown(files, ("vid", "surname", "firstname", "title"))
            ),
            "lake": lake.uri(lake.shard_path(config.T_MIDI_FILES, shard)),
        },
        data_version=table_version(files_t),
    )


def _reject(
    member: str, shard: str, reason: str, stage: str, vid: str | None, sha256: str | None = None
) -> dict[str, str | None]:
    """A `midi_rejects` row."""
    return {
        "member": member,
        "shard": shard,
        "reason": reason,
        "stage": stage,
        "vid": vid,
        "sha256": sha256,
    }


def _store_shard(
    lake: LakeResource, catalog: DuckDBCatalog, table: str, shard: str, data: pa.Table
) -> bool:
    """The lake file first (the store of record), then the catalog's rows for the shard."""
    return store(lake, catalog, table, lake.shard_path(table, shard), data, {"shard": shard})


def _store_rejects(
    lake: LakeResource, catalog: DuckDBCatalog, shard: str, stage: str, data: pa.Table
) -> bool:
    relpath = f"{config.T_MIDI_REJECTS}/shard={shard}/{stage}.parquet"
    where = {"shard": shard, "stage": stage}
    return store(lake, catalog, config.T_MIDI_REJECTS, relpath, data, where)


@dg.asset(
    group_name=GROUP,
    code_version="1",
    automation_condition=dg.AutomationCondition.eager(),
    partitions_def=shard_partitions,
    deps=[midi_files],
    kinds={"python", "duckdb", "parquet"},
)
def midi_features(
    context: dg.AssetExecutionContext,
    lake: LakeResource,
    catalog: DuckDBCatalog,
) -> dg.MaterializeResult:
    """pretty_midi features of each file of the shard; files that fail to parse become rejects."""
    shard = context.partition_key
    files_t = lake.read_parquet(lake.shard_path(config.T_MIDI_FILES, shard), schemas.MIDI_FILES)
    if files_t is None:
        raise dg.Failure(f"shard {shard} of midi_files is missing: materialize midi_files first.")
    files = files_t.to_pylist()
    cached = _cached_features(context, lake, shard)
    todo = [f for f in files if (f["vid"], f["sha256"]) not in cached]
    started = time.perf_counter()
    results = extract_all(
        [f["path"] for f in todo],
        config.feature_workers(),
        lambda done, total: context.log.info(f"shard {shard}: features {done}/{total}"),
    )
    elapsed = time.perf_counter() - started
    parsed = {(f["vid"], f["sha256"]): r for f, r in zip(todo, results, strict=True)}
    rows, rejects = [], []
    for f in files:
        key = (f["vid"], f["sha256"])
        if key in cached:
            row, reject = cached[key]
        else:
            row, reject = _feature_row(f, shard, parsed[key])
        if row is not None:
            rows.append(row)
        if reject is not None:
            rejects.append(reject)
    features_t = schemas.to_table(config.T_MIDI_FEATURES, rows)
    written = _store_shard(lake, catalog, config.T_MIDI_FEATURES, shard, features_t)
    rejects_t = schemas.to_table(config.T_MIDI_REJECTS, rejects)
    written |= _store_rejects(lake, catalog, shard, "midi_features", rejects_t)
    with_key = [r for r in rows if r["key_matches_title"] is not None]
    return dg.MaterializeResult(
        metadata={
            "files": len(rows),
            "rejects": len(rejects),
            "parsed": len(todo),
            "reused": len(files) - len(todo),
            "unchanged": not written,
            "seconds": round(elapsed, 3),
            "ms_per_file": round(1000 * elapsed / max(1, len(todo)), 2),
            "notes": sum(r["n_notes"] for r in rows),
            "titles_naming_a_key": len(with_key),
            "key_matches_title": sum(bool(r["key_matches_title"]) for r in with_key),
            "durations": dg.MetadataValue.md(
                histogram_markdown([r["duration_s"] for r in rows], "duration (s)")
            ),
            "preview": dg.MetadataValue.md(
                preview_markdown(
                    rows, ("vid", "duration_s", "n_notes", "key_estimate", "title_key")
                )
            ),
        },
        data_version=table_version(features_t),
    )


def _feature_row(f: dict, shard: str, result: FeatureResult) -> tuple[dict | None, dict | None]:
    """The features row of a parsed file, or its reject."""
    if result.features is None:
        reason = f"{archive.PARSE_ERROR}: {result.error}"
        return None, _reject(f["member"], shard, reason, "midi_features", f["vid"], f["sha256"])
    title_key = parse_title_key(f["title"])
    row = {
        "vid": f["vid"],
        "shard": shard,
        "sha256": f["sha256"],
        **result.features,
        "title_key": title_key,
        "key_matches_title": keys_match(result.features["key_estimate"], title_key),
    }
    return row, None


def _cached_features(
    context: dg.AssetExecutionContext, lake: LakeResource, shard: str
) -> dict[tuple[str, str], tuple[dict | None, dict | None]]:
    """Rows of the shard's last materialization by (vid, sha256), when that materialization ran
    the same code version: an unchanged file is then not parsed again."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=context.asset_key, asset_partitions=[shard]), limit=1
    ).records
    current = context.assets_def.code_versions_by_key.get(context.asset_key)
    if not records or records[0].asset_materialization.tags.get(CODE_VERSION_TAG) != current:
        return {}
    rows = lake.read_parquet(lake.shard_path(config.T_MIDI_FEATURES, shard), schemas.MIDI_FEATURES)
    rejects = lake.read_parquet(
        f"{config.T_MIDI_REJECTS}/shard={shard}/midi_features.parquet", schemas.MIDI_REJECTS
    )
    cached: dict[tuple[str, str], tuple[dict | None, dict | None]] = {}
    for row in rows.to_pylist() if rows is not None else []:
        cached[(row["vid"], row["sha256"])] = (row, None)
    for reject in rejects.to_pylist() if rejects is not None else []:
        if reject["sha256"]:  # the parse failed on exactly these bytes
            cached[(reject["vid"], reject["sha256"])] = (None, reject)
    return cached


@dg.asset(group_name=GROUP, code_version="1", kinds={"python", "duckdb", "parquet"})
def giantmidi_metadata(
    context: dg.AssetExecutionContext,
    giantmidi: GiantMidiSource,
    lake: LakeResource,
    catalog: DuckDBCatalog,
) -> dg.MaterializeResult:
    """GiantMIDI's composer and video metadata, every row with its position (`row_index`).

    Without GIANTMIDI_METADATA_URL the table is written empty, so joins downstream still work.
    """
    url = giantmidi.resolved_metadata_url()
    if url is None:
        context.log.warning("GIANTMIDI_METADATA_URL is not set: giantmidi_metadata is empty")
        rows_t = schemas.to_table(config.T_GIANTMIDI_METADATA, [])
        unparsed = 0
    else:
        try:
            with fsspec.open(url, "rt", encoding="utf-8") as fh:
                text = fh.read()
        except FileNotFoundError as exc:
            raise ArchiveError(
                f"GIANTMIDI_METADATA_URL points to {display_url(url)}, which does not exist."
            ) from exc
        df, unparsed = read_metadata(text)
        rows_t = pa.Table.from_pandas(df, schema=schemas.GIANTMIDI_METADATA, preserve_index=False)
    relpath = lake.table_path(config.T_GIANTMIDI_METADATA)
    written = store(lake, catalog, config.T_GIANTMIDI_METADATA, relpath, rows_t, None)
    in_release = sum(1 for v in rows_t.column("giant_midi_piano").to_pylist() if v == 1)
    return dg.MaterializeResult(
        metadata={
            "rows": rows_t.num_rows,
            "in_release": in_release,
            "unparsed_numbers": unparsed,
            "unchanged": not written,
            "source": display_url(url) if url else "not configured",
        },
        data_version=table_version(rows_t),
    )
