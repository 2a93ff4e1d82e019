"""`mta materialize`: the selection, stage by stage and shard by shard, through public Dagster APIs.

Each run is a `dagster.materialize` call recorded in the instance, so it shows in the UI beside
runs launched there. Unpartitioned assets run once, sharded ones once per shard (a failed shard
does not stop the others). What is due comes from the instance's materialization records (see
`due`), read with `DagsterInstance.fetch_materializations`.
"""

from __future__ import annotations

import logging
import operator
import os
import re
import socket
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import reduce
from graphlib import TopologicalSorter
from typing import Any

import dagster as dg

from mta_pipeline import config
from mta_pipeline.assets.results import CODE_VERSION, PROGRESS_LOGGER, UNCHANGED
from mta_pipeline.partitions import SHARD_KEYS

Echo = Callable[[str], None]
# The runner prints a line per run; Dagster's console logger would repeat failures with their
# stack traces, which belong in the event log (the UI), not in a user's terminal.
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
SUMMARY_KEYS = ("dagster/row_count", "fetched", "pending", "quota_units_spent", UNCHANGED)
# The steps that call the YouTube API (their op names) and take `ScrapeConfig`.
SCRAPE_OPS = ("youtube_videos", "youtube_comments")
# Errors that mean the user's settings or inputs are wrong: `mta` exits 2 with the message.
USER_ERRORS = ("ConfigError", "ArchiveError", "MetadataError")
OWNER_TAGS = {"mta/host": socket.gethostname(), "mta/pid": str(os.getpid())}


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


@dataclass(frozen=True)
class Stage:
    """Assets that run together: once (unpartitioned) or once per shard."""

    partitioned: bool
    keys: tuple[dg.AssetKey, ...]


def parse_selection(selection: str) -> dg.AssetSelection:
    """Dagster's selection syntax; a comma-separated list of clauses is their union (as in the
    `dagster asset materialize --select` CLI)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        parts = [dg.AssetSelection.from_string(p.strip()) for p in selection.split(",")]
    return reduce(operator.or_, parts)


def _assets(defs: dg.Definitions) -> list[dg.AssetsDefinition]:
    return [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)]


def plan(
    defs: dg.Definitions, selection: str, shards: Sequence[str] | None
) -> tuple[list[Stage], list[str]]:
    """Stages of the selection, in order, and the shard list.

    An asset that shares a step with selected ones (a multi-asset) is selected with them. An
    asset's stage is one past its parents' when their kinds (partitioned or not) differ, so an
    unpartitioned asset between sharded ones (corpus-wide comment repetition) runs after every
    shard of its inputs and before any shard of what depends on it.
    """
    assets = _assets(defs)
    try:
        keys = set(parse_selection(selection).resolve(assets))
    except Exception as exc:
        raise SelectionError(
            f"bad --select {selection!r} ({str(exc).splitlines()[0]}); examples: "
            "'*midi_features', 'midi_files,midi_features', 'key:midi_files or key:midi_features'"
        ) from exc
    if not keys:
        raise SelectionError(f"--select {selection!r} matches no asset")
    for a in assets:
        if keys & set(a.keys):
            keys |= set(a.keys)
    shards = list(shards or SHARD_KEYS)
    unknown = sorted(set(shards) - set(SHARD_KEYS))
    if unknown:
        raise SelectionError(
            f"unknown shard(s) {unknown}; shards are {SHARD_KEYS[0]} to {SHARD_KEYS[-1]}"
        )
    specs = {s.key: s for s in defs.resolve_all_asset_specs()}
    stage: dict[dg.AssetKey, int] = {}
    for key in _toposorted(specs):
        if key not in keys:
            continue
        spec = specs[key]
        parents = [d.asset_key for d in spec.deps if d.asset_key in stage]
        partitioned = spec.partitions_def is not None
        stage[key] = max(
            (stage[p] + ((specs[p].partitions_def is not None) != partitioned) for p in parents),
            default=int(partitioned),
        )
    for a in assets:  # a step's outputs share the latest stage among them
        if keys & set(a.keys):
            top = max(stage[k] for k in a.keys)
            stage.update(dict.fromkeys(a.keys, top))
    stages = []
    for n in sorted(set(stage.values())):
        for partitioned in (False, True):
            group = tuple(
                k
                for k in _toposorted(specs)
                if stage.get(k) == n and (specs[k].partitions_def is not None) == partitioned
            )
            if group:
                stages.append(Stage(partitioned, group))
    return stages, shards


def _toposorted(specs: dict[dg.AssetKey, dg.AssetSpec]) -> list[dg.AssetKey]:
    graph = {k: {d.asset_key for d in s.deps if d.asset_key in specs} for k, s in specs.items()}
    return list(TopologicalSorter(graph).static_order())


# -- what is due -----------------------------------------------------------------------------------


def _records(
    instance: dg.DagsterInstance,
    key: dg.AssetKey,
    after: int | None = None,
    want: Sequence[str | None] = (),
) -> list[Any]:
    """Materialization records of `key`, newest first, after storage id `after`; with `want`,
    paging stops once every wanted partition has been seen (its latest record is in)."""
    found, seen, cursor = [], set(), None
    while True:
        page = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, after_storage_id=after), limit=1000, cursor=cursor
        )
        found += page.records
        seen |= {r.partition_key for r in page.records} & set(want)
        if not page.has_more or (want and len(seen) >= len(set(want))):
            return found
        cursor = page.cursor


def _meta(record: Any, key: str, default: object) -> object:
    value = record.asset_materialization.metadata.get(key)
    return default if value is None else value.value


def due_partitions(
    defs: dg.Definitions, instance: dg.DagsterInstance, stage: Stage, partitions: Sequence[str]
) -> set[str | None]:
    """The partitions of the stage (None for an unpartitioned one) where some asset needs a run:
    never materialized; materialized by another code version (its `code_version` metadata); or an
    input materialized since with a change (its `unchanged` metadata false). An asset without
    inputs is always due: it looks at the outside world (the archive URL, the metadata file) and
    finds out cheaply when nothing changed. A few paged queries per asset, whatever the shards."""
    specs = {s.key: s for s in defs.resolve_all_asset_specs()}
    wanted: list[str | None] = list(partitions) if stage.partitioned else [None]
    latest: dict[tuple[dg.AssetKey, str | None], Any] = {}
    for key in stage.keys:
        for record in reversed(_records(instance, key, want=wanted)):
            latest[(key, record.partition_key)] = record  # newest wins
    due: set[str | None] = set()
    for key in stage.keys:
        spec = specs[key]
        for p in wanted:
            record = latest.get((key, p))
            if (
                record is None
                or not spec.deps
                or _meta(record, CODE_VERSION, None) != spec.code_version
            ):
                due.add(p)
    known = [latest[(k, p)].storage_id for k in stage.keys for p in wanted if (k, p) in latest]
    if not known:
        return due
    changed: dict[tuple[dg.AssetKey, str | None], int] = {}
    for parent in {d.asset_key for k in stage.keys for d in specs[k].deps}:
        for r in _records(instance, parent, after=min(known)):
            if not _meta(r, UNCHANGED, False):
                part = r.partition_key if stage.partitioned else None
                changed[(parent, part)] = max(changed.get((parent, part), 0), r.storage_id)
    for key in stage.keys:
        for p in wanted:
            record = latest.get((key, p))
            if record and any(
                changed.get((d.asset_key, p if specs[d.asset_key].partitions_def else None), 0)
                > record.storage_id
                for d in specs[key].deps
            ):
                due.add(p)
    return due


# -- running -----------------------------------------------------------------------------------


def release_abandoned_runs(instance: dg.DagsterInstance, echo: Echo = print) -> int:
    """Runs this machine's `mta` started and whose process is gone (killed, crashed) are marked
    failed, so the run history and the UI's pools do not count them as running."""
    released = 0
    for record in instance.get_run_records(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING])
    ):
        run = record.dagster_run
        if run.tags.get("mta/host") != OWNER_TAGS["mta/host"] or _alive(run.tags.get("mta/pid")):
            continue
        instance.report_run_failed(run, "the mta process running it is gone (killed or crashed)")
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


