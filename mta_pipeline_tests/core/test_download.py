import hashlib
import http.server
import io
import threading
import time
import traceback
import zipfile
from functools import partial

import aiohttp
import botocore.exceptions
import pytest

from mta_pipeline.core.download import (
    ArchiveError,
    describe_failure,
    download,
    read_bytes,
    source_fingerprint,
)
from mta_pipeline_tests.http_source import SourceServer, free_port


def make_zip(path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("midis/a.mid", b"MThd")
    path.write_bytes(buf.getvalue())
    return hashlib.sha256(buf.getvalue()).hexdigest()


def test_local_download_verifies_and_renames(tmp_path):
    src = tmp_path / "src.zip"
    sha = make_zip(src)
    dest = tmp_path / "out" / "giantmidi.zip"
    fetched = download(str(src), dest, expected_sha256=sha)
    assert fetched.sha256 == sha and dest.read_bytes() == src.read_bytes()
    assert not list(dest.parent.glob("*.tmp"))


def test_checksum_mismatch_is_refused_and_leaves_nothing(tmp_path):
    src = tmp_path / "src.zip"
    make_zip(src)
    dest = tmp_path / "giantmidi.zip"
    with pytest.raises(ArchiveError, match="GIANTMIDI_ARCHIVE_SHA256"):
        download(str(src), dest, expected_sha256="0" * 64)
    assert list(tmp_path.iterdir()) == [src]


def test_non_zip_and_truncated_zip_are_refused_and_keep_the_previous_archive(tmp_path):
    dest = tmp_path / "giantmidi.zip"
    sha = make_zip(dest)
    html = tmp_path / "page.zip"
    html.write_text("<html>not found</html>")
    with pytest.raises(ArchiveError, match="not a zip archive"):
        download(str(html), dest)
    truncated = tmp_path / "cut.zip"
    truncated.write_bytes(dest.read_bytes()[:-30])
    with pytest.raises(ArchiveError, match="not a zip archive"):
        download(f"file://{truncated}", dest)
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == sha


def test_http_download_streams_from_a_real_server(tmp_path):
    served = tmp_path / "www"
    served.mkdir()
    sha = make_zip(served / "midis.zip")
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/midis.zip"
        assert source_fingerprint(url)["size"] == str((served / "midis.zip").stat().st_size)
        assert download(url, tmp_path / "got.zip").sha256 == sha
    finally:
        server.shutdown()


SECRETS = ("PLANTED-user", "PLANTED-pass", "PLANTED-sig", "PLANTED-token")
USERINFO = "PLANTED-user:PLANTED-pass"
QUERY = "X-Amz-Signature=PLANTED-sig&token=PLANTED-token"


def everything_shown(err: BaseException) -> str:
    """The exception as Python prints it and Dagster stores it: message and whole chain."""
    return "".join(traceback.format_exception(err))


def assert_clean(err: BaseException) -> None:
    shown = everything_shown(err)
    assert not [s for s in SECRETS if s in shown], shown
    assert str(err).count("\n") == 0


@pytest.fixture
def source(tmp_path):
    zipped = tmp_path / "src.zip"
    make_zip(zipped)
    files = {"midis.zip": zipped.read_bytes(), "meta.csv": b"surname\tfirstname\n"}
    with SourceServer(files, "PLANTED-user", "PLANTED-pass") as server:
        yield server


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (500, "HTTP 500 Internal Server Error: the server failed; try again later"),
        (503, "HTTP 503 Service Unavailable: the server failed"),
        (403, "HTTP 403 Forbidden: access denied"),
        (401, "HTTP 401 Unauthorized: the server wants credentials"),
        (404, "HTTP 404 Not Found: nothing at this URL"),
    ],
)
def test_http_errors_name_their_status_and_leak_nothing(source, tmp_path, status, reason):
    url = source.url("midis.zip", f"status/{status}", USERINFO, QUERY)
    shown = f"GIANTMIDI_ARCHIVE_URL http://{source.address}/status/{status}/midis.zip: {reason}"
    for fetch in (source_fingerprint, lambda u: download(u, tmp_path / "got.zip")):
        with pytest.raises(ArchiveError) as err:
            fetch(url)
        assert str(err.value).startswith(shown), str(err.value)
        assert_clean(err.value)
        if status != 404:
            assert "not found" not in str(err.value) and "does not exist" not in str(err.value)
    with pytest.raises(ArchiveError, match=f"^GIANTMIDI_METADATA_URL .*: HTTP {status} ") as err:
        read_bytes(source.url("meta.csv", f"status/{status}", USERINFO, QUERY))
    assert_clean(err.value)
    assert not (tmp_path / "got.zip").exists()


def test_a_failure_while_streaming_is_classified_and_leaves_no_file(source, tmp_path):
    url = source.url("midis.zip", "flaky", USERINFO, QUERY)
    assert source_fingerprint(url)["url"] == f"http://{source.address}/flaky/midis.zip"
    with pytest.raises(ArchiveError, match="HTTP 500 Internal Server Error") as err:
        download(url, tmp_path / "got.zip")
    assert_clean(err.value)
    assert list(tmp_path.iterdir()) == [tmp_path / "src.zip"]


