"""The release's `README.md`: a Hugging Face dataset card (YAML front matter, then the text),
written from the release rows themselves.

Everything in it is derived from the data (no generation time), so an unchanged dataset gives a
byte-identical card.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping

import pyarrow as pa

from mta_pipeline.core.release import CONFIG_DESCRIPTIONS, CONFIGS, configs_yaml, present_splits
from mta_pipeline.core.splits import SPLITS, composer_key
from mta_pipeline.core.text_flags import UND_BELOW
from mta_pipeline.core.tsv import TSV_COLUMNS

METADATA_FILE = "full_music_pieces_youtube_similarity_pianosoloprob_split.csv"
METADATA_URL = (
    "https://raw.githubusercontent.com/bytedance/GiantMIDI-Piano/master/resources/" + METADATA_FILE
)

SOURCES = f"""\
## Sources, licences and credit

- **GiantMIDI-Piano** (Qiuqiang Kong, Bochen Li, Jitong Chen, Yuxuan Wang; ByteDance), classical
  piano MIDI files transcribed from YouTube recordings, and its metadata
  (`{METADATA_FILE}`): CC BY 4.0. The MIDI files under `midi/` are redistributed from it under
  that licence.
- **MusicTextAlignment**, the MIDI–text dataset whose TSV columns this release reproduces:
  CC BY 4.0.
- **YouTube descriptions and comments** belong to their authors. They were collected through the
  YouTube Data API v3 for research on music and language; respect YouTube's terms of service and
  the authors' rights. The release has no author names, channel ids or comment ids as columns;
  the texts are as their authors wrote them and may mention channels.
"""

RULES = f"""\
## How the text was made

- Comments: `textOriginal` (the text as its author wrote it) when the API returns it, else
  `textDisplay` with HTML entities decoded; descriptions likewise (entities decoded).
- Cleaning, for descriptions and comments: Unicode NFC; `\\r\\n`, `\\r` and Unicode line
  separators become `\\n`; control characters removed (format characters such as the emoji
  zero-width joiner kept); runs of spaces and tabs collapsed to one space; spaces at line ends and
  more than one blank line dropped; leading and trailing space trimmed.
