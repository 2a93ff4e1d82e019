"""Language identification for YouTube comments: py3langid against lingua, on a labelled set.

    .venv/bin/python -m bench.langid [--repeat 3] [--errors CANDIDATE]

`bench/langid_samples.tsv` holds short texts like comments and descriptions under classical-piano
videos, written for this benchmark (`lang<TAB>text`, ISO 639-1). A text is labelled with a language
when a speaker of it would call it a phrase of their language; names, catalogue numbers and
interjections every language uses ("Bravo!", "Wow", "ok", "BWV 846", "Chopin") are `und`, like texts
without letters. Mixed texts carry the language most of their words are in.

Every candidate sees the text as the pipeline gives it: URLs removed, `und` with confidence 0 when
no letter is left. Each runs in a fresh process, so its load time and memory are its own: "ready"
is import + build + the first pass over the set less one warm pass (lingua loads models lazily on
first use), "memory" the growth of resident memory from before the import. For each candidate the
confidence threshold below which the answer becomes `und` is chosen to maximize accuracy on the
set (`und` labels count), so the thresholded figures are optimistic by construction.

lingua is not a dependency of the project: `.venv/bin/pip install lingua-language-detector` to
measure it (about 95 MiB installed, models included); without it those candidates are skipped.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from mta_pipeline.core.text_flags import LANGUAGES, UND_BELOW, URL_RE, detect_language

SAMPLES = Path(__file__).resolve().parent / "langid_samples.tsv"
SHORT_CHARS = 20
UND = "und"
# The restricted variants use the pipeline's LANGUAGES. Every language of the set is in it, so
# they gain from dropping rare confusable languages and lose nothing: an upper bound.

Classify = Callable[[str], tuple[str, float]]


def read_samples(path: Path = SAMPLES) -> list[tuple[str, str]]:
    """(gold language, text) pairs of the labelled set."""
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "lang\ttext", "langid_samples.tsv must start with the header lang<TAB>text"
    return [tuple(line.split("\t")) for line in lines[1:] if line]  # type: ignore[misc]


def _py3langid(langs: tuple[str, ...] | None) -> Classify:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    if langs:
        identifier.set_languages(langs)

    def classify(text: str) -> tuple[str, float]:
        lang, conf = identifier.classify(text)
        return (UND if lang == "zxx" else lang), conf

    return classify


def _lingua(langs: tuple[str, ...] | None, low: bool) -> Classify:
    from lingua import IsoCode639_1, LanguageDetectorBuilder

    if langs:
        names = ["NB" if c == "no" else c.upper() for c in langs]
        codes = [getattr(IsoCode639_1, n) for n in names if hasattr(IsoCode639_1, n)]
        builder = LanguageDetectorBuilder.from_iso_codes_639_1(*codes)
    else:
        builder = LanguageDetectorBuilder.from_all_languages()
    if low:
        builder = builder.with_low_accuracy_mode()
    detector = builder.build()

    def classify(text: str) -> tuple[str, float]:
        values = detector.compute_language_confidence_values(text)
        if not values:
            return UND, 0.0
        # confidences vary in the last bits between calls: round them, break ties by code
        top = round(values[0].value, 9)
        best = min(v.language.iso_code_639_1.name for v in values if round(v.value, 9) == top)
        return best.lower(), top

    return classify


PIPELINE = "pipeline: text_flags.detect_language"  # py3langid (LANGUAGES) with UND_BELOW
CANDIDATES: dict[str, Callable[[], Classify]] = {
    "py3langid (all)": lambda: _py3langid(None),
    "py3langid (LANGUAGES)": lambda: _py3langid(LANGUAGES),
    "lingua (all)": lambda: _lingua(None, low=False),
    "lingua (all, low accuracy)": lambda: _lingua(None, low=True),
    "lingua (LANGUAGES)": lambda: _lingua(LANGUAGES, low=False),
    "lingua (LANGUAGES, low accuracy)": lambda: _lingua(LANGUAGES, low=True),
    PIPELINE: lambda: detect_language,
}


def _rss_mib(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _as_pipeline(classify: Classify, text: str) -> tuple[str, float]:
    letters = URL_RE.sub(" ", text)
    if not any(unicodedata.category(c).startswith("L") for c in letters):
        return UND, 0.0
    return classify(letters)


def run_one(name: str, repeat: int) -> dict:
    """Load one candidate in this process, classify the set, and time it."""
    texts = [text for _, text in read_samples()]
    rss_before = _rss_mib()
    started = time.perf_counter()
    classify = CANDIDATES[name]()
    built = time.perf_counter() - started
    first = time.perf_counter()
    predictions = [_as_pipeline(classify, t) for t in texts]
    first_pass = time.perf_counter() - first
    passes = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        again = [_as_pipeline(classify, t) for t in texts]
        passes.append(time.perf_counter() - t0)
        assert again == predictions, f"{name} is not deterministic"
    warm = statistics.median(passes)
    return {
        "predictions": predictions,
        "build_s": built,
        "ready_s": built + max(first_pass - warm, 0.0),
        "ms_per_text": 1000 * warm / len(texts),
        "memory_mib": _rss_mib() - rss_before,
        "peak_mib": _rss_mib("VmHWM"),
    }


def _measure(name: str, repeat: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "bench.langid", "--one", name, "--repeat", str(repeat)],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    return json.loads(out.stdout)


@dataclass
class Scores:
    accuracy: float
    short_accuracy: float
    und_share: float
    per_lang: dict[str, float]


def score(gold: list[str], texts: list[str], predicted: list[str]) -> Scores:
    right = [g == p for g, p in zip(gold, predicted, strict=True)]
    short = [r for r, t in zip(right, texts, strict=True) if len(t) <= SHORT_CHARS]
    per: dict[str, list[bool]] = {}
    for g, r in zip(gold, right, strict=True):
        per.setdefault(g, []).append(r)
    return Scores(
        accuracy=sum(right) / len(right),
        short_accuracy=sum(short) / len(short),
        und_share=predicted.count(UND) / len(predicted),
        per_lang={lang: sum(rs) / len(rs) for lang, rs in per.items()},
    )


def with_threshold(predictions: list[list], threshold: float) -> list[str]:
    return [UND if conf < threshold else lang for lang, conf in predictions]


def best_threshold(gold: list[str], predictions: list[list]) -> float:
    """The threshold (0.00-0.99) that maximizes accuracy; the middle of the first best run."""
    grid = [i / 100 for i in range(100)]
    acc = [
        sum(g == p for g, p in zip(gold, with_threshold(predictions, t), strict=True)) for t in grid
    ]
    best = max(acc)
    start = acc.index(best)
    end = start
    while end + 1 < len(grid) and acc[end + 1] == best:
        end += 1
    return grid[(start + end) // 2]


def installed_mib(dist: str) -> float:
    files = metadata.distribution(dist).files or []
    return sum(f.locate().stat().st_size for f in files if f.locate().exists()) / 2**20


def pct(x: float) -> str:
    return f"{100 * x:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--errors", help="list the texts this candidate gets wrong")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.repeat)))
        return

    samples = read_samples()
    gold = [g for g, _ in samples]
    texts = [t for _, t in samples]
    counts = Counter(gold)
    main_langs = [lang for lang, n in counts.most_common() if n >= 25 and lang != UND]
    other = sorted(lang for lang in counts if lang not in main_langs and lang != UND)
    print(
        f"{len(samples)} texts, {sum(len(t) <= SHORT_CHARS for t in texts)} of <= {SHORT_CHARS} "
        f"characters; {dict(counts.most_common())}; machine: {os.cpu_count()} CPUs, "
        f"Python {sys.version.split()[0]}"
    )
    names = list(CANDIDATES)
    if importlib.util.find_spec("lingua") is None:
        print("lingua is not installed: its candidates are skipped")
        names = [name for name in names if not name.startswith("lingua")]
    rows = []
    for name in names:
        m = _measure(name, args.repeat)
        raw = score(gold, texts, [lang for lang, _ in m["predictions"]])
        # the pipeline applies UND_BELOW itself: its figures are the ones it ships with
        threshold = 0.0 if name == PIPELINE else best_threshold(gold, m["predictions"])
        cut = score(gold, texts, with_threshold(m["predictions"], threshold))
        rows.append((name, m, raw, threshold, cut))
        print(f"\n== {name}")
        print(
            f"  accuracy {pct(raw.accuracy)} %, <= {SHORT_CHARS} chars {pct(raw.short_accuracy)} %,"
            f" und {pct(raw.und_share)} %"
        )
        print(
            f"  und below {threshold:.2f}: accuracy {pct(cut.accuracy)} %, "
            f"<= {SHORT_CHARS} chars {pct(cut.short_accuracy)} %, und {pct(cut.und_share)} %"
        )
        print(
            "  per language: "
            + ", ".join(f"{lang} {pct(raw.per_lang[lang])}" for lang in [*main_langs, *other])
            + f", und {pct(raw.per_lang[UND])} (thresholded {pct(cut.per_lang[UND])})"
        )
        print(
            f"  build {m['build_s']:.2f} s, ready {m['ready_s']:.2f} s, "
            f"{m['ms_per_text']:.3f} ms/text, memory +{m['memory_mib']:.0f} MiB "
            f"(peak RSS {m['peak_mib']:.0f} MiB)"
        )
        if args.errors == name:
            for g, t, (p, c) in zip(gold, texts, m["predictions"], strict=True):
                if g != p:
                    print(f"    {g} -> {p} ({c:.2f}): {t}")
    sizes = [f"py3langid {installed_mib('py3langid'):.1f} MiB"]
    if importlib.util.find_spec("lingua") is not None:
        lingua_mib = installed_mib("lingua-language-detector")
        sizes.append(f"lingua-language-detector {lingua_mib:.0f} MiB")
    print("\nInstalled size: " + ", ".join(sizes))

    def lang_summary(s: Scores) -> str:
        worst = min(main_langs, key=lambda lang: s.per_lang[lang])
        others = sum(s.per_lang[lang] * counts[lang] for lang in other) / sum(
            counts[lang] for lang in other
        )
        return f"worst {worst} {pct(s.per_lang[worst])}; others {pct(others)}"

    print(
        "\n| candidate | accuracy | <= 20 chars | und threshold | accuracy (thr.) "
        "| <= 20 chars (thr.) | und share (thr.) | per language (thr.) | ready | ms/text "
        "| memory |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|")
    for name, m, raw, threshold, cut in rows:
        shown = f"{UND_BELOW:.2f} (built in)" if name == PIPELINE else f"{threshold:.2f}"
        print(
            f"| {name} | {pct(raw.accuracy)} % | {pct(raw.short_accuracy)} % | {shown} "
            f"| {pct(cut.accuracy)} % | {pct(cut.short_accuracy)} % | {pct(cut.und_share)} % "
            f"| {lang_summary(cut)} | {m['ready_s']:.2f} s | {m['ms_per_text']:.3f} "
            f"| +{m['memory_mib']:.0f} MiB |"
        )

    print("\nPer language, with each candidate's threshold (% right):\n")
    print("| language | texts | " + " | ".join(name for name, *_ in rows) + " |")
    print("|---|---:|" + "---:|" * len(rows))
    groups = [([lang], lang) for lang in main_langs]
    groups += [(other, "others (" + " ".join(other) + ")"), ([UND], UND)]
    for langs, label in groups:
        n = sum(counts[lang] for lang in langs)
        cells = [
            pct(sum(cut.per_lang[lang] * counts[lang] for lang in langs) / n) for *_, cut in rows
        ]
        print(f"| {label} | {n} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