def test_credentials_in_the_url_are_sent_and_shown_nowhere(source, tmp_path):
    url = source.url("midis.zip", "auth", USERINFO, QUERY)
    fingerprint = source_fingerprint(url)
    fetched = download(url, tmp_path / "got.zip")
    assert fetched.sha256 == hashlib.sha256((tmp_path / "src.zip").read_bytes()).hexdigest()
    assert source.auth_seen and set(source.auth_seen) == {source.expected_auth}
    assert read_bytes(source.url("meta.csv", "auth", USERINFO, QUERY)) == source.files["meta.csv"]
    assert fingerprint["url"] == f"http://{source.address}/auth/midis.zip"
    assert not [s for s in SECRETS if s in str(fingerprint)]
    wrong = source.url("midis.zip", "auth", "PLANTED-user:wrong")
    with pytest.raises(ArchiveError, match="HTTP 401 Unauthorized") as err:
        source_fingerprint(wrong)
    assert_clean(err.value)


def test_a_refused_connection_says_so(tmp_path):
    url = f"http://{USERINFO}@127.0.0.1:{free_port()}/midis.zip?{QUERY}"
    for fetch in (source_fingerprint, lambda u: download(u, tmp_path / "got.zip"), read_bytes):
        with pytest.raises(ArchiveError, match=r"connection refused by 127\.0\.0\.1:\d+; ") as err:
            fetch(url)
        assert_clean(err.value)


def test_an_unresolvable_host_says_dns_not_missing(tmp_path):
    url = f"http://{USERINFO}@nonexistent.invalid/midis.zip?{QUERY}"  # .invalid never resolves
    started = time.monotonic()
    for fetch in (source_fingerprint, lambda u: download(u, tmp_path / "got.zip"), read_bytes):
        with pytest.raises(ArchiveError, match=r"nonexistent\.invalid does not resolve") as err:
            fetch(url)
        assert_clean(err.value)
        assert "not found" not in str(err.value)
    assert time.monotonic() - started < 60


def test_local_sources_not_found_or_a_folder(tmp_path):
    for fetch in (source_fingerprint, lambda u: download(u, tmp_path / "x.zip")):
        with pytest.raises(ArchiveError, match=r"GIANTMIDI_ARCHIVE_URL .*nope.zip: not found; "):
            fetch(str(tmp_path / "nope.zip"))
    with pytest.raises(ArchiveError, match="is a folder"):
        download(str(tmp_path), tmp_path / "x.zip")


def test_s3_missing_key_and_bucket(s3_endpoint, monkeypatch, tmp_path):
    import s3fs

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
    s3fs.S3FileSystem.clear_instance_cache()
    with pytest.raises(ArchiveError, match=r"s3://lake/nope.zip: not found; "):
        source_fingerprint("s3://lake/nope.zip")
    with pytest.raises(ArchiveError, match=r"S3 NoSuchBucket: no such bucket; "):
        download("s3://no-such-bucket/a.zip", tmp_path / "x.zip")
    s3fs.S3FileSystem.clear_instance_cache()


def wrapped(cause: BaseException, outer: BaseException) -> BaseException:
    """`outer` raised from `cause`, as fsspec and s3fs chain them."""
    try:
        try:
            raise cause
        except BaseException as exc:
            raise outer from exc
    except BaseException as exc:
        return exc


def test_timeouts_s3_denials_and_unknown_errors_are_classified_without_secrets():
    url = f"https://{USERINFO}@h.example/a.zip?{QUERY}"
    timeout = wrapped(aiohttp.ServerTimeoutError("Timeout on reading data"), FileNotFoundError(url))
    assert "timed out talking to h.example; " in describe_failure(timeout, "V", url)
    denied = botocore.exceptions.ClientError(
        {"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "GetObject"
    )
    reason = describe_failure(wrapped(denied, PermissionError("Access Denied")), "V", "s3://b/k")
    assert reason == (
        "V s3://b/k: S3 AccessDenied: access denied; check AWS_ACCESS_KEY_ID, "
        "AWS_SECRET_ACCESS_KEY and the bucket's policy."
    )
    odd = wrapped(ValueError(f"bad chunk from {url}\nsecond line"), FileNotFoundError(url))
    assert describe_failure(odd, "V", url) == (
        "V https://h.example/a.zip: ValueError: bad chunk from https://h.example/a.zip second line."
    )
    writing = PermissionError(13, "Permission denied", "/data/archive/.giantmidi.zip.1.tmp")
    assert "PermissionError: [Errno 13] Permission denied: '/data/archive/" in describe_failure(
        writing, "V", url
    )


def test_a_full_disk_while_writing_the_archive_blames_the_data_dir_not_the_source(
    tmp_path, monkeypatch
):
    import errno

    import mta_pipeline.atomic

    source = tmp_path / "src.zip"
    make_zip(source)
    real_open = open

    def full_disk(path, mode="r", *args, **kwargs):
        if "w" in mode and ".tmp" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(mta_pipeline.atomic, "open", full_disk, raising=False)
    with pytest.raises(ArchiveError) as err:
        download(str(source), tmp_path / "archive" / "giantmidi.zip")
    message = str(err.value)
    assert "cannot write the archive" in message and "No space left" in message
    assert "MTA_DATA_DIR" in message and "GIANTMIDI_ARCHIVE_URL" not in message
