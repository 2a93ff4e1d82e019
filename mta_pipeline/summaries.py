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


def bars_markdown(counts: Mapping[str, int], label: str, width: int = 30) -> str:
    """A horizontal bar chart as a markdown table (the UI renders it; no image needed)."""
    if not counts:
        return f"no {label}"
    top = max(counts.values()) or 1
    lines = [f"| {label} | count | |", "|---|---:|---|"]
    lines += [f"| {k} | {v} | {'█' * max(1, round(width * v / top))} |" for k, v in counts.items()]
    return "\n".join(lines)


def histogram_markdown(values: Sequence[float | None], label: str, bins: int = 8) -> str:
    """Equal-width bins of the values as a bar chart."""
    data = [v for v in values if v is not None]
    if not data:
        return f"no {label}"
    lo, hi = min(data), max(data)
    step = (hi - lo) / bins or 1.0
    counts = [0] * bins
    for v in data:
        counts[min(bins - 1, int((v - lo) / step))] += 1
    edges = {f"{lo + i * step:.0f}–{lo + (i + 1) * step:.0f}": c for i, c in enumerate(counts)}
    return bars_markdown(edges, label)


def scatter_markdown(
    points: Sequence[tuple[float, float]],
    x_label: str,
    y_label: str,
    width: int = 60,
    height: int = 12,
) -> str:
    """A text scatter plot in a code block (the UI's markdown shows no images): one mark per
    cell, darker where more points fall."""
    if not points:
        return f"no {y_label}"
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x_hi, y_hi = max(xs) or 1.0, max(ys) or 1.0
    grid = [[0] * width for _ in range(height)]
    for x, y in points:
        grid[min(height - 1, int(height * y / y_hi))][min(width - 1, int(width * x / x_hi))] += 1
    shades = " ·•●"
    rows = []
    for i in range(height - 1, -1, -1):
        edge = {height - 1: f"{y_hi:8.1f} |", 0: f"{0:8.1f} |"}
        label = edge.get(i, " " * 9 + "|")
        rows.append(label + "".join(shades[min(3, c)] for c in grid[i]).rstrip())
    axis = " " * 9 + "+" + "-" * width
    ticks = " " * 10 + "0" + f"{x_hi:,.0f}".rjust(width - 1)
    x_name = f"{x_label:>{width + 10}}"
    return "\n".join([f"{y_label} against {x_label}:", "```", *rows, axis, ticks, x_name, "```"])
