"""deploy/install.sh, run for real: the same script the Dockerfile runs, on a fresh venv.

The venv is created without --system-site-packages and the script installs from the package index
what the image gets (a regular wheel of the project and every dependency, the `deploy` extra
included), from a copy of the build context the Dockerfile sees (deploy/Dockerfile.dockerignore
applied). About two minutes on 2 cores, most of it downloading; reusing .venv's packages would be
faster but would not show that the pins resolve and the package is complete on its own. Then the
installed code location is listed and the image's instance file is loaded against a real
PostgreSQL server with the installed run launchers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mta_pipeline_tests.deploy.files import CODE_LOCATION_MODULE, DEPLOY, REPO, pinned_versions
from mta_pipeline_tests.deploy.test_dockerfile import DOCKERIGNORE, ignore_patterns, is_ignored
from mta_pipeline_tests.postgres_server import postgres_server, postgres_url  # noqa: F401

INSTALL_TIMEOUT_S = 900


def clean_environment(**extra: str) -> dict[str, str]:
    """The shell's environment without this venv and without any pipeline or Dagster setting."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("MTA_", "GIANTMIDI_", "YOUTUBE_", "DAGSTER_", "PYTHON"))
        and name != "VIRTUAL_ENV"
    }
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(sys.prefix)
    )
    return {**env, **extra}


def copy_build_context(destination: Path) -> None:
    """The repository as `docker build` sends it: what Dockerfile.dockerignore leaves in."""
    patterns = ignore_patterns(DOCKERIGNORE.read_text(encoding="utf-8"))

    def ignored(folder: str, names: list[str]) -> list[str]:
        relative = Path(folder).relative_to(REPO)
        return [n for n in names if is_ignored((relative / n).as_posix().lstrip("./"), patterns)]

    shutil.copytree(REPO, destination, ignore=ignored)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv into which deploy/install.sh installed the project; its bin folder."""
    root = tmp_path_factory.mktemp("install")
    context, venv = root / "context", root / "venv"
    copy_build_context(context)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    result = subprocess.run(
        [str(context / "deploy" / "install.sh"), str(python)],
        cwd=root,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "mta-pipeline installed into" in result.stdout
    yield venv / "bin"


def run(bin_dir: Path, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(bin_dir / args[0]), *args[1:]],
        cwd=cwd,
        env=clean_environment(**env),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_install_is_a_regular_package_not_the_source(installed: Path, tmp_path: Path):
    found = run(
        installed, "python", "-c", "import mta_pipeline; print(mta_pipeline.__file__)", cwd=tmp_path
    )
    assert found.returncode == 0, found.stderr
    location = Path(found.stdout.strip())
    assert location.is_relative_to(installed.parent / "lib"), location


def test_the_installed_code_location_lists_the_same_assets(installed: Path, tmp_path: Path):
    env = {"MTA_DATA_DIR": str(tmp_path / "cache"), "DAGSTER_HOME": str(tmp_path)}
    listed = run(
        installed, "dagster", "asset", "list", "-m", CODE_LOCATION_MODULE, cwd=tmp_path, **env
    )
    assert listed.returncode == 0, listed.stderr
    from mta_pipeline.definitions import defs  # the source's, as `dagster asset list` prints them

    source = [key.to_user_string() for key in defs.resolve_all_asset_keys()]
    assert "midi_features" in listed.stdout
    assert sorted(listed.stdout.split()) == sorted(source)


def test_the_image_instance_loads_with_postgres_and_the_docker_launcher(
    installed: Path,
    tmp_path: Path,
    postgres_url: str,  # noqa: F811 (fixture)
):
    """deploy/dagster.yaml, as the image has it, with the installed dagster-docker and Postgres."""
    shutil.copy(DEPLOY / "dagster.yaml", tmp_path / "dagster.yaml")
    env = {"DAGSTER_HOME": str(tmp_path), "MTA_DAGSTER_POSTGRES_URL": postgres_url}
    info = run(installed, "dagster", "instance", "info", cwd=tmp_path, **env)
    assert info.returncode == 0, info.stderr[-3000:]
    # Dagster validated the whole file on load; these show the parts that matter were read.
    for shown in ("PostgresRunStorage", "DockerRunLauncher", "granularity: run"):
        assert shown in info.stdout, info.stdout
    assert postgres_url not in info.stdout + info.stderr  # the URL is named, never shown


def test_the_deploy_extra_pins_the_launchers_to_the_dagster_release():
    pins = pinned_versions()
    integrations = pins["dagster-postgres"]
    assert pins["dagster-docker"] == pins["dagster-k8s"] == integrations
