"""Asset checks: what must hold for users to trust the tables."""

import dagster as dg

from mta_pipeline import config
from mta_pipeline.assets.exports import export_path, mta_tsv, ordered_records, text_coverage
from mta_pipeline.assets.giantmidi import midi_files
from mta_pipeline.core.tsv import tsv_problems
from mta_pipeline.resources.catalog import DuckDBCatalog
from mta_pipeline.resources.lake import LakeResource


@dg.asset_check(asset=midi_files, blocking=True, description="Each YouTube id appears once.")
def midi_files_unique_vid(catalog: DuckDBCatalog) -> dg.AssetCheckResult:
    dupes = catalog.query(
        f"SELECT vid, count(*) AS n FROM {config.T_MIDI_FILES} GROUP BY vid HAVING n > 1 LIMIT 20"
    ).to_pylist()
    return dg.AssetCheckResult(
        passed=not dupes,
        metadata={"duplicated_vids": len(dupes), "examples": ", ".join(d["vid"] for d in dupes)},
    )


@dg.asset_check(asset=midi_files, description="Rejected archive members, counted by reason.")
def midi_files_rejects(catalog: DuckDBCatalog) -> dg.AssetCheckResult:
    rows = catalog.query(
        f"SELECT split_part(reason, ':', 1) AS code, count(*) AS n FROM {config.T_MIDI_REJECTS} "
        "GROUP BY code ORDER BY n DESC"
    ).to_pylist()
    total = sum(r["n"] for r in rows)
    return dg.AssetCheckResult(
        passed=True,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"rejects": total, **{f"rejects_{r['code']}": r["n"] for r in rows}},
    )


@dg.asset_check(
    asset=mta_tsv,
    blocking=True,
    description="Header and 9 columns, no tab or newline inside a field, unique vid, index 0..n-1.",
)
def mta_tsv_well_formed(lake: LakeResource) -> dg.AssetCheckResult:
    fs, root = lake.filesystem()
    with fs.open(f"{root}/{export_path(config.TSV_FILE)}", "rb") as fh:
        problems = tsv_problems(fh.read())
    return dg.AssetCheckResult(
        passed=not problems, metadata={"problems": "; ".join(problems) or "none"}
    )


COVERAGE_WARN_BELOW = 0.5


@dg.asset_check(asset=mta_tsv, description="Share of records with a description, with a reply.")
def mta_tsv_text_coverage(lake: LakeResource) -> dg.AssetCheckResult:
    shares = text_coverage(ordered_records(lake))
    return dg.AssetCheckResult(
        passed=min(shares.values()) >= COVERAGE_WARN_BELOW,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={k: round(v, 4) for k, v in shares.items()},
    )
