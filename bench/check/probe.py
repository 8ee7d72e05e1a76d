"""The check's HTTP plumbing: one request at a time, every fault one line, the contract's headers checked.

Problems with the server (refused connections, unexpected statuses, invalid JSON, missing headers) become
one-line problems, each reported once. A transport error raises ``Unreachable``: every further request would
fail the same way. An HTTP 500 line carries the server's exception when its log is known
(bench.check.server_log).
"""

from __future__ import annotations

import json
from types import TracebackType
from typing import Any

import httpx

from bench.check.server_log import ServerLog

TIMEOUT_SECONDS = 30.0
JSON_TYPE = "application/json"
HTML_TYPE = "text/html; charset=utf-8"


class Unreachable(Exception):
    """The server stopped answering; every further request would fail the same way."""


class Probe:
    """Requests to one server, and the problems they found (in the order found, each once)."""

    def __init__(self, base_url: str, server_log: ServerLog | None = None, timeout: float = TIMEOUT_SECONDS) -> None:
        # A new connection per request: uvicorn closes a keep-alive connection after an unhandled error,
        # and the next request on it would fail as if the whole server were down.
        self.client = httpx.Client(base_url=base_url, timeout=timeout, limits=httpx.Limits(max_keepalive_connections=0))
        self.server_log = server_log
        self.problems: list[str] = []

    def __enter__(self) -> Probe:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.client.close()

    def problem(self, line: str) -> None:
        if line not in self.problems:  # repeated requests to one path report a fault once
            self.problems.append(line)

    def send(self, method: str, path: str, **options: Any) -> httpx.Response:
        """Any request; a server that does not answer raises Unreachable (the remaining checks are skipped)."""
        if self.server_log is not None:
            self.server_log.mark()
        try:
            return self.client.request(method, path, **options)
        except httpx.TransportError as error:
            raise Unreachable(f"{where(method, path)}: {type(error).__name__}: {error or 'no response'}") from None

    def expect_status(self, method: str, path: str, response: httpx.Response, expected: int) -> bool:
        """True if ``response`` has the ``expected`` status; else one problem, with the server's exception."""
        if response.status_code == expected:
            return True
        said = self.server_log.exception_since_mark() if self.server_log and response.status_code >= 500 else None
        server = f" (server: {said})" if said else ""
        self.problem(f"{where(method, path)}: HTTP {response.status_code}, expected {expected}{server}")
        return False

    def get(self, path: str, content_type: str) -> httpx.Response | None:
        """GET expecting 200 with the contract's headers; None after reporting why not."""
        response = self.send("GET", path)
        if not self.expect_status("GET", path, response, 200):
            return None
        self.check_headers(path, response, content_type)
        return response

    def get_json(self, path: str, content_type: str) -> Any:
        response = self.get(path, content_type)
        if response is None:
            return None
        try:
            return json.loads(response.content)
        except ValueError:
            self.problem(f"{path}: invalid JSON: {response.content[:60]!r}")
            return None

    def check_headers(self, path: str, response: httpx.Response, content_type: str) -> None:
        headers = response.headers
        if headers.get("content-type", "").lower() != content_type:
            self.problem(f"{path}: Content-Type {headers.get('content-type')!r}, expected {content_type!r}")
        for name in ("Server", "Date"):
            if name not in headers:
                self.problem(f"{path}: missing header {name}")
        length = headers.get("content-length")
        if length is None:
            self.problem(f"{path}: missing header Content-Length")
        elif length != str(len(response.content)):
            self.problem(f"{path}: Content-Length {length}, body has {len(response.content)} bytes")


def where(method: str, path: str) -> str:
    """How a problem line names a request: the path alone for GET, else the method and the path."""
    return path if method == "GET" else f"{method} {path}"
