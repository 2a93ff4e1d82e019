"""Every environment variable, default, file name and table name the pipeline uses, in one place.

Resources receive their settings as `dg.EnvVar`s in `definitions.py`, so the UI shows which
variable sets what (secrets by name only) and the values are read when a run starts. Optional
settings get their defaults put into the process environment by `apply_defaults` (called when the
definitions load), so every `EnvVar` resolves and the defaults live only here. A missing or wrong
setting raises `ConfigError` with one line: which variable, what to do.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
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
# symusic (native, the default) or pretty_midi (the reference parser, tens of times slower).
MTA_MIDI_BACKEND = "MTA_MIDI_BACKEND"
DAGSTER_HOME = "DAGSTER_HOME"
# "1" in the `.env` that `mta demo` writes: `mta` then serves the YouTube emulator itself.
MTA_DEMO = "MTA_DEMO"
# A Postgres URL: when set, the dagster.yaml `mta` writes keeps runs, event logs and schedules
# in that database (the file names the variable, never its value).
MTA_DAGSTER_POSTGRES_URL = "MTA_DAGSTER_POSTGRES_URL"
YOUTUBE_API_KEY = "YOUTUBE_API_KEY"
YOUTUBE_API_ENDPOINT = "YOUTUBE_API_ENDPOINT"
MTA_YOUTUBE_DAILY_QUOTA = "MTA_YOUTUBE_DAILY_QUOTA"
MTA_YOUTUBE_REFRESH_DAYS = "MTA_YOUTUBE_REFRESH_DAYS"
MTA_YOUTUBE_CONCURRENCY = "MTA_YOUTUBE_CONCURRENCY"
# A text file of YouTube video ids and/or comment ids (one per line) kept out of every record
# and release: how removal requests are honoured.
MTA_REMOVALS = "MTA_REMOVALS"

DEFAULT_DATA_DIR = "./data"
# The largest real GiantMIDI file is about 1.5 MB; anything past this is refused as a zip bomb.
DEFAULT_MAX_MEMBER_BYTES = 64 * 1024 * 1024

# 0: one process per available core.
DEFAULT_FEATURE_WORKERS = 0
DEFAULT_MIDI_BACKEND = "symusic"

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
T_MIDI_TOKENS = "midi_tokens"
# The tokenizer a trainer loads to decode `tokens`: in the lake beside its table, and in the
# release root.
TOKENIZER_FILE = "tokenizer.json"
T_GIANTMIDI_METADATA = "giantmidi_metadata"
T_YOUTUBE_VIDEOS = "youtube_videos"
T_YOUTUBE_COMMENTS = "youtube_comments"
T_YOUTUBE_COMMENT_STATUS = "youtube_comment_status"
T_YOUTUBE_QUOTA = "youtube_quota"
RAW_YOUTUBE_DIR = "raw/youtube"
T_MTA_RECORDS = "mta_records"
T_COMMENT_REPETITION = "comment_repetition"
T_COMPOSER_SPLITS = "composer_splits"
T_MTA_REMOVALS = "mta_removals"
# The release: a Hugging Face-loadable dataset folder in the lake (see core/release.py).
RELEASE_DIR = "release"
TSV_FILE = "midi_text_dataset.tsv"
DATASET_CARD = "README.md"

# Dagster concurrency pool of the YouTube assets, which share one daily quota. (DuckDB writes
# are serialized by a file lock in resources/catalog.py, not a pool.)
YOUTUBE_POOL = "youtube_api"


# Every setting a resource reads, with the value it has when the variable is unset or empty. An
# empty default means "not set": the resource that needs it says so when it is used.
SETTING_DEFAULTS: dict[str, str] = {
    MTA_DATA_DIR: DEFAULT_DATA_DIR,
    MTA_LAKE_URL: "",
    MTA_S3_ENDPOINT_URL: "",
    GIANTMIDI_ARCHIVE_URL: "",
    GIANTMIDI_ARCHIVE_SHA256: "",
    GIANTMIDI_METADATA_URL: "",
    MTA_MAX_MEMBER_BYTES: str(DEFAULT_MAX_MEMBER_BYTES),
    MTA_FEATURE_WORKERS: str(DEFAULT_FEATURE_WORKERS),
    MTA_MIDI_BACKEND: DEFAULT_MIDI_BACKEND,
    YOUTUBE_API_KEY: "",
    YOUTUBE_API_ENDPOINT: DEFAULT_YOUTUBE_ENDPOINT,
    MTA_YOUTUBE_DAILY_QUOTA: str(DEFAULT_DAILY_QUOTA),
    MTA_YOUTUBE_REFRESH_DAYS: str(DEFAULT_REFRESH_DAYS),
    MTA_YOUTUBE_CONCURRENCY: str(DEFAULT_YOUTUBE_CONCURRENCY),
    MTA_REMOVALS: "",
}

# What to do when a required setting is missing.
HINTS = {
    GIANTMIDI_ARCHIVE_URL: "set it to the path or http(s)/file/s3 URL of the GiantMIDI zip "
    "(midis_v1.2.zip, see the README's 'Getting the real data'), or run `mta demo` for the "
    "offline demo.",
    YOUTUBE_API_KEY: "create a key for the YouTube Data API v3 in the Google Cloud console and "
    "export it, or run `mta demo` for the offline emulator.",
}


def apply_defaults(environ: MutableMapping[str, str] | None = None) -> None:
    """Give every unset (or empty) setting its default in the environment."""
    environ = os.environ if environ is None else environ
    for name, default in SETTING_DEFAULTS.items():
        if not environ.get(name, "").strip():
            environ[name] = default


class ConfigError(RuntimeError):
    """A setting is missing or wrong; the message names the variable and the fix."""


def env(name: str, default: str | None = None) -> str | None:
    """The variable's value, treating an empty string as unset."""
    value = os.environ.get(name, "").strip()
    return value or default


# The `mta` command's own view of the settings (resources get theirs through EnvVar).
def data_dir() -> Path:
    return Path(env(MTA_DATA_DIR, DEFAULT_DATA_DIR)).expanduser().resolve()


def lake_url() -> str:
    return (env(MTA_LAKE_URL) or str(data_dir() / LAKE_DIR)).rstrip("/")


def duckdb_path() -> Path:
    return data_dir() / DUCKDB_FILE


def require(name: str, value: str) -> str:
    """`value` (a setting's resolved value), or a ConfigError saying how to set it."""
    if not value.strip():
        raise ConfigError(f"{name} is not set: {HINTS.get(name, 'export it and rerun.')}")
    return value.strip()


def check_positive(name: str, value: int, minimum: int = 1) -> int:
    """`value`, or a ConfigError naming the variable when it is below `minimum`."""
    if value < minimum:
        raise ConfigError(f"{name}={value} must be a whole number of at least {minimum}.")
    return value
