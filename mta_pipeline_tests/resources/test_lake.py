"""The lake on a local folder and on S3 (moto's server over real HTTP), through s3fs."""

import os

import pyarrow as pa
import pytest
import s3fs

from mta_pipeline.resources.lake import LakeError, LakeResource

TABLE = pa.table({"vid": ["abcdefghijk"], "n": [1]})


def test_local_write_is_atomic_and_leaves_no_temporary_files(tmp_path):
    lake = LakeResource(url=str(tmp_path / "lake"))
    uri = lake.write_parquet(lake.shard_path("t", "00"), TABLE)
    assert uri.endswith("t/shard=00/part.parquet")
    assert lake.read_parquet(lake.shard_path("t", "00")).equals(TABLE)
    assert [p.name for p in (tmp_path / "lake/t/shard=00").iterdir()] == ["part.parquet"]
    assert lake.read_parquet(lake.shard_path("t", "01")) is None


def test_unwritable_lake_fails_with_the_location(tmp_path):
    root = tmp_path / "ro"
    root.mkdir()
    os.chmod(root, 0o500)
    try:
        lake = LakeResource(url=str(root))
        if os.access(root, os.W_OK):  # running as root: permissions do not bind
            lake = LakeResource(url=str(tmp_path / "file"))
            (tmp_path / "file").write_text("not a folder")
        with pytest.raises(LakeError, match=r"cannot write .*MTA_LAKE_URL"):
            lake.write_parquet("t/x.parquet", TABLE)
    finally:
        os.chmod(root, 0o700)


def test_s3_round_trip_through_moto_server(s3_endpoint):
    lake = LakeResource(url="s3://lake/prefix", s3_endpoint_url=s3_endpoint)
    uri = lake.write_parquet(lake.shard_path("t", "07"), TABLE)
    assert uri == "s3://lake/prefix/t/shard=07/part.parquet"
    assert lake.read_parquet(lake.shard_path("t", "07")).equals(TABLE)
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_endpoint}, skip_instance_cache=True)
    assert fs.ls("lake/prefix/t/shard=07") == ["lake/prefix/t/shard=07/part.parquet"]
