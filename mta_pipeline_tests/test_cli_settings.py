"""Settings that persist: the `.env` file `mta demo` writes and every `mta` command reads, demo
mode without `mta demo` running, an absolute DAGSTER_HOME, and one-line user errors."""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from dotenv import dotenv_values

from mta_pipeline import cli, config, dotenv_file
from mta_pipeline.demo.corpus import METADATA_NAME

MTA = str(Path(sys.executable).with_name("mta"))

# Values a naive writer gets wrong: spaces (a trailing one too), a comment sign after a space,
# quotes, a backslash, non-ASCII.
AWKWARD = {
    config.MTA_DATA_DIR: '/srv/my data #1/it\'s "here"\\there=é ',
    config.DAGSTER_HOME: "/srv/my data/dagster",
    config.YOUTUBE_API_KEY: config.DEMO_API_KEY,
}


def mta(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([MTA, *args], capture_output=True, text=True, timeout=300, cwd=cwd)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the .env writer and reader ---------------------------------------------------------------


def test_demo_settings_are_written_with_the_marker_and_read_back_exactly(tmp_path):
    saved = dotenv_file.save_demo_settings(tmp_path, AWKWARD)
    assert saved == dotenv_file.SavedSettings(tmp_path / ".env", beside_own=False)
    assert saved.path.read_text(encoding="utf-8").splitlines()[0] == dotenv_file.MARKER
    assert dotenv_values(saved.path) == AWKWARD  # what python-dotenv, hence Dagster, reads
    assert sorted(p.name for p in tmp_path.iterdir()) == [".env"]  # no temporary file left


def test_a_demo_env_is_rewritten_but_a_users_own_is_never_modified(tmp_path):
    dotenv_file.save_demo_settings(tmp_path, {"A": "1"})
    assert dotenv_file.save_demo_settings(tmp_path, {"A": "2"}).path == tmp_path / ".env"
    assert dotenv_values(tmp_path / ".env") == {"A": "2"}

    own = b"# mine\nYOUTUBE_API_KEY=AIza-my-real-key\n"
    (tmp_path / ".env").write_bytes(own)
    saved = dotenv_file.save_demo_settings(tmp_path, AWKWARD)
    assert saved == dotenv_file.SavedSettings(tmp_path / ".env.mta-demo", beside_own=True)
    assert (tmp_path / ".env").read_bytes() == own
    assert dotenv_values(saved.path) == AWKWARD


def test_the_demo_says_in_one_line_where_its_settings_went_beside_a_users_env(tmp_path, capsys):
    (tmp_path / ".env").write_text("MTA_DATA_DIR=/mine\n")
    assert cli.save_demo_settings(tmp_path, AWKWARD) == tmp_path / ".env.mta-demo"
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert "left alone" in out and str(tmp_path / ".env.mta-demo") in out
    assert (tmp_path / ".env").read_text() == "MTA_DATA_DIR=/mine\n"


def test_a_value_that_dotenv_would_expand_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"\$\{"):
        dotenv_file.save_demo_settings(tmp_path, {config.MTA_DATA_DIR: "/srv/${HOME}/data"})


def test_loading_fills_only_what_the_environment_lacks(tmp_path, monkeypatch):
    monkeypatch.setenv("MTA_TEST_FROM_ENV", "environment")
    monkeypatch.setenv("MTA_TEST_EMPTY", "")
    monkeypatch.delenv("MTA_TEST_FROM_FILE", raising=False)
    (tmp_path / ".env").write_text(
        "MTA_TEST_FROM_ENV=file\nMTA_TEST_EMPTY=file\nMTA_TEST_FROM_FILE='a b'\n"
    )
    loaded = dotenv_file.load(tmp_path)
    assert loaded == {"MTA_TEST_EMPTY": "file", "MTA_TEST_FROM_FILE": "a b"}
    assert os.environ["MTA_TEST_FROM_ENV"] == "environment"
    assert os.environ["MTA_TEST_FROM_FILE"] == "a b"


# -- what `mta demo` writes, and DAGSTER_HOME ---------------------------------------------------


