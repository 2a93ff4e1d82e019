"""deploy/docker-compose.yaml with deploy/dagster.yaml and deploy/workspace.yaml.

Validated against the Compose specification by `docker compose config` (or the standalone
`docker-compose config`, Debian package docker-compose) where one is installed: both check the
file against the schema and interpolate it without a Docker daemon. Where neither is, that test
is skipped with the reason, and the structural checks below still run on the parsed YAML.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

import pytest

from mta_pipeline.cli import POSTGRES_STORAGE
from mta_pipeline_tests.deploy.files import (
    CODE_LOCATION_MODULE,
    DEPLOY,
    SECRET_WORDS,
    load_yaml,
    missing_settings,
    repo_instance,
    set_at,
    unknown_settings,
)

COMPOSE = DEPLOY / "docker-compose.yaml"
DOCKER_SOCKET = "/var/run/docker.sock"
# The processes that run the pipeline's code or launch it; the others are Postgres and MinIO.
DAGSTER_SERVICES = ("code-server", "webserver", "daemon")
# Values the file requires (`${NAME:?...}`): dummies, only so that `config` can interpolate.
REQUIRED_VARIABLES = {"POSTGRES_PASSWORD": "x", "MINIO_ROOT_PASSWORD": "y", "DOCKER_GID": "999"}

Files = tuple[dict[str, Any], dict[str, Any], dict[str, Any]]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.partition("=")[::2] for item in env)
    return {name: "" if value is None else str(value) for name, value in env.items()}


def port_flag(command: list[str]) -> int | None:
    for flag in ("-p", "--port"):
        if flag in command:
            return int(command[command.index(flag) + 1])
    return None


def compose_problems(
    compose: dict[str, Any], instance: dict[str, Any], workspace: Any
) -> list[str]:
    """What is wrong with the compose deployment; empty when nothing is."""
    problems: list[str] = []
    services = compose.get("services", {})
    missing = [name for name in DAGSTER_SERVICES if name not in services]
    if missing:
        return [f"services missing: {missing}"]
    daemon = services["daemon"]

    # The instance: Postgres through the variable, as `mta` writes it, and the repo's settings.
    if instance.get("storage") != POSTGRES_STORAGE:
        problems.append(f"dagster.yaml storage should be {POSTGRES_STORAGE}")
    for key, value in repo_instance().items():
        problems += missing_settings(instance.get(key), value, f"dagster.yaml {key}")
    if (instance.get("run_coordinator") or {}).get("class") != "QueuedRunCoordinator":
        problems.append("dagster.yaml should queue runs (QueuedRunCoordinator)")

    launcher = instance.get("run_launcher") or {}
    launcher_config = launcher.get("config") or {}
    if (launcher.get("module"), launcher.get("class")) != ("dagster_docker", "DockerRunLauncher"):
        problems.append("dagster.yaml should launch runs with dagster_docker.DockerRunLauncher")
    passed = [name.partition("=")[0] for name in launcher_config.get("env_vars", [])]
    for name in unknown_settings(passed):
        problems.append(f"the run launcher passes {name}, which config.py does not read")
    for name in [n for n in launcher_config.get("env_vars", []) if "=" not in n]:
        if name not in environment(daemon):
            problems.append(f"the run launcher passes {name}, unset in the daemon (launch fails)")
    for name in (
        "MTA_DAGSTER_POSTGRES_URL",
        "MTA_LAKE_URL",
        "MTA_S3_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "YOUTUBE_API_KEY",
        "GIANTMIDI_ARCHIVE_URL",
    ):
        if name not in passed:
            problems.append(f"the run launcher does not pass {name} to run containers")
    kwargs = launcher_config.get("container_kwargs") or {}
    if kwargs.get("volumes") or kwargs.get("mounts"):
        problems.append("run containers get a volume: runs must be stateless")

    # One network, named, shared by the launcher and every service. Compose prefixes the name of
    # a network without `name:` with the project's, which the launcher cannot know.
    network_names = {
        (spec or {}).get("name", f"<project>_{key}"): key
        for key, spec in (compose.get("networks") or {}).items()
    }
    network = launcher_config.get("network")
    if network not in network_names:
        problems.append(f"the run launcher's network {network!r} is not a compose network")
    else:
        for name, service in services.items():
            if network_names[network] not in (service.get("networks") or []):
                problems.append(f"service {name} is not on the runs' network {network!r}")

    # One image for the code server, the webserver, the daemon and the runs.
    image = services["code-server"].get("image")
    for name in DAGSTER_SERVICES:
        if services[name].get("image") != image:
            problems.append(f"service {name} does not use the code server's image {image}")
    if environment(services["code-server"]).get("DAGSTER_CURRENT_IMAGE") != image:
        problems.append("the code server's DAGSTER_CURRENT_IMAGE is not its image")
    if launcher_config.get("image") != image:
        problems.append("the run launcher's fallback image is not the code server's")
    build = services["code-server"].get("build") or {}
    if (build.get("context"), build.get("dockerfile")) != ("..", "deploy/Dockerfile"):
        problems.append("the code server's image is not built from deploy/Dockerfile")

    for name in DAGSTER_SERVICES:
        env = environment(services[name])
        if not env.get("MTA_LAKE_URL", "").startswith("s3://"):
            problems.append(f"service {name}: MTA_LAKE_URL should be an s3:// URL")
        endpoint = urlparse(env.get("MTA_S3_ENDPOINT_URL", "")).hostname
        if endpoint not in services:
            problems.append(f"service {name}: MTA_S3_ENDPOINT_URL is not a compose service")
        if not env.get("MTA_DAGSTER_POSTGRES_URL", "").startswith("postgresql://"):
            problems.append(f"service {name}: MTA_DAGSTER_POSTGRES_URL should name Postgres")
        if "MTA_DATA_DIR" in env or "DAGSTER_HOME" in env:
            problems.append(f"service {name} overrides the image's MTA_DATA_DIR or DAGSTER_HOME")
        mounts = [
            str(v).split(":")[1] if ":" in str(v) else str(v)
            for v in services[name].get("volumes", [])
        ]
        if [m for m in mounts if m != DOCKER_SOCKET]:
            problems.append(f"service {name} mounts {mounts}: runs must need no shared volume")
    if DOCKER_SOCKET not in [str(v).split(":")[1] for v in daemon.get("volumes", [])]:
        problems.append(f"the daemon does not mount {DOCKER_SOCKET}, so it cannot launch runs")

    for name, service in services.items():
        for variable, value in environment(service).items():
            secret = SECRET_WORDS.search(variable) or variable == "MTA_DAGSTER_POSTGRES_URL"
            if secret and value and "${" not in value:
                problems.append(f"service {name}: {variable} has a literal value")

    # The workspace names the code server's host and port, which serves the code location.
    servers = [entry.get("grpc_server") for entry in (workspace or {}).get("load_from", [])]
    command = services["code-server"].get("command") or []
    if not servers or not servers[0]:
        problems.append("workspace.yaml should load from a grpc_server")
    elif servers[0].get("host") != "code-server" or servers[0].get("port") != port_flag(command):
        problems.append("workspace.yaml does not point at the code server's host and port")
    if CODE_LOCATION_MODULE not in command:
        problems.append(f"the code server does not load {CODE_LOCATION_MODULE}")
    for name in ("webserver", "daemon"):
        service_command = services[name].get("command") or []
        if "workspace.yaml" not in service_command:
            problems.append(f"service {name} does not read workspace.yaml")
    return problems


def deploy_files() -> Files:
    return (
        load_yaml(COMPOSE),
        load_yaml(DEPLOY / "dagster.yaml"),
        load_yaml(DEPLOY / "workspace.yaml"),
    )


def test_compose_deployment_passes_every_check():
    assert compose_problems(*deploy_files()) == []


def _set(path: str, value: Any, file: int = 0) -> Callable[[Files], None]:
    """A mutation: set the value at a dotted path of one of the three files."""

    def mutate(files: Files) -> None:
        set_at(files[file], path, value)

    return mutate


def _drop_env(service: str, name: str) -> Callable[[Files], None]:
    def mutate(files: Files) -> None:
        files[0]["services"][service]["environment"] = {
            k: v for k, v in files[0]["services"][service]["environment"].items() if k != name
        }

    return mutate


INSTANCE, WORKSPACE = 1, 2
LAUNCHER = "run_launcher.config"
BROKEN = {
    "sqlite instance": (_set("storage", {"sqlite": {}}, INSTANCE), "storage"),
    "literal postgres url": (
        _set("storage.postgres.postgres_url", "postgresql://u:p@h/d", INSTANCE),
        "storage",
    ),
    "pools dropped": (_set("concurrency.pools.granularity", "op", INSTANCE), "granularity"),
    "retries dropped": (_set("run_retries", None, INSTANCE), "run_retries"),
    "logs dropped": (_set("python_logs", {}, INSTANCE), "python_logs"),
    "no queue": (_set("run_coordinator.class", "DefaultRunCoordinator", INSTANCE), "Queued"),
    "local launcher": (_set("run_launcher.class", "DefaultRunLauncher", INSTANCE), "Docker"),
    "unknown env var": (_set(f"{LAUNCHER}.env_vars.0", "MTA_LAKE_URI", INSTANCE), "MTA_LAKE_URI"),
    "unset in daemon": (_drop_env("daemon", "MTA_REMOVALS"), "unset in the daemon"),
    "api key not passed": (_set(f"{LAUNCHER}.env_vars.11", "MTA_DEMO", INSTANCE), "YOUTUBE_API"),
    "run volume": (
        _set(f"{LAUNCHER}.container_kwargs", {"volumes": ["/srv:/data"]}, INSTANCE),
        "stateless",
    ),
    "other network": (_set(f"{LAUNCHER}.network", "bridge", INSTANCE), "network"),
    "prefixed network": (_set("networks.mta", {}), "not a compose network"),
    "service off network": (_set("services.minio.networks", []), "not on the runs' network"),
    "other run image": (_set(f"{LAUNCHER}.image", "other:1", INSTANCE), "fallback image"),
    "other image": (_set("services.daemon.image", "other:1"), "image"),
    "local lake": (_set("services.daemon.environment.MTA_LAKE_URL", "/data/lake"), "s3://"),
    "aws endpoint": (_set("services.webserver.environment.MTA_S3_ENDPOINT_URL", ""), "ENDPOINT"),
    "data volume": (_set("services.code-server.volumes", ["data:/tmp/mta-cache"]), "volume"),
    "data dir set": (_set("services.daemon.environment.MTA_DATA_DIR", "/data"), "MTA_DATA_DIR"),
    "no docker socket": (_set("services.daemon.volumes", []), "docker.sock"),
    "literal secret": (_set("services.minio.environment.MINIO_ROOT_PASSWORD", "pw"), "literal"),
    "literal key": (_set("services.daemon.environment.YOUTUBE_API_KEY", "AIza1"), "literal"),
    "wrong port": (_set("load_from.0.grpc_server.port", 4001, WORKSPACE), "host and port"),
    "wrong host": (_set("load_from.0.grpc_server.host", "localhost", WORKSPACE), "host and port"),
    "other module": (_set("services.code-server.command.4", "other.defs"), "does not load"),
    "no workspace": (_set("services.daemon.command", ["dagster-daemon", "run"]), "workspace"),
}


@pytest.mark.parametrize("case", BROKEN)
def test_each_compose_check_fails_on_a_broken_copy(case: str):
    mutate, expected = BROKEN[case]
    files = copy.deepcopy(deploy_files())
    mutate(files)
    problems = compose_problems(*files)
    assert any(expected in problem for problem in problems), problems


def compose_command() -> list[str] | None:
    """`docker compose` (the CLI plugin) or `docker-compose`, whichever is installed."""
    if shutil.which("docker"):
        plugin = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=60)
        if plugin.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def run_config(command: list[str], path: os.PathLike[str] | str) -> subprocess.CompletedProcess:
    env = {**os.environ, **REQUIRED_VARIABLES}
    return subprocess.run(
        [*command, "-f", str(path), "config", "-q"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_compose_file_follows_the_compose_specification(tmp_path):
    command = compose_command()
    if command is None:
        pytest.skip(
            "Compose schema validation skipped: neither `docker compose` nor `docker-compose` "
            "is installed (Debian: apt-get install docker-compose)"
        )
    checked = run_config(command, COMPOSE)
    assert checked.returncode == 0, checked.stderr
    # The same command refuses a key the specification does not know.
    broken = tmp_path / "docker-compose.yaml"
    broken.write_text(
        COMPOSE.read_text(encoding="utf-8").replace("    group_add:", "    group_addd:"),
        encoding="utf-8",
    )
    assert run_config(command, broken).returncode != 0
