"""A real HTTP server on loopback serving source files, for download failures as aiohttp meets them.

Paths: `/<name>` serves a file; `/auth/<name>` serves it only with the right Basic credentials
(401 otherwise); `/status/<code>/<name>` answers `code`; `/flaky/<name>` answers HEAD like a good
file and GET with 500, so the failure comes while streaming. Every Authorization header received
is kept in `auth_seen`.
"""

from __future__ import annotations

import base64
import http.server
import socket
import threading
from collections.abc import Mapping
from functools import partial


def free_port() -> int:
    """A loopback port nothing listens on (bound, then closed): connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Handler(http.server.BaseHTTPRequestHandler):
    def __init__(self, server_state: SourceServer, *args, **kwargs) -> None:
        self.state = server_state
        super().__init__(*args, **kwargs)

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def do_GET(self) -> None:
        self._answer(body=True)

    def _answer(self, body: bool) -> None:
        path = self.path.split("?", 1)[0].strip("/").split("/")
        auth = self.headers.get("Authorization")
        if auth:
            self.state.auth_seen.append(auth)
        status, name = 200, path[-1]
        if path[0] == "status":
            status = int(path[1])
        elif path[0] == "auth" and auth != self.state.expected_auth:
            status = 401
        elif path[0] == "flaky" and body:
            status = 500
        data = self.state.files.get(name) if status == 200 else b"error page"
        if data is None:
            status, data = 404, b"no such file"
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("ETag", f'"{len(data)}"')
        self.end_headers()
        if body:
            self.wfile.write(data)


class SourceServer:
    """`files` on loopback; `url(name, route, userinfo, query)` builds the address to fetch."""

    def __init__(self, files: Mapping[str, bytes], user: str, password: str) -> None:
        self.files = dict(files)
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.expected_auth = f"Basic {token}"
        self.auth_seen: list[str] = []
        handler = partial(_Handler, self)
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> SourceServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._server.server_port}"

    def url(self, name: str, route: str = "", userinfo: str = "", query: str = "") -> str:
        at = f"{userinfo}@" if userinfo else ""
        prefix = f"/{route}" if route else ""
        return f"http://{at}{self.address}{prefix}/{name}" + (f"?{query}" if query else "")
