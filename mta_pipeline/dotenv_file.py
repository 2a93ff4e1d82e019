"""The `.env` file: `mta demo` writes its settings there and every `mta` command reads it.

This is Dagster's own convention (`dagster dev` loads `.env` from its working directory), so
`mta`, `dagster dev`, `dg dev` and `dagster asset list`, run from the project folder, all see the
demo's settings with nothing exported. The file `mta demo` writes starts with `MARKER`; a `.env`
without it is the user's and is never modified. Import-light (no Dagster, python-dotenv only when
a file is read) because every `mta` command loads it before anything else.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mta_pipeline.atomic import atomic_write

ENV_FILE = ".env"
# Where the demo's settings go when `.env` is the user's own file.
DEMO_ENV_FILE = ".env.mta-demo"
MARKER = (
    "# Written by `mta demo`: the offline demo's settings. Delete this file to stop using the demo."
)


@dataclass(frozen=True)
class SavedSettings:
    """Where `save_demo_settings` wrote; `beside_own` when `.env` was the user's and was kept."""

    path: Path
    beside_own: bool


def quote(value: str) -> str:
    """`value` as a single-quoted python-dotenv value, so spaces, `#`, `"` and `=` stay literal.

    python-dotenv expands `${NAME}` inside any value, quoted or not, and has no escape for it, so
    such a value cannot be written faithfully and is refused.
    """
    if "${" in value:
        raise ValueError(f"{value!r} contains '${{', which .env readers expand as a variable")
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def render(settings: Mapping[str, str]) -> str:
    """The demo's `.env` text: the marker line, then one `NAME='value'` line per setting."""
    lines = [MARKER, *(f"{name}={quote(value)}" for name, value in settings.items())]
    return "\n".join(lines) + "\n"


def is_demo_file(path: Path) -> bool:
    """Whether `path` is a regular file written by `mta demo` (its first line is the marker)."""
    if path.is_symlink() or not path.is_file():
        return False
    try:
        with path.open(encoding="utf-8") as fh:
            return fh.readline().rstrip("\r\n") == MARKER
    except (OSError, UnicodeDecodeError):
        return False


def save_demo_settings(folder: Path, settings: Mapping[str, str]) -> SavedSettings:
    """Write the demo's settings to `folder/.env`, atomically, unless a `.env` that `mta demo`
    did not write is there: that one is the user's, so they go to `folder/.env.mta-demo`."""
    env_file = folder / ENV_FILE
    beside_own = env_file.is_symlink() or (env_file.exists() and not is_demo_file(env_file))
    path = folder / DEMO_ENV_FILE if beside_own else env_file
    atomic_write(path, render(settings).encode("utf-8"))
    return SavedSettings(path=path, beside_own=beside_own)


def load(folder: Path) -> dict[str, str]:
    """Put the settings of `folder/.env` into the environment, except those the environment
    already has (a non-empty variable wins over the file); returns the ones it set."""
    path = folder / ENV_FILE
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    loaded = {
        name: value
        for name, value in dotenv_values(path, encoding="utf-8").items()
        if value is not None and not os.environ.get(name, "").strip()
    }
    os.environ.update(loaded)
    return loaded
