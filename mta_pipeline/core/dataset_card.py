"""DATASET.md: the dataset card written beside the exports, from the records themselves.

Everything in it is derived from the data (no generation time), so an unchanged dataset gives a
byte-identical card.
"""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc

from mta_pipeline.core.splits import TRAIN_BELOW, VALIDATION_BELOW
from mta_pipeline.core.tsv import TSV_COLUMNS

SOURCES = """\
## Sources, licences and credit

- **GiantMIDI-Piano** (Qiuqiang Kong, Bochen Li, Jitong Chen, Yuxuan Wang; ByteDance), classical
  piano MIDI files transcribed from YouTube recordings: CC BY 4.0.
- **MusicTextAlignment**, the MIDI–text dataset whose TSV columns this export reproduces:
  CC BY 4.0.
- **YouTube descriptions and comments** belong to their authors. They were collected through the
  YouTube Data API v3 for research on music and language; respect YouTube's terms of service and
  the authors' rights, and remove texts on request.
"""

RULES = f"""\
## Cleaning rules

Applied to descriptions and comments (`describe`, `reply_N`, `comments[].text`; the raw text is
kept in `describe_raw` and `comments[].text_raw`):
Unicode NFC; when the text is HTML, tags dropped and entities unescaped; `\\r\\n`, `\\r` and
Unicode line separators become `\\n`; control characters removed (format characters such as the
emoji zero-width joiner kept); runs of spaces and tabs collapsed to one space; spaces at line
ends and more than one blank line dropped; leading and trailing space trimmed.
Within a video, a comment whose cleaned text repeats a better-ranked one is dropped.

Flags: `lang` (py3langid, offline; `und` for text without letters); `is_repeated` (the same text
of 20+ characters from several authors or on several videos); `is_spam` (only links, a
promotion, or a repeated text with a link); `is_uploader` (written by the video's own channel).
`reply_1..reply_5` are the top comments by relevance that are not spam; missing replies are empty
strings.

## Splits

`split` is decided per composer, so one composer never appears in two splits: the bucket is
blake2b of the NFC-casefolded `surname|firstname`, modulo 100; below {TRAIN_BELOW} train, below
{VALIDATION_BELOW} validation, else test (about 80/10/10 of composers).

## The TSV

`midi_text_dataset.tsv`: UTF-8, a header line, one record per line, columns
`{", ".join(TSV_COLUMNS)}`. `index` is 0..n-1 in the order of `old_id` (records without one last),
then `vid`. `old_id` is the record's row position (0-based) in GiantMIDI's metadata CSV, empty
when the video is not in it. Inside fields a backslash is written `\\\\`, a tab `\\t` and a newline
`\\n`. Read it with `pandas.read_csv(path, sep="\\t", keep_default_na=False,
quoting=csv.QUOTE_NONE, dtype=str)`, or in DuckDB with `read_csv(path, delim='\\t', quote='',
escape='', header=true, all_varchar=true, nullstr='\\N')`.
"""


def _count(data: pa.Table, column: str, value: str = "") -> int:
    if not data.num_rows:
        return 0
    return int(pc.sum(pc.not_equal(data.column(column), value)).as_py() or 0)


def _date_range(data: pa.Table, column: str) -> str:
    values = [v for v in data.column(column).to_pylist() if v is not None]
    if not values:
        return "not scraped"
    return f"{min(values):%Y-%m-%d} to {max(values):%Y-%m-%d}"


def dataset_card(data: pa.Table) -> str:
    n = data.num_rows
    composers = len(
        {
            (s, f)
            for s, f in zip(
                data.column("surname").to_pylist(),
                data.column("firstname").to_pylist(),
                strict=True,
            )
        }
    )
    splits = Counter(data.column("split").to_pylist())
    langs = Counter(v for v in data.column("describe_lang").to_pylist() if v)
    comments = sum(len(c) for c in data.column("comments").to_pylist())
    lines = [
        "# Music–Text Alignment dataset",
        "",
        "Classical piano MIDI files from GiantMIDI-Piano joined, by YouTube id, with the source",
        "video's description and top comments, cleaned. Built by mta-pipeline.",
        "",
        "## Counts",
        "",
        "| what | count |",
        "|---|---|",
        f"| records (good MIDI files) | {n} |",
        f"| composers | {composers} |",
        f"| with a description | {_count(data, 'describe')} |",
        f"| with at least one reply | {_count(data, 'reply_1')} |",
        f"| comments kept (after de-duplication) | {comments} |",
        *(f"| split {s} | {splits.get(s, 0)} |" for s in ("train", "validation", "test")),
        "",
        "Description languages: "
        + (", ".join(f"{k} {v}" for k, v in langs.most_common(10)) or "none"),
        "",
        f"Videos scraped: {_date_range(data, 'video_scraped_at')}; comments scraped: "
        f"{_date_range(data, 'comments_scraped_at')} (UTC).",
        "",
        "## Files",
        "",
        "- `midi_text_dataset.tsv`: the columns of the published dataset.",
        "- `mta_records.parquet`: every column below, one file; the same records partitioned by",
        "  shard are under `mta_records/shard=*/part.parquet` in the lake.",
        "",
        "## Columns of the full records",
        "",
        "| column | type |",
        "|---|---|",
        *(f"| `{f.name}` | {f.type} |" for f in data.schema),
        "",
        SOURCES,
        RULES,
    ]
    return "\n".join(lines)
