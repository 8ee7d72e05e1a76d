"""What any right answer looks like, whatever data the server holds: pure functions, one line per fault.

These are the whole check of a server dbbench did not seed (``--url``): shapes, ranges, orders, clamping.
Against a database dbbench seeded, the check also compares values (bench.check.expected); the one-line
descriptions of a difference from those expected values live here too.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

from targets.common.schema import ADDED_FORTUNE, ITEM_CATEGORIES, MAX_RANDOM_NUMBER, WORLD_ROWS

SEARCH_KEYS = ("id", "category", "priceCents", "createdAt")
REPORT_KEYS = (
    "category",
    "items",
    "minPriceCents",
    "avgPriceCents",
    "medianPriceCents",
    "p90PriceCents",
    "maxPriceCents",
    "activeDays",
    "newestCreatedAt",
)
FORTUNES_DOCTYPE = "<!doctype html>"  # matched without regard to case, as HTML does
FORTUNES_HEAD = "<html><head><title>Fortunes</title></head><body><table><tr><th>id</th><th>message</th></tr>"
FORTUNES_TAIL = "</table></body></html>"
# Whitespace between tags means nothing to a browser (templates put newlines there; TechEmpower's own
# verifier ignores it too).
_BETWEEN_TAGS = re.compile(r">\s+<")
_FORTUNE_ROW = re.compile(r"<tr><td>(-?\d+)</td><td>([^<]*)</td></tr>")


def world_fault(item: object) -> str | None:
    """Why ``item`` is not {"id": 1..10000, "randomNumber": 1..10000}, or None if it is."""
    if not isinstance(item, dict) or set(item) != {"id", "randomNumber"}:
        return f'expected {{"id", "randomNumber"}}, got {short(item)}'
    for key, top in (("id", WORLD_ROWS), ("randomNumber", MAX_RANDOM_NUMBER)):
        value = item[key]
        if not is_in_range(value, top):
            return f"{key} must be an integer in 1..{top}, got {short(value)}"
    return None


def is_in_range(value: object, top: int) -> bool:
    # bool is an int subclass; JSON true must not pass as 1.
    return type(value) is int and 1 <= value <= top


def fortunes_shape_fault(body: str) -> str | None:
    """The /fortunes page's rules for any fortune table: the page around the rows, every message escaped,
    the row added at request time present, rows sorted by message."""
    page = _BETWEEN_TAGS.sub("><", body.strip())
    start = len(FORTUNES_DOCTYPE) + len(FORTUNES_HEAD)
    doctype, head = page[: len(FORTUNES_DOCTYPE)], page[len(FORTUNES_DOCTYPE) : start]
    if doctype.lower() != FORTUNES_DOCTYPE or head != FORTUNES_HEAD or not page.endswith(FORTUNES_TAIL):
        return "not the contract's page (doctype, title, table head and end)"
    rows_html = page[start : -len(FORTUNES_TAIL)]
    rows = _FORTUNE_ROW.findall(rows_html)
    if "".join(f"<tr><td>{i}</td><td>{m}</td></tr>" for i, m in rows) != rows_html:
        if "<script>" in rows_html:
            return "a message is not HTML-escaped (<script> appears raw)"
        return "rows are not <tr><td>id</td><td>escaped message</td></tr>"
    messages = [html.unescape(message) for _, message in rows]
    if (str(ADDED_FORTUNE[0]), ADDED_FORTUNE[1]) not in zip((i for i, _ in rows), messages, strict=True):
        return f"the fortune added at request time (id {ADDED_FORTUNE[0]}) is missing"
    if messages != sorted(messages):
        return "rows are not sorted by message"
    return None


def authors_shape_fault(got: object, limit: int) -> str | None:
    """/authors/* for any data: at most ``limit`` authors by ascending id, each with its books sorted by id."""
    if not isinstance(got, list):
        return f"expected a JSON list, got {short(got)}"
    if len(got) > limit:
        return f"expected at most {limit} authors, got {len(got)}"
    for item in got:
        if not isinstance(item, dict) or list(item) != ["id", "name", "books"] or not isinstance(item["books"], list):
            return f'expected {{"id", "name", "books"}}, got {short(item)}'
        if any(not isinstance(book, dict) or list(book) != ["id", "title"] for book in item["books"]):
            return f'author {short(item["id"])}: expected books as {{"id", "title"}}'
        ids = [book["id"] for book in item["books"]]
        if any(type(book) is not int for book in ids) or ids != sorted(ids):
            return f"author {short(item['id'])}: books not sorted by id ({short(ids)})"
    order = [item["id"] for item in got]
    if any(type(author) is not int for author in order) or order != sorted(order):
        return f"authors not ordered by id ({short(order)})"
    return None


def authors_difference(got: object, want: list[dict[str, Any]]) -> str:
    """One line naming the first difference between an /authors/* response and the seeded authors."""
    if (fault := _whole_list_difference(got, want, "authors")) is not None:
        return fault
    assert isinstance(got, list)
    for index, (item, truth) in enumerate(zip(got, want, strict=True)):
        if item != truth:
            if isinstance(item, dict) and item.get("id") == truth["id"] and "books" in item:
                ids = [book.get("id") for book in item["books"] if isinstance(book, dict)]
                if sorted(ids, key=str) == sorted((b["id"] for b in truth["books"]), key=str):
                    return f"author {truth['id']}: books not sorted by id ({short(ids)})"
            return f"item {index}: expected {short(truth)}, got {short(item)}"
    return "body differs from the seeded authors"


def search_shape_fault(content: bytes, category: int, max_price: int, limit: int) -> str | None:
    """/search for any data: the filter, the limit and the order a right answer obeys."""
    payload = loads(content)
    if not isinstance(payload, list) or any(not isinstance(row, dict) or tuple(row) != SEARCH_KEYS for row in payload):
        return f"expected a list of {{{', '.join(SEARCH_KEYS)}}}, got {short(payload)}"
    if len(payload) > limit:
        return f"expected at most {limit} items, got {len(payload)}"
    for row in payload:
        if row["category"] != category or not isinstance(row["priceCents"], int) or row["priceCents"] > max_price:
            return f"item {short(row)} does not match category={category}, max_price={max_price}"
    order = [(row["createdAt"], row["id"]) for row in payload]
    if order != sorted(order, reverse=True):
        return "items not ordered by createdAt, id descending"
    return None


def report_shape_fault(content: bytes) -> str | None:
    """/report for any data: one row per category, in order, with the contract's keys."""
    payload = loads(content)
    if not isinstance(payload, list) or any(not isinstance(row, dict) or tuple(row) != REPORT_KEYS for row in payload):
        return f"expected a list of {{{', '.join(REPORT_KEYS)}}}, got {short(payload)}"
    if [row["category"] for row in payload] != list(range(1, ITEM_CATEGORIES + 1)):
        return f"expected one row per category 1..{ITEM_CATEGORIES}, in order"
    return None


def list_difference(content: bytes, want: list[dict[str, Any]], key: str) -> str:
    """One line naming the first difference between a JSON list response and the expected rows."""
    got = loads(content)
    if (fault := _whole_list_difference(got, want, "rows")) is not None:
        return fault
    assert isinstance(got, list)
    for index, (item, truth) in enumerate(zip(got, want, strict=True)):
        if item != truth:
            return f"row {index} ({key} {truth[key]}): expected {short(truth)}, got {short(item)}"
    return "body differs from the expected rows"


def _whole_list_difference(got: object, want: list[dict[str, Any]], noun: str) -> str | None:
    """The difference when it is not in one item: equal as JSON, not a list, or another length."""
    if got == want:
        return "body is equal as JSON but not byte for byte (key order or whitespace)"
    if not isinstance(got, list):
        return f"expected a JSON list, got {short(got)}"
    if len(got) != len(want):
        return f"expected {len(want)} {noun}, got {len(got)}"
    return None


def compact_json(value: object) -> bytes:
    """The bytes every variant sends (orjson's output: compact, UTF-8, non-ASCII not escaped)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def loads(content: bytes) -> Any:
    """The JSON in ``content``, or its first 60 characters as text when it is not JSON."""
    try:
        return json.loads(content)
    except ValueError:
        return content[:60].decode("utf-8", "replace")


def number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(value, 2)


def short(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:77] + "..."
