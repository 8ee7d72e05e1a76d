"""Exception texts are masked, then cut: a cut first can split a password so that the mask no longer finds it.

Each case puts a password across the cut of the text it is shown in (a kind of failed request, a locustfile's
exception, the exception a target logged, the load's own reason for stopping). Pure logic, and one child
process for the load process's bookkeeping (bench.locust_entry imports Locust, which patches its process).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench import failures
from bench.check.server_log import MAX_CHARS, last_exception
from bench.target import exception_in

SECRET = "Sup3rS3cretPassw0rd"
DSN = f"postgresql://app:{SECRET}@db/app"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _across(limit: int, prefix: str, text: str) -> str:
    """``prefix`` padded so that ``text``'s password starts 4 characters before ``limit``."""
    return prefix + "x" * (limit - 4 - len(prefix) - text.index(SECRET) - 1) + " " + text


def test_a_password_across_the_cut_of_a_logged_exception_is_masked_with_the_secrets_given() -> None:
    # A driver names the password bare (no URL around it): only the DSN's own secrets can find it.
    line = _across(MAX_CHARS - 3, "psycopg.OperationalError: ", f"password {SECRET} was refused")
    log = f'Traceback (most recent call last):\n  File "x", line 1\n{line}\n'
    for shown in (last_exception(log, (DSN,)), exception_in(log, (DSN,))):
        assert shown is not None and shown.endswith("...") and len(shown) == MAX_CHARS
        assert "Sup3" not in shown, shown
    # A URL in the message is masked without being told the DSN, wherever the cut falls.
    line = _across(MAX_CHARS - 3, "RuntimeError: ", f"cannot connect to {DSN}")
    shown = last_exception(f'Traceback (most recent call last):\n  File "x", line 1\n{line}\n')
    assert shown is not None and "Sup3" not in shown and "app:***@" in shown, shown


def test_a_password_across_the_cut_of_an_error_kind_is_masked() -> None:
    prefix = "could not reach the database:"
    text = _across(failures._MESSAGE_LIMIT, prefix, f"{DSN} (timeout)")
    kind = failures.error_kind("GET", "/db", ConnectionRefusedError(text))
    assert "Sup3" not in kind and "app:***@" in kind, kind
    kind = failures.user_error_kind("Visitor", RuntimeError(text))
    assert "Sup3" not in kind and "app:***@" in kind, kind


def test_the_load_process_masks_a_stopped_load_s_samples_before_cutting_them() -> None:
    script = f"""
import json
from bench.locust_entry import _TEXT_LIMIT, Trouble

class Visitor:
    pass

text = "x" * (_TEXT_LIMIT - 30) + " {DSN}"
trouble = Trouble()
trouble.on_user_error(Visitor(), RuntimeError(text))
print(json.dumps(trouble.summary()))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT, check=True
    )
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert "Sup3" not in summary and "app:***@" in summary, summary
