"""What a locustfile defines, read by importing it with Locust's own loader. Never import this module.

Run as ``python -m bench.locust_describe OUT.json FILE...`` (see bench.locustfiles, the orchestrator's
side): importing locust patches the process with gevent, and importing a user's file runs its code,
so this happens in a short-lived child process, like the load itself. The answer is written to
OUT.json (a file's own prints at import go to stdout and must not mix with it).

Per file: its user classes (the Locust class each builds on, weight, fixed count, wait time, the
TaskSets it runs with their own wait times), its LoadTestShape if any, or the error that stopped it
from loading.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import Any

from locust import FastHttpUser, HttpUser, TaskSet, User
from locust.util.load_locustfile import load_locustfile

_WAIT_FACTORIES = ("constant", "between", "constant_pacing")  # constant_throughput builds on constant_pacing


def describe_wait(function: Any) -> dict[str, Any]:
    """{"text": "between(0.5, 1)", "zero": False}; ``zero`` is True only for Locust's own waits whose every
    argument is 0, e.g. ``constant(0)`` (a method of the file's own is taken as think time of unknown length)."""
    qualname = str(getattr(function, "__qualname__", ""))
    factory = qualname.split(".<locals>")[0] if ".<locals>" in qualname else ""
    if factory in _WAIT_FACTORIES:
        closure = [c.cell_contents for c in function.__closure__ or ()]
        cells = dict(zip(function.__code__.co_freevars, closure, strict=True))
        names = ("min_wait", "max_wait") if factory == "between" else ("wait_time",)
        values = [cells.get(name) for name in names]
        text = f"{factory}({', '.join(f'{v:g}' if isinstance(v, int | float) else repr(v) for v in values)})"
        return {"text": text, "zero": all(v == 0 for v in values)}
    return {"text": f"{qualname or function!r} (the file's own)", "zero": False}


def _kind(cls: type[User]) -> str:
    for base in (FastHttpUser, HttpUser):
        if issubclass(cls, base):
            return base.__name__
    return "User"  # a client of the file's own: dbbench cannot pace or see its requests by itself


def _tasksets(tasks: Any, seen: set[type]) -> list[dict[str, Any]]:
    """The TaskSets reachable from ``tasks`` (a list or a weight dict), nested ones too."""
    found: list[dict[str, Any]] = []
    for task in list(tasks or []):
        if isinstance(task, type) and issubclass(task, TaskSet) and task not in seen:
            seen.add(task)
            own = task.wait_time is not TaskSet.wait_time  # TaskSet's default defers to the user's wait
            entry: dict[str, Any] = {"name": task.__name__}
            entry["wait_time"] = describe_wait(task.wait_time) if own else {"text": "the user's", "zero": True}
            found.append(entry)
            found.extend(_tasksets(task.tasks, seen))
    return found


def describe_user(cls: type[User]) -> dict[str, Any]:
    return {
        "name": cls.__name__,
        "kind": _kind(cls),
        "weight": cls.weight,
        "fixed_count": cls.fixed_count,
        "wait_time": describe_wait(cls.wait_time),
        "tasksets": _tasksets(cls.tasks, set()),
    }


def describe(path: str) -> dict[str, Any]:
    try:
        user_classes, shapes = load_locustfile(path)
    except (Exception, SystemExit) as exc:  # a user's file can raise anything at import
        frames = traceback.extract_tb(exc.__traceback__)
        where = next((f"line {f.lineno}" for f in reversed(frames) if f.filename == path), "")
        if isinstance(exc, SyntaxError):  # its str() already says "(file, line N)"
            where = ""
        return {"error": f"{type(exc).__name__}: {exc}" + (f" ({where})" if where else "")}
    return {
        "users": [describe_user(cls) for cls in user_classes.values()],
        "shape": type(shapes[0]).__name__ if shapes else None,
    }


def main(argv: list[str]) -> int:
    out, paths = Path(argv[0]), argv[1:]
    answer = {path: describe(path) for path in paths}
    out.write_text(json.dumps(answer), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
