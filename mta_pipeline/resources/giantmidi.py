"""Where the GiantMIDI inputs come from and where their working copies live."""

from pathlib import Path

import dagster as dg

from mta_pipeline import config


class GiantMidiSource(dg.ConfigurableResource):
    """Archive and metadata locations; unset fields fall back to the environment (see config.py)."""

    archive_url: str | None = None
    archive_sha256: str | None = None
    metadata_url: str | None = None
    data_dir: str | None = None
    max_member_bytes: int | None = None

    def require_archive_url(self) -> str:
        return self.archive_url or config.require(
            config.GIANTMIDI_ARCHIVE_URL,
            "set it to the path or http(s)/file/s3 URL of the GiantMIDI zip (midis_v1.2.zip), "
            "or run `mta demo` for the offline demo.",
        )

    def expected_sha256(self) -> str | None:
        return self.archive_sha256 or config.env(config.GIANTMIDI_ARCHIVE_SHA256)

    def resolved_metadata_url(self) -> str | None:
        return self.metadata_url or config.env(config.GIANTMIDI_METADATA_URL)

    def member_limit(self) -> int:
        return self.max_member_bytes or config.max_member_bytes()

    @property
    def root(self) -> Path:
        return Path(self.data_dir).resolve() if self.data_dir else config.data_dir()

    @property
    def archive_path(self) -> Path:
        return self.root / config.ARCHIVE_DIR / config.ARCHIVE_FILE

    @property
    def archive_state_path(self) -> Path:
        return self.root / config.ARCHIVE_DIR / "archive.json"

    def midi_dir(self, shard: str) -> Path:
        return self.root / config.MIDI_DIR / shard
