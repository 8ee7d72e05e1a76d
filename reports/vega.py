"""The charting library inlined into the HTML report: Vega, Vega-Lite and vega-embed as one script.

vl-convert-python ships them (no CDN, no network: the report opens offline, mailed or attached to a CI
artifact). Bundling takes ~5 s, so the bundle is kept in the user's cache folder, one file per
vl-convert version (the library versions come with it), and every later report reads it in milliseconds.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

# An inline <script> ends at the first "</script" whatever the JavaScript around it means.
SCRIPT_END = "</script"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dbbench"


@cache
def bundle() -> str:
    """The JavaScript that defines ``window.vegaEmbed`` (~0.9 MB). Raises ImportError without vl-convert."""
    from importlib.metadata import version

    import vl_convert

    path = cache_dir() / f"vega-bundle-{version('vl-convert-python')}.js"
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        pass
    # No snippet: the bundle defines window.vegaEmbed (the stub types snippet as required; it is optional).
    text = vl_convert.javascript_bundle(None)  # type: ignore[arg-type]
    if SCRIPT_END in text.lower():
        raise RuntimeError("the Vega bundle contains '</script' and cannot be inlined")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError:
        pass  # a read-only home: bundle again next time, the report is the same
    return text
