"""Materializing a selection in-process, shard by shard, with one progress line per partition.

The selection is cut into stages (see `plan`): unpartitioned assets run once, and sharded ones
get a run per shard, so a failed shard does not stop the others. Runs are recorded in the
Dagster instance, so they show in the UI next to UI-launched runs.
"""

from __future__ import annotations

import operator
import os
import re
import socket
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import reduce
from typing import Any

import dagster as dg

from mta_pipeline.partitions import SHARD_KEYS

Echo = Callable[[str], None]
# The runner prints one line per run itself; Dagster's console logger would repeat failures with
# their stack traces, which belong in the event log (the UI), not in a user's terminal.
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
SUMMARY_KEYS = (
    "files",
    "rejects",
    "rows",
    "members",
    "fetched",
    "pending",
    "comments",
    "quota_units_spent",
    "unchanged",
)


class SelectionError(ValueError):
    """The selection or shard list names nothing that exists."""


@dataclass
class Outcome:
    failures: list[str] = field(default_factory=list)
    runs: int = 0
    skipped: int = 0

    @property
    def ok(self) -> bool:
        return not self.failures


def parse_selection(selection: str) -> dg.AssetSelection:
    """Dagster's selection syntax; a comma-separated list of clauses is their union (as in the
    `dagster asset materialize --select` CLI)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        parts = [dg.AssetSelection.from_string(p.strip()) for p in selection.split(",")]
    return reduce(operator.or_, parts)


def plan(
    defs: dg.Definitions, selection: str, shards: Sequence[str] | None
) -> tuple[list[tuple[bool, list[dg.AssetKey]]], list[str]]:
    """Stages of the selection, in order, each (partitioned?, keys), and the shard list.

    A stage is a run of assets of one kind: unpartitioned assets run once, sharded ones once per
    shard. An asset's stage is one past its parents' when their kinds differ, so an unpartitioned
    asset between sharded ones (corpus-wide comment repetition) runs after every shard of its
    inputs and before any shard of what depends on it.
    """
    graph = defs.resolve_asset_graph()
    try:
        keys = parse_selection(selection).resolve(graph)
    except Exception as exc:
        raise SelectionError(
            f"bad --select {selection!r} ({exc}); examples: '*midi_features', "
            "'midi_files,midi_features', 'key:midi_files or key:midi_features'"
        ) from exc
    if not keys:
        raise SelectionError(f"--select {selection!r} matches no asset")
    shards = list(shards or SHARD_KEYS)
    unknown = sorted(set(shards) - set(SHARD_KEYS))
    if unknown:
        raise SelectionError(
            f"unknown shard(s) {unknown}; shards are {SHARD_KEYS[0]} to {SHARD_KEYS[-1]}"
        )
    ordered = [k for level in graph.toposorted_asset_keys_by_level for k in level if k in keys]
    stage: dict[dg.AssetKey, int] = {}
    for key in ordered:
        node = graph.get(key)
        parents = [p for p in node.parent_keys if p in stage]
        stage[key] = max(
            (stage[p] + (graph.get(p).is_partitioned != node.is_partitioned) for p in parents),
            default=0 if not node.is_partitioned else 1,
        )
    stages = []
    for n in sorted(set(stage.values())):
        members = [k for k in ordered if stage[k] == n]
        for partitioned in (False, True):
            group = [k for k in members if graph.get(k).is_partitioned == partitioned]
            if group:
                stages.append((partitioned, group))
    return stages, shards


ENV_HINTS = {
    "YOUTUBE_API_KEY": "export a YouTube Data API v3 key, or run `mta demo` (offline emulator)",
}


def config_error_message(exc: dg.DagsterInvalidConfigError) -> str:
    """One line per config error; an unset EnvVar becomes 'NAME is not set: what to do'."""
    lines = []
    for error in exc.errors or []:
        found = re.search(r'environment variable "(\w+)" which is not set', error.message)
        if found:
            name = found.group(1)
            lines.append(f"{name} is not set: {ENV_HINTS.get(name, 'export it and rerun')}")
        else:
            lines.append(error.message.strip().splitlines()[0])
    return "; ".join(lines) or str(exc).splitlines()[0]


def _force(keys: Sequence[dg.AssetKey], force: bool) -> dict | None:
    """Run config asking the YouTube assets among `keys` to fetch again what is still fresh."""
    scrapers = [k.to_user_string() for k in keys if k.to_user_string().startswith("youtube_")]
    if not (force and scrapers):
        return None
    return {"ops": {name: {"config": {"force": True}} for name in scrapers}}


OWNER_TAGS = {"mta/host": socket.gethostname(), "mta/pid": str(os.getpid())}


def release_abandoned_runs(instance: dg.DagsterInstance, echo: Echo = print) -> int:
    """Runs this machine's `mta` started in-process and whose process is gone (killed, crashed)
    are marked failed and their concurrency-pool slots freed; otherwise a killed scrape would
    hold the `youtube_api` slot forever and the next run would wait for it."""
    released = 0
    for run in instance.get_runs(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING])
    ):
        if run.tags.get("mta/host") != OWNER_TAGS["mta/host"] or _alive(run.tags.get("mta/pid")):
            continue
        instance.report_run_failed(run, "the mta process running it is gone (killed or crashed)")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        released += 1
    if released:
        echo(f"released {released} run(s) left behind by a killed mta process")
    return released


def _alive(pid: str | None) -> bool:
    if not pid or not pid.isdigit():
        return True  # not ours to judge
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _names(keys: Sequence[dg.AssetKey]) -> str:
    return ", ".join(k.to_user_string() for k in keys)


def _summary(result: dg.ExecuteInProcessResult) -> str:
    parts = []
    for event in result.get_asset_materialization_events():
        mat = event.materialization
        values = {k: v.value for k, v in mat.metadata.items() if k in SUMMARY_KEYS}
        shown = " ".join(f"{k}={v}" for k, v in values.items())
        parts.append(
            f"{mat.asset_key.to_user_string()}({shown})"
            if shown
            else mat.asset_key.to_user_string()
        )
    return ", ".join(parts)


def _failure(result: dg.ExecuteInProcessResult) -> str:
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data.error:
            error = event.step_failure_data.error
            while error.cause and error.cls_name in ("DagsterExecutionStepExecutionError",):
                error = error.cause
            message = error.message.strip().split("\n\n")[0]
            return f"{event.step_key}: {message}"
    return "run failed"


def _run(
    job: dg.JobDefinition,
    keys: list[dg.AssetKey],
    instance: dg.DagsterInstance,
    label: str,
    echo: Echo,
    outcome: Outcome,
    partition_key: str | None = None,
    run_config: dict | None = None,
) -> None:
    started = time.perf_counter()
    try:
        result = job.execute_in_process(
            asset_selection=keys,
            partition_key=partition_key,
            instance=instance,
            tags=OWNER_TAGS,
            run_config={**QUIET_LOGS, **(run_config or {})},
            raise_on_error=False,
        )
    except dg.DagsterInvalidConfigError as exc:
        message = config_error_message(exc)
        outcome.failures.append(f"{label}: {message}")
        echo(f"{label} FAILED: {message}")
        return
    outcome.runs += 1
    took = time.perf_counter() - started
    if result.success:
        echo(f"{label} ok in {took:.1f}s: {_summary(result)}")
    else:
        message = _failure(result)
        outcome.failures.append(f"{label}: {message}")
        echo(f"{label} FAILED in {took:.1f}s: {message}")


def materialize(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    selection: str = "*",
    shards: Sequence[str] | None = None,
    echo: Echo = print,
    force_refresh: bool = False,
    only_stale: bool = True,
) -> Outcome:
    """Materialize the selection stage by stage. With `only_stale`, a shard (or an unpartitioned
    stage) whose assets are all up to date in Dagster's terms (materialized, same code version,
    inputs unchanged) is skipped without starting a run; assets without inputs always run (they
    look at the outside world: the archive URL, the metadata CSV), and YouTube assets run for
    shards with scrapes due (pending, failed or older than MTA_YOUTUBE_REFRESH_DAYS)."""
    stages, shard_list = plan(defs, selection, shards)
    release_abandoned_runs(instance, echo)
    graph = defs.resolve_asset_graph()
    job = defs.resolve_implicit_global_asset_job_def()
    outcome = Outcome()
    for partitioned, keys in stages:
        fresh = _freshness(instance, graph) if only_stale else None
        if not partitioned:
            label = f"[all shards] {_names(keys)}"
            if fresh and all(graph.get(k).parent_keys and fresh(k, None) for k in keys):
                echo(f"{label} up to date, skipped")
            else:
                _run(job, keys, instance, label, echo, outcome)
        else:
            due = _youtube_due(keys, force_refresh) if only_stale else set()
            for i, shard in enumerate(shard_list, 1):
                label = f"[{i:>2}/{len(shard_list)}] shard {shard}"
                if fresh and shard not in due and all(fresh(k, shard) for k in keys):
                    echo(f"{label} up to date, skipped")
                    outcome.skipped += 1
                    continue
                _run(job, keys, instance, label, echo, outcome, shard, _force(keys, force_refresh))
        if not outcome.ok:
            break
    return outcome


def _freshness(
    instance: dg.DagsterInstance, graph: Any
) -> Callable[[dg.AssetKey, str | None], bool]:
    """Whether an asset partition is materialized and not stale (Dagster's own staleness: code
    versions and input data versions). Built per stage: earlier stages change the answer."""
    from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
    from dagster._core.loader import LoadingContextForTest

    resolver = CachingStaleStatusResolver(instance, graph, LoadingContextForTest(instance))
    return lambda key, partition: resolver.get_status(key, partition) == StaleStatus.FRESH


def _youtube_due(keys: Sequence[dg.AssetKey], force: bool) -> set[str]:
    """Shards whose YouTube scrapes are due, when the stage holds YouTube assets."""
    if not any(k.to_user_string().startswith("youtube_") for k in keys):
        return set()
    if force:
        return set(SHARD_KEYS)
    from mta_pipeline.automation import youtube_due_shards
    from mta_pipeline.resources.catalog import DuckDBCatalog

    return youtube_due_shards(DuckDBCatalog(), datetime.now(UTC))
