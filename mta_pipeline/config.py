"""Every environment variable, default, file name and table name the pipeline uses, in one place.

Settings are read lazily (never at import), so tests and the `mta` command can set the environment
first. A missing or wrong setting raises `ConfigError` with one line: which variable, what to do.
"""

from __future__ import annotations

import os
from pathlib import Path

# Environment variables (the public interface: keep these names).
MTA_DATA_DIR = "MTA_DATA_DIR"
MTA_LAKE_URL = "MTA_LAKE_URL"
MTA_S3_ENDPOINT_URL = "MTA_S3_ENDPOINT_URL"
GIANTMIDI_ARCHIVE_URL = "GIANTMIDI_ARCHIVE_URL"
GIANTMIDI_ARCHIVE_SHA256 = "GIANTMIDI_ARCHIVE_SHA256"
GIANTMIDI_METADATA_URL = "GIANTMIDI_METADATA_URL"
MTA_MAX_MEMBER_BYTES = "MTA_MAX_MEMBER_BYTES"
MTA_FEATURE_WORKERS = "MTA_FEATURE_WORKERS"
DAGSTER_HOME = "DAGSTER_HOME"
# A Postgres URL: when set, the dagster.yaml `mta` writes keeps runs, event logs and schedules
# in that database (the file names the variable, never its value).
MTA_DAGSTER_POSTGRES_URL = "MTA_DAGSTER_POSTGRES_URL"
YOUTUBE_API_KEY = "YOUTUBE_API_KEY"
YOUTUBE_API_ENDPOINT = "YOUTUBE_API_ENDPOINT"
MTA_YOUTUBE_DAILY_QUOTA = "MTA_YOUTUBE_DAILY_QUOTA"
MTA_YOUTUBE_REFRESH_DAYS = "MTA_YOUTUBE_REFRESH_DAYS"
MTA_YOUTUBE_CONCURRENCY = "MTA_YOUTUBE_CONCURRENCY"

DEFAULT_DATA_DIR = "./data"
# The largest real GiantMIDI file is about 1.5 MB; anything past this is refused as a zip bomb.
DEFAULT_MAX_MEMBER_BYTES = 64 * 1024 * 1024

DEFAULT_YOUTUBE_ENDPOINT = "https://www.googleapis.com"
DEFAULT_DAILY_QUOTA = 10_000
DEFAULT_REFRESH_DAYS = 30
DEFAULT_YOUTUBE_CONCURRENCY = 16
DEMO_API_KEY = "demo-key"

# Files and folders under MTA_DATA_DIR.
DUCKDB_FILE = "mta.duckdb"
ARCHIVE_DIR = "archive"
ARCHIVE_FILE = "giantmidi.zip"
MIDI_DIR = "midi"
DEMO_DIR = "demo"
DAGSTER_DIR = "dagster"
LAKE_DIR = "lake"

# DuckDB tables, also the lake folder names.
T_MIDI_FILES = "midi_files"
T_MIDI_REJECTS = "midi_rejects"
T_MIDI_FEATURES = "midi_features"
T_GIANTMIDI_METADATA = "giantmidi_metadata"
T_YOUTUBE_VIDEOS = "youtube_videos"
T_YOUTUBE_COMMENTS = "youtube_comments"
T_YOUTUBE_COMMENT_STATUS = "youtube_comment_status"
T_YOUTUBE_QUOTA = "youtube_quota"
RAW_YOUTUBE_DIR = "raw/youtube"
T_MTA_RECORDS = "mta_records"
T_COMMENT_REPETITION = "comment_repetition"
EXPORT_DIR = "export"
TSV_FILE = "midi_text_dataset.tsv"
PARQUET_FILE = "mta_records.parquet"
DATASET_CARD = "DATASET.md"

# Dagster concurrency pool of the YouTube assets, which share one daily quota. (DuckDB writes
# are serialized by a file lock in resources/catalog.py, not a pool.)
YOUTUBE_POOL = "youtube_api"


class ConfigError(RuntimeError):
    """A setting is missing or wrong; the message names the variable and the fix."""


def env(name: str, default: str | None = None) -> str | None:
    """The variable's value, treating an empty string as unset."""
    value = os.environ.get(name, "").strip()
    return value or default


def data_dir() -> Path:
    return Path(env(MTA_DATA_DIR, DEFAULT_DATA_DIR)).expanduser().resolve()


def lake_url() -> str:
    return env(MTA_LAKE_URL) or str(data_dir() / LAKE_DIR)


def duckdb_path() -> Path:
    return data_dir() / DUCKDB_FILE


def max_member_bytes() -> int:
    return positive_int(MTA_MAX_MEMBER_BYTES, DEFAULT_MAX_MEMBER_BYTES)


def feature_workers() -> int | None:
    """Processes for MIDI parsing; None means one per available core."""
    return positive_int(MTA_FEATURE_WORKERS, 1) if env(MTA_FEATURE_WORKERS) else None


def positive_int(name: str, default: int) -> int:
    raw = env(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise ConfigError(
            f"{name}={raw!r} is not a positive whole number; set it to e.g. {default}."
        )
    return value


def require(name: str, what: str) -> str:
    """The variable's value, or a ConfigError saying how to set it."""
    value = env(name)
    if value is None:
        raise ConfigError(f"{name} is not set: {what}")
    return value
