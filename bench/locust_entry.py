"""Entry point of the load process: Locust plus dbbench's own sampling. Never import this module.

Run as ``python -m bench.locust_entry`` with the load spec in the environment (bench.loadspec: the
whole configuration, Locust's command line included), or as a Locust worker with Locust's own
``--worker`` arguments and no spec: a worker receives its spec from the master, in Locust's spawn
message. Importing locust monkey-patches the whole process with gevent, which is why the
orchestrator only ever starts this as a child process.

Locust's own statistics round latencies to 1 ms buckets, so every request event is recorded here
into HDR histograms at microsecond resolution instead. Timing of the window is ours too: samples
from the warm-up are dropped, and the run stops itself once the measured window ends, so no
request that Locust kills at shutdown (and reports half-finished) can leak into the figures.
The edges of the window are also where the target's and the database's CPU are read and where
the target's own statement statistics are reset and collected, so all figures cover one window.

With Locust workers (``--master`` plus ``--worker`` processes), the master owns the clock: it tells
the workers when the window opens and closes, each worker sends back its own window, and the
master merges them (histograms merged, counts added) into the one file the orchestrator reads.

A user's locustfile keeps what Locust promises it: Locust's own statistics (dbbench unhooks them
only for its own scenarios, see ``_drop_locust_stats``), its quit-time listeners, and its
``environment.process_exit_code``, which is written to the results so the cell can fail on it.
When the load stops before the window closes (the file called ``runner.quit()``, or every user
stopped), the file says so and why: the failures and user errors seen so far.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import gevent
from locust import User, events
from locust.env import Environment
from locust.main import main as locust_main
from locust.rpc.protocol import Message
from locust.runners import STATE_CLEANUP, STATE_RUNNING, STATE_STOPPED, STATE_STOPPING, MasterRunner, WorkerRunner

from bench import pgstats
from bench.dsn import redact
from bench.loadspec import SESSION_IDLE_S, WORKER_OPTION, LoadSpec, file_sha256
from bench.resources import CpuSetMeter, Meter
from bench.sampling import BEHIND_KEY, INTENDED_KEY, Pacer, WarmupEvidence, Window, merge_windows

_RSS_SAMPLE_S = 0.25
_POLL_S = 0.1
_SESSION_POLL_S = 0.02  # how soon a waiting session sees the next cell's spec file
_WARMUP_POLL_S = 0.01  # how soon an evidence-based warm-up sees that every user is warm
_REPORT_TIMEOUT_S = 30.0
_TEXT_LIMIT = 120
OPEN, CLOSE, REPORT = "dbbench_open", "dbbench_close", "dbbench_window"


def _target_call(host: str, method: str, path: str) -> Any:
    # Only ever our own target, on the http://127.0.0.1 host the orchestrator passed.
    request = urllib.request.Request(f"{host.rstrip('/')}{path}", method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            body = response.read()
    except (urllib.error.URLError, OSError):
        return None
    return json.loads(body) if body else None


class Trouble:
    """Failed requests and user errors before the window opens, kept to explain a load that stops
    early. Listens during the warm-up only (it is unhooked when the window opens: hot path)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.samples: dict[str, str] = {}

    def _add(self, key: str, sample: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1
        if key not in self.samples:  # masked, then cut (a cut can split a password so that the mask misses it)
            self.samples[key] = redact(sample)[:_TEXT_LIMIT]

    def on_request(
        self,
        request_type: str,
        name: str,
        exception: BaseException | None = None,
        response: Any = None,
        **_: Any,
    ) -> None:
        if exception is None:
            return
        status = getattr(response, "status_code", None)
        kind = f"HTTP {status}" if isinstance(status, int) and status >= 400 else type(exception).__name__
        self._add(f"{kind} {request_type} {name}", str(exception))

    def on_user_error(self, user_instance: Any, exception: BaseException, tb: Any = None, **_: Any) -> None:
        self._add(f"{type(exception).__name__} in {type(user_instance).__name__}", str(exception))

    def summary(self, limit: int = 3) -> str:
        """E.g. "4 × HTTP 404 POST /v1/login (login refused: HTTP 404)"; most frequent first."""  # noqa: RUF002
        if not self.counts:
            return "no request had failed"
        ranked = sorted(self.counts.items(), key=lambda item: -item[1])
        parts = []
        for key, count in ranked[:limit]:
            sample = self.samples[key]
            parts.append(f"{count} × {key}" + (f" ({sample})" if sample and sample not in key else ""))
        more = len(ranked) - limit
        return ", ".join(parts) + (f" and {more} more kind(s)" if more > 0 else "")


class LoadProcess:
    """One load process: its spec (a worker's arrives from the master), its window, and how it ends."""

    def __init__(self, spec: LoadSpec | None) -> None:
        self.spec = spec
        # A worker's window is opened and closed by the master: it needs no times of its own.
        self.window = (
            Window(0.0, 0.0) if spec is None else Window(spec.warmup_s, spec.duration_s, max_requests=spec.max_requests)
        )
        self.trouble = Trouble()
        self.reports: list[dict[str, Any]] = []
        self.result: dict[str, Any] | None = None  # written when Locust quits (after the file's own listeners)
        self.written = False  # a session's cell whose result is already on disk
        self.serving = False  # a session's loop is running (Locust fires test_start again on every restart)

    def install(self) -> None:
        self._listen()
        events.init.add_listener(self.on_init)
        events.test_start.add_listener(self.on_test_start)
        # Registered before the locustfile is imported, and Locust fires ``quitting`` in reverse order:
        # this runs after the file's own quit-time listeners, so it sees the exit code they set.
        events.quitting.add_listener(self.on_quitting)

    def _listen(self) -> None:
        events.request.add_listener(self.window.on_request)
        events.request.add_listener(self.trouble.on_request)
        events.user_error.add_listener(self.trouble.on_user_error)
        events.user_error.add_listener(self.window.on_user_error)

    def _unlisten(self) -> None:
        for hook, listener in (
            (events.request, self.window.on_request),
            (events.request, self.trouble.on_request),
            (events.user_error, self.trouble.on_user_error),
            (events.user_error, self.window.on_user_error),
        ):
            if listener in hook._handlers:
                hook.remove_listener(listener)

    def on_init(self, environment: Environment, runner: Any = None, **_: Any) -> None:
        if isinstance(runner, WorkerRunner):
            runner.register_message(OPEN, lambda environment, msg, **_: self.open_window())
            runner.register_message(CLOSE, self._close_as_worker)
        elif isinstance(runner, MasterRunner):
            assert self.spec is not None and environment.parsed_options is not None
            setattr(environment.parsed_options, WORKER_OPTION, self.spec.for_workers().to_json())
            runner.register_message(REPORT, lambda environment, msg, **_: self.reports.append(msg.data))

    def open_window(self) -> None:
        events.request.remove_listener(self.trouble.on_request)  # the window's requests pay for no extra hook
        self.window.open()

    def _close_as_worker(self, environment: Environment, msg: Message, **_: Any) -> None:
        self.window.close()
        assert isinstance(environment.runner, WorkerRunner)
        environment.runner.send_message(REPORT, self.window.to_dict())

    def on_test_start(self, environment: Environment, **_: Any) -> None:
        runner = environment.runner
        if isinstance(runner, WorkerRunner):
            # Locust has just copied the master's custom options into ours (its spawn message).
            self.spec = self._spec_from_master(environment)
            if self.spec is None:
                runner.quit()
                return
            self.window.max_requests = self.spec.max_requests
        assert self.spec is not None
        if self.spec.own_scenario:
            _drop_locust_stats(environment)
        if self.spec.rate and not isinstance(runner, MasterRunner):
            _pace(environment.user_classes, self.spec.rate, max(1, self.spec.users))
        if self.spec.session is not None:
            if not self.serving:
                self.serving = True
                gevent.spawn(self.serve, environment)
        elif not isinstance(runner, WorkerRunner):
            gevent.spawn(self.drive, environment)

    @staticmethod
    def _spec_from_master(environment: Environment) -> LoadSpec | None:
        text = getattr(environment.parsed_options, WORKER_OPTION, None)
        if not text:
            print("error: the master sent no dbbench load spec; join a `bench run` master", file=sys.stderr)
            return None
        spec = LoadSpec.from_json(text)
        loaded = [Path(p) for p in environment.parsed_locustfiles or []]
        if len(loaded) != 1 or file_sha256(loaded[0]) != spec.locustfile_sha256:
            # E.g. the file was downloaded from the previous cell's master just before it quit.
            print(f"error: this worker's locustfile is not the master's {spec.locustfile.name}", file=sys.stderr)
            return None
        return spec

    def _stopped(self, runner: Any) -> str | None:
        """Why the load stopped on its own, or None while it runs."""
        if runner.state in (STATE_STOPPING, STATE_STOPPED, STATE_CLEANUP):
            return "the locustfile stopped the runner"
        # A master's user count comes from its workers' heartbeats and may read 0 between two of them.
        if runner.state == STATE_RUNNING and runner.user_count == 0 and not isinstance(runner, MasterRunner):
            return "every user stopped"
        return None

    def _wait(self, runner: Any, seconds: float) -> bool:
        """Sleep ``seconds`` while watching the load; False (and the reason recorded) if it stopped."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or self.window.closed:
                return True
            gevent.sleep(min(_POLL_S, left))
            how = self._stopped(runner)
            if how is not None:
                self.result = {"stopped": self._stop_reason(how)}
                return False

    def _stop_reason(self, how: str) -> str:
        """E.g. "the load stopped during warm-up: 4 x HTTP 404 POST /v1/login (...), then the locustfile
        stopped the runner"; in the window, the window's own error kinds say what had gone wrong."""
        if self.window.start is None:
            return f"the load stopped during warm-up: {self.trouble.summary()}, then {how}"
        errors = sorted(self.window.errors.items(), key=lambda item: -item[1])[:3]
        seen = ", ".join(f"{count} × {kind}" for kind, count in errors) or "no request had failed"
        return f"the load stopped in the measured window: {seen}, then {how}"

    def _warm_up(self, runner: Any, spec: LoadSpec) -> float | None:
        """Wait out the cell's warm-up; the seconds it took, or None when the load stopped (reason recorded).

        With ``spec.warmup_responses``, it ends as soon as every user has completed that many requests and
        ``spec.warmup_floor_s`` has passed (bench.sampling.WarmupEvidence), ``spec.warmup_s`` at most. Not for a
        master: its users are in its workers, whose requests it does not see."""
        started = time.monotonic()
        if not spec.warmup_responses or spec.users < 1 or isinstance(runner, MasterRunner):
            return time.monotonic() - started if self._wait(runner, spec.warmup_s) else None
        evidence = WarmupEvidence(spec.users, spec.warmup_responses, spec.warmup_floor_s, gevent.getcurrent)
        events.request.add_listener(evidence.on_request)
        try:
            deadline = started + spec.warmup_s
            while not evidence.done():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                if not self._wait(runner, min(_WARMUP_POLL_S, left)):
                    return None
        finally:
            events.request.remove_listener(evidence.on_request)
        return time.monotonic() - started

    def drive(self, environment: Environment) -> None:
        """One cell, then quit: the window (or why there is none) is written by ``on_quitting``."""
        assert environment.runner is not None
        self.measure(environment)
        self._quit(environment.runner)

    def serve(self, environment: Environment) -> None:
        """A load session: measure the cell of every spec file the orchestrator drops in the session folder,
        in turn, each after its own warm-up; quit when told to (a ``quit`` file), when a cell's load stopped
        on its own, when the orchestrator is gone, or after SESSION_IDLE_S without a cell.

        Between two cells every user is stopped and new ones started against the next cell's host, so a
        cell's users, their connections and their warm-up are its own, as with a process per cell; what the
        session saves is Locust's start-up (importing it, gevent's patching), about a second of CPU a cell."""
        assert self.spec is not None and self.spec.session is not None and environment.runner is not None
        runner, folder = environment.runner, self.spec.session
        standby = self.spec.standby  # started ahead: its first cell's users are not running yet
        parent = os.getppid()  # the orchestrator; when it is gone (re-parented), nobody will send a cell
        number = 1
        while True:
            command = folder / f"cell-{number}.json"
            idle_until = time.monotonic() + SESSION_IDLE_S
            while not command.exists():
                if (folder / "quit").exists() or os.getppid() != parent or time.monotonic() > idle_until:
                    self.written = True  # nothing in flight: on_quitting has nothing to write
                    self._quit(runner)
                    return
                gevent.sleep(_SESSION_POLL_S)
            spec = LoadSpec.from_json(command.read_text(encoding="utf-8"))
            if number > 1 or standby:
                self._next_cell(environment, spec)
            else:  # the first cell's users were started by Locust itself, against its host
                self.spec = spec
            self.measure(environment)
            # Stopped before the orchestrator learns the cell is over: no user of this session may load the
            # next cell's target (this session's, or another's) while it is measured.
            runner.stop()
            self._write(environment)
            if self.result is not None and "stopped" in self.result:
                self._quit(runner)
                return
            number += 1

    def _next_cell(self, environment: Environment, spec: LoadSpec) -> None:
        """Fresh users for ``spec``'s cell (its host and user count), a fresh window and trouble log."""
        runner = environment.runner
        assert runner is not None
        runner.stop()  # --stop-timeout 0: in-flight requests of the last cell end here, outside any window
        self._unlisten()
        self.spec, self.result, self.written = spec, None, False
        self.window = Window(spec.warmup_s, spec.duration_s, max_requests=spec.max_requests)
        self.trouble = Trouble()
        self._listen()
        environment.host = spec.host
        runner.start(spec.users, spawn_rate=spec.users)

    def measure(self, environment: Environment) -> None:
        """Warm up, then measure one window; sets ``self.result`` (the window, or why the load stopped)."""
        spec, window, runner = self.spec, self.window, environment.runner
        assert spec is not None and runner is not None
        host = environment.host or ""
        target, database = Meter(spec.target_pid), Meter(spec.db_pid)
        # This process's own CPUs: under a CPU split (bench.topology), the load generator's set.
        load_cpus = CpuSetMeter(os.sched_getaffinity(0))
        warmed = self._warm_up(runner, spec)
        if warmed is None:
            return
        # The window's opening edge: three round trips sent at once (gevent), not one after the other: each of the
        # target's waits behind the warm-up's requests in flight (~56 ms a cell together, measured under load).
        edge = []
        if spec.target_stats:
            edge.append(gevent.spawn(_target_call, host, "POST", "/_bench/stats/reset"))
            # Cumulative counters (cache hits and misses, background refreshes) are diffed between the edges.
            edge.append(gevent.spawn(_target_call, host, "GET", "/_bench/info"))
        if spec.pg_dsn:
            edge.append(gevent.spawn(pgstats.reset, spec.pg_dsn))
        gevent.joinall(edge, raise_error=True)
        info_open = edge[1].value if spec.target_stats else None
        target.start()
        database.start()
        load_cpus.start()
        self.open_window()
        if isinstance(runner, MasterRunner):
            runner.send_message(OPEN)
        deadline = time.monotonic() + spec.duration_s
        while time.monotonic() < deadline and not window.closed:
            if not self._wait(runner, min(_RSS_SAMPLE_S, max(0.0, deadline - time.monotonic()))):
                return
            target.sample()
        if not window.closed:
            window.close()
        # Right at the window's close, before anything else takes time: the load keeps running meanwhile, and
        # its queries would count against the window's requests (measured: 21 -> 23.9 per request on 1 s cells).
        pg_statements = [stat.to_dict() for stat in pgstats.snapshot(spec.pg_dsn)] if spec.pg_dsn else None
        workers = 0
        if isinstance(runner, MasterRunner):
            workers = runner.worker_count
            runner.send_message(CLOSE)
            deadline = time.monotonic() + _REPORT_TIMEOUT_S
            while len(self.reports) < workers and time.monotonic() < deadline:
                gevent.sleep(0.05)
        target.stop()
        database.stop()
        load_cpus.stop()
        if spec.session is not None:
            # Every figure of the window is read: its users are done (serve stops them anyway). Stopped before
            # the target is asked for its own account, so those requests do not queue behind the load (~60 ms
            # per cell under load), and the target's counters take in fewer requests sent after the window.
            runner.stop()
        stats = info_close = None
        if spec.target_stats:  # both at once, as at the opening edge
            asked = [gevent.spawn(_target_call, host, "GET", path) for path in ("/_bench/stats", "/_bench/info")]
            gevent.joinall(asked, raise_error=True)
            stats, info_close = (call.value for call in asked)
        window.extra.update(
            load_cpus_busy=load_cpus.busy,
            target_cpu_s=target.cpu_s,
            target_rss_mb=target.peak_rss_mb,
            db_cpu_s=database.cpu_s,
            target_stats=stats,
            target_window={"open": info_open, "close": info_close} if spec.target_stats else None,
            pg_statements=pg_statements,
        )
        if spec.warmup_responses:
            window.extra["warmup_s"] = warmed  # what the evidence let the warm-up be, not its cap
        own = window.to_dict()
        if workers:
            # The master sends no requests of its own: only the workers count as load processes.
            own["load_processes"] = 0
            own["load_cpu_s"] = 0.0
            own["workers_reported"] = len(self.reports)
            own["workers_expected"] = workers
        self.result = merge_windows([own, *self.reports])

    @staticmethod
    def _quit(runner: Any) -> None:
        runner.quit()

    def on_quitting(self, environment: Environment, **_: Any) -> None:
        """Write what the orchestrator reads (bench.load.run_load): the window, or why there is none."""
        if self.spec is None or self.spec.out is None:
            return  # a worker: its window went to the master
        if not self.written:
            self._write(environment)

    def _write(self, environment: Environment) -> None:
        assert self.spec is not None and self.spec.out is not None
        result = self.result
        if result is None:
            # Locust quit before our window closed, and not because we asked: the file stopped the runner.
            result = {"stopped": self._stop_reason("the locustfile stopped the runner")}
        result["locustfile_exit_code"] = environment.process_exit_code
        tmp = self.spec.out.with_name(self.spec.out.name + ".tmp")
        tmp.write_text(json.dumps(result), encoding="utf-8")
        os.replace(tmp, self.spec.out)
        self.written = True


def _pace(user_classes: list[type[User]], rate: float, users: int) -> None:
    """Turn every user into an open-model connection sending ``rate / users`` *requests* per second.

    The schedule is kept per request (each call of the user's HTTP client waits for its slot), not per
    task, so a task that sends two requests sends them in two slots instead of running over the rate.
    The users' own wait time is replaced by zero: think time cannot be combined with a schedule (and a
    file that declares any is refused before the run, see bench.locustfiles)."""
    interval = users / rate

    for cls in user_classes:
        original_on_start = cls.on_start
        original_context = cls.context

        def on_start(self: User, _original: Any = original_on_start) -> None:
            # Spread the connections' first sends over one interval instead of firing all at once.
            gevent.sleep(random.uniform(0, interval))
            pacer = Pacer(interval, time.monotonic() - interval)  # the first advance lands on "now"
            self._dbbench_pacer = pacer  # type: ignore[attr-defined]
            client = getattr(self, "client", None)
            if client is not None:
                send = client.request

                def request(*args: Any, **kwargs: Any) -> Any:
                    delay = pacer.advance(time.monotonic())
                    if delay > 0:
                        gevent.sleep(delay)
                    return send(*args, **kwargs)

                client.request = request
            _original(self)

        def context(self: User, _original: Any = original_context) -> dict[str, Any]:
            pacer: Pacer | None = getattr(self, "_dbbench_pacer", None)
            base: dict[str, Any] = _original(self)
            return {**base, INTENDED_KEY: pacer.intended, BEHIND_KEY: pacer.behind} if pacer else base

        cls.on_start = on_start  # type: ignore[method-assign]
        cls.context = context  # type: ignore[method-assign]
        cls.wait_time = _no_think_time


def _no_think_time(self: User) -> float:
    return 0.0


def _drop_locust_stats(environment: Environment) -> None:
    """Unhook Locust's own per-request statistics: dbbench never reads them (its histograms are recorded by
    Window.on_request), and on a 2-core machine every microsecond the load process burns is taken from
    the target and the database it is measuring. py-spy on the load process during `bench calibrate`:
    firing the request event took 2.9 % of its samples with Locust's listener, 1.5 % without.
    Only for dbbench's own scenarios: a user's file may read ``environment.stats`` (a quit-time gate)."""
    handlers = environment.events.request._handlers
    handlers[:] = [h for h in handlers if getattr(h, "__qualname__", "") != "Runner.__init__.<locals>.on_request"]


def main() -> int:
    spec = LoadSpec.from_env(os.environ)
    LoadProcess(spec).install()
    # A worker is started with Locust's own --worker arguments; everything else gets them from its spec.
    sys.argv = ["locust", *(spec.locust_args() if spec else sys.argv[1:])]
    code = locust_main()
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
