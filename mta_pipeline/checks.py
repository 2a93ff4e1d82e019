"""Asset checks on the exports (the other checks are declared beside their assets)."""

import dagster as dg

from mta_pipeline import config
from mta_pipeline.assets.exports import export_path, mta_tsv, ordered_records, text_coverage
from mta_pipeline.core.tsv import tsv_problems
from mta_pipeline.resources.storage import Storage


@dg.asset_check(
    asset=mta_tsv,
    blocking=True,
    description="Header and 9 columns, no tab or newline inside a field, unique vid, index 0..n-1.",
)
def mta_tsv_well_formed(storage: Storage) -> dg.AssetCheckResult:
    body = storage.read_bytes(export_path(config.TSV_FILE)) or b""
    problems = tsv_problems(body)
    return dg.AssetCheckResult(
        passed=not problems, metadata={"problems": "; ".join(problems) or "none"}
    )


COVERAGE_WARN_BELOW = 0.5


@dg.asset_check(asset=mta_tsv, description="Share of records with a description, with a reply.")
def mta_tsv_text_coverage(storage: Storage) -> dg.AssetCheckResult:
    shares = text_coverage(ordered_records(storage))
    return dg.AssetCheckResult(
        passed=min(shares.values()) >= COVERAGE_WARN_BELOW,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={k: round(v, 4) for k, v in shares.items()},
    )
