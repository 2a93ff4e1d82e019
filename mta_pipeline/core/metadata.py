"""GiantMIDI's metadata CSV: tab-separated, unquoted, with `unknown` or empty for missing values.

`row_index` keeps each row's position in the file (the published dataset's `old_id` refers to it),
and every row is kept, in the release or not (`giant_midi_piano` says which).
"""

from __future__ import annotations

import csv
import io

import pandas as pd

COLUMNS = (
    "surname",
    "firstname",
    "music",
    "nationality",
    "birth",
    "death",
    "youtube_title",
    "youtube_id",
    "similarity",
    "piano_solo_prob",
    "audio_name",
    "audio_duration",
    "giant_midi_piano",
    "split",
    "surname_in_youtube_title",
)
FLOAT_COLUMNS = ("similarity", "piano_solo_prob", "audio_duration")
INT_COLUMNS = ("giant_midi_piano", "surname_in_youtube_title")
MISSING = {"", "unknown", "Unknown", "nan", "NaN", "None"}


class MetadataError(ValueError):
    """The metadata file is not GiantMIDI's CSV; the message says what is off."""


def read_metadata(text: str) -> tuple[pd.DataFrame, int]:
    """Parse the CSV text; returns the frame and how many non-missing numbers failed to parse."""
    try:
        raw = pd.read_csv(
            io.StringIO(text),
            sep="\t",
            quoting=csv.QUOTE_NONE,
            dtype=str,
            keep_default_na=False,
            on_bad_lines="error",
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise MetadataError(f"GIANTMIDI_METADATA_URL is not a tab-separated CSV: {exc}") from exc
    missing = [c for c in COLUMNS if c not in raw.columns]
    if missing:
        raise MetadataError(
            f"GIANTMIDI_METADATA_URL lacks columns {missing}; expected GiantMIDI's metadata CSV "
            f"with columns {', '.join(COLUMNS)}."
        )
    df = raw[list(COLUMNS)].apply(lambda col: col.str.strip())
    df = df.where(~df.isin(MISSING), None)
    bad = 0
    for col in (*FLOAT_COLUMNS, *INT_COLUMNS):
        parsed = pd.to_numeric(df[col], errors="coerce")
        bad += int((parsed.isna() & df[col].notna()).sum())
        df[col] = parsed.astype("Int64") if col in INT_COLUMNS else parsed.astype("float64")
    df.insert(0, "row_index", range(len(df)))
    return df, bad
