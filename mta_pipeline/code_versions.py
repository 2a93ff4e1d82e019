"""Code versions derived from the source an asset runs, so "up to date" never outlives the code.

An asset's code version is a hash of its module's source and of every `mta_pipeline` module that
module imports, transitively (found by reading `import` statements, not by running them). Editing
`core/midi_features.py` therefore changes the version of `midi_features` (whose module imports it)
and leaves `youtube_videos` alone (whose module does not). Asset modules name their upstream
assets by key, never by import, so one stage's code does not leak into another's version.
Comments and formatting count as changes: a version may move when the behaviour did not, never
the other way round.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
from functools import cache
from pathlib import Path

PACKAGE = "mta_pipeline"


@cache
def _source_file(module: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):  # a name imported from a module, not a module
        return None
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)


def _imports(module: str, path: Path) -> set[str]:
    """The package modules `module` imports (`from mta_pipeline import x` counts x if a module)."""
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    return {m for m in found if m.split(".")[0] == PACKAGE and _source_file(m) is not None}


def module_closure(module: str) -> list[str]:
    """`module` and every package module it imports, transitively, sorted."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        path = _source_file(name)
        if name in seen or path is None:
            continue
        seen.add(name)
        todo.extend(_imports(name, path) - seen)
    return sorted(seen)


@cache
def code_version(module: str) -> str:
    """A short hash of the source of `module` and everything it imports from the package."""
    digest = hashlib.sha256()
    for name in module_closure(module):
        path = _source_file(name)
        assert path is not None
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]
