"""The MIDI parsers a user can choose (`MTA_MIDI_BACKEND`), in a module of their own so that
the resource naming them does not take on the feature code's version."""

SYMUSIC = "symusic"  # native (C++), the default
PRETTY_MIDI = "pretty_midi"  # the reference, pure Python
BACKENDS = (SYMUSIC, PRETTY_MIDI)
FALLBACK = "pretty_midi_fallback"  # the parser of a file symusic refused and pretty_midi read
