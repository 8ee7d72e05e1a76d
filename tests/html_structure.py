"""The structure of an HTML report, as a flat list of what a reader meets in order (not pixels, not styles):
headings, sections, chart captions with their marks and fields, table headers and first columns, links."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from typing import Any

KEPT_TEXT = {"h1", "h2", "figcaption", "th", "summary", "caption", "a"}


class _Outline(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.items: list[Any] = []
        self._text: list[str] | None = None
        self._tag = ""
        self._chart: str | None = None
        self._script: list[str] | None = None
        self._cells = 0  # <td> index in the current row

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "section":
            self.items.append(["section", found.get("id")])
        elif tag == "script" and found.get("type") == "application/json":
            self._chart, self._script = found.get("data-chart"), []
        elif tag == "script":
            self.items.append(["script", "src" in found])
        elif tag == "tr":
            self._cells = 0
        elif tag == "td":
            self._cells += 1
            if self._cells == 1:
                self._tag, self._text = "td", []
        if tag in KEPT_TEXT:
            self._tag, self._text = tag, []
        if tag == "a":
            self.items.append(["href", found.get("href")])

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._script is not None:
            spec = json.loads("".join(self._script))
            self.items.append(["chart", self._chart, marks(spec), sorted(fields(spec))])
            self._script = None
        elif tag == self._tag and self._text is not None:
            text = " ".join("".join(self._text).split())
            if text:
                self.items.append([tag, text])
            self._text = None

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self._script.append(data)
        elif self._text is not None:
            self._text.append(data)


def marks(spec: dict[str, Any]) -> list[str]:
    layers = spec.get("layer", [spec])
    out = []
    for layer in layers:
        if "layer" in layer:
            out += marks(layer)
        else:
            mark = layer.get("mark")
            out.append(mark if isinstance(mark, str) else mark["type"])
    return out


def fields(spec: dict[str, Any]) -> set[str]:
    out: set[str] = set()
    for layer in spec.get("layer", [spec]):
        for channel, encoding in layer.get("encoding", {}).items():
            if isinstance(encoding, dict) and "field" in encoding:
                out.add(f"{channel}={encoding['field']}")
    return out


def outline(html: str) -> list[Any]:
    parser = _Outline()
    parser.feed(html)
    parser.close()
    return parser.items


def chart_specs(html: str) -> dict[str, dict[str, Any]]:
    """Each chart's spec by its id, as the page's script would read it."""
    parser = _Outline()
    specs: dict[str, dict[str, Any]] = {}
    original = parser.handle_endtag

    def keep(tag: str) -> None:
        if tag == "script" and parser._script is not None:
            specs[str(parser._chart)] = json.loads("".join(parser._script))
        original(tag)

    parser.handle_endtag = keep  # type: ignore[method-assign]
    parser.feed(html)
    return specs
