"""The one Definitions object of the project (`defs`), loaded by `dagster dev` and the `mta` CLI."""

import dagster as dg

from mta_pipeline.assets import giantmidi
from mta_pipeline.checks import midi_files_rejects, midi_files_unique_vid
from mta_pipeline.resources.catalog import DuckDBCatalog
from mta_pipeline.resources.giantmidi import GiantMidiSource
from mta_pipeline.resources.lake import LakeResource

defs = dg.Definitions(
    assets=dg.load_assets_from_modules([giantmidi]),
    asset_checks=[midi_files_unique_vid, midi_files_rejects],
    resources={
        "giantmidi": GiantMidiSource(),
        "lake": LakeResource(),
        "catalog": DuckDBCatalog(),
    },
)