def config_error_message(exc: dg.DagsterInvalidConfigError) -> str:
    """A setting Dagster could not use (e.g. a number that is not one), in one line."""
    return "; ".join(e.message.strip().splitlines()[0] for e in exc.errors or []) or str(exc)


def _names(keys: Iterable[dg.AssetKey]) -> str:
    return ", ".join(k.to_user_string() for k in keys)


def _summary(result: dg.ExecuteInProcessResult) -> str:
    parts = []
    for event in result.get_asset_materialization_events():
        mat = event.materialization
        values = {
            k.removeprefix("dagster/"): v.value
            for k, v in mat.metadata.items()
            if k in SUMMARY_KEYS
        }
        shown = " ".join(f"{k}={v}" for k, v in values.items())
        name = mat.asset_key.to_user_string()
        parts.append(f"{name}({shown})" if shown else name)
    return ", ".join(parts)


def _failure(result: dg.ExecuteInProcessResult) -> tuple[str, bool]:
    """The first step failure's message, and whether it is a user's setting (ConfigError)."""
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data.error:
            error = event.step_failure_data.error
            while error.cause and error.cls_name in ("DagsterExecutionStepExecutionError",):
                error = error.cause
            message = error.message.strip().split("\n\n")[0]
            message = re.sub(r"^[\w.]+(Error|Failure): ", "", message)  # no class paths
            return f"{event.step_key}: {message}", error.cls_name in USER_ERRORS
    return "run failed", False


