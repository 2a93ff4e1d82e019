"""Training tokens per shard: every MIDI file as one sequence of miditok REMI ids.

The tokenizer's configuration is written once to the lake (`midi_tokens/tokenizer.json`) and
shipped in the release, so a trainer can decode the ids back to MIDI.
"""

import hashlib
import time
from collections.abc import Iterator
from typing import Any

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mta_pipeline import config, schemas
from mta_pipeline.assets.results import ran_this_code, shard_blobs, shard_files, table_result
from mta_pipeline.code_versions import code_version
from mta_pipeline.core.midi_tokens import (
    TokenResult,
    config_json,
    current_tokenizer,
    tokenize_all,
)
from mta_pipeline.partitions import shard_partitions
from mta_pipeline.resources.giantmidi import GiantMidiSource
from mta_pipeline.resources.storage import Storage
from mta_pipeline.summaries import preview_markdown

# The code and the tokenizer's saved configuration: a miditok upgrade that changes the ids makes
# every shard due again, as a code change does.
_VERSIONED = f"{code_version(__name__)}+{current_tokenizer()}"
VERSION = hashlib.sha256(_VERSIONED.encode()).hexdigest()[:16]
CONFIG_PATH = f"{config.T_MIDI_TOKENS}/{config.TOKENIZER_FILE}"


@dg.asset(
    name=config.T_MIDI_TOKENS,
    deps=[config.T_MIDI_FILES],
    description="Each MIDI file of the shard as miditok REMI token ids (list of int32), for "
    "sequence models; the tokenizer is `midi_tokens/tokenizer.json` in the lake.",
    code_version=VERSION,
    automation_condition=dg.AutomationCondition.eager(),
    kinds={"python", "parquet"},
    group_name="giantmidi",
    partitions_def=shard_partitions,
)
def midi_tokens(
    context: dg.AssetExecutionContext, giantmidi: GiantMidiSource, storage: Storage
) -> Iterator[Any]:
    """Tokenizes only files whose bytes (sha256) are new since the last run of the same code."""
    shard = context.partition_key
    files = shard_files(storage, shard)
    storage.write_if_changed(CONFIG_PATH, config_json())
    tokenizer = current_tokenizer()
    wanted = {(f["vid"], f["sha256"], tokenizer) for f in files}
    kept = _reusable(context, storage, shard, wanted)
    done = set(zip(kept.column("vid").to_pylist(), kept.column("sha256").to_pylist(), strict=True))
    todo = [f for f in files if (f["vid"], f["sha256"]) not in done]
    started = time.perf_counter()
    results = tokenize_all(
        shard_blobs(storage, shard, todo),
        giantmidi.workers(),
        lambda n, total: context.log.info(f"shard {shard}: tokens {n}/{total}"),
    )
    elapsed = time.perf_counter() - started
    rows, failed = [], []
    for f, result in zip(todo, results, strict=True):
        if result.tokens is not None:
            rows.append(_row(f, shard, result, tokenizer))
        else:
            failed.append({"vid": f["vid"], "member": f["member"], "error": result.error})
    new = schemas.to_table(config.T_MIDI_TOKENS, rows)
    data = pa.concat_tables([kept, new]).sort_by("vid")
    if failed:
        context.log.warning(f"shard {shard}: {len(failed)} files could not be tokenized")
    n_tokens = int(pc.sum(data.column("n_tokens")).as_py() or 0)
    yield table_result(
        config.T_MIDI_TOKENS,
        data,
        written=storage.publish(config.T_MIDI_TOKENS, data, shard),
        code_version=VERSION,
        uri=storage.table_uri(config.T_MIDI_TOKENS, shard),
        preview=("vid", "tokenizer", "n_tokens"),
        metadata={
            "tokenizer": tokenizer,
            "tokenizer_config": dg.MetadataValue.path(storage.uri(CONFIG_PATH)),
            "files": data.num_rows,
            "tokenized": len(todo) - len(failed),
            "reused": len(files) - len(todo),
            "not_tokenized": len(failed),
            "failures": dg.MetadataValue.md(preview_markdown(failed, ("vid", "member", "error"))),
            "seconds": round(elapsed, 3),
            "ms_per_file": round(1000 * elapsed / max(1, len(todo)), 2),
            "tokens": n_tokens,
            "tokens_per_file": round(n_tokens / max(1, data.num_rows), 1),
        },
    )


def _row(f: dict, shard: str, result: TokenResult, tokenizer: str) -> dict:
    tokens = result.tokens if result.tokens is not None else np.empty(0, np.int32)
    return {
        "vid": f["vid"],
        "shard": shard,
        "sha256": f["sha256"],
        "tokenizer": tokenizer,
        "n_tokens": len(tokens),
        "tokens": tokens,
    }


def _reusable(
    context: dg.AssetExecutionContext,
    storage: Storage,
    shard: str,
    wanted: set[tuple[str, str, str]],
) -> pa.Table:
    """Rows of the shard's last materialization whose (vid, sha256, tokenizer) is still wanted,
    when it ran this code version: an unchanged file is not tokenized again, and ids made by
    another tokenizer configuration (a miditok upgrade) are made again."""
    empty = schemas.to_table(config.T_MIDI_TOKENS, [])
    if not ran_this_code(context, config.T_MIDI_TOKENS, VERSION):
        return empty
    data = storage.read_table(config.T_MIDI_TOKENS, shard)
    if data is None:
        return empty
    keys = zip(*(data.column(c).to_pylist() for c in ("vid", "sha256", "tokenizer")), strict=True)
    return data.filter(pa.array([key in wanted for key in keys], pa.bool_()))
