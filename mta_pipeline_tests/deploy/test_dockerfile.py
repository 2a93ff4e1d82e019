"""deploy/Dockerfile: parsed and checked; built only where a Docker daemon is reachable.

The build itself needs a daemon and the base image from a registry; where either is missing the
build test is skipped with the reason, and the parsed checks below still run. What the image's
RUN installs is tested for real by test_install.py, which runs the same deploy/install.sh.
"""

from __future__ import annotations

import fnmatch
import json
import shlex
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from mta_pipeline_tests.deploy.files import DEPLOY, REPO, SECRET_WORDS

DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = DEPLOY / "Dockerfile.dockerignore"
BASE_IMAGE = "python:3.11"
# Never in the build context: secrets (.env), the developer's venv and data, the git history.
MUST_IGNORE = (".env", ".env.mta-demo", "deploy/.env", ".venv", "data", ".git")
WEBSERVER_PORT = "3000"

Instruction = tuple[str, str]


def parse_dockerfile(text: str) -> list[Instruction]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def env_settings(instructions: list[Instruction]) -> dict[str, str]:
    """The ENV and ARG names the image sets, with their values (ARG without default: '')."""
    settings: dict[str, str] = {}
    for keyword, arguments in instructions:
        if keyword == "ENV":
            for pair in shlex.split(arguments):
                name, _, value = pair.partition("=")
                settings[name] = value
        elif keyword == "ARG":
            name, _, value = arguments.partition("=")
            settings[name] = value
    return settings


def exec_form(arguments: str) -> list[str]:
    return json.loads(arguments) if arguments.startswith("[") else shlex.split(arguments)


