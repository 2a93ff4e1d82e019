"""The one Definitions object of the project (`defs`), loaded by `dagster dev` and the `mta` CLI."""

import dagster as dg

from mta_pipeline import config
from mta_pipeline.assets import dataset, exports, giantmidi, youtube
from mta_pipeline.automation import giantmidi_archive_sensor, youtube_refresh_schedule
from mta_pipeline.checks import (
    midi_files_rejects,
    midi_files_unique_vid,
    mta_tsv_text_coverage,
    mta_tsv_well_formed,
)
from mta_pipeline.partitions import shard_partitions
from mta_pipeline.resources.catalog import DuckDBCatalog
from mta_pipeline.resources.giantmidi import GiantMidiSource
from mta_pipeline.resources.lake import LakeResource
from mta_pipeline.resources.youtube import YouTubeResource

# One shard's per-video work, for UI backfills and for running shards as separate runs on the
# multiprocess executor (or a cluster run launcher): each step gets its own process.
shard_job = dg.define_asset_job(
    "shard_job",
    selection=dg.AssetSelection.assets(
        "midi_files", "midi_features", "youtube_videos", "youtube_comments"
    ),
    partitions_def=shard_partitions,
    description="A shard's MIDI files, features and YouTube text, each step in its own process.",
)

defs = dg.Definitions(
    assets=dg.load_assets_from_modules([giantmidi, youtube, dataset, exports]),
    asset_checks=[
        midi_files_unique_vid,
        midi_files_rejects,
        mta_tsv_well_formed,
        mta_tsv_text_coverage,
    ],
    jobs=[shard_job],
    schedules=[youtube_refresh_schedule],
    sensors=[giantmidi_archive_sensor],
    resources={
        "giantmidi": GiantMidiSource(),
        "lake": LakeResource(),
        "catalog": DuckDBCatalog(),
        "youtube": YouTubeResource(api_key=dg.EnvVar(config.YOUTUBE_API_KEY)),
    },
)
