"""The DuckDB catalog under concurrent writers from several processes."""

import multiprocessing as mp

import pyarrow as pa

from mta_pipeline.resources.catalog import DuckDBCatalog


def write_shard(args: tuple[str, str, int]) -> int:
    database, shard, rounds = args
    catalog = DuckDBCatalog(database=database)
    for i in range(rounds):
        rows = pa.table({"shard": [shard] * 50, "n": list(range(i, i + 50))})
        catalog.replace_rows("t", rows, {"shard": shard})
    return rounds


def test_parallel_writers_in_separate_processes_never_hit_the_file_lock(tmp_path):
    database = str(tmp_path / "mta.duckdb")
    shards = [f"{i:02d}" for i in range(6)]
    with mp.get_context("spawn").Pool(3) as pool:
        done = pool.map(write_shard, [(database, s, 15) for s in shards])
    assert done == [15] * len(shards)
    got = DuckDBCatalog(database=database).query(
        "SELECT shard, count(*) AS n, min(n) AS lo FROM t GROUP BY shard ORDER BY shard"
    )
    assert got.to_pylist() == [{"shard": s, "n": 50, "lo": 14} for s in shards]


def test_replace_rows_adds_new_columns_and_keeps_other_shards(tmp_path):
    catalog = DuckDBCatalog(database=str(tmp_path / "c.duckdb"))
    catalog.replace_rows("t", pa.table({"shard": ["a", "b"], "x": [1, 2]}), {"shard": "a"})
    catalog.replace_rows("t", pa.table({"shard": ["a"], "x": [3], "y": ["new"]}), {"shard": "a"})
    rows = catalog.query("SELECT shard, x, y FROM t ORDER BY shard").to_pylist()
    assert rows == [{"shard": "a", "x": 3, "y": "new"}, {"shard": "b", "x": 2, "y": None}]
