"""A scrape's durable state: the shard's rows, the calls that paid for them, and the journal.

Every call is appended and fsynced to a local journal
(`<data dir>/journal/<endpoint>/<shard>.jsonl`) the moment its answer arrives. At each checkpoint
the raw bodies (`<lake>/raw/youtube/…`, a new part per checkpoint: object stores cannot
append), then the shard's state (its lake files), then the
quota ledger part (`<lake>/youtube_quota/shard=<k>/day=<Pacific date>/<part>.parquet`) are
written, and only then is the journal emptied. A run killed anywhere in between leaves its paid
answers in the journal; the next run of the shard replays those that are not in the ledger yet
(re-applying a state that already holds them changes nothing), so no answered call is paid for
twice.

The lake ledger is the store of record for quota: `ledger_today` sums the units its part names
carry and says whether the API refused a call for quota today; `read_ledger` gives its rows, one
per `call_id`. Each call is ledgered once: the journal and every part are de-duplicated by
`call_id` (a disk that fills mid-append can leave a line twice), and a step never writes a call
it has already ledgered. A `quotaExceeded` answer is ledgered at once, in a part whose name says
so, and every step of every shard and process reads that as "no more calls today" (at its start
and at each checkpoint). One scrape step at a time is assumed (the `youtube_api` pool for
Dagster-launched runs; `mta` runs its stages one after the other): two processes scraping at
once could each spend the day's remainder.
"""

from __future__ import annotations

import os
import re
import threading
import uuid
from contextlib import suppress
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

import pyarrow as pa

from mta_pipeline import config, schemas
from mta_pipeline.core.quota import QUOTA_REFUSALS, pacific_day, units_charged
from mta_pipeline.core.scrape_plan import JOURNAL_UNWRITABLE
from mta_pipeline.core.youtube_api import ApiFailure, Kind
from mta_pipeline.resources.storage import LakeError, Storage
from mta_pipeline.resources.youtube import Budget, CallRecord, call_from_line, raw_line

LEDGER = config.T_YOUTUBE_QUOTA
PART_UNITS = re.compile(r"-u(\d+)(-refused)?\.parquet$")
# Another step's refusal ends this step's calls like a spent budget: its videos stay pending
# and it does not fail (the step that met the refusal does, with the reset time).
REFUSED_TODAY = ApiFailure(
    None, "budget", "the API refused a call for quota earlier today", Kind.QUOTA
)


class LedgerDay(NamedTuple):
    """A Pacific day in the lake's ledger: units spent, and whether the API refused for quota."""

    spent: int
    refused: bool


def ledger_path(shard: str, day: date, part: str, units: int, refused: bool = False) -> str:
    """A ledger part, by shard and Pacific day; its name ends with the units it holds (and
    `-refused` when it holds a quota refusal), so a day's spending and stop are one listing of
    that day's parts, not a read of each (which on S3 is a request per part)."""
    stop = "-refused" if refused else ""
    return f"{LEDGER}/shard={shard}/day={day.isoformat()}/{part}-u{units}{stop}.parquet"


def read_ledger(storage: Storage, shard: str | None = None) -> pa.Table:
    """The lake's ledger rows (of one shard, or all), one per distinct `call_id`."""
    return storage.read_ledger(shard or "*")


def ledger_today(storage: Storage, day: date) -> LedgerDay:
    """What the lake's ledger records for the Pacific day `day` (from the part names)."""
    found = [m for p in storage.ledger_parts(day=day.isoformat()) if (m := PART_UNITS.search(p))]
    return LedgerDay(sum(int(m.group(1)) for m in found), any(m.group(2) for m in found))


class ShardState:
    """A shard's rows of one table keyed by vid, written whole at checkpoints."""

    def __init__(self, storage: Storage, table: str, shard: str):
        self.table_name, self.shard = table, shard
        self.rows: dict[str, list[dict[str, Any]]] = {}
        for row in storage.read_rows(table, shard):
            self.rows.setdefault(row["vid"], []).append(row)

    def first(self, vid: str) -> dict[str, Any] | None:
        rows = self.rows.get(vid)
        return rows[0] if rows else None

    def put(self, vid: str, rows: list[dict[str, Any]]) -> None:
        self.rows[vid] = [{**r, "shard": self.shard} for r in rows]

    def keep_only(self, vids: set[str]) -> None:
        self.rows = {v: r for v, r in self.rows.items() if v in vids}

    def all_rows(self) -> list[dict[str, Any]]:
        return [r for vid in sorted(self.rows) for r in self.rows[vid]]

    def table(self) -> pa.Table:
        return schemas.to_table(self.table_name, self.all_rows())


