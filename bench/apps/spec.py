"""What ``--app``, ``--app-dir``, ``--python``, ``--db-env``, ``--db-url-style``, ``--app-env`` and ``--setup`` say,
parsed once into an ``AppsConfig``; every refusal is one line (``BenchError``).

``--app [LABEL=]MODULE:ATTR`` is uvicorn's import syntax; ``--app-dir [LABEL=]DIR`` the folder the app is
imported from (default: the current directory), so two checkouts of one module never mix.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import metadata
from bench.errors import BenchError
from targets import Variant

# uvicorn's "module.path:attribute" (an attribute path may be dotted too).
_IMPORT = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,30}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
URL_STYLES = ("libpq", "asyncpg", "psycopg")
# Files whose text names the app's database driver, read to detect --db-url-style when it is not given.
_DEPENDENCY_FILES = ("pyproject.toml", "requirements.txt", "requirements.in", "setup.cfg", "setup.py", "Pipfile")
DEFAULT_DB_ENV = "DATABASE_URL"
DEFAULT_SERVER_WORKERS = 1
APP_MODULE = "(app)"  # a Variant's module for a user's app: it is not one of dbbench's targets


@dataclass(frozen=True)
class App:
    """One user app: ``label`` names it in the results, ``target`` is MODULE:ATTR, imported from ``directory``
    with ``python``; ``url_style`` is how its driver wants the database URL, ``style_source`` why."""

    label: str
    target: str
    directory: Path
    python: str
    url_style: str
    style_source: str

    @property
    def variant(self) -> Variant:
        """The app as the planner sees it (a name to interleave; bench.plan)."""
        return Variant(self.label, APP_MODULE)

    def describe(self) -> dict[str, Any]:
        return {
            "app": self.target,
            "directory": str(self.directory),
            "git": metadata.git_revision(self.directory),
            "python": self.python,
            "db_url_style": f"{self.url_style} ({self.style_source})",
        }


@dataclass(frozen=True)
class AppsConfig:
    """The apps of one run and what each is given: ``db_env`` names the variable that carries the database URL,
    ``env`` more variables, ``setup`` shell-free commands run once per app in its directory (argv lists)."""

    apps: list[App]
    db_env: str = DEFAULT_DB_ENV
    env: dict[str, str] = field(default_factory=dict)
    setup: list[list[str]] = field(default_factory=list)
    server_workers: int = DEFAULT_SERVER_WORKERS
    roles: dict[str, str] = field(default_factory=dict)  # bench ab: {"base": label, "head": label}

    def get(self, label: str) -> App:
        return next(app for app in self.apps if app.label == label)

    def describe(self) -> dict[str, Any]:
        return {
            "apps": {app.label: app.describe() for app in self.apps},
            "db_env": self.db_env,
            "app_env": sorted(self.env),  # names only: a value may be a secret
            "setup": [shlex.join(argv) for argv in self.setup],
            "server_workers": self.server_workers,
            "restore": (
                "each cell starts from the app's set-up data: its first on a clone of the set-up database (CREATE "
                "DATABASE ... TEMPLATE) and a new server; after a cell that wrote, the set-up's rows put back in place "
                "while the server stays up (or, when that cannot be done, a new clone and server); see each cell's "
                "target.restore"
            ),
            **({"ab": dict(self.roles)} if self.roles else {}),
        }


def _labelled(raw: str, option: str) -> tuple[str | None, str]:
    label, sep, rest = raw.partition("=")
    if not sep or not _LABEL.match(label):
        return None, raw
    return label, rest


def parse(
    apps: list[str],
    dirs: list[str],
    *,
    python: str | None = None,
    db_env: str = DEFAULT_DB_ENV,
    url_style: str | None = None,
    env: list[str] | None = None,
    setup: list[str] | None = None,
    server_workers: int = DEFAULT_SERVER_WORKERS,
    cwd: Path | None = None,
) -> AppsConfig:
    """The run's apps, validated; raises BenchError with one line saying what is wrong and how to fix it."""
    here = (cwd or Path.cwd()).resolve()
    if not apps:
        raise BenchError("--app takes MODULE:ATTR (uvicorn's syntax), e.g. --app myservice.main:app")
    by_label: dict[str | None, str] = {}
    for raw in dirs:
        label, path = _labelled(raw, "--app-dir")
        if label in by_label:
            raise BenchError(f"--app-dir given twice for {label or 'every app'}; give one per LABEL=DIR")
        by_label[label] = path
    parsed: list[App] = []
    interpreter = _python(python)
    for raw in apps:
        label, target = _labelled(raw, "--app")
        if not _IMPORT.match(target):
            raise BenchError(f"--app takes [LABEL=]MODULE:ATTR, e.g. --app api=myservice.main:app; got {raw!r}")
        label = label or target.partition(".")[0].partition(":")[0]
        if any(app.label == label for app in parsed):
            raise BenchError(f"two apps are labelled {label!r}; name them: --app base=MODULE:ATTR --app head=...")
        directory = Path(by_label.get(label, by_label.get(None, str(here)))).expanduser()
        directory = (directory if directory.is_absolute() else here / directory).resolve()
        if not directory.is_dir():
            raise BenchError(f"--app-dir {directory} (for {label}) is not a directory")
        style, source = _style(url_style, directory)
        parsed.append(App(label, target, directory, interpreter, style, source))
    unknown = [label for label in by_label if label is not None and all(app.label != label for app in parsed)]
    if unknown:
        raise BenchError(f"--app-dir names {unknown[0]!r}, which no --app has; use --app {unknown[0]}=MODULE:ATTR")
    if not _ENV_NAME.match(db_env):
        raise BenchError(f"--db-env takes an environment variable's name, e.g. DATABASE_URL; got {db_env!r}")
    if server_workers < 1:
        raise BenchError("--server-workers must be >= 1")
    return AppsConfig(
        parsed,
        db_env=db_env,
        env=_env(env or [], db_env),
        setup=[_command(cmd) for cmd in setup or []],
        server_workers=server_workers,
    )