def stage_jobs(defs: dg.Definitions, stages: Sequence[Stage]) -> list[dg.JobDefinition]:
    """One asset job per stage (`mta_stage_<n>`), built once and run once per shard: the same
    Definitions, with a job selecting the stage's assets and their checks."""
    jobs = [
        dg.define_asset_job(
            f"mta_stage_{n}",
            selection=dg.AssetSelection.assets(*stage.keys),
            description=f"`mta materialize`: {_names(stage.keys)}",
        )
        for n, stage in enumerate(stages, 1)
    ]
    staged = dg.Definitions(
        assets=defs.assets, asset_checks=defs.asset_checks, resources=defs.resources, jobs=jobs
    )
    return [staged.resolve_job_def(job.name) for job in jobs]


@dataclass
class _Runner:
    instance: dg.DagsterInstance
    echo: Echo
    outcome: Outcome
    force: bool

    def run(
        self,
        job: dg.JobDefinition,
        keys: Sequence[dg.AssetKey],
        label: str,
        partition: str | None = None,
    ) -> float:
        started = time.perf_counter()
        names = {k.to_user_string() for k in keys}
        ops = {op: {"config": {"force": True}} for op in SCRAPE_OPS if op in names and self.force}
        run_config = {**QUIET_LOGS, **({"ops": ops} if ops else {})}
        try:
            result = job.execute_in_process(
                partition_key=partition,
                instance=self.instance,
                tags=OWNER_TAGS,
                run_config=run_config,
                raise_on_error=False,
            )
        except dg.DagsterInvalidConfigError as exc:
            raise config.ConfigError(config_error_message(exc)) from None
        took = time.perf_counter() - started
        self.outcome.runs += 1
        if result.success:
            self.echo(f"{label} ok in {took:.1f}s: {_summary(result)}")
            return took
        message, user_error = _failure(result)
        if user_error:
            raise config.ConfigError(message.split(": ", 1)[-1])
        self.outcome.failures.append(f"{label}: {message}")
        self.echo(f"{label} FAILED in {took:.1f}s: {message}")
        return took


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
    stage) none of whose assets is `due` is skipped without starting a run, and YouTube assets
    run for shards with scrapes due (pending, failed or older than MTA_YOUTUBE_REFRESH_DAYS)."""
    config.apply_defaults()  # a setting unset since the definitions loaded gets its default
    stages, shard_list = plan(defs, selection, shards)
    release_abandoned_runs(instance, echo)
    outcome = Outcome()
    runner = _Runner(instance, echo, outcome, force_refresh)
    with _progress_to(echo):
        for stage, job in zip(stages, stage_jobs(defs, stages), strict=True):
            if not stage.partitioned:
                label = f"[all shards] {_names(stage.keys)}"
                if only_stale and not due_partitions(defs, instance, stage, []):
                    echo(f"{label} up to date, skipped")
                else:
                    runner.run(job, stage.keys, label)
            else:
                _run_shards(defs, runner, job, stage, shard_list, only_stale)
            if not outcome.ok:
                break
    return outcome


def _run_shards(
    defs: dg.Definitions,
    runner: _Runner,
    job: dg.JobDefinition,
    stage: Stage,
    shard_list: list[str],
    only_stale: bool,
) -> None:
    """One run per shard that is due, with a progress line and an estimate of the time left."""
    due = due_partitions(defs, runner.instance, stage, shard_list) if only_stale else set()
    youtube = _youtube_due(defs, stage.keys, runner.force) if only_stale else set()
    todo = [s for s in shard_list if not only_stale or s in youtube or s in due]
    spent, done = 0.0, 0
    for i, shard in enumerate(shard_list, 1):
        label = f"[{i:>2}/{len(shard_list)}] shard {shard}"
        if shard not in todo:
            runner.echo(f"{label} up to date, skipped")
            runner.outcome.skipped += 1
            continue
        if done:
            label += f" (about {spent / done * (len(todo) - done):.0f}s left)"
        spent += runner.run(job, stage.keys, label, shard)
        done += 1


def _youtube_due(defs: dg.Definitions, keys: Sequence[dg.AssetKey], force: bool) -> set[str]:
    """Shards whose YouTube scrapes are due, when the stage holds YouTube scrape assets."""
    if not any(k.to_user_string() in SCRAPE_OPS for k in keys):
        return set()
    if force:
        return set(SHARD_KEYS)
    from mta_pipeline.automation import youtube_due_shards

    resources = defs.resources or {}
    storage = _resolved(resources["storage"])
    youtube = _resolved(resources["youtube"])
    return youtube_due_shards(storage, youtube.refresh_after_days(), datetime.now(UTC))


def _resolved(resource: Any) -> Any:
    """A resource with its EnvVar settings read now (as a run would)."""
    return resource.process_config_and_initialize()


class _progress_to:
    """Show the assets' progress messages through `echo` while the block runs."""

    def __init__(self, echo: Echo):
        self.handler = logging.Handler(logging.INFO)
        self.handler.emit = lambda record: echo(f"    {record.getMessage()}")  # type: ignore[method-assign]
        self.logger = logging.getLogger(PROGRESS_LOGGER)

    def __enter__(self) -> None:
        self.logger.addHandler(self.handler)
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self.handler)
