"""Where the GiantMIDI inputs come from, and how much of the machine parsing them may use."""

import dagster as dg
from pydantic import Field

from mta_pipeline import config
from mta_pipeline.core.midi_backends import BACKENDS


class GiantMidiSource(dg.ConfigurableResource):
    """The archive and metadata locations (`GIANTMIDI_ARCHIVE_URL`, `GIANTMIDI_ARCHIVE_SHA256`,
    `GIANTMIDI_METADATA_URL`: paths or file/http(s)/s3 URLs, empty when unset), the zip-bomb guard
    (`MTA_MAX_MEMBER_BYTES`), the MIDI parsing processes (`MTA_FEATURE_WORKERS`, 0: one per
    core) and parser (`MTA_MIDI_BACKEND`). Values come from `definitions.py`; nothing here reads
    the environment. The URLs may carry credentials or signatures, so the resource's repr leaves
    them out (show one with `core.redact.redact_url`)."""

    archive_url: str = Field(default="", repr=False)
    archive_sha256: str = ""
    metadata_url: str = Field(default="", repr=False)
    max_member_bytes: int = config.DEFAULT_MAX_MEMBER_BYTES
    feature_workers: int = config.DEFAULT_FEATURE_WORKERS
    midi_backend: str = config.DEFAULT_MIDI_BACKEND

    def require_archive_url(self) -> str:
        return config.require(config.GIANTMIDI_ARCHIVE_URL, self.archive_url)

    def expected_sha256(self) -> str | None:
        return self.archive_sha256.strip().lower() or None

    def metadata_source(self) -> str | None:
        return self.metadata_url.strip() or None

    def member_limit(self) -> int:
        return config.check_positive(config.MTA_MAX_MEMBER_BYTES, self.max_member_bytes)

    def workers(self) -> int | None:
        """Processes for MIDI parsing; None means one per available core."""
        count = config.check_positive(config.MTA_FEATURE_WORKERS, self.feature_workers, 0)
        return count or None

    def backend(self) -> str:
        """The MIDI parser: symusic, or pretty_midi for the reference path."""
        name = self.midi_backend.strip().lower()
        if name not in BACKENDS:
            raise config.ConfigError(
                f"{config.MTA_MIDI_BACKEND}={self.midi_backend!r} is not a MIDI backend: "
                f"use {' or '.join(BACKENDS)}."
            )
        return name
