"""The code-version rule: editing a module moves the version of exactly the assets that run it."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import mta_pipeline
from mta_pipeline.assets import youtube
from mta_pipeline.code_versions import code_version, module_closure

PACKAGE_DIR = Path(mta_pipeline.__file__).parent

VERSIONS = """
import json, sys
import mta_pipeline.core.midi_features, mta_pipeline.core.youtube_api
from mta_pipeline.definitions import defs

files = [sys.modules[m].__file__ for m in sys.modules if m.split(".")[0] == "mta_pipeline"]
versions = {s.key.to_user_string(): s.code_version for s in defs.resolve_all_asset_specs()}
print(json.dumps({"files": files, "versions": versions}))
"""


def asset_versions(root: Path) -> dict[str, str]:
    """Every asset's code version, as a fresh process importing the package copy at `root`."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, "-c", VERSIONS],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.strip().splitlines()[-1])
    outside = [f for f in got["files"] if not Path(f).is_relative_to(root)]
    assert got["files"] and not outside, f"imported from outside the copy: {outside}"
    return got["versions"]


def edit(path: Path) -> None:
    with path.open("a", encoding="utf-8") as fh:
        fh.write("\n\ndef _edited_by_test_code_versions() -> None:\n    pass\n")


def test_the_code_version_rule_holds_under_a_real_edit(tmp_path):
    shutil.copytree(
        PACKAGE_DIR, tmp_path / "mta_pipeline", ignore=shutil.ignore_patterns("__pycache__")
    )
    base = asset_versions(tmp_path)

    edit(tmp_path / "mta_pipeline/core/midi_features.py")
    after_midi = asset_versions(tmp_path)
    assert after_midi.keys() == base.keys()
    for key in ("midi_features", "midi_parse_rejects"):
        assert after_midi[key] != base[key], key
    for key in ("youtube_videos", "youtube_comments", "midi_files", "midi_tokens", "mta_tsv"):
        assert after_midi[key] == base[key], key

    edit(tmp_path / "mta_pipeline/core/youtube_api.py")
    after_youtube = asset_versions(tmp_path)
    assert after_youtube["youtube_videos"] != after_midi["youtube_videos"]
    assert after_youtube["midi_features"] == after_midi["midi_features"]

    edit(tmp_path / "mta_pipeline/core/midi_tokens.py")  # new ids: only the tokens are redone
    after_tokens = asset_versions(tmp_path)
    changed = {key for key in after_tokens if after_tokens[key] != after_youtube[key]}
    assert changed == {"midi_tokens"}


def test_code_version_is_stable_and_follows_imports_only():
    name = "mta_pipeline.assets.youtube"
    assert re.fullmatch(r"[0-9a-f]{16}", youtube.VERSION)
    assert code_version.__wrapped__(name) == code_version(name) == youtube.VERSION
    closure = module_closure(name)
    assert {name, "mta_pipeline.core.youtube_api", "mta_pipeline.resources.storage"} <= set(closure)
    assert "mta_pipeline.core.midi_features" not in closure
    assert "mta_pipeline.core.midi_features" in module_closure("mta_pipeline.assets.midi_features")
