"""Every YouTube call of a run, kept until it is written: to the quota ledger and the raw zone.

Calls are flushed at each checkpoint of a scrape, together with the rows they produced, so the
ledger's `sum(units)` matches the calls made, and raw bodies can be re-parsed later without
spending quota. Raw files are new parts per flush (`<run>-<seq>.jsonl`): object stores cannot
append, and a part is never half-written.

Between checkpoints every call is also appended, and fsynced, to a local journal
(`$MTA_DATA_DIR/journal/<endpoint>/<shard>.jsonl`) the moment its answer arrives. A run killed
between checkpoints (SIGKILL, a lost node) leaves its paid answers there; the next run of the shard
replays them instead of calling again, so no answered call is paid for twice. The journal is
emptied once a checkpoint has committed; calls already in the ledger are not replayed twice.
"""

import os
import threading
import uuid

import pyarrow as pa

from mta_pipeline import config, schemas
from mta_pipeline.core.quota import UNIT_COST, pacific_day
from mta_pipeline.resources.catalog import DuckDBCatalog
from mta_pipeline.resources.lake import LakeResource
from mta_pipeline.resources.youtube import CallRecord, call_from_line, raw_line


class ScrapeLog:
    def __init__(
        self,
        lake: LakeResource,
        catalog: DuckDBCatalog,
        shard: str,
        run_id: str,
        endpoint: str,
    ):
        self.lake, self.shard, self.run_id = lake, shard, run_id
        self._calls: list[CallRecord] = []
        self._lock = threading.Lock()
        self._seq = 0
        self.total_calls = 0
        self.journal = config.data_dir() / "journal" / endpoint / f"{shard}.jsonl"
        self.journal.parent.mkdir(parents=True, exist_ok=True)
        self.recovered = self._recover(catalog)
        self._calls.extend(self.recovered)
        self._fh = open(self.journal, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())

    def _recover(self, catalog: DuckDBCatalog) -> list[CallRecord]:
        """Calls a killed run made and paid for but never checkpointed."""
        if not self.journal.exists():
            return []
        calls = []
        for line in self.journal.read_text(encoding="utf-8").splitlines():
            try:
                calls.append(call_from_line(line))
            except (ValueError, KeyError):  # the line being written when the process died
                continue
        if not calls:
            return []
        known = catalog.query_values(
            f"SELECT call_id FROM {config.T_YOUTUBE_QUOTA} WHERE shard = ?", [self.shard]
        )
        return [c for c in calls if c.call_id not in known]

    def record(self, call: CallRecord) -> None:
        """Called from worker threads after every attempt: journaled durably at once."""
        line = raw_line(call) + "\n"
        with self._lock:
            self._fh.write(line)
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._calls.append(call)
            self.total_calls += 1

    def committed(self) -> None:
        """The checkpoint holding every journaled call has committed: empty the journal."""
        with self._lock:
            if not self._calls:
                self._fh.truncate(0)
                self._fh.seek(0)

    def close(self) -> None:
        self._fh.close()

    def flush(self) -> pa.Table | None:
        """Write the raw bodies and the lake's ledger part for the calls recorded since the last
        flush; returns the ledger rows for the catalog (None when there were no calls)."""
        with self._lock:
            calls, self._calls = self._calls, []
        if not calls:
            return None
        self._seq += 1
        part = f"{self.run_id[:8]}-{self._seq:04d}-{uuid.uuid4().hex[:6]}"
        by_path: dict[str, list[str]] = {}
        for call in calls:
            day = pacific_day(call.at).isoformat()
            endpoint = call.endpoint.split(".")[0]
            path = f"{config.RAW_YOUTUBE_DIR}/{endpoint}/shard={self.shard}/date={day}/{part}.jsonl"
            by_path.setdefault(path, []).append(raw_line(call))
        for path, lines in by_path.items():
            self.lake.write_bytes(path, ("\n".join(lines) + "\n").encode("utf-8"))
        rows = [
            {
                "day_pt": pacific_day(c.at),
                "units": UNIT_COST,
                "endpoint": c.endpoint,
                "outcome": c.outcome,
                "shard": self.shard,
                "run_id": self.run_id,
                "at": c.at,
                "call_id": c.call_id,
            }
            for c in calls
        ]
        table = schemas.to_table(config.T_YOUTUBE_QUOTA, rows)
        ledger_path = f"{config.T_YOUTUBE_QUOTA}/shard={self.shard}/{part}.parquet"
        self.lake.write_parquet(ledger_path, table)
        return table
