"""The one JSON response class every variant and the stats routes answer with.

Its own module so that ``contract`` (the routes) and ``instrument`` (GET /_bench/stats) both import it and
neither imports the other: ``contract`` depends on ``instrument``, never the reverse.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from fastapi.responses import Response
from starlette.background import BackgroundTask

_CONTENT_TYPE = (b"content-type", b"application/json")


class OrjsonResponse(Response):
    """One JSON encoder for every variant, so bodies are byte-identical and encoding costs the same.

    The common case (status 200-599 other than 204/304, no extra headers, no other media type) sets what
    Starlette's ``Response.__init__`` would, without its ``render`` and ``init_headers`` calls and their
    branches: every JSON answer of every variant takes this path (~1,500 CPU instructions per response,
    benchmarks/instructions.py). The headers are Starlette's, in its order: content-length, then
    content-type (``application/json`` takes no charset); tests/test_contract_check.py compares the two.
    """

    media_type = "application/json"

    def __init__(
        self,
        content: Any = None,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        if headers is not None or media_type is not None or status_code < 200 or status_code in (204, 304):
            super().__init__(content, status_code, headers, media_type, background)
            return
        self.status_code = status_code
        self.background = background
        self.body = body = orjson.dumps(content)
        self.raw_headers = [(b"content-length", str(len(body)).encode()), _CONTENT_TYPE]

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