def is_ignored(path: str, patterns: list[str]) -> bool:
    """Whether a .dockerignore-style pattern list leaves `path` out of the build context."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(
        fnmatch.fnmatchcase(prefix, pattern.removeprefix("**/"))
        or fnmatch.fnmatchcase(prefix.rsplit("/", 1)[-1], pattern.removeprefix("**/"))
        if pattern.startswith("**/")
        else fnmatch.fnmatchcase(prefix, pattern)
        for prefix in prefixes
        for pattern in patterns
    )


def ignore_patterns(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def dockerfile_problems(text: str, dockerignore: str) -> list[str]:
    """What is wrong with the Dockerfile (and its .dockerignore); empty when nothing is."""
    instructions = parse_dockerfile(text)
    keywords = [keyword for keyword, _ in instructions]
    problems: list[str] = []

    bases = [arguments.split()[0] for keyword, arguments in instructions if keyword == "FROM"]
    if not bases or not bases[-1].startswith(BASE_IMAGE):
        problems.append(f"the image should be built FROM {BASE_IMAGE}*, not {bases}")

    # The source is copied in, then deploy/install.sh from that copy installs it.
    copies = [exec_form(a) for k, a in instructions if k == "COPY" and exec_form(a)[0] == "."]
    install_runs = [
        i for i, (k, a) in enumerate(instructions) if k == "RUN" and "deploy/install.sh" in a
    ]
    if not install_runs:
        problems.append("no RUN executes deploy/install.sh")
    elif not copies or not any(
        f"{c[-1].rstrip('/')}/deploy/install.sh" in instructions[install_runs[0]][1] for c in copies
    ):
        problems.append("deploy/install.sh is not run from the folder `COPY . <folder>` fills")

    # The script installs into a venv whose bin folder is on PATH: the entry points resolve.
    settings = env_settings(instructions)
    if install_runs:
        installed_python = shlex.split(
            instructions[install_runs[0]][1].split("deploy/install.sh")[1]
        )
        bin_dir = str(Path(installed_python[0]).parent) if installed_python else None
        if bin_dir is None or bin_dir not in settings.get("PATH", "").split(":"):
            problems.append(f"the install's bin folder ({bin_dir}) is not on the image's PATH")

    users = [arguments for keyword, arguments in instructions if keyword == "USER"]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problems.append("the image should end with a non-root USER")
    elif install_runs and keywords.index("USER") < install_runs[0]:
        problems.append("USER should come after the install, which needs root")

    for name in settings:
        if SECRET_WORDS.search(name):
            problems.append(f"the image bakes in a secret-looking setting {name}")
    if not settings.get("MTA_DATA_DIR", "").startswith("/tmp/"):
        problems.append("MTA_DATA_DIR should default to a cache under /tmp (runs are stateless)")
    home = settings.get("DAGSTER_HOME")
    instance_copies = [exec_form(a) for k, a in instructions if k == "COPY"]
    if not home or ["deploy/dagster.yaml", f"{home}/dagster.yaml"] not in instance_copies:
        problems.append("deploy/dagster.yaml should be copied to $DAGSTER_HOME/dagster.yaml")

    exposed = [port for k, a in instructions if k == "EXPOSE" for port in a.split()]
    if WEBSERVER_PORT not in exposed:
        problems.append(f"the webserver's port {WEBSERVER_PORT} is not EXPOSEd")
    commands = [exec_form(a) for k, a in instructions if k in ("CMD", "ENTRYPOINT")]
    if not commands or "mta_pipeline.definitions" not in commands[-1]:
        problems.append("the default command should serve mta_pipeline.definitions")

    patterns = ignore_patterns(dockerignore)
    for path in MUST_IGNORE:
        if not is_ignored(path, patterns):
            problems.append(f"{path} is not excluded from the build context")
    for copied in [c[0] for c in instance_copies if c[0] != "."]:
        if is_ignored(copied, patterns) or not (REPO / copied).exists():
            problems.append(f"COPY {copied}: not in the build context")
    for needed in (
        "pyproject.toml",
        "README.md",
        "mta_pipeline/definitions.py",
        "deploy/install.sh",
    ):
        if is_ignored(needed, patterns):
            problems.append(f"{needed} is excluded from the build context, install.sh needs it")
    return problems


def test_dockerfile_and_its_build_context_pass_every_check():
    problems = dockerfile_problems(
        DOCKERFILE.read_text(encoding="utf-8"), DOCKERIGNORE.read_text(encoding="utf-8")
    )
    assert problems == []


def _replace(old: str, new: str) -> Callable[[str], str]:
    def mutate(text: str) -> str:
        assert old in text, f"the mutation no longer applies: {old!r} is gone"
        return text.replace(old, new)

    return mutate


BROKEN_DOCKERFILES = {
    "another base": (_replace("FROM python:3.11-slim", "FROM python:3.12-slim"), "FROM"),
    "no install.sh": (_replace("deploy/install.sh /opt", "deploy/other.sh /opt"), "install.sh"),
    "install from elsewhere": (_replace("COPY . /tmp/mta-pipeline", "COPY . /src"), "COPY ."),
    "venv not on PATH": (_replace("PATH=/opt/venv/bin:$PATH", "PATH=$PATH"), "PATH"),
    "root user": (_replace("USER mta", "USER root"), "non-root"),
    "no user": (_replace("USER mta", ""), "non-root"),
    "baked secret": (_replace("ENV PATH=", "ENV YOUTUBE_API_KEY=abc PATH="), "secret"),
    "data on a volume": (_replace("MTA_DATA_DIR=/tmp/mta-cache", "MTA_DATA_DIR=/data"), "/tmp"),
    "no instance": (_replace("COPY deploy/dagster.yaml", "COPY dagster.yaml"), "DAGSTER_HOME"),
    "no port": (_replace("EXPOSE 3000 4000", "EXPOSE 4000"), "3000"),
    "no code location": (_replace('"mta_pipeline.definitions"', '"x"'), "definitions"),
}
BROKEN_DOCKERIGNORES = {
    ".env baked in": (
        lambda text: "\n".join(line for line in text.splitlines() if ".env" not in line),
        ".env is not excluded",
    ),
    "venv in context": (_replace(".venv\n", ""), ".venv"),
    "source left out": (lambda text: text + "mta_pipeline\n", "mta_pipeline/definitions.py"),
}


@pytest.mark.parametrize("case", BROKEN_DOCKERFILES)
def test_each_dockerfile_check_fails_on_a_broken_copy(case: str):
    mutate, expected = BROKEN_DOCKERFILES[case]
    text = mutate(DOCKERFILE.read_text(encoding="utf-8"))
    problems = dockerfile_problems(text, DOCKERIGNORE.read_text(encoding="utf-8"))
    assert any(expected in problem for problem in problems), problems


@pytest.mark.parametrize("case", BROKEN_DOCKERIGNORES)
def test_each_build_context_check_fails_on_a_broken_copy(case: str):
    mutate, expected = BROKEN_DOCKERIGNORES[case]
    text = mutate(DOCKERIGNORE.read_text(encoding="utf-8"))
    problems = dockerfile_problems(DOCKERFILE.read_text(encoding="utf-8"), text)
    assert any(expected in problem for problem in problems), problems


def docker_daemon_missing() -> str | None:
    """Why an image cannot be built here, or None when a Docker daemon answers."""
    if shutil.which("docker") is None:
        return "no docker CLI on PATH"
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=60)
    if info.returncode != 0:
        return "no Docker daemon reachable (`docker info` failed)"
    return None


def test_the_image_builds_and_loads_the_code_location():
    reason = docker_daemon_missing()
    if reason:
        pytest.skip(f"image build skipped: {reason}")
    tag = "mta-pipeline:test"
    subprocess.run(
        ["docker", "build", "-f", str(DOCKERFILE), "-t", tag, str(REPO)], check=True, timeout=1800
    )
    listed = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            tag,
            "dagster",
            "asset",
            "list",
            "-m",
            "mta_pipeline.definitions",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert "midi_features" in listed.stdout
    user = subprocess.run(
        ["docker", "run", "--rm", tag, "id", "-u"], capture_output=True, text=True, check=True
    )
    assert user.stdout.strip() != "0"
