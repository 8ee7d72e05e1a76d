"""Errors the CLI turns into one line and an exit code, never a traceback."""

from __future__ import annotations


class BenchError(Exception):
    """Bad input or an unusable environment: exit code 2, one line saying what is wrong and how to fix it."""

    exit_code = 2
