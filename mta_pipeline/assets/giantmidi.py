"""GiantMIDI ingestion: the archive, the MIDI files per shard (with their rejects), the metadata."""

import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import dagster as dg
import pyarrow as pa

from mta_pipeline import config, schemas
from mta_pipeline.assets.rejects import MAX_REJECT_RATE, reject_rate_check, reject_row
from mta_pipeline.assets.results import progress, step_outputs, table_result
from mta_pipeline.code_versions import code_version
from mta_pipeline.core import archive
from mta_pipeline.core.download import (
    download,
    read_bytes,
    source_fingerprint,
)
from mta_pipeline.core.metadata import read_metadata
from mta_pipeline.core.redact import redact_url
from mta_pipeline.partitions import assign_shard, shard_partitions
from mta_pipeline.resources.giantmidi import GiantMidiSource
from mta_pipeline.resources.storage import ARCHIVE_RELPATH, DEFAULT_PART, Storage
from mta_pipeline.summaries import counts_markdown

GROUP = "giantmidi"
STAGE = "midi_files"  # the `stage` of this step's rows in the midi_rejects table
VERSION = code_version(__name__)


@dg.asset(group_name=GROUP, code_version=VERSION, kinds={"python"})
def giantmidi_archive(
    context: dg.AssetExecutionContext, giantmidi: GiantMidiSource, storage: Storage
) -> dg.MaterializeResult:
    """The GiantMIDI zip, fetched once into the lake (where every shard's `midi_files` finds it,
    on any machine); refetched only when the source changes."""
    url = giantmidi.require_archive_url()
    expected = giantmidi.expected_sha256()
    fingerprint = source_fingerprint(url)
    state = storage.archive_state()
    unchanged = (
        state is not None
        and state["fingerprint"] == fingerprint
        and (not expected or expected == state["sha256"])
        and storage.archive_in_lake(state)
    )
    if unchanged:
        context.log.info(f"archive unchanged at {redact_url(url)}; not downloading")
        uri = storage.uri(ARCHIVE_RELPATH)
    else:
        dest = storage.archive_fetch_path()
        context.log.info(f"downloading {redact_url(url)} to {dest}")
        fetched = download(url, dest, expected, _download_progress(context))
        with zipfile.ZipFile(dest) as zf:
            members = len(zf.infolist())
        state = {
            "fingerprint": fingerprint,
            "size": fetched.size,
            "sha256": fetched.sha256,
            "members": members,
        }
        uri = storage.put_archive(dest, state)
        if not storage.lake.is_local:  # this machine's copy becomes its cache of that version
            dest.replace(storage.archive_cache_path(state["sha256"]))
    return dg.MaterializeResult(
        metadata={
            "source": redact_url(url),
            "dagster/uri": dg.MetadataValue.path(uri),
            "size_bytes": state["size"],
            "sha256": state["sha256"],
            "members": state.get("members", -1),
            "unchanged": unchanged,
            "code_version": VERSION,
        },
        data_version=dg.DataVersion(state["sha256"]),
    )


def _download_progress(context: dg.AssetExecutionContext) -> Callable[[int, int | None], None]:
    """Bytes, share and rate of the download, about every two seconds (the `mta` command shows
    these lines in the terminal)."""
    started = time.monotonic()

    def report(done: int, total: int | None) -> None:
        share = f" of {total / 1e6:.1f} MB ({100 * done / total:.0f}%)" if total else ""
        rate = done / 1e6 / max(1e-6, time.monotonic() - started)
        progress(context, f"archive {done / 1e6:.1f} MB{share} at {rate:.1f} MB/s")

    return report