class ScrapeJournal:
    """The calls of one scrape step of one shard: journaled at once, ledgered at checkpoints."""

    def __init__(self, storage: Storage, shard: str, run_id: str, endpoint: str):
        self.storage, self.shard, self.run_id = storage, shard, run_id
        self.budget: Budget | None = None  # the step's, stopped when the ledger shows a refusal
        self._calls: list[CallRecord] = []
        self._ledgered: set[str] = set()
        self._lock = threading.Lock()
        self._seq = 0
        self.total_calls = 0
        self.path = storage.journal_path(endpoint, shard)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.recovered = self._recover()
        self._calls.extend(self.recovered)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def _recover(self) -> list[CallRecord]:
        """Calls a killed run made and paid for but never ledgered, each once."""
        if not self.path.exists():
            return []
        calls: dict[str, CallRecord] = {}
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                call = call_from_line(line)
            except (ValueError, KeyError):  # the line being written when the process died
                continue
            calls.setdefault(call.call_id, call)
        if not calls:
            return []
        known = set(read_ledger(self.storage, self.shard).column("call_id").to_pylist())
        return [c for call_id, c in calls.items() if call_id not in known]

    def record(self, call: CallRecord) -> None:
        """Called from worker threads after every attempt: journaled durably at once, in one
        unbuffered append, and kept for the next checkpoint's ledger part. An append that fails
        (a full disk) is cut back off the journal, so no torn line is left to swallow the next
        one and nothing is retried from a buffer; the call stays in memory for the checkpoint
        and the step makes no further call. A quota refusal is also ledgered at once, so every
        other step stops calling (the checkpoint does not ledger it again)."""
        line = (raw_line(call) + "\n").encode("utf-8")
        with self._lock:
            end = os.lseek(self._fd, 0, os.SEEK_END)
            try:
                os.write(self._fd, line)
                os.fsync(self._fd)
            except OSError as exc:
                with suppress(OSError):
                    os.ftruncate(self._fd, end)
                if self.budget is None:
                    raise
                self.budget.stop(ApiFailure(None, JOURNAL_UNWRITABLE, str(exc), Kind.FATAL))
            self._calls.append(call)
            self.total_calls += 1
        if call.outcome in QUOTA_REFUSALS:
            with suppress(LakeError):  # the checkpoint tries again
                self._write_ledger([call])

    def checkpoint(self, *states: ShardState) -> bool:
        """Raw bodies, state files and the ledger part to the lake; then the journal is
        emptied. Nothing is written when no call was made and no state changed; returns True
        when something was."""
        with self._lock:
            calls, self._calls = self._calls, []
        self._write_raw(calls)
        written = self.storage.publish_all([(s.table_name, s.table(), s.shard) for s in states])
        if calls:
            self._write_ledger(calls)
        with self._lock:
            if not self._calls:
                os.ftruncate(self._fd, 0)
        self._honour_refusals()
        return written or bool(calls)

    def _honour_refusals(self) -> None:
        """Stop this step's calls when the ledger shows a quota refusal today (another shard or
        process met it)."""
        if self.budget is None or self.budget.stop_reason is not None:
            return
        if ledger_today(self.storage, pacific_day(datetime.now(UTC))).refused:
            self.budget.stop(REFUSED_TODAY)

    def close(self) -> None:
        os.close(self._fd)

    def _part_name(self) -> str:
        self._seq += 1
        return f"{self.run_id[:8]}-{self._seq:04d}-{uuid.uuid4().hex[:6]}"

    def _write_raw(self, calls: list[CallRecord]) -> None:
        if not calls:
            return
        part = self._part_name()
        by_path: dict[str, list[str]] = {}
        for call in calls:
            day = pacific_day(call.at).isoformat()
            endpoint = call.endpoint.split(".")[0]
            path = f"{config.RAW_YOUTUBE_DIR}/{endpoint}/shard={self.shard}/date={day}/{part}.jsonl"
            by_path.setdefault(path, []).append(raw_line(call))
        for path, lines in by_path.items():
            self.storage.write(path, ("\n".join(lines) + "\n").encode("utf-8"))

    def _write_ledger(self, calls: list[CallRecord]) -> None:
        """One part per Pacific day with the calls not ledgered yet, each once; a call counts as
        ledgered only once its part is written."""
        with self._lock:
            fresh = {c.call_id: c for c in calls if c.call_id not in self._ledgered}
        if not fresh:
            return
        rows = [
            {
                "day_pt": pacific_day(c.at),
                "units": units_charged(c.outcome),
                "endpoint": c.endpoint,
                "outcome": c.outcome,
                "shard": self.shard,
                "run_id": self.run_id,
                "at": c.at,
                "call_id": c.call_id,
            }
            for c in fresh.values()
        ]
        part = self._part_name()
        for day in sorted({r["day_pt"] for r in rows}):
            table = schemas.to_table(LEDGER, [r for r in rows if r["day_pt"] == day])
            units = sum(table.column("units").to_pylist())
            refused = any(o in QUOTA_REFUSALS for o in table.column("outcome").to_pylist())
            self.storage.write_parquet(ledger_path(self.shard, day, part, units, refused), table)
            with self._lock:
                self._ledgered.update(table.column("call_id").to_pylist())
