"""URLs and messages lose userinfo, query strings and secret-named values, keep the place."""

import pytest

from mta_pipeline.core.redact import redact_text, redact_url, url_host

SECRETS = ("PLANTED-user", "PLANTED-pass", "PLANTED-sig", "PLANTED-token")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://u:p@host:8443/a.zip?X-Amz-Signature=s&X-Amz-Credential=c#f",
            "https://host:8443/a.zip",
        ),
        ("https://ghp_TOKEN@github.com/o/r/a.zip", "https://github.com/o/r/a.zip"),
        ("http://user:p@ss@host/a.zip", "http://host/a.zip"),
        ("https://u:p?ss@host/a.zip", "https://host/a.zip"),  # `?` or `/` in a password
        ("https://u:p/ss@host/a.zip?sig=s", "https://host/a.zip"),
        ("https://u:p#ss@host/a.zip", "https://host/a.zip"),
        ("http://[::1]:8080/a.zip?sig=s", "http://[::1]:8080/a.zip"),
        ("s3://bucket/midis.zip?versionId=v", "s3://bucket/midis.zip"),
        ("https://host?token=t", "https://host"),
        ("https:/user:typo@host/a.zip", "https:/host/a.zip"),
        ("file:///data/a.zip", "file:///data/a.zip"),
        ("/local/path.zip", "/local/path.zip"),
        ("C:\\data\\a.zip", "C:\\data\\a.zip"),
    ],
)
def test_redact_url_keeps_the_place_and_drops_userinfo_query_and_fragment(url, shown):
    assert redact_url(url) == shown


def test_redact_text_redacts_urls_inside_library_messages():
    text = (
        "500, message='Internal Server Error', url='http://h:1/a.zip?X-Amz-Signature=PLANTED-sig'"
        " URL('https://PLANTED-user:PLANTED-pass@h/a.zip') <http://h/x#PLANTED-token>"
        " params sig=PLANTED-sig&token=PLANTED-token&part=snippet"
    )
    got = redact_text(text)
    assert not [s for s in SECRETS if s in got], got
    assert "url='http://h:1/a.zip'" in got and "URL('https://h/a.zip')" in got
    assert "part=snippet" in got and "sig=REDACTED" in got


def test_url_host_is_the_authority_without_credentials():
    assert (
        url_host("https://PLANTED-user:PLANTED-pass@h.example:8443/a.zip?x=1") == "h.example:8443"
    )
    assert url_host("/local/a.zip") == ""