@dg.multi_asset(
    specs=step_outputs(
        VERSION,
        [giantmidi_archive],
        {"python", "parquet"},
        midi_files="The shard's MIDI files, extracted as `<vid>.mid`, names parsed.",
        midi_rejects="Archive members of the shard that are not kept, each with its reason.",
    ),
    check_specs=[
        dg.AssetCheckSpec(
            "midi_files_unique_vid",
            asset=config.T_MIDI_FILES,
            blocking=True,
            description="Each YouTube id appears once in the whole midi_files table.",
        ),
        dg.AssetCheckSpec(
            "midi_rejects_rate",
            asset=config.T_MIDI_REJECTS,
            description=f"At most {MAX_REJECT_RATE:.0%} of the shard's members are rejected.",
        ),
    ],
    group_name=GROUP,
    partitions_def=shard_partitions,
)
def midi_files(
    context: dg.AssetExecutionContext, giantmidi: GiantMidiSource, storage: Storage
) -> Iterator[Any]:
    """Every zip entry of the shard is accounted once (two entries of one name are two): a kept
    file or a reject."""
    shard = context.partition_key
    limit = giantmidi.member_limit()
    path = storage.local_archive()
    files, rejects, blobs = [], [], []
    with zipfile.ZipFile(path) as zf:
        mine = [m for m in archive.members_of(zf) if assign_shard(m.name) == shard]
        for v in archive.judge_members(mine, limit, archive.entry_reader(zf, limit)):
            if v.data is None or v.parsed is None:
                vid = v.parsed and v.parsed.vid
                reject = reject_row(v.member.name, shard, str(v.reason), STAGE, vid, v.sha256)
                rejects.append(reject)
                continue
            sha256 = archive.sha256_hex(v.data)
            blobs.append({"vid": v.parsed.vid, "sha256": sha256, "bytes": v.data})
            files.append(
                {
                    "vid": v.parsed.vid,
                    "shard": shard,
                    "surname": v.parsed.surname,
                    "firstname": v.parsed.firstname,
                    "title": v.parsed.title,
                    "member": v.member.name,
                    "size_bytes": len(v.data),
                    "sha256": sha256,
                    "path": storage.midi_relpath(shard),
                }
            )
    blobs.sort(key=lambda b: b["vid"])
    storage.write_midi(shard, pa.Table.from_pylist(blobs, schema=schemas.MIDI_BYTES))
    files_t = schemas.to_table(config.T_MIDI_FILES, files)
    rejects_t = schemas.to_table(config.T_MIDI_REJECTS, rejects)
    files_written, rejects_written = storage.publish_parts(
        [
            (config.T_MIDI_FILES, files_t, shard, DEFAULT_PART),
            (config.T_MIDI_REJECTS, rejects_t, shard, STAGE),
        ]
    )
    context.log.info(f"shard {shard}: {len(files)} files, {len(rejects)} rejects")
    yield table_result(
        config.T_MIDI_FILES,
        files_t,
        asset_key=config.T_MIDI_FILES,
        written=files_written,
        code_version=VERSION,
        uri=storage.table_uri(config.T_MIDI_FILES, shard),
        preview=("vid", "surname", "firstname", "title"),
        metadata={"files": len(files), "bytes": sum(f["size_bytes"] for f in files)},
    )
    yield table_result(
        config.T_MIDI_REJECTS,
        rejects_t,
        asset_key=config.T_MIDI_REJECTS,
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
    dupes = _duplicated_vids(storage.read_all(config.T_MIDI_FILES))
    yield dg.AssetCheckResult(
        check_name="midi_files_unique_vid",
        asset_key=config.T_MIDI_FILES,
        passed=not dupes,
        metadata={"duplicated_vids": len(dupes), "examples": ", ".join(d["vid"] for d in dupes)},
    )
    total = len(files) + len(rejects)
    yield reject_rate_check("midi_rejects_rate", config.T_MIDI_REJECTS, rejects, total)


def _duplicated_vids(files: pa.Table, limit: int = 20) -> list[dict]:
    """Video ids held by more than one row of the whole table (read from the lake, which every
    shard's run writes), with their counts."""
    counts = Counter(files.column("vid").to_pylist())
    return [{"vid": v, "n": n} for v, n in sorted(counts.items()) if n > 1][:limit]


@dg.asset(
    group_name=GROUP, code_version=VERSION, kinds={"python", "parquet"}, output_required=False
)
def giantmidi_metadata(
    context: dg.AssetExecutionContext, giantmidi: GiantMidiSource, storage: Storage
) -> Iterator[dg.MaterializeResult]:
    """GiantMIDI's composer and video metadata, every row with its position (`row_index`).

    Without GIANTMIDI_METADATA_URL nothing is materialized (a warning says so): an unconfigured
    source never replaces good data. Records then carry no metadata fields.
    """
    url = giantmidi.metadata_source()
    if url is None:
        context.log.warning(
            f"{config.GIANTMIDI_METADATA_URL} is not set: giantmidi_metadata is skipped and keeps "
            "what it had (records get no GiantMIDI metadata until it is set)."
        )
        return
    data = read_bytes(url, config.GIANTMIDI_METADATA_URL)
    df, unparsed = read_metadata(data, f"{redact_url(url)} ({config.GIANTMIDI_METADATA_URL})")
    rows_t = pa.Table.from_pandas(df, schema=schemas.GIANTMIDI_METADATA, preserve_index=False)
    written = storage.publish(config.T_GIANTMIDI_METADATA, rows_t)
    in_release = sum(1 for v in rows_t.column("giant_midi_piano").to_pylist() if v == 1)
    yield table_result(
        config.T_GIANTMIDI_METADATA,
        rows_t,
        written=written,
        code_version=VERSION,
        uri=storage.table_uri(config.T_GIANTMIDI_METADATA),
        preview=("row_index", "surname", "firstname", "music", "youtube_id"),
        metadata={
            "in_release": in_release,
            "unparsed_numbers": unparsed,
            "source": redact_url(url),
        },
    )
