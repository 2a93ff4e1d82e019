"""The corpus-wide inputs of the records, materialized: the removal list and stored splits."""

import pyarrow.parquet as pq
import pytest
import yaml

from mta_pipeline import config, schemas
from mta_pipeline.core.splits import composer_key
from mta_pipeline.definitions import defs
from mta_pipeline.partitions import SHARD_KEYS
from mta_pipeline.resources.storage import Storage
from mta_pipeline.runner import materialize
from mta_pipeline_tests.catalog_db import catalog_db
from mta_pipeline_tests.conftest import emulated_youtube

SHARDS = SHARD_KEYS[:4]
QUIET = {"echo": lambda _: None}


def rows(sql):
    with catalog_db() as conn:
        return conn.execute(sql).fetchall()


def test_removals_and_stored_splits_reach_every_output(data_env, instance, monkeypatch, tmp_path):
    with emulated_youtube(monkeypatch):
        assert materialize(defs, instance, "*", SHARDS, **QUIET).ok
        gone_vid, other_vid = (r[0] for r in rows("SELECT vid FROM dataset ORDER BY 1 LIMIT 2"))
        gone_comment, rank = rows(
            "SELECT c.comment_id, c.rank FROM (SELECT unnest(comments) AS c FROM mta_records "
            "WHERE reply_1 <> '' AND vid <> ?) ORDER BY c.comment_id LIMIT 1".replace(
                "?", f"'{gone_vid}'"
            )
        )[0]
        # A stored assignment wins over what a fresh fill would choose.
        lake = data_env / config.LAKE_DIR / config.T_COMPOSER_SPLITS
        path = next(lake.rglob("*.parquet"))
        table = pq.read_table(path).to_pylist()
        table.sort(key=lambda r: -r["records"])  # a composer with records in these shards
        moved = table[0]["composer_key"]
        new_split = "test" if table[0]["split"] != "test" else "validation"
        table[0]["split"] = new_split
        pq.write_table(pq.read_table(path).from_pylist(table, pq.read_schema(path)), path)

        removals = tmp_path / "removals.txt"
        removals.write_text(f"# requests\n{gone_vid}  # the uploader asked\n{gone_comment}\n")
        monkeypatch.setenv(config.MTA_REMOVALS, str(removals))
        assert materialize(defs, instance, "*", SHARDS, **QUIET).ok

    assert rows(f"SELECT count(*) FROM dataset WHERE vid = '{gone_vid}'") == [(0,)]
    assert rows(f"SELECT count(*) FROM dataset WHERE vid = '{other_vid}'") == [(1,)]
    release = data_env / config.LAKE_DIR / config.RELEASE_DIR
    assert gone_vid not in (release / config.TSV_FILE).read_text("utf-8")
    assert not (release / "midi" / f"{gone_vid}.mid").exists()
    assert gone_comment not in str(pq.read_table(release / "data").to_pylist())
    assert rows(
        "SELECT count(*) FROM (SELECT unnest(comments) AS c FROM mta_records) "
        f"WHERE c.comment_id = '{gone_comment}'"
    ) == [(0,)]
    assert rows("SELECT kind, count(*) FROM mta_removals GROUP BY 1 ORDER BY 1") == [
        ("comment", 1),
        ("vid", 1),
    ]
    splits = {
        split
        for surname, firstname, split in rows("SELECT surname, firstname, split FROM mta_records")
        if composer_key(surname, firstname) == moved
    }
    assert splits == {new_split}
    assert rank >= 1

    # A process started without MTA_REMOVALS keeps the stored list (it never undoes removals).
    monkeypatch.delenv(config.MTA_REMOVALS)
    with emulated_youtube(monkeypatch):
        assert materialize(defs, instance, "*", SHARDS, **QUIET).ok
    assert rows("SELECT count(*) FROM mta_removals") == [(2,)]
    assert rows(f"SELECT count(*) FROM dataset WHERE vid = '{gone_vid}'") == [(0,)]


def test_the_release_filters_removed_videos_itself(data_env, instance, monkeypatch, tmp_path):
    """Even when a record shard was not rebuilt after the list changed, the release leaves the
    removed video out; a removed comment still in the records stops the release instead."""
    with emulated_youtube(monkeypatch):
        assert materialize(defs, instance, "*", SHARDS, **QUIET).ok
    vid = rows("SELECT vid FROM dataset ORDER BY 1 LIMIT 1")[0][0]
    (comment,) = rows(
        "SELECT c.comment_id FROM (SELECT unnest(comments) AS c FROM mta_records) LIMIT 1"
    )[0]
    storage = Storage(data_dir=str(data_env))  # the lake only: the records stay as they were
    storage.publish(
        config.T_MTA_REMOVALS, schemas.to_table(config.T_MTA_REMOVALS, [{"kind": "vid", "id": vid}])
    )
    assert materialize(defs, instance, "mta_tsv", only_stale=False, **QUIET).ok
    release = data_env / config.LAKE_DIR / config.RELEASE_DIR
    assert vid not in (release / config.TSV_FILE).read_text("utf-8")
    assert not (release / "midi" / f"{vid}.mid").exists()
    storage.publish(
        config.T_MTA_REMOVALS,
        schemas.to_table(config.T_MTA_REMOVALS, [{"kind": "comment", "id": comment}]),
    )
    outcome = materialize(defs, instance, "mta_tsv", only_stale=False, **QUIET)
    assert not outcome.ok and "removal list" in outcome.failures[0]


def test_every_config_the_card_names_loads_even_with_empty_splits(
    data_env, instance, monkeypatch, tmp_path
):
    """Two shards: some configs lack a split; the card names only what has records."""
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with emulated_youtube(monkeypatch):
        assert materialize(defs, instance, "*", SHARD_KEYS[:1], **QUIET).ok
    root = data_env / config.LAKE_DIR / config.RELEASE_DIR
    front = yaml.safe_load((root / config.DATASET_CARD).read_text("utf-8").split("---\n")[1])
    named = {c["config_name"]: [f["split"] for f in c["data_files"]] for c in front["configs"]}
    assert any(len(splits) < 3 for splits in named.values()), named  # the case under test
    for name, splits in named.items():
        loaded = datasets.load_dataset(str(root), name, cache_dir=str(tmp_path / "cache"))
        assert sorted(loaded) == sorted(splits) and all(loaded[s].num_rows for s in splits)


@pytest.mark.parametrize(
    ("content", "needle"),
    [("not an id at all\n", "line 1"), (None, "cannot be read")],
)
def test_a_bad_removal_list_is_a_one_line_error(
    data_env, instance, monkeypatch, tmp_path, content, needle
):
    path = tmp_path / "removals.txt"
    if content is not None:
        path.write_text(content)
    monkeypatch.setenv(config.MTA_REMOVALS, str(path))
    with pytest.raises(config.ConfigError, match=needle):
        materialize(defs, instance, "mta_removals", **QUIET)
