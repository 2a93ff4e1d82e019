"""Which tokenizer made a row of token ids: its name and a digest of its saved configuration.

The digest ties ids to the exact `tokenizer.json` that decodes them: a miditok upgrade can change
that file while our code stays the same, and ids must then be made again rather than shipped
beside a tokenizer they were not made with. Kept apart from `midi_tokens` so the release can
check ids without importing miditok.
"""

import hashlib


def config_digest(config: bytes) -> str:
    return hashlib.sha256(config).hexdigest()[:12]


def tokenizer_id(name: str, config: bytes) -> str:
    """The `tokenizer` column's value: `<name>+<digest of tokenizer.json>`."""
    return f"{name}+{config_digest(config)}"


def made_with(tokenizer: str, config: bytes) -> bool:
    """Whether ids labelled `tokenizer` decode with the tokenizer saved as `config`."""
    return tokenizer.endswith(f"+{config_digest(config)}")