def _python(path: str | None) -> str:
    if path is None:
        return sys.executable
    found = Path(path).expanduser()
    if not (found.is_file() and os.access(found, os.X_OK)):
        raise BenchError(f"--python {path} is not an executable file (e.g. --python .venv/bin/python)")
    # Not resolved: a virtualenv's python is a symlink whose own path is what activates the environment.
    return str(found.absolute())


def _style(given: str | None, directory: Path) -> tuple[str, str]:
    if given is not None:
        if given not in URL_STYLES:
            raise BenchError(f"--db-url-style takes {', '.join(URL_STYLES)}; got {given!r}")
        return given, "--db-url-style"
    for name in _DEPENDENCY_FILES:
        path = directory / name
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace").lower()
        # asyncpg first: an app that lists both most often reaches the database through SQLAlchemy's asyncpg dialect.
        for style in ("asyncpg", "psycopg"):
            if style in text:
                return style, f"detected: {name} names {style}"
    return "libpq", "default: no dependency file names asyncpg or psycopg"


def _env(pairs: list[str], db_env: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not _ENV_NAME.match(key):
            raise BenchError(f"--app-env takes KEY=VALUE, e.g. --app-env LOG_LEVEL=warning; got {key or pair!r}")
        if key == db_env:
            raise BenchError(f"--app-env {key}: dbbench sets {key} itself (the throwaway database); drop it")
        env[key] = value
    return env


def _command(raw: str) -> list[str]:
    try:
        argv = shlex.split(raw)
    except ValueError as exc:
        raise BenchError(f"--setup {raw!r}: {exc}") from None
    if not argv:
        raise BenchError("--setup takes a command, e.g. --setup 'alembic upgrade head'")
    return argv
