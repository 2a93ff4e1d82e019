"""Asset checks: what must hold for users to trust the tables."""

import dagster as dg

from mta_pipeline import config
from mta_pipeline.assets.giantmidi import midi_files
from mta_pipeline.resources.catalog import DuckDBCatalog


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
