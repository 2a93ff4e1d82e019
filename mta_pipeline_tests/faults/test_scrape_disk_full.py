"""A full disk in the middle of a scrape: whatever write fails (raw bodies, the shard's state,
the ledger part), the rerun completes and the lake's ledger holds each call exactly once, as
many as the server answered."""

import errno
from collections import Counter

import pyarrow.parquet as pq
import pytest

from mta_pipeline import config
from mta_pipeline import lake as lake_module  # every lake write goes through lake.atomic_write
from mta_pipeline.partitions import vid_to_shard
from mta_pipeline.resources.storage import Storage
from mta_pipeline.runner import materialize
from mta_pipeline_tests.assets.test_youtube import fast_defs
from mta_pipeline_tests.conftest import emulated_youtube

SCRAPE = "youtube_videos,youtube_comments,youtube_quota"


def _ledger_rows(storage: Storage) -> list[str]:
    """Every call_id of every ledger part in the lake, duplicates included."""
    ids: list[str] = []
    for part in storage.glob(f"{config.T_YOUTUBE_QUOTA}/shard=*/day=*/*.parquet"):
        ids += pq.read_table(f"{storage.lake_root}/{part}").column("call_id").to_pylist()
    return ids


@pytest.mark.parametrize(
    "fails", ["raw/youtube/commentThreads", "youtube_comments/", "youtube_quota/"]
)
def test_a_full_disk_mid_scrape_never_ledgers_a_call_twice(
    data_env, instance, corpus, monkeypatch, fails
):
    from mta_pipeline.assets import youtube as youtube_assets
    from mta_pipeline.definitions import defs

    shard = Counter(vid_to_shard(v) for v in corpus.good).most_common(1)[0][0]
    monkeypatch.setattr(youtube_assets, "CHECKPOINT_EVERY", 1)
    monkeypatch.setenv(config.MTA_YOUTUBE_CONCURRENCY, "1")
    real_write, seen = lake_module.atomic_write, Counter()

    def disk_full_on_second(path, data):
        if fails in str(path):
            seen[fails] += 1
            if seen[fails] == 2:
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_write(path, data)

    with emulated_youtube(monkeypatch) as emulator:
        assert materialize(defs, instance, "*midi_files", [shard], echo=lambda _: None).ok
        monkeypatch.setattr(lake_module, "atomic_write", disk_full_on_second)
        failed = materialize(fast_defs(), instance, SCRAPE, [shard], echo=lambda _: None)
        assert not failed.ok and "No space left" in failed.failures[0]
        monkeypatch.setattr(lake_module, "atomic_write", real_write)
        assert materialize(fast_defs(), instance, SCRAPE, [shard], echo=lambda _: None).ok
        storage = Storage(data_dir=str(data_env))
        ids = _ledger_rows(storage)
        assert len(ids) == len(set(ids)) == len(emulator.requests) == emulator.units_used
        assert storage.count(config.T_YOUTUBE_QUOTA) == len(ids)


def test_a_journal_holding_calls_twice_ledgers_each_once(data_env, instance, corpus, monkeypatch):
    """The ledger part cannot be written (disk full), so the journal keeps every call; it also
    holds them twice and ends in a torn line, as an append retried after a full disk leaves it.
    The rerun ledgers each call once."""
    from mta_pipeline.definitions import defs

    shard = Counter(vid_to_shard(v) for v in corpus.good).most_common(1)[0][0]
    real_write = lake_module.atomic_write

    def ledger_disk_full(path, data):
        if "youtube_quota/" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_write(path, data)

    with emulated_youtube(monkeypatch) as emulator:
        assert materialize(defs, instance, "*midi_files", [shard], echo=lambda _: None).ok
        monkeypatch.setattr(lake_module, "atomic_write", ledger_disk_full)
        assert not materialize(fast_defs(), instance, SCRAPE, [shard], echo=lambda _: None).ok
        monkeypatch.setattr(lake_module, "atomic_write", real_write)
        storage = Storage(data_dir=str(data_env))
        journal = storage.journal_path("videos", shard)
        lines = journal.read_bytes()
        assert lines
        journal.write_bytes(lines + lines + lines[: len(lines) // 2])
        assert materialize(fast_defs(), instance, SCRAPE, [shard], echo=lambda _: None).ok
        ids = _ledger_rows(storage)
        assert len(ids) == len(set(ids)) == len(emulator.requests) == emulator.units_used


def _call(outcome: str = "ok"):
    from datetime import UTC, datetime

    from mta_pipeline.resources.youtube import CallRecord

    return CallRecord("videos.list", {"id": "x"}, outcome, 200, "{}", datetime.now(UTC))


def test_a_failed_journal_append_is_cut_back_off_and_the_call_still_ledgered(tmp_path, monkeypatch):
    """A full disk mid-append must not leave half a line for the next append to run into, nor
    lose the call the server has charged: it is kept for the checkpoint and calls stop."""
    from mta_pipeline.core.scrape_plan import JOURNAL_UNWRITABLE
    from mta_pipeline.resources import scrape_journal
    from mta_pipeline.resources.youtube import Budget

    storage = Storage(data_dir=str(tmp_path))
    journal = scrape_journal.ScrapeJournal(storage, "00", "run", "videos")
    journal.budget = Budget(units=10)
    journal.record(_call())
    before = journal.path.read_bytes()
    real_write = scrape_journal.os.write

    def half_then_full(fd, data):
        real_write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(scrape_journal.os, "write", half_then_full)
    journal.record(_call())
    monkeypatch.setattr(scrape_journal.os, "write", real_write)
    assert journal.path.read_bytes() == before
    assert journal.budget.stop_reason.reason == JOURNAL_UNWRITABLE
    journal.checkpoint()
    journal.close()
    assert len(_ledger_rows(storage)) == 2


def test_a_refusal_whose_ledger_write_fails_is_ledgered_at_the_checkpoint(tmp_path, monkeypatch):
    from mta_pipeline.core.quota import pacific_day
    from mta_pipeline.resources import scrape_journal

    storage = Storage(data_dir=str(tmp_path))
    journal = scrape_journal.ScrapeJournal(storage, "00", "run", "videos")
    real_write = lake_module.atomic_write

    def ledger_disk_full(path, data):
        if "youtube_quota/" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_write(path, data)

    monkeypatch.setattr(lake_module, "atomic_write", ledger_disk_full)
    journal.record(_call("quotaExceeded"))
    monkeypatch.setattr(lake_module, "atomic_write", real_write)
    journal.checkpoint()
    journal.close()
    assert len(_ledger_rows(storage)) == 1
    today = scrape_journal.ledger_today(storage, pacific_day(_call().at))
    assert today == (0, True)


def test_a_checkpoint_stops_calls_once_another_step_met_a_refusal(tmp_path):
    """Another shard or process ledgered a refusal while this step was calling."""
    from mta_pipeline.core.quota import pacific_day
    from mta_pipeline.resources import scrape_journal
    from mta_pipeline.resources.youtube import Budget

    storage = Storage(data_dir=str(tmp_path))
    other = scrape_journal.ScrapeJournal(storage, "01", "other", "videos")
    this = scrape_journal.ScrapeJournal(storage, "00", "this", "videos")
    this.budget = Budget(units=10)
    this.checkpoint()
    assert this.budget.stop_reason is None
    other.record(_call("quotaExceeded"))
    this.checkpoint()
    assert this.budget.stop_reason is not None and not this.budget.try_spend()
    assert scrape_journal.ledger_today(storage, pacific_day(_call().at)).refused
    other.close()
    this.close()
