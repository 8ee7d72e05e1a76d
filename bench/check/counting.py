"""Queries per request, as the target itself measured them: POST /_bench/stats/reset, the request, GET
/_bench/stats. Never guessed from the client.

TechEmpower's rule (/db 1, /queries?queries=N N, /updates N reads plus N single or 1 batch writes,
/fortunes 1), relaxed to "at most" on the endpoints a variant's cache declares in /_bench/info
(cache.fewer_queries_ok). Endpoints that take a size are also measured at two sizes: growth there is
reported as an N+1 suspect (a finding, not a failure) unless one query per row is the contract (/queries,
/updates). A target that is not instrumented, or a server that is not dbbench (its /_bench/* is never
asked), is not counted, and ``info`` says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bench.check.probe import JSON_TYPE, Probe
from bench.check.rules import number, short

# Endpoints whose result size the client picks, with the parameter that picks it, and the two sizes at
# which queries per request are compared.
SIZED_ENDPOINTS: tuple[tuple[str, str], ...] = (
    ("/queries", "queries"),
    ("/updates", "queries"),
    ("/authors/lazy", "limit"),
    ("/authors/eager", "limit"),
)
GROWTH_SIZES = (5, 20)
# One query per row is what TechEmpower asks of these: their growth is the contract, not an N+1.
GROWTH_BY_CONTRACT = frozenset({"/queries", "/updates"})
WRITE_VERBS = ("UPDATE", "INSERT", "DELETE")


@dataclass(frozen=True)
class Counts:
    """What the target recorded for one endpoint since the last reset."""

    requests: int
    queries: int
    reads: int
    writes: int

    @property
    def per_request(self) -> float:
        return self.queries / self.requests


class QueryCounter:
    """Counts through /_bench/stats once ``detect`` found the target instrumented; a no-op otherwise."""

    def __init__(self, probe: Probe, info: dict[str, Any]) -> None:
        self.probe = probe
        self.info = info  # the check's findings: the counter writes "query_counts" and what it measured
        self.counting = False
        self.fewer_queries_ok: frozenset[str] = frozenset()
        self._per_request: dict[str, int | float] = {}

    def detect(self) -> None:
        """Count queries only if the target says it records them (GET /_bench/stats, instrumented: true)."""
        response = self.probe.send("GET", "/_bench/stats")
        try:
            stats = response.json() if response.status_code == 200 else None
        except ValueError:
            stats = None
        self.counting = isinstance(stats, dict) and stats.get("instrumented") is True
        if self.counting:
            self.info["query_counts"] = "checked"
            self.info["queries_per_request"] = self._per_request
        else:
            self.info["query_counts"] = "not checked: the target is not instrumented (no /_bench/stats)"

    def reset(self) -> None:
        if not self.counting:
            return
        response = self.probe.send("POST", "/_bench/stats/reset")
        if response.status_code != 204:
            self.probe.problem(f"/_bench/stats/reset: HTTP {response.status_code}, expected 204; counts not checked")
            self.counting = False
            self.info["query_counts"] = "not checked: /_bench/stats/reset failed"

    def counts(self, endpoint: str) -> Counts | None:
        """The target's counts for ``endpoint`` since the last reset; None if not counting or none served."""
        if not self.counting:
            return None
        stats = self.probe.get_json("/_bench/stats", JSON_TYPE)
        try:
            served = stats["endpoints"][endpoint]
            reads = writes = 0
            for statement in stats["statements"]:
                calls = int(statement["endpoints"].get(endpoint, 0))
                if statement["fingerprint"].lstrip().upper().startswith(WRITE_VERBS):
                    writes += calls
                else:
                    reads += calls
            counts = Counts(int(served["requests"]), int(served["queries"]), reads, writes)
        except (KeyError, TypeError, AttributeError, ValueError):
            self.probe.problem(f"/_bench/stats: no usable counts for {endpoint}: {short(stats)}")
            return None
        return counts if counts.requests else None

    def record(self, path: str, endpoint: str) -> Counts | None:
        counts = self.counts(endpoint)
        if counts is not None:
            self._per_request[path] = number(counts.per_request)
        return counts

    def expect(self, path: str, endpoint: str, expected: int, *, fewer_ok_like: str | None = None) -> None:
        """``fewer_ok_like``: an endpoint served by the same store method, whose cache rule applies here too."""
        counts = self.record(path, endpoint)
        if counts is None:
            return
        saw = counts.per_request
        fewer_ok = bool({endpoint, fewer_ok_like} & self.fewer_queries_ok)
        if saw == expected or (fewer_ok and saw <= expected):
            return
        at_most = "at most " if fewer_ok else ""
        noun = "query" if expected == 1 else "queries"
        each = " per request" if counts.requests > 1 else ""
        self.probe.problem(f"{path}: expected {at_most}{expected} {noun}{each}, saw {number(saw)}")

    def expect_updates(
        self, path: str, expected: int, counts: Counts, returned: Mapping[int, int], changed: int
    ) -> None:
        """N reads, then either one batch write or one write per distinct id. An ORM skips rows whose new
        value equals the stored one, so per-row writes may be as few as the rows that really changed."""
        self._per_request[path] = number(counts.per_request)
        distinct = len(returned)
        writes_ok = counts.writes == 1 or changed <= counts.writes <= distinct
        if counts.requests == 1 and counts.reads == expected and writes_ok:
            return
        self.probe.problem(
            f"{path}: expected {expected} reads + ({distinct} single or 1 batch) writes, "
            f"saw {counts.reads} reads + {counts.writes} writes"
        )

    def growth(self, *, writes: bool) -> None:
        """Queries per request at two result sizes: growth with the size is the N+1 signature.
        ``writes=False``: /updates is not sent."""
        if not self.counting:
            return
        growth: dict[str, dict[str, int | float]] = {}
        for endpoint, parameter in SIZED_ENDPOINTS:
            if endpoint == "/updates" and not writes:
                continue
            for size in GROWTH_SIZES:
                self.reset()
                if self.probe.get(f"{endpoint}?{parameter}={size}", JSON_TYPE) is None:
                    break
                counts = self.counts(endpoint)
                if counts is None:
                    break
                growth.setdefault(endpoint, {})[str(size)] = number(counts.per_request)
        suspects: list[dict[str, Any]] = []
        by_contract: list[dict[str, Any]] = []
        for endpoint, by_size in growth.items():
            small, large = (by_size.get(str(size)) for size in GROWTH_SIZES)
            if small is None or large is None or large <= small:
                continue
            if endpoint in GROWTH_BY_CONTRACT:
                message = "one query per row is the TechEmpower contract"
                by_contract.append({"endpoint": endpoint, "queries_per_request": large, "message": message})
            else:
                message = f"N+1 suspected: {large} similar statements per request"
                suspects.append({"endpoint": endpoint, "queries_per_request": large, "message": message})
        self.info["query_growth"] = growth
        self.info["nplus1_suspects"] = suspects
        self.info["query_growth_by_contract"] = by_contract
