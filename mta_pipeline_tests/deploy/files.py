"""What the deploy tests read: the files under deploy/, the repo's dagster.yaml, the setting names.

The checks of each file are functions returning a list of problems (empty: fine), so a test can
run them on the real file and on a deliberately broken copy, and show that each check can fail.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from mta_pipeline import config

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
CODE_LOCATION_MODULE = "mta_pipeline.definitions"
# Variables a process may get besides the pipeline's own: the s3fs credentials and Dagster's.
FOREIGN_PREFIXES = ("AWS_", "DAGSTER_")
# Settings whose value is a secret (or holds one): set by name from a secret store, never inline.
SECRET_SETTINGS = frozenset(
    {
        config.YOUTUBE_API_KEY,
        config.MTA_DAGSTER_POSTGRES_URL,
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    }
)
SECRET_WORDS = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY|ACCESS_KEY", re.IGNORECASE)


def setting_names() -> frozenset[str]:
    """Every variable config.py names: its constants whose value is their own name."""
    return frozenset(
        value for name, value in vars(config).items() if name.isupper() and value == name
    )


def unknown_settings(names: list[str] | set[str]) -> list[str]:
    """Names that config.py does not read and that are not AWS_* or DAGSTER_* variables."""
    known = setting_names()
    return sorted(n for n in names if n not in known and not n.startswith(FOREIGN_PREFIXES))


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def repo_instance() -> dict[str, Any]:
    """The repo's dagster.yaml: the instance settings every deployment must keep."""
    return load_yaml(REPO / "dagster.yaml")


def pinned_versions() -> dict[str, str]:
    """`name==version` pins of pyproject.toml's dependencies and optional dependencies."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        requirements.extend(extra)
    pins = {}
    for requirement in requirements:
        name, sep, version = requirement.partition("==")
        if sep:
            pins[name.strip()] = version.strip()
    return pins


def missing_settings(deployed: Any, expected: Any, where: str) -> list[str]:
    """Where `deployed` lacks or changes a value of `expected` (dicts compared key by key)."""
    if isinstance(expected, dict):
        if not isinstance(deployed, dict):
            return [f"{where} should be a mapping like the repo's dagster.yaml"]
        problems = []
        for key, value in expected.items():
            problems += missing_settings(deployed.get(key), value, f"{where}.{key}")
        return problems
    if deployed != expected:
        return [f"{where} is {deployed!r}; the repo's dagster.yaml has {expected!r}"]
    return []


def set_at(node: Any, path: str, value: Any) -> None:
    """Set the value at a dotted path (`services.daemon.volumes.0`) of parsed YAML, in place:
    how the tests break a copy of a file."""
    *parents, last = path.split(".")
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
