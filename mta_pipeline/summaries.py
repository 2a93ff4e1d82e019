"""Markdown snippets for asset metadata: what a person wants to see in the Dagster UI."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= 60 else text[:57] + "..."


def preview_markdown(
    rows: Sequence[Mapping[str, object]], columns: Sequence[str], n: int = 5
) -> str:
    """The first `n` rows as a markdown table."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in columns) + " |" for r in rows[:n]]
    return "\n".join(lines)


def counts_markdown(counts: Mapping[str, int] | Iterable[tuple[str, int]], label: str) -> str:
    items = sorted(dict(counts).items(), key=lambda kv: (-kv[1], kv[0]))
    if not items:
        return f"no {label}s"
    return "\n".join([f"| {label} | count |", "|---|---|", *(f"| {k} | {v} |" for k, v in items)])
