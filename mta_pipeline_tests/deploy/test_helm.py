"""deploy/helm/values.yaml for the official Dagster Helm chart (dagster/dagster).

No JSON schema of the chart is available offline here: the chart's values.schema.json ships in
the chart package, which is fetched from the chart repository, not from a package registry; and
no `helm` binary is installed to template it. So the values are checked structurally against the
key names of the chart's values (version 1.13.27): run launcher, user deployments, the instance
settings the chart renders into dagster.yaml, and where secrets and settings come from.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import pytest

from mta_pipeline_tests.deploy.files import (
    CODE_LOCATION_MODULE,
    DEPLOY,
    SECRET_SETTINGS,
    load_yaml,
    pinned_versions,
    repo_instance,
    set_at,
    unknown_settings,
)

VALUES = DEPLOY / "helm" / "values.yaml"
USER_DEPLOYMENTS = "dagster-user-deployments"


def deployment_env_names(deployment: dict[str, Any]) -> list[str]:
    env = deployment.get("env") or {}
    return [item["name"] for item in env] if isinstance(env, list) else list(env)


def secret_refs_problems(refs: Any, where: str) -> list[str]:
    """envSecrets / envConfigMaps: a list of {name: <secret name>}, nothing else."""
    if not refs or not all(isinstance(r, dict) and set(r) == {"name"} for r in refs):
        return [f"{where} should list secrets by name only ([{{name: ...}}])"]
    return []


def helm_problems(values: dict[str, Any], header: str) -> list[str]:
    """What is wrong with the chart values; empty when nothing is."""
    problems: list[str] = []
    dagster_version = pinned_versions()["dagster"]
    if f"--version {dagster_version}" not in header:
        problems.append(f"the install command should pin chart version {dagster_version}")

    launcher = values.get("runLauncher") or {}
    k8s = (launcher.get("config") or {}).get("k8sRunLauncher") or {}
    if launcher.get("type") != "K8sRunLauncher" or not k8s:
        problems.append("runLauncher should be K8sRunLauncher with config.k8sRunLauncher")
    problems += secret_refs_problems(k8s.get("envSecrets"), "k8sRunLauncher.envSecrets")
    launcher_env = dict(item.partition("=")[::2] for item in k8s.get("envVars", []))
    if k8s.get("volumes") or k8s.get("volumeMounts"):
        problems.append("run pods get a volume: runs must be stateless")

    user = values.get(USER_DEPLOYMENTS) or {}
    deployments = user.get("deployments") or []
    if not user.get("enabled") or not deployments:
        problems.append(f"{USER_DEPLOYMENTS} should be enabled with one deployment")
    images = set()
    for deployment in deployments:
        name = deployment.get("name")
        image = deployment.get("image") or {}
        if not isinstance(image.get("repository"), str) or not isinstance(image.get("tag"), str):
            problems.append(f"deployment {name}: image needs a repository and a tag (a string)")
        images.add((image.get("repository"), image.get("tag")))
        if deployment.get("dagsterApiGrpcArgs") != ["-m", CODE_LOCATION_MODULE]:
            problems.append(f"deployment {name} should serve `-m {CODE_LOCATION_MODULE}`")
        if not (deployment.get("includeConfigInLaunchedRuns") or {}).get("enabled"):
            problems.append(f"deployment {name}: runs would not get its image, env and secrets")
        problems += secret_refs_problems(deployment.get("envSecrets"), f"{name}.envSecrets")
        names = deployment_env_names(deployment)
        for unknown in unknown_settings(names):
            problems.append(f"deployment {name} sets {unknown}, which config.py does not read")
        env = deployment.get("env") or {}
        if not str(env.get("MTA_LAKE_URL", "")).startswith("s3://"):
            problems.append(f"deployment {name}: MTA_LAKE_URL should be an s3:// URL")
        for secret in SECRET_SETTINGS.intersection(names):
            problems.append(f"deployment {name} sets {secret} inline; use envSecrets")
        if deployment.get("volumes") or deployment.get("volumeMounts"):
            problems.append(f"deployment {name} mounts a volume: runs must be stateless")
    if len(images) > 1:
        problems.append(f"the user deployments use different images: {sorted(images)}")
    for unknown in unknown_settings(list(launcher_env)):
        problems.append(f"k8sRunLauncher.envVars sets {unknown}, which config.py does not read")
    for secret in SECRET_SETTINGS.intersection(launcher_env):
        problems.append(f"k8sRunLauncher.envVars sets {secret} inline; use envSecrets")

    for component in ("dagsterWebserver", "dagsterDaemon"):
        tag = ((values.get(component) or {}).get("image") or {}).get("tag")
        if tag != dagster_version:
            problems.append(f"{component}.image.tag is {tag!r}, not the dagster pin")

    # The database password comes from a secret, never from the values.
    postgresql = values.get("postgresql") or {}
    if "postgresqlPassword" in postgresql or values.get("generatePostgresqlPasswordSecret"):
        problems.append("the Postgres password should come from global.postgresqlSecretName")
    if not (values.get("global") or {}).get("postgresqlSecretName"):
        problems.append("global.postgresqlSecretName should name the Postgres password secret")

    # The instance the chart renders keeps the repo's dagster.yaml settings.
    repo = repo_instance()
    daemon = values.get("dagsterDaemon") or {}
    coordinator = daemon.get("runCoordinator") or {}
    if not coordinator.get("enabled") or coordinator.get("type") != "QueuedRunCoordinator":
        problems.append("dagsterDaemon.runCoordinator should be an enabled QueuedRunCoordinator")
    concurrency = values.get("concurrency") or {}
    pools = concurrency.get("pools") or {}
    if not concurrency.get("enabled") or (pools.get("defaultLimit"), pools.get("granularity")) != (
        repo["concurrency"]["pools"]["default_limit"],
        repo["concurrency"]["pools"]["granularity"],
    ):
        problems.append("concurrency.pools should match the repo's dagster.yaml pools")
    retries = daemon.get("runRetries") or {}
    expected_retries = repo["run_retries"]
    if (
        retries.get("enabled"),
        retries.get("maxRetries"),
        retries.get("retryOnAssetOrOpFailure"),
    ) != (
        expected_retries["enabled"],
        expected_retries["max_retries"],
        expected_retries["retry_on_asset_or_op_failure"],
    ):
        problems.append("dagsterDaemon.runRetries should match the repo's run_retries")
    loggers = (values.get("pythonLogs") or {}).get("managedPythonLoggers")
    if loggers != repo["python_logs"]["managed_python_loggers"]:
        problems.append("pythonLogs.managedPythonLoggers should match the repo's python_logs")
    if (values.get("telemetry") or {}).get("enabled") is not repo["telemetry"]["enabled"]:
        problems.append("telemetry.enabled should match the repo's dagster.yaml")
    return problems


def header(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if line.startswith("#"))


def test_helm_values_pass_every_check():
    text = VALUES.read_text(encoding="utf-8")
    assert helm_problems(load_yaml(VALUES), header(text)) == []


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(values: dict[str, Any]) -> None:
        set_at(values, path, value)

    return mutate


DEPLOYMENT = f"{USER_DEPLOYMENTS}.deployments.0"
K8S = "runLauncher.config.k8sRunLauncher"
BROKEN = {
    "docker launcher": (_set("runLauncher.type", "CeleryK8sRunLauncher"), "K8sRunLauncher"),
    "secret as string": (_set(f"{K8S}.envSecrets", ["mta-secrets"]), "by name only"),
    "secret with value": (
        _set(f"{K8S}.envSecrets", [{"name": "s", "YOUTUBE_API_KEY": "AIza"}]),
        "by name only",
    ),
    "inline key": (_set(f"{DEPLOYMENT}.env.YOUTUBE_API_KEY", "AIza1"), "inline"),
    "inline aws": (_set(f"{K8S}.envVars", ["AWS_SECRET_ACCESS_KEY=abc"]), "inline"),
    "unknown env": (_set(f"{DEPLOYMENT}.env.MTA_LAKE", "s3://x"), "MTA_LAKE"),
    "unknown launcher env": (_set(f"{K8S}.envVars", ["LAKE_URL=s3://x"]), "LAKE_URL"),
    "local lake": (_set(f"{DEPLOYMENT}.env.MTA_LAKE_URL", "/data/lake"), "s3://"),
    "run volume": (_set(f"{K8S}.volumes", [{"name": "data"}]), "stateless"),
    "deployment volume": (_set(f"{DEPLOYMENT}.volumes", [{"name": "data"}]), "stateless"),
    "other module": (_set(f"{DEPLOYMENT}.dagsterApiGrpcArgs", ["-m", "other"]), "serve"),
    "a file target": (_set(f"{DEPLOYMENT}.dagsterApiGrpcArgs", ["-f", "defs.py"]), "serve"),
    "numeric tag": (_set(f"{DEPLOYMENT}.image.tag", 0.1), "a string"),
    "no repository": (_set(f"{DEPLOYMENT}.image", {"tag": "1"}), "repository"),
    "runs without config": (_set(f"{DEPLOYMENT}.includeConfigInLaunchedRuns", None), "runs"),
    "disabled": (_set(f"{USER_DEPLOYMENTS}.enabled", False), "enabled"),
    "other webserver": (_set("dagsterWebserver.image.tag", "1.12.0"), "dagster pin"),
    "other daemon": (_set("dagsterDaemon.image.tag", "latest"), "dagster pin"),
    "password": (_set("postgresql.postgresqlPassword", "pw"), "password"),
    "generated password": (_set("generatePostgresqlPasswordSecret", True), "password"),
    "no secret name": (_set("global.postgresqlSecretName", ""), "postgresqlSecretName"),
    "no queue": (_set("dagsterDaemon.runCoordinator.enabled", False), "QueuedRunCoordinator"),
    "op pools": (_set("concurrency.pools.granularity", "op"), "pools"),
    "pools off": (_set("concurrency.enabled", False), "pools"),
    "retries": (_set("dagsterDaemon.runRetries.retryOnAssetOrOpFailure", True), "runRetries"),
    "loggers": (_set("pythonLogs.managedPythonLoggers", []), "managedPythonLoggers"),
    "telemetry": (_set("telemetry.enabled", True), "telemetry"),
}


@pytest.mark.parametrize("case", BROKEN)
def test_each_helm_check_fails_on_a_broken_copy(case: str):
    mutate, expected = BROKEN[case]
    values = copy.deepcopy(load_yaml(VALUES))
    mutate(values)
    problems = helm_problems(values, header(VALUES.read_text(encoding="utf-8")))
    assert any(expected in problem for problem in problems), problems


def test_the_chart_version_check_fails_on_another_version():
    text = re.sub(r"--version \S+", "--version 1.12.0", VALUES.read_text(encoding="utf-8"))
    assert any("chart version" in p for p in helm_problems(load_yaml(VALUES), header(text)))
