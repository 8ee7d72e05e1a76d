"""What counts as a failed request, how it is named, and when failures make a whole cell failed.

A request fails when Locust reports it with an exception: a status its client treats as an error
(FastHttpUser: any status but 2xx and the usual redirects, as ``LocustBadStatusCode`` with the status in
``.code``; HttpUser: 400 or more, as ``requests.HTTPError`` with ``.response.status_code``), a transport
fault (``ConnectionRefusedError``, ``ConnectionResetError``, ``HTTPConnectionClosed``, a timeout), or a
``response.failure(...)`` in the user's own file. Failures are never throughput: a cell's req/s counts
successful responses only.

A cell fails when nothing succeeded in its measured window, or when its error rate (failures / completed
requests) is above the run's ``--max-error-rate``; the reason names the commonest error kinds with counts.
An exception raised by the user's own task code (Locust's ``user_error``: e.g. ``r.json()["missing_key"]``
after a request that succeeded) is no failed request, but the task did not do what the file meant: such
errors are counted apart, and above the same threshold (relative to the window's requests) fail the cell.
Pure functions (no locust): the load process names errors with them, the runner and the reports judge
cells with them, so a results file and its report always agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.dsn import redact

# A run's default ``--max-error-rate``: 1 % of the window's requests. Above it a figure no longer describes
# the service the user meant to measure (a 404 costs the server far less than the real endpoint).
DEFAULT_MAX_ERROR_RATE = 0.01
NO_REQUEST = "no request completed in the measured window"
TOP_KINDS = 3  # error kinds a reason names; the rest are summed up
_MESSAGE_LIMIT = 120  # one kind per fault, however long the exception's text (paths, ids, bodies)
_SAMPLE_LIMIT = 100  # the start of a failed response's body: FastAPI's {"detail": ...} fits


def http_status(exception: BaseException) -> int | None:
    """The HTTP status behind a failed request, or None for a transport fault (no response at all)."""
    code = getattr(exception, "code", None)  # FastHttpUser's LocustBadStatusCode
    if code is None:
        code = getattr(getattr(exception, "response", None), "status_code", None)  # HttpUser's HTTPError
    return code if isinstance(code, int) and 100 <= code <= 599 else None


def endpoint(request_type: str, name: str) -> str:
    """ "GET /db"; a name that already carries its method ("POST /refresh-views") is kept as it is."""
    return name if name.startswith(f"{request_type} ") else f"{request_type} {name}"


def status_kind(request_type: str, name: str, status: int) -> str:
    """ "HTTP 404 GET /v1/does-not-exist"."""
    return f"HTTP {status} {endpoint(request_type, name)}"


def error_kind(request_type: str, name: str, exception: BaseException) -> str:
    """One line per kind of failure: "HTTP 500 GET /db" or
    "ConnectionResetError GET /db: [Errno 104] Connection reset by peer"."""
    status = http_status(exception)
    if status is not None:
        return status_kind(request_type, name, status)
    message = _masked(str(exception))
    head = f"{type(exception).__name__} {endpoint(request_type, name)}"
    return f"{head}: {message}" if message else head


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) folded to one space: a reason stays one line
    whatever a user's ``response.failure("...\\n...")`` or a server's exception spelled."""
    return " ".join(text.split())


def user_error_kind(user_class: str, exception: BaseException) -> str:
    """One line per kind of exception in a locustfile's own code: "KeyError in Visitor: 'missing_key'"."""
    message = _masked(str(exception))
    head = f"{type(exception).__name__} in {user_class}"
    return f"{head}: {message}" if message else head


def _masked(text: str) -> str:
    """An exception's text for a kind: one line, passwords masked (a locustfile's own database call or a
    driver's error may quote a DSN), then cut to _MESSAGE_LIMIT (after: a cut can split a password so that the
    mask no longer finds it)."""
    return redact(one_line(text))[:_MESSAGE_LIMIT]


def body_sample(response: Any) -> str:
    """The start of a failed response's body on one line ("" when there is none, e.g. a reset connection)."""
    try:
        text = getattr(response, "text", None)
    except (UnicodeError, LookupError):  # a body in no known encoding: the status says enough
        return ""
    if not isinstance(text, str):
        return ""
    line = one_line(text)
    # A server's error page may echo its connection string (a debug traceback): its password never reaches
    # a results file, in any form bench.dsn knows (URL userinfo, password= in a query or key=value string).
    return redact(line)[:_SAMPLE_LIMIT]


def percent(rate: float) -> str:
    """0.953 -> "95.3 %", 1.0 -> "100 %", 0.0004 -> "0.04 %"."""
    return f"{rate * 100:.3g} %"


def top_kinds(errors: Mapping[str, int], limit: int = TOP_KINDS) -> list[tuple[str, int]]:
    """The commonest kinds first (ties by name, so a file always reads the same)."""
    return sorted(errors.items(), key=lambda item: (-item[1], item[0]))[:limit]


def describe(requests: int, errors: Mapping[str, int], samples: Mapping[str, str] | None = None) -> str:
    """ "error rate 100 % (4,210 of 4,210): 4,210 × HTTP 404 GET /v1/does-not-exist (body: {"detail":...})";
    ``samples`` holds the start of one response body per kind, where there was one."""  # noqa: RUF002
    failed = sum(errors.values())
    shown = top_kinds(errors)
    samples = samples or {}
    # Kinds from files written before error_kind folded them may hold newlines.
    kinds = "; ".join(
        f"{count:,} × {one_line(kind)}" + (f" (body: {samples[kind]})" if samples.get(kind) else "")
        for kind, count in shown
    )
    rest = failed - sum(count for _, count in shown)
    if rest:
        kinds += f"; {rest:,} more in {len(errors) - len(shown)} other kind(s)"
    rate = failed / requests if requests else 1.0
    return f"error rate {percent(rate)} ({failed:,} of {requests:,}): {kinds}"


def describe_user_errors(requests: int, user_errors: Mapping[str, int]) -> str:
    """ "user code raised 535 times (100 % of 535 requests): 535 × KeyError in Visitor: 'missing_key'"."""  # noqa: RUF002
    raised = sum(user_errors.values())
    shown = top_kinds(user_errors)
    kinds = "; ".join(f"{count:,} × {one_line(kind)}" for kind, count in shown)
    rest = raised - sum(count for _, count in shown)
    if rest:
        kinds += f"; {rest:,} more in {len(user_errors) - len(shown)} other kind(s)"
    share = percent(raised / requests) if requests else "all"
    return f"user code raised {raised:,} times ({share} of {requests:,} requests): {kinds}"


def verdict(
    requests: int,
    errors: Mapping[str, int],
    max_error_rate: float,
    samples: Mapping[str, str] | None = None,
    user_errors: Mapping[str, int] | None = None,
) -> str | None:
    """Why a measured cell is failed, or None when it stands.

    ``requests`` counts every request completed inside the window, ``errors`` the failed ones by kind.
    Failed: no request completed; none succeeded (whatever the threshold); or the error rate is above
    ``max_error_rate`` (a fraction, 0.01 = 1 %). ``samples``: a response body's start per kind (see describe).
    ``user_errors``: exceptions in the locustfile's own code by kind (user_error_kind); above the same
    fraction of ``requests`` they fail the cell too.
    """
    if requests <= 0:
        return NO_REQUEST
    failed = sum(errors.values())
    if failed >= requests or failed / requests > max_error_rate:
        return describe(requests, errors, samples)
    raised = sum((user_errors or {}).values())
    if raised / requests > max_error_rate:
        return describe_user_errors(requests, user_errors or {})
    return None
