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
EXPECTED = f"tab-separated UTF-8 text with a header naming the columns {', '.join(COLUMNS)}"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
HTML_STARTS = ("<!doctype", "<html", "<?xml", "<head", "<body")


class MetadataError(ValueError):
    """The metadata file is not GiantMIDI's CSV; the message says what is off."""


def read_metadata(
    data: bytes | str, source: str = "GIANTMIDI_METADATA_URL"
) -> tuple[pd.DataFrame, int]:
    """Parse the CSV; returns the frame and how many non-missing numbers failed to parse.

    Whatever the bytes (binary, UTF-16, an HTML error page, another CSV), a file that is not
    GiantMIDI's is a one-line MetadataError naming `source` (say the redacted URL) and what was
    expected, never a bare decoding or tokenizing error. A UTF-8 byte-order mark is allowed.
    """
    text = _decode(data, source) if isinstance(data, bytes) else data
    if "\0" in text:
        raise _error(source, "it holds NUL characters (binary data, or UTF-16 without a BOM)")
    if text.lstrip().lower().startswith(HTML_STARTS):
        raise _error(source, "it is an HTML page (an error or login page instead of the file?)")
    try:
        raw = pd.read_csv(
            io.StringIO(text),
            sep="\t",
            quoting=csv.QUOTE_NONE,
            dtype=str,
            keep_default_na=False,
            on_bad_lines="error",
        )
    except pd.errors.EmptyDataError as exc:
        raise _error(source, "it is empty") from exc
    except pd.errors.ParserError as exc:
        raise _error(source, " ".join(str(exc).split())) from exc
    missing = [c for c in COLUMNS if c not in raw.columns]
    if len(missing) == len(COLUMNS):
        found = ", ".join(repr(str(c)[:40]) for c in raw.columns[:5])
        raise _error(source, f"its header has none of them (it starts {found})")
    if missing:
        raise _error(source, f"it lacks columns {missing}")
    df = raw[list(COLUMNS)].apply(lambda col: col.str.strip())
    df = df.where(~df.isin(MISSING), None)
    bad = 0
    for col in (*FLOAT_COLUMNS, *INT_COLUMNS):
        parsed = pd.to_numeric(df[col], errors="coerce")
        bad += int((parsed.isna() & df[col].notna()).sum())
        df[col] = parsed.astype("Int64") if col in INT_COLUMNS else parsed.astype("float64")
    df.insert(0, "row_index", range(len(df)))
    return df, bad


def _decode(data: bytes, source: str) -> str:
    if data.startswith(UTF16_BOMS):
        raise _error(source, "it is UTF-16 (it starts with a UTF-16 byte-order mark)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bad = data[exc.start : exc.start + 1].hex()
        raise _error(source, f"byte 0x{bad} at offset {exc.start} is not UTF-8") from None


def _error(source: str, problem: str) -> MetadataError:
    return MetadataError(f"{source} is not GiantMIDI's metadata CSV ({EXPECTED}): {problem}.")
