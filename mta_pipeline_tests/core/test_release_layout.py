"""Tests for the release's rows, configs and file names (core/release.py)."""

from datetime import UTC, datetime

import pyarrow as pa

from mta_pipeline import schemas
from mta_pipeline.core.release import (
    CONFIGS,
    ROWS_PER_FILE,
    config_rows,
    configs_yaml,
    present_splits,
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
    assert not {"author_channel_id", "comment_id", "text_raw"} & set(c) and c["is_uploader"]
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


def test_empty_splits_get_no_file_and_big_splits_are_sharded() -> None:
    n = ROWS_PER_FILE + 1
    data = release_table(records([{"split": "train"}] * n + [{"split": "test"}]))
    files = split_files(data, "curated")
    assert sorted(files) == [
        "data/curated/test-00000-of-00001.parquet",
        "data/curated/train-00000-of-00002.parquet",
        "data/curated/train-00001-of-00002.parquet",
    ]
    assert sum(t.num_rows for t in files.values()) == n + 1
    assert present_splits({"curated": data}) == {"curated": ["train", "test"]}


def test_the_yaml_names_only_splits_and_configs_with_records() -> None:
    text = "\n".join(configs_yaml({"default": ["train", "test"], "curated": ["train"]}))
    assert "- config_name: default\n  default: true" in text
    assert "    path: data/default/test-*.parquet" in text
    assert "validation" not in text and "clean_en" not in text


def test_tokens_join_by_file_and_only_from_the_shipped_tokenizer() -> None:
    from mta_pipeline.core.release import with_tokens
    from mta_pipeline.core.token_ids import tokenizer_id

    shipped = b'{"config": "now"}'
    data = pa.table({"vid": ["a", "b", "c"], "sha256": ["1", "2", "3"], "midi_path": ["x"] * 3})
    tokens = pa.table(
        {
            "vid": ["b", "a", "c"],
            "sha256": ["2", "1", "9"],  # c: ids of other bytes
            "tokenizer": [
                tokenizer_id("t", shipped),
                tokenizer_id("t", b'{"config": "before an upgrade"}'),
                tokenizer_id("t", shipped),
            ],
            "tokens": pa.array([[1, 2], [3], [4]], pa.list_(pa.int32())),
        }
    )
    joined = with_tokens(data, tokens, shipped)
    assert joined.column_names == ["vid", "sha256", "midi_path", "tokens"]
    assert joined.column("tokens").to_pylist() == [None, [1, 2], None]
    assert with_tokens(data, tokens, None).column("tokens").null_count == 3
    assert with_tokens(data, tokens.slice(0, 0), shipped).column("tokens").null_count == 3
