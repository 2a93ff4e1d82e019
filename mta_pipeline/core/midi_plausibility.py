"""Plausibility rules: a MIDI file that parses but whose features are not data.

A parser reads some broken files without complaint: a tempo word of 0xFFFFFF µs a beat reads
as 3.58 BPM and stretches every time 33.5-fold, and a drums-only file has a duration but no
note. GiantMIDI-Piano files are solo piano transcriptions at 120 BPM: about 3,800 notes and 7
minutes on average, the longest a little over an hour. Such files become rejects (stage
`midi_features`) with a reason that starts with one of the codes below. The bounds are far
outside every real file and far inside the values the broken ones give, and they are part of
the feature code: changing one re-runs `midi_features`.
"""

from __future__ import annotations

NO_PITCHED_NOTES = "no_pitched_notes"
IMPLAUSIBLE_TEMPO = "implausible_tempo"
IMPLAUSIBLE_DURATION = "implausible_duration"

# Tempo markings run from about 20 BPM (larghissimo) to about 300 (prestissimo); GiantMIDI's is
# 120. Outside these bounds no time of the file is believable, whatever its length.
MIN_TEMPO_BPM = 20.0
MAX_TEMPO_BPM = 500.0
# Four hours: over three times the longest real piece, and far below the lengths broken tempo
# or tick values give (a 3.58-BPM file read as 150,994,951 s).
MAX_DURATION_S = 4 * 60 * 60.0


def implausibility(
    n_notes: int, duration_s: float, slowest_bpm: float, fastest_bpm: float
) -> str | None:
    """Why a parsed file is not data, as a `midi_rejects` reason (code first), or None.

    `n_notes` counts non-drum notes; the tempi are the extremes of the file's tempo map. A
    file without piano notes is reported as such first, then a broken tempo (the cause of
    absurd times, more telling than the duration it gives), then the duration.
    """
    if n_notes == 0:
        return f"{NO_PITCHED_NOTES}: no non-drum note in {duration_s:.1f} s (drums only, or empty)"
    if not MIN_TEMPO_BPM <= slowest_bpm <= fastest_bpm <= MAX_TEMPO_BPM:
        tempo = f"{slowest_bpm:.2f}" + (f"–{fastest_bpm:.2f}" if fastest_bpm != slowest_bpm else "")
        return (
            f"{IMPLAUSIBLE_TEMPO}: {tempo} bpm, outside {MIN_TEMPO_BPM:.0f}–{MAX_TEMPO_BPM:.0f}"
            f" bpm (duration {duration_s:.1f} s)"
        )
    if not duration_s <= MAX_DURATION_S:  # NaN too
        return f"{IMPLAUSIBLE_DURATION}: {duration_s:.0f} s, above the {MAX_DURATION_S:.0f} s bound"
    return None
