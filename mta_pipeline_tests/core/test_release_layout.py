"""Tests for the release's rows, configs and file names (core/release.py)."""

from datetime import UTC, datetime

import pyarrow as pa

from mta_pipeline import schemas
from mta_pipeline.core.release import (
    CONFIGS,
    ROWS_PER_FILE,
    config_rows,
    configs_yaml,
    release_table,
    split_files,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def comment(lang: str, spam: bool = False) -> dict:
    return {
        "rank": 1,
        "comment_id": "Ugx",
        "text_raw": " hi ",
        "text": "hi",
        "lang": lang,
        "lang_confidence": 0.9,
        "n_chars": 2,
        "has_url": False,
        "is_spam": spam,
        "is_repeated": False,
        "is_uploader": True,
        "like_count": 1,
        "published_at": T0,
        "author_channel_id": "UCsecret",
        "reply_count": 0,
    }


def records(rows: list[dict]) -> pa.Table:
    full = [
        {
            "vid": f"vid{i:08d}",
            "shard": "00",
            "split": r.get("split", "train"),
            "curated": r.get("curated", True),
            "describe": r.get("describe", ""),
            "describe_lang": r.get("describe_lang"),
            "channel_id": "UCsecret",
            "channel_title": "Someone",
            "member": "x.mid",
            "describe_raw": "raw",
            "comments": r.get("comments", []),
        }
        for i, r in enumerate(rows)
    ]
    return schemas.sort_records(pa.Table.from_pylist(full, schema=schemas.MTA_RECORDS))


def test_private_columns_and_comment_fields_are_dropped_and_midi_path_added() -> None:
    data = release_table(records([{"comments": [comment("en")]}, {}]))
    names = data.column_names
    assert not {"channel_id", "channel_title", "member", "shard", "describe_raw"} & set(names)
    assert names[names.index("reply_5") + 1] == "midi_path"
    assert data.column("midi_path").to_pylist() == ["midi/vid00000000.mid", "midi/vid00000001.mid"]
    (c,) = data.column("comments").to_pylist()[0]
    assert "author_channel_id" not in c and "text_raw" not in c and c["is_uploader"] is True
    assert "UCsecret" not in str(data.to_pylist())


def test_an_empty_release_keeps_its_schema() -> None:
    data = release_table(records([]))
    assert data.num_rows == 0 and "midi_path" in data.column_names
    assert "author_channel_id" not in str(data.schema.field("comments").type)


def test_configs_select_their_records() -> None:
    data = release_table(
        records(
            [
                {"curated": True, "describe": "Hello", "describe_lang": "en"},
                {"curated": True, "comments": [comment("en")]},
                {"curated": True, "comments": [comment("en", spam=True), comment("de")]},
                {"curated": False, "describe": "Hello", "describe_lang": "en"},
            ]
        )
    )
    sizes = {name: config_rows(data, name).num_rows for name in CONFIGS}
    assert sizes == {"default": 4, "curated": 3, "clean_en": 2}


def test_every_split_gets_a_file_and_big_splits_are_sharded() -> None:
    n = ROWS_PER_FILE + 1
    data = release_table(records([{"split": "train"}] * n))
    files = split_files(data, "curated")
    assert sorted(files) == [
        "data/curated/test-00000-of-00001.parquet",
        "data/curated/train-00000-of-00002.parquet",
        "data/curated/train-00001-of-00002.parquet",
        "data/curated/validation-00000-of-00001.parquet",
    ]
    assert sum(t.num_rows for t in files.values()) == n


def test_the_yaml_names_a_pattern_per_config_and_split() -> None:
    text = "\n".join(configs_yaml())
    assert "- config_name: default\n  default: true" in text
    assert "    path: data/clean_en/validation-*.parquet" in text
