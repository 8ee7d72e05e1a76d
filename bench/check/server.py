"""A server dbbench did not start (``--url``): wait until it answers, then ask whether it is dbbench.

A dbbench target says so on GET /health with the ``X-Dbbench-Variant`` header (targets.IDENTITY_HEADER):
only then is its private /_bench/info asked, with a short timeout, and only if that answered is /_bench/*
used further (the check's query counts, the statistics at each window's edges). What dbbench knows of any
other server is its URL: the rest of its description says "unknown", never a default.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.errors import BenchError
from targets import IDENTITY_HEADER

READY_TIMEOUT_S = 30.0  # --ready-timeout's default: a server still starting (migrations, a cold pool)
CONNECT_TIMEOUT_S = 2.0
INFO_TIMEOUT_S = 2.0  # /_bench/info of a server that said it is dbbench answers in milliseconds
POLL_S = 0.2
PROBE_PATH = "/health"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class ExternalServer:
    """What dbbench learned about a ``--url`` server: its URL, and if it is dbbench, its own account."""

    url: str
    variant: str | None = None  # the dbbench variant it says it is; None: not dbbench
    info: dict[str, Any] = field(default_factory=dict)  # its /_bench/info, when dbbench and it answered

    @property
    def is_dbbench(self) -> bool:
        return self.variant is not None

    @property
    def private_ok(self) -> bool:
        """/_bench/* may be asked: the server says it is dbbench and its /_bench/info answered in time."""
        return self.is_dbbench and bool(self.info)

    def describe(self) -> dict[str, Any]:
        """The results metadata's server, database, pool and cache entries: only what is known."""
        info = self.info
        known = {
            "url": self.url,
            "started_by_dbbench": False,
            "dbbench_variant": self.variant if self.is_dbbench else "no (it does not say it is dbbench)",
        }
        if self.is_dbbench and not info:
            known["info"] = f"unknown: /_bench/info did not answer within {INFO_TIMEOUT_S:g} s; /_bench/* not asked"
        return {
            "server": known,
            "database": {"kind": f"{UNKNOWN} (the --url server's own)"},
            "pool": {
                "size": info.get("pool_size", UNKNOWN),
                "max_overflow": info.get("max_overflow", UNKNOWN),
                "threadpool_size": info.get("threadpool_size", UNKNOWN),
                "source": "the server's /_bench/info" if info else "not known to dbbench",
            },
            "cache": {"backend": _cache_backend(info)},
        }


def wait_until_answering(url: str, timeout_s: float = READY_TIMEOUT_S) -> httpx.Response:
    """The first HTTP response (any status) to GET /health, polling until ``timeout_s`` has passed.

    Raises BenchError (one line) if no response came: nothing listening, or connections accepted but never
    answered."""
    deadline = time.monotonic() + timeout_s
    accepted = False
    last = "no attempt"
    with httpx.Client(base_url=url) as client:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            # The read may take the whole remaining time: a first answer can be slow on a cold server.
            timeout = httpx.Timeout(remaining, connect=min(CONNECT_TIMEOUT_S, remaining))
            try:
                return client.get(PROBE_PATH, timeout=timeout)
            except httpx.TimeoutException as error:
                accepted = accepted or not isinstance(error, httpx.ConnectTimeout)
                last = type(error).__name__
            except httpx.TransportError as error:
                last = f"{type(error).__name__}: {error}"
            time.sleep(min(POLL_S, max(0.0, deadline - time.monotonic())))
    if accepted:
        raise BenchError(
            f"{url} accepts connections but sent no HTTP response within {timeout_s:g} s; "
            "is it the right port? (--ready-timeout waits longer)"
        )
    raise BenchError(
        f"nothing answered at {url} within {timeout_s:g} s ({last}); start the server first, "
        "or wait longer with --ready-timeout"
    )


def identify(url: str, ready_timeout_s: float = READY_TIMEOUT_S) -> ExternalServer:
    """Wait for the server, then read who it says it is; /_bench/info is asked only of a dbbench server."""
    response = wait_until_answering(url, ready_timeout_s)
    variant = response.headers.get(IDENTITY_HEADER)
    if not variant:
        return ExternalServer(url)
    try:
        info = httpx.get(f"{url}/_bench/info", timeout=INFO_TIMEOUT_S).json()
    except (httpx.HTTPError, ValueError):
        info = None
    return ExternalServer(url, variant, info if isinstance(info, dict) else {})


def _cache_backend(info: dict[str, Any]) -> str:
    if not info:
        return UNKNOWN
    cache = info.get("cache")
    return str(cache.get("backend", UNKNOWN)) if isinstance(cache, dict) else "none"
