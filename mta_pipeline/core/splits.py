"""Deterministic train/validation/test split by composer.

A composer's records all go to one split, so a model is never tested on a composer it was
trained on. The bucket is `blake2b(NFC-casefolded "surname|firstname") mod 100`: below 80 train,
below 90 validation, else test, i.e. about 80/10/10 of composers (records follow roughly).
"""

from __future__ import annotations

import hashlib
import unicodedata

TRAIN_BELOW, VALIDATION_BELOW = 80, 90


def composer_key(surname: str | None, firstname: str | None) -> str:
    text = f"{surname or ''}|{firstname or ''}"
    return unicodedata.normalize("NFC", text).casefold().strip()


def split_for(surname: str | None, firstname: str | None) -> str:
    digest = hashlib.blake2b(composer_key(surname, firstname).encode(), digest_size=8).digest()
    bucket = int.from_bytes(digest, "big") % 100
    if bucket < TRAIN_BELOW:
        return "train"
    return "validation" if bucket < VALIDATION_BELOW else "test"
