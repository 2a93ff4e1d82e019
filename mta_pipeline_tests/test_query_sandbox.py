"""`mta query` reads the catalog and the lake and writes no file, unless `--allow-files`: run as a
user runs it, on a real catalog file, lake folder and a secret file beside them."""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from mta_pipeline import cli, config
from mta_pipeline.query_sandbox import local_lake

MTA = str(Path(sys.executable).with_name("mta"))
SECRET = "not-for-mta-query"
TSV = "index\tvid\n0\tv1\n"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """`data/` with a catalog (a table, a view) and a lake (token files, a released TSV), and
    `outside/` with a secret text file and a DuckDB file holding the secret."""
    lake = tmp_path / "data" / config.LAKE_DIR
    (lake / config.T_MIDI_TOKENS / "shard=00").mkdir(parents=True)
    (lake / config.RELEASE_DIR).mkdir()
    (lake / config.RELEASE_DIR / config.TSV_FILE).write_text(TSV)
    (lake / "import").mkdir()  # a database export whose schema.sql would write a file
    (lake / "import" / "schema.sql").write_text(f"COPY (SELECT 1) TO '{lake}/written.csv';\n")
    (lake / "import" / "load.sql").write_text("")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET + "\n")
    with duckdb.connect(str(outside / "other.duckdb")) as conn:
        conn.execute(f"CREATE TABLE secrets AS SELECT '{SECRET}' AS s")
    with duckdb.connect(str(tmp_path / "data" / config.DUCKDB_FILE)) as conn:
        conn.execute("CREATE TABLE midi_files AS SELECT 'v1' AS vid, 'Bach' AS surname")
        conn.execute("CREATE VIEW dataset AS SELECT vid, surname FROM midi_files")
        tokens = lake / config.T_MIDI_TOKENS / "shard=00" / "part.parquet"
        conn.execute(f"COPY (SELECT 'v1' AS vid, range(1234) AS tokens) TO '{tokens}'")
    return tmp_path


def query(
    root: Path, *args: str, lake_url: str = "", endpoint: str = ""
) -> subprocess.CompletedProcess:
    """`mta query ARGS` from `root`, with only the data dir (and `lake_url`) set; `{lake}` and
    `{outside}` in the arguments are filled in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MTA_", "GIANTMIDI_"))}
    env[config.MTA_DATA_DIR] = str(root / "data")
    if lake_url:
        env[config.MTA_LAKE_URL] = lake_url
    if endpoint:
        env[config.MTA_S3_ENDPOINT_URL] = endpoint
    places = {"lake": root / "data" / config.LAKE_DIR, "outside": root / "outside"}
    argv = [MTA, "query", *(a.format(**places) for a in args)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=root, env=env)


def files(root: Path) -> dict[str, bytes]:
    """Every file but the catalog's own, with its bytes: what a query must leave as it was."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith(config.DUCKDB_FILE)
    }


def assert_refused(got: subprocess.CompletedProcess, message: str) -> None:
    assert got.returncode == 2, got.stdout
    assert got.stderr.count("\n") == 1 and got.stderr.startswith("mta query: "), got.stderr
    assert message in got.stderr and "`mta query --allow-files` permits it" in got.stderr
    assert SECRET not in got.stdout and "root:" not in got.stdout


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        # The issue: the released TSV overwritten. The lake is allowed, so writes are refused.
        ("COPY (SELECT 'x') TO '{lake}/release/midi_text_dataset.tsv'", "COPY is refused"),
        ("COPY (SELECT 1) TO '{outside}/copy.csv'", "COPY is refused"),
        ("EXPORT DATABASE '{lake}/export'", "EXPORT is refused"),
        ("EXPLAIN ANALYZE COPY (SELECT 1) TO '{lake}/explained.csv'", "EXPLAIN is refused"),
        ("COPY (PIVOT midi_files ON surname) TO '{lake}/pivot.csv'", "COPY with a PIVOT"),
        ("ATTACH '{outside}/other.duckdb' AS other; FROM other.secrets", "ATTACH is refused"),
        ("INSTALL '{outside}/x.duckdb_extension'", "INSTALL is refused"),
        ("LOAD '{outside}/x.duckdb_extension'", "LOAD is refused"),
        ("SELECT * FROM read_text('{outside}/secret.txt')", "outside the lake"),
        ("SELECT * FROM read_text('/etc/passwd')", "outside the lake"),
        ("SELECT * FROM read_csv('{outside}/secret.txt')", "outside the lake"),
        ("SELECT * FROM read_csv('{lake}/../../outside/secret.txt')", "outside the lake"),
        ("SELECT * FROM glob('{outside}/*')", "outside the lake"),
        ("SET enable_external_access = true; FROM read_text('{outside}/secret.txt')", "locked"),
        ("SET allowed_directories = ['/']; FROM read_text('{outside}/secret.txt')", "locked"),
        ("SET lock_configuration = false; FROM read_text('{outside}/secret.txt')", "locked"),
        ("PRAGMA import_database('{lake}/import')", "PRAGMA is refused"),
    ],
)
def test_sql_that_writes_or_reads_outside_the_lake_is_refused(root, sql, message):
    before = files(root)
    assert_refused(query(root, sql), message)
    assert files(root) == before


