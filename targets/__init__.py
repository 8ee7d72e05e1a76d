"""The API variants under test, ordered from most abstraction to rawest.

Each ``targets.<module>`` exposes ``app`` for ``uvicorn targets.<module>:app``; its module docstring's first
line is the report label and the rest the hypothesis it tests. Docstrings are read from the source files
with ``ast`` so listing variants imports no web framework or database driver.

Every variant runs on PostgreSQL; ``postgres_only`` says why one cannot run on a SQLite file
(``bench run --db sqlite`` skips it and records that reason).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

_PACKAGE_DIR = Path(__file__).parent
# Every variant answers GET /health with this header naming itself: how a client (bench run --url) tells a
# dbbench target, whose /_bench/* it may ask, from any other server.
IDENTITY_HEADER = "X-Dbbench-Variant"


class UnknownVariant(ValueError):
    pass


@dataclass(frozen=True)
class Variant:
    name: str
    module: str  # e.g. "targets.pooled"
    postgres_only: str = ""  # why it cannot run on SQLite; empty: it can (targets.common.sqlite)

    @property
    def runs_on_sqlite(self) -> bool:
        return not self.postgres_only

    @property
    def app(self) -> str:
        """Import string for uvicorn."""
        return f"{self.module}:app"

    @property
    def source(self) -> Path:
        return _PACKAGE_DIR / f"{self.module.rpartition('.')[2]}.py"

    @property
    def label(self) -> str:
        return self._docstring[0]

    @property
    def hypothesis(self) -> str:
        return self._docstring[1]

    @cached_property
    def _docstring(self) -> tuple[str, str]:
        docstring = ast.get_docstring(ast.parse(self.source.read_text(encoding="utf-8")))
        if not docstring:
            raise ValueError(f"{self.source} has no module docstring (label and hypothesis)")
        label, _, rest = docstring.partition("\n")
        return label.strip(), " ".join(rest.split())


class Registry:
    """Variants by name, iterated in registration order."""

    def __init__(self, variants: Iterable[Variant]) -> None:
        self._variants: dict[str, Variant] = {}
        for variant in variants:
            if variant.name in self._variants:
                raise ValueError(f"variant {variant.name!r} registered twice")
            self._variants[variant.name] = variant

    def __iter__(self) -> Iterator[Variant]:
        return iter(self._variants.values())

    def __len__(self) -> int:
        return len(self._variants)

    def __contains__(self, name: object) -> bool:
        return name in self._variants

    @property
    def names(self) -> list[str]:
        return list(self._variants)

    def get(self, name: str) -> Variant:
        try:
            return self._variants[name]
        except KeyError:
            raise UnknownVariant(f"unknown variant {name!r}; choose from {', '.join(self.names)}") from None


_ASYNCPG_ONLY = "asyncpg talks only to PostgreSQL (this variant is raw asyncpg, no other driver)"

VARIANTS = Registry(
    [
        Variant("sync", "targets.sync"),
        Variant("async_orm", "targets.async_orm"),
        Variant("databases", "targets.encode_databases"),
        Variant("pooled", "targets.pooled", postgres_only=_ASYNCPG_ONLY),
        Variant("cached", "targets.cached"),
        Variant("nopool", "targets.nopool", postgres_only=_ASYNCPG_ONLY),
    ]
)