- Within a video, a comment whose cleaned text repeats a better-ranked one is dropped.
- Flags: `lang` with `lang_confidence` (`und` below {UND_BELOW} or without letters);
  `is_repeated` (the same text of 20+ characters from several authors or on several videos);
  `is_spam` (only links, a promotion, or a repeated text with a link); `is_uploader` (written by
  the video's own channel); `n_chars`, `has_url`.
- `reply_1..reply_5` are the top comments by relevance that are not spam; missing replies are
  empty strings.
- `caption` is **generated** from the MIDI features by fixed templates (length, key, density,
  dynamics, pedalling, register), so every record has some text; it is not human text.

## Splits

`split` is per composer, so no composer appears in two splits. Splits are balanced by records to
80/10/10 and stable: the assignment is stored, every composer keeps its split in later releases,
and a new composer goes to the split furthest below its target. GiantMIDI's own split is kept in
`giantmidi_split`.

## Removals and privacy

Video and comment ids on the removal list (`MTA_REMOVALS`) are removed from every release: a
removed video loses its record, MIDI file and text; a removed comment disappears from `comments`
and from the replies. To ask for a removal, open an issue in the mta-pipeline repository with
the video or comment id.

## The TSV

`midi_text_dataset.tsv`: UTF-8, a header line, columns `{", ".join(TSV_COLUMNS)}`, written as
`pandas.DataFrame.to_csv(sep="\\t")` writes (a field with a tab, line break or double quote is
quoted, quotes doubled), except that empty text is written `""` (so DuckDB can tell it from a
missing `old_id`). `index` is 0..n-1 in the order of `old_id` (the
record's 0-based row in GiantMIDI's metadata; empty when the video is not in it), then `vid`.
"""

LOADING = """\
## Loading

```python
from datasets import load_dataset
ds = load_dataset("path/to/release")              # train / validation / test, every record
curated = load_dataset("path/to/release", "curated")

import pandas as pd, csv
df = pd.read_csv("midi_text_dataset.tsv", sep="\\t", keep_default_na=False, dtype=str)
rows = list(csv.reader(open("midi_text_dataset.tsv", newline="", encoding="utf-8"),
                       delimiter="\\t"))
```

DuckDB: `SELECT * FROM read_csv('midi_text_dataset.tsv', delim='\\t', header=true,
all_varchar=true)` (add `allow_quoted_nulls=false` to read empty text as '' rather than NULL, and
`quote='"', escape='"'` to skip DuckDB's guessing of the quote character).
Each record's MIDI file is `midi_path`, relative to the release folder.
"""

COLUMN_NOTES = {
    "index": "0..n-1 over the whole release, in the TSV's order",
    "old_id": "0-based row of the video in GiantMIDI's metadata CSV",
    "vid": "YouTube video id",
    "describe": "the video's description, cleaned",
    "midi_path": "the MIDI file, relative to the release root",
    "tokens": "`default` config only: the MIDI file as miditok REMI ids; see `tokenizer.json`",
    "split": "train / validation / test, by composer",
    "curated": "giant_midi_piano = 1 and surname_in_youtube_title = 1",
    "caption": "generated from the MIDI features (not human text)",
    "comments": "kept comments with their flags (no author ids)",
}


TOKEN_FILES = [
    "- `tokenizer.json`: the miditok REMI tokenizer of the `tokens` column, which the `default`",
    "  config's files carry (the other configs are its subsets: filter `default` on `curated`).",
    "  Live solo piano: velocities, sustain pedal, a 31 ms grid at GiantMIDI's 120 BPM. Decode:",
    "  `miditok.REMI(params='tokenizer.json').decode([row['tokens']]).dump_midi('x.mid')`.",
]


def _size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if n < limit:
            return label
    return "100K<n<1M"


def _front_matter(n: int, present: Mapping[str, list[str]]) -> list[str]:
    return [
        "---",
        "license: cc-by-4.0",
        "pretty_name: Music–Text Alignment (GiantMIDI-Piano × YouTube text)",
        "language:",
        "- multilingual",
        "multilinguality: multilingual",
        f"size_categories:\n- {_size_category(n)}",
        "task_categories:",
        "- text-generation",
        "- text-to-audio",
        "- feature-extraction",
        "tags:",
        *(f"- {t}" for t in ("music", "midi", "symbolic-music", "piano", "classical-music")),
        *(f"- {t}" for t in ("giantmidi-piano", "youtube-comments", "music-text")),
        *configs_yaml(present),
        "---",
    ]


def _lengths(values: list[int]) -> str:
    if not values:
        return "none"
    return f"median {statistics.median(values):g}, mean {statistics.fmean(values):.0f}"


def _date_range(values: list) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "not scraped"
    return f"{min(values):%Y-%m-%d} to {max(values):%Y-%m-%d}"


def dataset_card(data: pa.Table, configs: Mapping[str, pa.Table], tokens: bool = False) -> str:
    """The card for the release rows `data` and each config's rows; `tokens`: the default
    config's files carry the `tokens` column and `tokenizer.json` is shipped."""
    rows = data.select(
        [
            "surname",
            "firstname",
            "split",
            "describe",
            "describe_lang",
            "describe_n_chars",
            "n_replies",
            "comments",
            "video_scraped_at",
            "comments_scraped_at",
        ]
    ).to_pylist()
    n = len(rows)
    comments = [c for r in rows for c in r["comments"] or []]
    split_counts = Counter(r["split"] for r in rows)
    lines = [
        *_front_matter(n, present_splits(configs)),
        "",
        "# Music–Text Alignment dataset",
        "",
        "Classical piano MIDI files from GiantMIDI-Piano joined, by YouTube id, with the source",
        "video's description and top comments, cleaned, with GiantMIDI's curation columns and a",
        "caption generated from each file. Built by mta-pipeline.",
        "",
        "## Counts",
        "",
        "| config | what | " + " | ".join(SPLITS) + " | total |",
        "|---|---|" + "---|" * len(SPLITS) + "---|",
    ]
    for name in CONFIGS:
        part = Counter(configs[name].column("split").to_pylist())
        cells = " | ".join(str(part.get(s, 0)) for s in SPLITS)
        lines.append(f"| `{name}` | {CONFIG_DESCRIPTIONS[name]} | {cells} | {sum(part.values())} |")
    shares = ", ".join(f"{s} {split_counts.get(s, 0) / max(1, n):.1%}" for s in SPLITS)
    described = [r["describe_n_chars"] for r in rows if r["describe"]]
    reply_lengths = [c["n_chars"] for c in comments if not c["is_spam"]]
    desc_langs = Counter(r["describe_lang"] for r in rows if r["describe"])
    comment_langs = Counter(c["lang"] for c in comments)
    lines += [
        "",
        f"- records (good MIDI files): {n}; composers: "
        f"{len({composer_key(r['surname'], r['firstname']) for r in rows})}",
        f"- record shares by split: {shares}",
        f"- with a description: {len(described)}; with at least one reply: "
        f"{sum(1 for r in rows if r['n_replies'])}; comments kept: {len(comments)} "
        f"({sum(c['is_spam'] for c in comments)} flagged as spam)",
        f"- description length in characters: {_lengths(described)}; reply length: "
        f"{_lengths(reply_lengths)}",
        "- description languages: "
        + (", ".join(f"{k} {v}" for k, v in desc_langs.most_common(10)) or "none"),
        "- comment languages: "
        + (", ".join(f"{k} {v}" for k, v in comment_langs.most_common(10)) or "none"),
        f"- videos scraped {_date_range([r['video_scraped_at'] for r in rows])}; comments "
        f"scraped {_date_range([r['comments_scraped_at'] for r in rows])} (UTC)",
        "",
        "## Files",
        "",
        "- `data/<config>/<split>-NNNNN-of-NNNNN.parquet`: the records of each config and split",
        "  (a split without records has no file, so it is not offered when loading).",
        "- `midi/<vid>.mid`: the MIDI file of every record (`midi_path`).",
        "- `midi_text_dataset.tsv`: the MusicTextAlignment columns of every record.",
        *(TOKEN_FILES if tokens else []),
        "",
        LOADING,
        "## Columns",
        "",
        "| column | type | notes |",
        "|---|---|---|",
        *(f"| `{f.name}` | {f.type} | {COLUMN_NOTES.get(f.name, '')} |" for f in data.schema),
        *([f"| `tokens` | list<int32> | {COLUMN_NOTES['tokens']} |"] if tokens else []),
        "",
        f"GiantMIDI's metadata file is `{METADATA_FILE}` ({METADATA_URL}).",
        "",
        SOURCES,
        RULES,
    ]
    return "\n".join(lines)