def test_demo_settings_are_absolute_and_name_the_demo(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(config.MTA_DATA_DIR, "data")
    monkeypatch.delenv(config.DAGSTER_HOME, raising=False)
    demo = Path("data", config.DEMO_DIR)
    settings = cli.demo_settings(demo / "a.zip", demo / "m.csv", "http://127.0.0.1:8765")
    data = tmp_path / "data"
    assert settings == {
        config.MTA_DATA_DIR: str(data),
        config.DAGSTER_HOME: str(data / config.DAGSTER_DIR),
        config.GIANTMIDI_ARCHIVE_URL: str(data / config.DEMO_DIR / "a.zip"),
        config.GIANTMIDI_METADATA_URL: str(data / config.DEMO_DIR / "m.csv"),
        config.YOUTUBE_API_ENDPOINT: "http://127.0.0.1:8765",
        config.YOUTUBE_API_KEY: config.DEMO_API_KEY,
        config.MTA_DEMO: "1",
    }


def test_a_relative_dagster_home_is_taken_from_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(config.DAGSTER_HOME, "state/dagster")
    monkeypatch.delenv(config.MTA_DAGSTER_POSTGRES_URL, raising=False)
    assert cli._ensure_dagster_home() == tmp_path / "state" / "dagster"
    assert os.environ[config.DAGSTER_HOME] == str(tmp_path / "state" / "dagster")


def test_mta_runs_with_a_relative_dagster_home(data_env, tmp_path, monkeypatch):
    """Dagster refuses a relative DAGSTER_HOME with a traceback; `mta` resolves it first."""
    monkeypatch.setenv(config.DAGSTER_HOME, "state/dagster")
    got = mta("materialize", "--shard", "99", cwd=tmp_path)
    assert got.returncode == 2, got.stderr
    assert "mta materialize: unknown shard(s) ['99']" in got.stderr
    assert "Traceback" not in got.stderr
    assert (tmp_path / "state" / "dagster").is_dir()


# -- `mta` reads .env ---------------------------------------------------------------------------


def test_mta_reads_env_from_the_current_folder(data_env, tmp_path, monkeypatch):
    monkeypatch.delenv(config.MTA_DATA_DIR)
    elsewhere = tmp_path / "from dot env"
    dotenv_file.save_demo_settings(tmp_path, {config.MTA_DATA_DIR: str(elsewhere)})
    got = mta("query", "SELECT 1", cwd=tmp_path)
    assert got.returncode == 2
    assert got.stderr == (
        f"mta query: the lake at {elsewhere / config.LAKE_DIR} holds no tables yet; "
        "run `mta demo` or `mta materialize` first.\n"
    )


def test_the_environment_wins_over_env(data_env, tmp_path):
    dotenv_file.save_demo_settings(tmp_path, {config.MTA_DATA_DIR: str(tmp_path / "other")})
    got = mta("query", "SELECT 1", cwd=tmp_path)
    assert got.returncode == 2
    assert f"the lake at {data_env / config.LAKE_DIR} holds no tables yet" in got.stderr


@pytest.fixture
def demo_corpus(data_env, corpus) -> Path:
    """The demo corpus's metadata where `mta demo` puts it (the emulator takes titles from it)."""
    demo = data_env / config.DEMO_DIR
    demo.mkdir(parents=True)
    shutil.copy(corpus.metadata_path, demo / METADATA_NAME)
    return demo


def test_demo_mode_with_a_real_key_is_one_line_and_exit_2(demo_corpus, tmp_path, monkeypatch):
    """A key that is not the demo's must not be sent to the emulator's local port."""
    monkeypatch.setenv(config.YOUTUBE_API_KEY, "AIza-real-key")
    dotenv_file.save_demo_settings(tmp_path, {config.MTA_DEMO: "1"})
    got = mta("materialize", "--shard", "99", cwd=tmp_path)
    assert got.returncode == 2
    assert got.stderr.count("\n") == 1 and "YOUTUBE_API_KEY is not the demo's key" in got.stderr
    assert "AIza-real-key" not in got.stderr + got.stdout


def test_materialize_serves_the_emulator_in_demo_mode(demo_corpus, tmp_path, monkeypatch):
    """After `make demo`, `mta materialize` starts the emulator itself, from `.env` alone."""
    endpoint = f"http://127.0.0.1:{free_port()}"
    settings = {config.YOUTUBE_API_ENDPOINT: endpoint, config.YOUTUBE_API_KEY: config.DEMO_API_KEY}
    for name in settings:
        monkeypatch.delenv(name, raising=False)
    dotenv_file.save_demo_settings(tmp_path, {**settings, config.MTA_DEMO: "1"})
    got = mta("materialize", "--shard", "99", cwd=tmp_path)
    assert got.returncode == 2, got.stderr
    assert f"YouTube Data API emulator on {endpoint}\n" in got.stdout


# -- demo mode in-process ----------------------------------------------------------------------


@pytest.fixture
def demo_mode(demo_corpus, monkeypatch) -> str:
    """MTA_DEMO=1 with the demo key and an endpoint on a free port."""
    endpoint = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv(config.MTA_DEMO, "1")
    monkeypatch.setenv(config.YOUTUBE_API_KEY, config.DEMO_API_KEY)
    monkeypatch.setenv(config.YOUTUBE_API_ENDPOINT, endpoint)
    return endpoint


def answers(endpoint: str) -> bool:
    url = f"{endpoint}/youtube/v3/videos?part=snippet&id=abc&key={config.DEMO_API_KEY}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status == 200
    except urllib.error.URLError:
        return False


def test_demo_mode_serves_the_emulator_at_the_configured_endpoint(demo_mode):
    with cli.demo_youtube_if_configured() as endpoint:
        assert endpoint == demo_mode
        assert answers(demo_mode)
    assert not answers(demo_mode)


def test_a_taken_port_falls_back_to_a_free_one_except_for_the_ui(demo_mode):
    host, port = "127.0.0.1", int(demo_mode.rsplit(":", 1)[1])
    with socket.socket() as taken:
        taken.bind((host, port))
        taken.listen()
        with cli.demo_youtube_if_configured() as endpoint:
            assert endpoint != demo_mode and answers(endpoint)
            assert os.environ[config.YOUTUBE_API_ENDPOINT] == endpoint
        os.environ[config.YOUTUBE_API_ENDPOINT] = demo_mode
        refused = pytest.raises(config.ConfigError, match=f"port {port}")
        with refused, cli.demo_youtube_if_configured(fixed_port=True):
            pass


def test_outside_demo_mode_nothing_is_served(demo_mode, monkeypatch):
    monkeypatch.delenv(config.MTA_DEMO)
    with cli.demo_youtube_if_configured() as endpoint:
        assert endpoint is None
        assert not answers(demo_mode)


# -- user mistakes --------------------------------------------------------------------------------


def test_a_user_mistake_is_one_line_and_exit_2(capsys):
    def fail(_: argparse.Namespace) -> int:
        raise config.ConfigError("GIANTMIDI_ARCHIVE_URL is not set: set it.\nsecond line")

    assert cli.run(argparse.Namespace(func=fail, command="materialize")) == 2
    assert capsys.readouterr().err == "mta materialize: GIANTMIDI_ARCHIVE_URL is not set: set it.\n"


def test_a_bug_is_not_disguised_as_a_user_mistake():
    def fail(_: argparse.Namespace) -> int:
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):
        cli.run(argparse.Namespace(func=fail, command="materialize"))


def test_an_unreachable_lake_is_one_line_and_exit_2(data_env, tmp_path, monkeypatch):
    """A lake `mta` cannot reach (a server down, a wrong endpoint) is the user's to fix: one line
    naming the location, no traceback."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv(config.MTA_LAKE_URL, "s3://nobucket/lake")
    monkeypatch.setenv(config.MTA_S3_ENDPOINT_URL, "http://127.0.0.1:9")  # nothing listens
    got = mta("query", "SELECT 1", cwd=tmp_path)
    assert got.returncode == 2, got.stderr
    assert got.stderr.count("\n") == 1 and "Traceback" not in got.stderr
    assert got.stderr.startswith("mta query: cannot list s3://nobucket/lake/")
