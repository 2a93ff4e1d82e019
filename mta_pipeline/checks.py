"""Asset checks on the release (the other checks are declared beside their assets)."""

import dagster as dg

from mta_pipeline import config
from mta_pipeline.assets.release import ordered_records, release_path, text_coverage
from mta_pipeline.core.tsv import tsv_problems
from mta_pipeline.resources.storage import Storage


@dg.asset_check(
    asset=dg.AssetKey("mta_tsv"),
    blocking=True,
    description="Header and 9 columns in every record (CSV-quoted), unique vid, index 0..n-1.",
)
def mta_tsv_well_formed(storage: Storage) -> dg.AssetCheckResult:
    body = storage.read_bytes(release_path(config.TSV_FILE)) or b""
    problems = tsv_problems(body)
    return dg.AssetCheckResult(
        passed=not problems, metadata={"problems": "; ".join(problems) or "none"}
    )


COVERAGE_WARN_BELOW = 0.5


@dg.asset_check(
    asset=dg.AssetKey("mta_tsv"), description="Share of records with a description, with a reply."
)
def mta_tsv_text_coverage(storage: Storage) -> dg.AssetCheckResult:
    shares = text_coverage(ordered_records(storage))
    return dg.AssetCheckResult(
        passed=min(shares.values()) >= COVERAGE_WARN_BELOW,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={k: round(v, 4) for k, v in shares.items()},
    )
