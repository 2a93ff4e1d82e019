"""Train/validation/test splits by composer, balanced by records and stable across releases.

A composer's records all go to one split, so a model is never tested on a composer it was trained
on. Hashing composers into 80/10/10 *of composers* lets the few big composers (Liszt, Beethoven,
Chopin… hundreds of records each) swing record shares far from 80/10/10, and a new archive could
move a composer. So the assignment is stored (the `composer_splits` table) and extended:
every composer already assigned keeps its split; new composers, the largest first, each go to
the split furthest below its target share of all records (ties: train, validation, test). On a
first build this greedy "largest first" fill lands within a few points of 80/10/10 whenever no
single composer holds more than a few percent of the records.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping

SPLITS = ("train", "validation", "test")
TARGETS = {"train": 0.8, "validation": 0.1, "test": 0.1}


def composer_key(surname: str | None, firstname: str | None) -> str:
    """One composer, however the names are spelled in Unicode or case."""
    text = f"{(surname or '').strip()}|{(firstname or '').strip()}"
    return unicodedata.normalize("NFC", text).casefold()


def assign_splits(counts: Mapping[str, int], known: Mapping[str, str]) -> dict[str, str]:
    """Split per composer key: `known` (the stored assignment) kept, new composers filled in.

    `counts` is records per composer now; composers in `known` but no longer counted keep their
    split, so a composer that leaves and comes back returns to it.
    """
    unknown = {s for s in known.values() if s not in TARGETS}
    if unknown:
        raise ValueError(f"stored splits {sorted(unknown)} are not {', '.join(SPLITS)}")
    total = sum(counts.values())
    held = dict.fromkeys(SPLITS, 0)
    for key, n in counts.items():
        if key in known:
            held[known[key]] += n
    assigned = dict(known)
    for key in sorted((k for k in counts if k not in known), key=lambda k: (-counts[k], k)):
        split = max(SPLITS, key=lambda s: (TARGETS[s] * total - held[s], -SPLITS.index(s)))
        assigned[key] = split
        held[split] += counts[key]
    return assigned


def split_records(counts: Mapping[str, int], splits: Mapping[str, str]) -> dict[str, int]:
    """Records per split."""
    held = dict.fromkeys(SPLITS, 0)
    for key, n in counts.items():
        held[splits[key]] += n
    return held


def record_shares(counts: Mapping[str, int], splits: Mapping[str, str]) -> dict[str, float]:
    """Share of records per split (0 for an empty corpus)."""
    total = sum(counts.values())
    held = split_records(counts, splits)
    return {s: (held[s] / total if total else 0.0) for s in SPLITS}
