"""What a target process is told, declared once: ``TargetSpec.to_env()`` (the orchestrator's side) and
``TargetSpec.from_env()`` (the variant's side) sit together, so a setting cannot be spelled two ways or
forgotten on one side (pyperf's manager/worker shape). Every ``DBBENCH_*`` name a target reads is here.

Defaults live in the dataclasses and nowhere else; ``from_env`` of an empty environment gives them back
(except the DSN, which has none).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_POOL_SIZE = 10
CACHE_BACKENDS = ("memory", "redis")

# The environment variables, one per setting.
DSN = "DBBENCH_DSN"
POOL_SIZE = "DBBENCH_POOL_SIZE"
VARIANT = "DBBENCH_VARIANT"
INSTRUMENT = "DBBENCH_INSTRUMENT"
CACHE = "DBBENCH_CACHE"
REDIS_URL = "DBBENCH_REDIS_URL"
PROFILE_DIR = "DBBENCH_PROFILE_DIR"

_OFF = ("0", "false", "no", "off")


@dataclass(frozen=True)
class CacheSpec:
    """Which cache backs the cached variant: in-process ``memory``, or ``redis`` at ``redis_url``."""

    backend: str = "memory"
    redis_url: str | None = None

    def to_env(self) -> dict[str, str]:
        env = {CACHE: self.backend}
        if self.redis_url is not None:
            env[REDIS_URL] = self.redis_url
        return env

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> CacheSpec:
        """Raises RuntimeError naming the variable when the backend is unknown or redis lacks its URL."""
        backend = environ.get(CACHE) or cls.backend
        if backend not in CACHE_BACKENDS:
            raise RuntimeError(f"{CACHE} must be one of {', '.join(CACHE_BACKENDS)}, got {backend!r}")
        redis_url = environ.get(REDIS_URL) or None
        if backend == "redis" and redis_url is None:
            raise RuntimeError(f"{CACHE}=redis needs {REDIS_URL} (e.g. redis://127.0.0.1:6379/0)")
        return cls(backend, redis_url)


@dataclass(frozen=True)
class TargetSpec:
    """A target's whole configuration.

    ``dsn``: the database as its user wrote it (libpq URL or key=value; each driver gets its own form from
    targets.common.connargs), or a ``sqlite:`` URL. ``pool_size``: connections per pool (the cap on simultaneous
    connections for nopool). ``instrument``: statement hooks on/off, None = the variant's default.
    ``profile_dir``: where a profiling pass saves its pyinstrument session; None = no profiler.
    """

    dsn: str
    pool_size: int = DEFAULT_POOL_SIZE
    variant: str = ""
    instrument: bool | None = None
    cache: CacheSpec = field(default_factory=CacheSpec)
    profile_dir: str | None = None

    def to_env(self) -> dict[str, str]:
        """The environment a target process is started with (added to the parent's)."""
        env = {DSN: self.dsn, POOL_SIZE: str(self.pool_size), **self.cache.to_env()}
        if self.variant:
            env[VARIANT] = self.variant
        if self.instrument is not None:
            env[INSTRUMENT] = "1" if self.instrument else "0"
        if self.profile_dir is not None:
            env[PROFILE_DIR] = self.profile_dir
        return env

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> TargetSpec:
        """Read back what ``to_env`` wrote; raises RuntimeError naming the variable that is missing or wrong."""
        dsn = environ.get(DSN)
        if not dsn:
            raise RuntimeError(f"{DSN} is not set (e.g. postgresql://user@host:5432/dbname)")
        raw_pool = environ.get(POOL_SIZE) or str(DEFAULT_POOL_SIZE)
        try:
            pool_size = int(raw_pool)
        except ValueError:
            raise RuntimeError(f"{POOL_SIZE} must be an integer, got {raw_pool!r}") from None
        if pool_size < 1:
            raise RuntimeError(f"{POOL_SIZE} must be at least 1, got {pool_size}")
        return cls(
            dsn=dsn,
            pool_size=pool_size,
            variant=environ.get(VARIANT, ""),
            instrument=instrument_from_env(environ),
            cache=CacheSpec.from_env(environ),
            profile_dir=profile_dir_from_env(environ),
        )


# The two settings read when a variant's app is built (at import, before lifespan reads the rest):
# Starlette fixes the middleware stack then, and a switch that is off must leave nothing on the request path.


def instrument_from_env(environ: Mapping[str, str] = os.environ) -> bool | None:
    """DBBENCH_INSTRUMENT: "0"/"false"/"no"/"off" → False, any other value → True, unset or empty → None."""
    value = environ.get(INSTRUMENT, "").strip().lower()
    if not value:
        return None
    return value not in _OFF


def profile_dir_from_env(environ: Mapping[str, str] = os.environ) -> str | None:
    return environ.get(PROFILE_DIR, "").strip() or None
