import hashlib
import http.server
import io
import threading
import zipfile
from functools import partial

import pytest

from mta_pipeline.core.download import ArchiveError, display_url, download, source_fingerprint


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


def test_missing_source_names_the_variable(tmp_path):
    with pytest.raises(ArchiveError, match=r"GIANTMIDI_ARCHIVE_URL .* does not exist"):
        source_fingerprint(str(tmp_path / "nope.zip"))
    with pytest.raises(ArchiveError, match="does not exist"):
        download(str(tmp_path / "nope.zip"), tmp_path / "x.zip")


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


def test_display_url_drops_credentials_and_query():
    assert display_url("https://u:p@host:8443/a.zip?X-Amz-Signature=s") == "https://host:8443/a.zip"
    assert display_url("/local/path.zip") == "/local/path.zip"
