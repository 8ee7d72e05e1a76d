"""Connections the variant under test holds, sampled from pg_stat_activity while a cell runs.

Only one variant is under load at a time, in a database created for the run, so every client backend
on that database belongs to the variant, except dbbench's own monitoring connections (this sampler,
and the load process's pg_stat_statements reset and snapshot), which name themselves, and the idle
servers of the other variants a run keeps up between cells (bench.target_pool): the backends whose
client port is one of those servers' sockets are not counted.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import socket
from collections.abc import Sequence

import psutil
import psycopg

from bench.pgstats import MONITOR_APP
from targets.common.sqlite import is_sqlite

# The marker keeps this monitor's own query out of the pg_stat_statements snapshots (bench.pgstats).
_COUNT = (
    "/* dbbench:pgstats */ SELECT count(*) FROM pg_stat_activity "
    "WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid() "
    "AND application_name <> %s"
)


_NOT_PORTS = " AND client_port <> ALL(%s)"


def local_ports(pids: set[int]) -> list[int]:
    """The local TCP ports of the sockets ``pids`` (and their children) hold open.

    Each socket is asked its own name (``_own_ports``, under a millisecond a server) where psutil's way reads the
    system's whole TCP table per process: the kernel writes /proc/net/tcp and tcp6 out in full, 35-65 ms a read
    on this machine under load (4,700 sockets in the table), once per cell for the server measured last
    (bench.target_pool keeps what it found while a server stays idle). psutil's way remains for a process whose
    sockets cannot be borrowed (a kernel before 5.6, or no right to them)."""
    ports = []
    for pid in pids:
        try:
            server = psutil.Process(pid)
            # With --server-workers N the pools live in uvicorn's worker processes, not in the pid dbbench
            # started (a fresh-eyes run of 2026-12-01 counted both idle servers' pools: 40 for a pool of 10).
            processes = [server, *server.children(recursive=True)]
        except psutil.Error:
            continue
        for process in processes:
            own = _own_ports(process.pid)
            if own is not None:
                ports += own
                continue
            try:
                ports += [c.laddr.port for c in process.net_connections(kind="tcp") if c.laddr]
            except psutil.Error:
                continue
    return ports


# pidfd_getfd(2), Linux 5.6+, not in Python 3.11's os module; new system calls have one number on every
# architecture since Linux 5.1.
_SYS_PIDFD_GETFD = 438


def _own_ports(pid: int) -> list[int] | None:
    """The local ports of ``pid``'s TCP sockets, from a copy of each socket's descriptor (pidfd_getfd: the process
    must be ours to trace, as the servers dbbench starts are) asked for its name, then closed (the socket stays
    open in ``pid``). None when the kernel refuses or lacks the call."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    ports = []
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if not os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                    continue
            except OSError:
                continue  # closed since the listing
            copy = libc.syscall(_SYS_PIDFD_GETFD, pidfd, int(fd), 0)
            if copy < 0:
                if ctypes.get_errno() == errno.EBADF:
                    continue  # closed since the listing
                return None
            with socket.socket(fileno=copy) as borrowed:  # closes the copy only
                if borrowed.type == socket.SOCK_STREAM and borrowed.family in (socket.AF_INET, socket.AF_INET6):
                    ports.append(int(borrowed.getsockname()[1]))
    except OSError:
        return None
    finally:
        os.close(pidfd)
    return ports


class ConnectionSampler:
    def __init__(self, dsn: str, idle_pids: Sequence[int] = (), idle_ports: Sequence[int] | None = None) -> None:
        """``idle_pids``: servers kept up beside the measured one; their connections, open now, are not counted.
        They are read once, here (reading the system's sockets takes ~0.1 s of CPU on a busy machine: never
        while a window runs); an idle server opens no new connection. ``idle_ports``, when given, are those
        servers' ports already read (bench.target_pool.TargetPool.idle_ports), and ``idle_pids`` is ignored."""
        self.conn: psycopg.Connection[tuple[int]] | None = None
        self.peak: int | None = None
        self.idle_ports = list(idle_ports) if idle_ports is not None else local_ports(set(idle_pids))
        if is_sqlite(dsn):  # no server to ask: a SQLite file's connections are the variant's own business
            return
        with contextlib.suppress(psycopg.Error):
            self.conn = psycopg.connect(dsn, autocommit=True, connect_timeout=5, application_name=MONITOR_APP)

    def sample(self) -> None:
        if self.conn is None:
            return
        try:
            if not self.idle_ports:
                row = self.conn.execute(_COUNT, (MONITOR_APP,)).fetchone()
            else:
                row = self.conn.execute(_COUNT + _NOT_PORTS, (MONITOR_APP, self.idle_ports)).fetchone()
        except psycopg.Error:
            return
        if row is not None:
            self.peak = max(self.peak or 0, int(row[0]))

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()

    def __enter__(self) -> ConnectionSampler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
