"""The one JSON response class every variant and the stats routes answer with.

Its own module so that ``contract`` (the routes) and ``instrument`` (GET /_bench/stats) both import it and
neither imports the other: ``contract`` depends on ``instrument``, never the reverse.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import Response


class OrjsonResponse(Response):
    """One JSON encoder for every variant, so bodies are byte-identical and encoding costs the same."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