@pytest.mark.parametrize(
    ("sql", "shown"),
    [
        ("SELECT surname FROM midi_files", "Bach"),
        ("SELECT * FROM dataset", "Bach"),
        # The README's way to the token ids, which the catalog does not hold.
        ("SELECT vid, len(tokens) FROM read_parquet('{lake}/midi_tokens/*/*.parquet')", "1234"),
        ("FROM read_csv('{lake}/release/midi_text_dataset.tsv')", "v1"),
        ("SHOW TABLES", "midi_files"),
        ("PRAGMA table_info('midi_files')", "surname"),
        ("EXPLAIN ANALYZE SELECT count(*) FROM midi_files", "analyzed_plan"),
        ("SET VARIABLE who = 'Bach'; FROM midi_files WHERE surname = getvariable('who')", "v1"),
    ],
)
def test_the_catalog_and_the_lake_still_read(root, sql, shown):
    before = files(root)
    got = query(root, sql)
    assert got.returncode == 0, got.stderr
    assert shown in got.stdout
    assert files(root) == before


def test_allow_files_lets_the_sql_read_and_write_any_file(root):
    copy = "COPY (FROM read_text('{outside}/secret.txt')) TO '{outside}/copy.csv'"
    got = query(root, "--allow-files", copy)
    assert got.returncode == 0, got.stderr
    assert SECRET in (root / "outside" / "copy.csv").read_text()


def test_an_unreachable_lake_leaves_the_catalog_as_last_synced_with_a_warning(root):
    got = query(root, "SELECT surname FROM midi_files", lake_url="s3://bucket/prefix")
    assert got.returncode == 0 and "Bach" in got.stdout, got.stderr
    assert got.stderr.startswith("mta query: warning: cannot list s3://bucket/prefix/")
    assert "answering from the catalog" in got.stderr and got.stderr.count("\n") == 1


def test_the_demos_example_query_is_sandboxed_too(root, monkeypatch, capsys):
    """`mta demo` calls cmd_query with a namespace of its own, without `allow_files`."""
    monkeypatch.setenv(config.MTA_DATA_DIR, str(root / "data"))
    monkeypatch.delenv(config.MTA_LAKE_URL, raising=False)
    copy = f"COPY (SELECT 1) TO '{root / 'outside' / 'demo.csv'}'"
    assert cli.cmd_query(argparse.Namespace(sql=copy)) == 2
    assert "COPY is refused" in capsys.readouterr().err
    assert not (root / "outside" / "demo.csv").exists()


def test_the_lake_folder_is_read_from_the_setting(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert local_lake("lake") == tmp_path / "lake"
    assert local_lake("file:///srv/lake") == Path("/srv/lake")
    assert local_lake("s3://bucket/prefix") is None


def test_an_error_that_only_mentions_a_checksum_is_not_called_damage(root):
    got = query(root, "SELECT checksum FROM midi_files")
    assert got.returncode == 2 and "checksum" in got.stderr
    assert "damaged" not in got.stderr and "rebuild" not in got.stderr


def test_an_s3_lake_is_queried_through_s3fs_and_only_its_prefix_is_readable(tmp_path, s3_endpoint):
    """A new, empty data dir: the catalog is built from the S3 lake, `--lake` reads it in
    place, and the SQL may read the lake's objects (through the s3fs filesystem registered with
    DuckDB) but not a sibling prefix of the same bucket."""
    from mta_pipeline import schemas
    from mta_pipeline.resources.storage import Storage

    lake = "s3://lake/mta"
    storage = Storage(data_dir=str(tmp_path / "writer"), lake_url=lake, s3_endpoint_url=s3_endpoint)
    rows = [{"vid": f"v{i:010d}", "shard": "00", "surname": "Bach"} for i in range(3)]
    storage.publish(config.T_MIDI_FILES, schemas.to_table(config.T_MIDI_FILES, rows), "00")
    storage.lake.fs().pipe_file("lake/mta2/secret.txt", SECRET.encode())  # beside the lake
    (tmp_path / "data").mkdir()

    def ask(*args: str) -> subprocess.CompletedProcess:
        return query(tmp_path, *args, lake_url=lake, endpoint=s3_endpoint)

    for args in (
        ("SELECT 40 + count(*) AS n FROM midi_files",),
        ("--lake", "SELECT 40 + count(*) AS n FROM midi_files"),
    ):
        got = ask(*args)
        assert got.returncode == 0 and "43" in got.stdout, got.stderr
    got = ask(f"SELECT 40 + count(*) AS n FROM read_parquet('{lake}/midi_files/*/*.parquet')")
    assert got.returncode == 0 and "43" in got.stdout, got.stderr
    got = ask("FROM read_text('s3://lake/mta2/secret.txt')")
    assert_refused(got, "outside the lake")
