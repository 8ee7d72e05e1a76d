"""The server's side of an HTTP 500: the exception a target logged for the request the check just sent.

uvicorn logs an unhandled exception (``Exception in ASGI application`` and a traceback) after Starlette has
sent the 500, so the line may land in the log a moment after the response: the check marks the log's end
before each request and, on a 500, reads what the server wrote since, waiting briefly for it.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from bench.dsn import scrub

# How long to wait for the traceback after a 500 has arrived; uvicorn writes it within milliseconds.
WAIT_SECONDS = 1.0
POLL_SECONDS = 0.02
MAX_CHARS = 240
_TRACEBACK = "Traceback (most recent call last):"
# The line ending a traceback: a dotted exception name at the start of the line, optionally ": message".
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(?::.*)?$")
# An exception group prints its members behind a "| " rail.
_RAIL = re.compile(r"^\s*\| ?")


class ServerLog:
    """A target's log file (stdout and stderr), read from the last ``mark``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0

    def mark(self) -> None:
        """Remember the log's current end: what follows belongs to the next request."""
        self._offset = self._size()

    def exception_since_mark(self, wait_s: float = WAIT_SECONDS) -> str | None:
        """The last exception logged since ``mark`` (one line, at most MAX_CHARS), or None if none came."""
        deadline = time.monotonic() + wait_s
        while True:
            found = last_exception(self._read())
            if found is not None or time.monotonic() >= deadline:
                return found
            time.sleep(POLL_SECONDS)

    def _size(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def _read(self) -> str:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self._offset)
                return handle.read().decode("utf-8", "replace")
        except OSError:
            return ""


def last_exception(text: str, secrets: tuple[str, ...] = ()) -> str | None:
    """``module.ExceptionName: message`` ending the last traceback in ``text``, at most MAX_CHARS, its passwords
    masked (any DSN's, and those of the DSNs in ``secrets`` with their fragments: bench.dsn.scrub); None without
    a traceback.

    With chained exceptions ("The above exception was the direct cause...") the last one printed is the one
    that escaped, and the one the server answered with.
    """
    at = text.rfind(_TRACEBACK)
    if at < 0:
        return None
    for raw in text[at:].splitlines()[1:]:
        line = _RAIL.sub("", raw, count=1)
        if line[:1].isspace():
            continue  # a frame or its source line
        if _EXCEPTION_LINE.match(line):
            # A driver's message may quote the DSN it was given, password and all. Masked before the cut: a cut
            # through a password would leave a piece that no longer matches it, shown in full.
            line = scrub(line, *secrets)
            return line if len(line) <= MAX_CHARS else line[: MAX_CHARS - 3] + "..."
    return None
