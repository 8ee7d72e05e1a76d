"""The run's targets, kept up between the cells that can share them.

A run used to start a variant's uvicorn for every cell and stop it after: about a second and a half of
CPU per cell on this machine (importing FastAPI, SQLAlchemy, the driver), more than a quick cell's whole
window. A variant's server holds nothing a later cell could inherit except what it caches, so one
server per (variant, configuration) now serves every cell of the run; a server whose cache a cell (or
the contract check) filled is tainted by the caller, and its cache is emptied (POST /_bench/cache/clear)
right before its next cell, after the database was restored, so each cell of the cached variant still
starts from an empty cache, as it did when the server was replaced (about 0.9 s of start-up each time,
15 times in a quick run). A server that cannot empty its cache (the request fails, or several uvicorn
workers each hold a cache of their own and one request reaches only one of them) is replaced instead.
Servers that are known to be needed are started side by side (``start``): their start-up overlaps, and
nothing is measured meanwhile.

Only one target is ever under load; the others sit idle (an idle uvicorn costs no CPU). The connections
their pools hold open are not the measured variant's: bench.dbmon counts only the measured target's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.dbmon import local_ports
from bench.procs import Supervisor
from bench.target import Target, TargetConfig, TargetFailed, serve
from targets import Variant

Key = tuple[str, TargetConfig, int]  # (variant, configuration, uvicorn workers)


@dataclass
class _Running:
    target: Target
    stack: ExitStack
    log: Path
    tainted: bool = False  # its cache holds what a later cell must not inherit: emptied before its next use
    # The local ports of its sockets, read while it was idle (None: not read since it last served): an idle server
    # opens no connection, so what was read stays true until its next use.
    ports: list[int] | None = None
    served: set[str] = field(default_factory=set)  # what it has served (bench.runner's names), since it started


@dataclass
class TargetPool:
    """Targets by (variant, configuration); ``close`` (or leaving the run's Supervisor) stops them all."""

    supervisor: Supervisor
    log_path: Callable[[Variant, int], Path]  # where the n-th server of a variant logs
    running: dict[Key, _Running] = field(default_factory=dict)
    failed: dict[Key, TargetFailed] = field(default_factory=dict)  # did not come up when started ahead
    started: int = 0
    _threads: list[ThreadPoolExecutor] = field(default_factory=list)
    _starting: dict[Key, Future[_Running | TargetFailed]] = field(default_factory=dict)  # started, not yet settled

    def start(
        self, variants: list[Variant], config: TargetConfig, workers: int = 1, *, wait: bool = True, queue: bool = False
    ) -> None:
        """Start ``variants``' servers side by side (threads only wait on their health checks); a server
        that does not come up is remembered and reported by the cell that asks for it. With ``wait=False`` this
        returns at once, and ``use`` waits for the one server it is asked for; with ``queue`` they start one after
        the other, in order. Together they let the contract check of the first variant run while the others still
        start: six started side by side share the server CPU and all come up at the end (5-6 s under load),
        where one at a time the first is up in about a second."""
        known = self.running.keys() | self._starting.keys()
        todo = [v for v in variants if (v.name, config, workers) not in known]
        if todo:
            # The threads outlive this call, until ``close``: a child asks the kernel to end it when the *thread*
            # that started it ends (PR_SET_PDEATHSIG, bench.procs), so a finished thread would take its server along.
            threads = ThreadPoolExecutor(max_workers=1 if queue else len(todo), thread_name_prefix="dbbench-target")
            self._threads.append(threads)
            for variant in todo:
                key = (variant.name, config, workers)
                self._starting[key] = threads.submit(self._start, variant, config, workers)
        if wait:
            self._settle_all()

    def as_ready(self, variants: list[Variant], config: TargetConfig, workers: int = 1) -> Iterator[Variant]:
        """``variants`` in the order their servers came up (or failed to): those not starting any more first, in
        their own order, then each as soon as its start-up ends. The contract check takes them in this order: the
        sync variant, first in the list, is also the slowest to import (3-4 s of waiting under load)."""
        by_key = {(v.name, config, workers): v for v in variants}
        starting = {self._starting[key]: key for key in by_key if key in self._starting}
        yield from (v for key, v in by_key.items() if key not in starting.values())
        for done in as_completed(starting):
            yield by_key[starting[done]]

    def _settle(self, key: Key) -> None:
        """Wait for ``key``'s server if it is starting, and file it as running or failed."""
        future = self._starting.pop(key, None)
        if future is None:
            return
        outcome = future.result()
        if isinstance(outcome, TargetFailed):
            self.failed[key] = outcome
        else:
            self.running[key] = outcome

    def _settle_all(self) -> None:
        for key in list(self._starting):
            self._settle(key)

    def _start(self, variant: Variant, config: TargetConfig, workers: int) -> _Running | TargetFailed:
        self.started += 1
        stack = ExitStack()
        log = self.log_path(variant, self.started)
        try:
            target = stack.enter_context(
                serve(self.supervisor, variant.name, variant.app, config, log, workers=workers)
            )
        except TargetFailed as exc:
            stack.close()
            return exc
        return _Running(target, stack, log)

    def idle_ports(self, but: Target) -> list[int]:
        """The local ports of every running server's sockets except ``but``'s (bench.dbmon.ConnectionSampler's
        ``idle_ports``), each server's read once per stretch of idleness."""
        self._settle_all()  # a server still starting opens connections too
        found: list[int] = []
        for running in self.running.values():
            if running.target is but:
                continue
            if running.ports is None:
                running.ports = local_ports({running.target.child.pid})
            found += running.ports
        return found

    def served(self, target: Target, what: str) -> bool:
        """Whether the running ``target`` has already served ``what`` (an opaque name); from now on it has."""
        for running in self.running.values():
            if running.target is target:
                seen = what in running.served
                running.served.add(what)
                return seen
        return False

    def taint(self, variant: Variant, config: TargetConfig, workers: int = 1) -> None:
        """``variant``'s server under ``config`` holds state a later cell must not inherit (its cache was
        filled): the next ``use`` empties its cache first, or starts a new server when it cannot."""
        running = self.running.get((variant.name, config, workers))
        if running is not None:
            running.tainted = True

    def log(self, variant: Variant, config: TargetConfig) -> Path:
        """The log of ``variant``'s one-worker server under ``config`` (the contract check's; KeyError when none)."""
        return self.running[(variant.name, config, 1)].log

    def retire_one(self, variant: Variant, config: TargetConfig) -> None:
        """Stop ``variant``'s server under ``config`` (e.g. the contract check's, once it is not needed)."""
        with suppress(TargetFailed):  # its own cell or check already reported how it ended
            self._stop((variant.name, config, 1))

    @contextmanager
    def use(self, variant: Variant, config: TargetConfig, workers: int = 1) -> Iterator[Target]:
        """The target for one cell of ``variant`` under ``config``. Raises TargetFailed when it does not come
        up, or when it died during the cell (it is then stopped; the next cell starts a new one)."""
        key = (variant.name, config, workers)
        self._settle(key)
        if key in self.failed:
            raise self.failed.pop(key)
        running = self.running.get(key)
        if running is not None and (
            not running.target.child.alive() or (running.tainted and not _empty_cache(running.target, workers))
        ):
            self._stop(key)
            running = None
        elif running is not None:
            running.tainted = False
        if running is not None:
            running.ports = None  # it serves now: the connections it opens change what idle_ports must skip
        if running is None:
            # One server per variant at a time: a sweep's settings (pool sizes, cache backends) replace each
            # other, so the connections held open stay within what refuse_pool_sizes allowed for per variant.
            for other in [k for k in self.running if k[0] == variant.name]:
                with suppress(TargetFailed):
                    self._stop(other)
            outcome = self._start(variant, config, workers)
            if isinstance(outcome, TargetFailed):
                raise outcome
            running = self.running[key] = outcome
        try:
            yield running.target
        finally:
            if not running.target.child.alive():
                # serve()'s own check, made when its ``with`` ends: "died under load", with its log's reason.
                self._stop(key)

    def _stop(self, key: Key) -> None:
        self._settle(key)
        running = self.running.pop(key, None)
        if running is not None:
            running.stack.close()

    def close(self) -> None:
        self._settle_all()

        def stop(key: Key) -> None:
            with suppress(TargetFailed):  # died idle after its last cell: no cell is left to report it on
                self._stop(key)

        # Side by side: each waits for its uvicorn's graceful shutdown (1.1 s for six one after another).
        with ThreadPoolExecutor(max_workers=max(1, len(self.running)), thread_name_prefix="dbbench-stop") as stops:
            list(stops.map(stop, list(self.running)))
        for threads in self._threads:
            threads.shutdown()
        self._threads.clear()


def _empty_cache(target: Target, workers: int) -> bool:
    """Ask ``target`` to empty its cache; False when it could not (the caller replaces the server instead)."""
    if workers > 1:
        return False  # each worker has its own in-process cache, and a request reaches one of them
    try:
        return httpx.post(f"{target.url}/_bench/cache/clear", timeout=10).status_code == 200
    except httpx.HTTPError:
        return False
