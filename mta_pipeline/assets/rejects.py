"""Rows of the `midi_rejects` table and the per-shard reject-rate check, shared by the two MIDI
stages that reject (`midi_files`: the archive's members; `midi_features`: parse failures)."""

from collections import Counter
from typing import Any

import dagster as dg

# A shard where more than this share of the archive's members is rejected gets a warning: the
# real archive has almost no bad members, so a high rate means a wrong or damaged archive.
MAX_REJECT_RATE = 0.05


def reject_row(
    member: str, shard: str, reason: str, stage: str, vid: str | None, sha256: str | None = None
) -> dict[str, str | None]:
    """A `midi_rejects` row (stage `midi_files` here, `midi_features` for parse failures)."""
    return {
        "member": member,
        "shard": shard,
        "reason": reason,
        "stage": stage,
        "vid": vid,
        "sha256": sha256,
    }


def reject_rate_check(
    check: str, asset: str, rejects: list[dict[str, Any]], total: int
) -> dg.AssetCheckResult:
    """The shard's reject rate against MAX_REJECT_RATE, with counts by reason."""
    rate = len(rejects) / total if total else 0.0
    codes = Counter(r["reason"].split(":", 1)[0] for r in rejects)
    return dg.AssetCheckResult(
        check_name=check,
        asset_key=asset,
        passed=rate <= MAX_REJECT_RATE,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "rejects": len(rejects),
            "of": total,
            "rate": round(rate, 4),
            "threshold": MAX_REJECT_RATE,
            **{f"rejects_{code}": n for code, n in sorted(codes.items())},
        },
    )
