"""Secrets out of URLs, and out of any text that may quote one.

Source URLs carry credentials (`user:password@host`) and signed query strings (`X-Amz-Signature`,
`sig`, `token`, `key`), and libraries quote the URL they failed on in their exception messages.
Every URL or foreign message bound for a log line, an exception, asset metadata or a file passes
through here first. A URL keeps its scheme, host, port and path (enough to tell which source is
meant) and loses its userinfo, query string and fragment whole: the names of query parameters
can be secrets too, and a signed URL is the same source whatever it is signed with.
"""

from __future__ import annotations

import re

SCHEME = r"[A-Za-z][A-Za-z0-9+.\-]+"
SCHEME_PREFIX = re.compile(SCHEME + ":/*")
# A URL inside text ends at whitespace, a quote or an angle bracket (how messages quote one).
URL_IN_TEXT = re.compile(SCHEME + r"://[^\s'\"<>`]+")
# `name=value` pairs whose name says secret, outside any URL (a library printing a query alone).
SECRET_PAIR = re.compile(
    r"(?i)\b([\w.\-]*(?:sig|token|key|secret|passw|auth|credential)[\w.\-]*=)[^&\s'\"<>`]+"
)
REDACTED = "REDACTED"


def redact_url(url: str) -> str:
    """`url` without userinfo, query string or fragment. A scheme followed by any number of
    slashes counts (`https:/user:pw@host` is a typo that must not leak either); a local path (no
    scheme, or a Windows drive letter) is returned as it is. Everything up to the last `@` goes,
    since an unencoded `?`, `#` or `/` in a password would otherwise end the userinfo early (a
    path holding `@` is over-redacted, which is the safe side)."""
    match = SCHEME_PREFIX.match(url)
    if match is None:
        return url
    rest = url[match.end() :].rpartition("@")[2]  # a password may hold `?`, `#` or `/`
    rest = re.split(r"[?#]", rest, maxsplit=1)[0]
    return f"{match.group()}{rest}"


def url_host(url: str) -> str:
    """The `host[:port]` of a URL, without credentials (empty for a local path)."""
    match = SCHEME_PREFIX.match(url)
    return redact_url(url)[match.end() :].partition("/")[0] if match else ""


def redact_text(text: str) -> str:
    """`text` with every URL in it redacted and every secret-named `name=value` hidden."""
    text = URL_IN_TEXT.sub(lambda m: redact_url(m.group()), text)
    return SECRET_PAIR.sub(rf"\1{REDACTED}", text)
