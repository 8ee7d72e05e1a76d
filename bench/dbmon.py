"""Connections the variant under test holds, sampled from pg_stat_activity while a cell runs.

Only one variant is under load at a time, in a database created for the run, so every client backend
on that database belongs to the variant, except dbbench's own monitoring connections (this sampler,
and the load process's pg_stat_statements reset and snapshot), which name themselves, and the idle
servers of the other variants a run keeps up between cells (bench.target_pool): given the measured
server's pid, only the backends whose client port is one of that process's sockets are counted.
"""

from __future__ import annotations

import contextlib

import psutil
import psycopg

from bench.pgstats import MONITOR_APP
from targets.sqlite import is_sqlite

# The marker keeps this monitor's own query out of the pg_stat_statements snapshots (bench.pgstats).
_COUNT = (
    "/* dbbench:pgstats */ SELECT count(*) FROM pg_stat_activity "
    "WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid() "
    "AND application_name <> %s"
)


_PORTS = " AND client_port = ANY(%s)"


def _local_ports(pid: int) -> list[int]:
    """The local TCP ports of ``pid``'s sockets (and its children's: uvicorn workers)."""
    try:
        process = psutil.Process(pid)
        processes = [process, *process.children(recursive=True)]
        return [c.laddr.port for p in processes for c in p.net_connections(kind="tcp") if c.laddr]
    except psutil.Error:
        return []


class ConnectionSampler:
    def __init__(self, dsn: str, client_pid: int | None = None) -> None:
        self.conn: psycopg.Connection[tuple[int]] | None = None
        self.peak: int | None = None
        self.client_pid = client_pid
        if is_sqlite(dsn):  # no server to ask: a SQLite file's connections are the variant's own business
            return
        with contextlib.suppress(psycopg.Error):
            self.conn = psycopg.connect(dsn, autocommit=True, connect_timeout=5, application_name=MONITOR_APP)

    def sample(self) -> None:
        if self.conn is None:
            return
        try:
            if self.client_pid is None:
                row = self.conn.execute(_COUNT, (MONITOR_APP,)).fetchone()
            else:
                ports = _local_ports(self.client_pid)
                row = self.conn.execute(_COUNT + _PORTS, (MONITOR_APP, ports)).fetchone()
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
