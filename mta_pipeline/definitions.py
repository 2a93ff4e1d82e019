"""The one Definitions object of the project (`defs`), loaded by `dagster dev`, `dg` and `mta`.

Every setting reaches its resource as a `dg.EnvVar` here, so the UI's resource page shows which
variable sets what (secrets by name only) and the values are read when a run starts. Defaults of
optional settings live in `config.py` and are put into the environment when this module loads.
"""

import dagster as dg

from mta_pipeline import config
from mta_pipeline.assets import dataset, giantmidi, midi_features, midi_tokens, release, youtube
from mta_pipeline.automation import giantmidi_archive_sensor, youtube_refresh_schedule
from mta_pipeline.checks import mta_tsv_text_coverage, mta_tsv_well_formed
from mta_pipeline.partitions import shard_partitions
from mta_pipeline.resources.giantmidi import GiantMidiSource
from mta_pipeline.resources.release import ReleaseSettings
from mta_pipeline.resources.storage import Storage
from mta_pipeline.resources.youtube import YouTubeResource

config.apply_defaults()

# One shard's per-video work, for UI backfills and for running shards as separate runs on the
# multiprocess executor (or a cluster run launcher): each step gets its own process.
shard_job = dg.define_asset_job(
    "shard_job",
    selection=dg.AssetSelection.assets(
        config.T_MIDI_FILES,
        config.T_MIDI_REJECTS,
        config.T_MIDI_FEATURES,
        midi_features.PARSE_REJECTS,
        config.T_MIDI_TOKENS,
        config.T_YOUTUBE_VIDEOS,
        config.T_YOUTUBE_COMMENTS,
        config.T_YOUTUBE_COMMENT_STATUS,
    ),
    partitions_def=shard_partitions,
    description="A shard's MIDI files, features and YouTube text, each step in its own process.",
)

RESOURCES = {
    "storage": Storage(
        data_dir=dg.EnvVar(config.MTA_DATA_DIR),
        lake_url=dg.EnvVar(config.MTA_LAKE_URL),
        s3_endpoint_url=dg.EnvVar(config.MTA_S3_ENDPOINT_URL),
    ),
    "giantmidi": GiantMidiSource(
        archive_url=dg.EnvVar(config.GIANTMIDI_ARCHIVE_URL),
        archive_sha256=dg.EnvVar(config.GIANTMIDI_ARCHIVE_SHA256),
        metadata_url=dg.EnvVar(config.GIANTMIDI_METADATA_URL),
        max_member_bytes=dg.EnvVar.int(config.MTA_MAX_MEMBER_BYTES),
        feature_workers=dg.EnvVar.int(config.MTA_FEATURE_WORKERS),
        midi_backend=dg.EnvVar(config.MTA_MIDI_BACKEND),
    ),
    "youtube": YouTubeResource(
        api_key=dg.EnvVar(config.YOUTUBE_API_KEY),
        api_endpoint=dg.EnvVar(config.YOUTUBE_API_ENDPOINT),
        daily_quota=dg.EnvVar.int(config.MTA_YOUTUBE_DAILY_QUOTA),
        refresh_days=dg.EnvVar.int(config.MTA_YOUTUBE_REFRESH_DAYS),
        concurrency=dg.EnvVar.int(config.MTA_YOUTUBE_CONCURRENCY),
    ),
    "release": ReleaseSettings(removals=dg.EnvVar(config.MTA_REMOVALS)),
}

defs = dg.Definitions(
    assets=dg.load_assets_from_modules(
        [giantmidi, midi_features, midi_tokens, youtube, dataset, release]
    ),
    asset_checks=[mta_tsv_well_formed, mta_tsv_text_coverage],
    jobs=[shard_job],
    schedules=[youtube_refresh_schedule],
    sensors=[giantmidi_archive_sensor],
    resources=RESOURCES,
)
