"""Postgres instance storage: with MTA_DAGSTER_POSTGRES_URL set, `mta` keeps runs, event logs and
schedules in that database, and the URL never lands in $DAGSTER_HOME/dagster.yaml."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import psycopg2
import pytest
import yaml

from mta_pipeline import cli, config
from mta_pipeline.demo.corpus import DemoCorpus, generate_corpus
from mta_pipeline_tests.postgres_server import postgres_server, postgres_url  # noqa: F401

MTA = str(Path(sys.executable).with_name("mta"))
SHARDS = ("00", "01")
REPO_YAML = Path(cli.__file__).resolve().parent.parent / "dagster.yaml"


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> DemoCorpus:
    return generate_corpus(tmp_path_factory.mktemp("pg-corpus"), count=20)


def mta_environment(data_dir: Path, corpus: DemoCorpus, url: str) -> dict[str, str]:
    """The shell's environment without any project setting, pointed at `data_dir` and `url`.

    DAGSTER_HOME is left unset so `mta` writes its dagster.yaml to $MTA_DATA_DIR/dagster.
    """
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("MTA_", "GIANTMIDI_", "YOUTUBE_")) and name != config.DAGSTER_HOME
    }
    env.update(
        {
            config.MTA_DATA_DIR: str(data_dir),
            config.GIANTMIDI_ARCHIVE_URL: str(corpus.archive_path),
            config.GIANTMIDI_METADATA_URL: str(corpus.metadata_path),
            config.MTA_FEATURE_WORKERS: "2",
            config.MTA_DAGSTER_POSTGRES_URL: url,
        }
    )
    return env


def test_mta_materialize_keeps_runs_events_and_schedules_in_postgres(
    postgres_url: str,  # noqa: F811 (fixture)
    small_corpus: DemoCorpus,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data_dir = tmp_path / "data"
    args = ["materialize", "--select", "group:giantmidi"]
    for shard in SHARDS:
        args += ["--shard", shard]
    env = mta_environment(data_dir, small_corpus, postgres_url)
    # cwd: a `.env` that `make demo` left in the repo must not reach this `mta`.
    got = subprocess.run(
        [MTA, *args], env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert got.returncode == 0, got.stderr
    assert got.stdout.count(" ok in ") == 1 + len(SHARDS), got.stdout

    home = data_dir / config.DAGSTER_DIR
    written = (home / "dagster.yaml").read_text()
    assert postgres_url not in written and "127.0.0.1" not in written
    assert yaml.safe_load(written)["storage"] == {
        "postgres": {"postgres_url": {"env": config.MTA_DAGSTER_POSTGRES_URL}}
    }
    assert not (home / "history" / "runs.db").exists(), "runs went to SQLite"

    monkeypatch.setenv(config.DAGSTER_HOME, str(home))
    monkeypatch.setenv(config.MTA_DAGSTER_POSTGRES_URL, postgres_url)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for storage in (
            instance.run_storage,
            instance.event_log_storage,
            instance.schedule_storage,
        ):
            assert "Postgres" in type(storage).__name__
        runs = instance.get_runs()
        assert len(runs) == 1 + len(SHARDS)
        assert {run.status for run in runs} == {dg.DagsterRunStatus.SUCCESS}
        assert {run.tags.get("dagster/partition") for run in runs} == {None, *SHARDS}
        for run in runs:
            assert instance.all_logs(run.run_id), f"no event log for run {run.run_id}"
        assert instance.get_materialized_partitions(dg.AssetKey("midi_files")) == set(SHARDS)
        assert instance.get_materialized_partitions(dg.AssetKey("midi_features")) == set(SHARDS)
        assert instance.get_latest_materialization_event(dg.AssetKey("giantmidi_archive"))
        assert list(instance.all_instigator_state()) == []
        run_ids = {run.run_id for run in runs}

    # The rows are in that database, not only visible through Dagster.
    with psycopg2.connect(postgres_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT run_id FROM runs")
        assert {row[0] for row in cur.fetchall()} == run_ids
        cur.execute(
            "SELECT DISTINCT partition FROM event_logs "
            "WHERE dagster_event_type = 'ASSET_MATERIALIZATION' AND asset_key LIKE %s",
            ('%"midi_files"%',),
        )
        assert {row[0] for row in cur.fetchall()} == set(SHARDS)
    conn.close()


def test_without_the_url_dagster_yaml_is_the_repo_file(tmp_path, monkeypatch):
    monkeypatch.setenv(config.MTA_DATA_DIR, str(tmp_path))
    monkeypatch.setenv(config.DAGSTER_HOME, "")
    monkeypatch.delenv(config.MTA_DAGSTER_POSTGRES_URL, raising=False)
    home = cli._ensure_dagster_home()
    assert (home / "dagster.yaml").read_text() == REPO_YAML.read_text()


def test_with_the_url_dagster_yaml_keeps_the_repo_settings(tmp_path, monkeypatch):
    monkeypatch.setenv(config.MTA_DATA_DIR, str(tmp_path))
    monkeypatch.setenv(config.DAGSTER_HOME, "")
    monkeypatch.setenv(config.MTA_DAGSTER_POSTGRES_URL, "postgresql://u:secret@db:5432/dagster")
    home = cli._ensure_dagster_home()
    written = (home / "dagster.yaml").read_text()
    assert "secret" not in written
    settings = yaml.safe_load(written)
    assert {k: v for k, v in settings.items() if k != "storage"} == yaml.safe_load(
        REPO_YAML.read_text()
    )
    assert settings["storage"]["postgres"]["postgres_url"] == {"env": "MTA_DAGSTER_POSTGRES_URL"}
    assert os.environ[config.DAGSTER_HOME] == str(home)


def test_an_own_dagster_home_without_storage_is_refused_not_ignored(tmp_path, monkeypatch):
    monkeypatch.setenv(config.DAGSTER_HOME, str(tmp_path))
    monkeypatch.setenv(config.MTA_DAGSTER_POSTGRES_URL, "postgresql://u:secret@db:5432/dagster")
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with pytest.raises(config.ConfigError, match="has no storage section") as err:
        cli._ensure_dagster_home()
    assert "secret" not in str(err.value)
    (tmp_path / "dagster.yaml").write_text(
        "storage:\n  postgres:\n    postgres_url:\n      env: MTA_DAGSTER_POSTGRES_URL\n"
    )
    assert cli._ensure_dagster_home() == tmp_path
    assert "storage" in (tmp_path / "dagster.yaml").read_text()
