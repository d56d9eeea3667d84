"""Waiting for an event with a bound, never for a fixed while.

    row = wait_for(lambda: rows.filter(status="migrated").first(), timeout=60, what="the row to migrate")

Polls ``condition`` (quickly at first, then every ``interval`` seconds) until
it returns something truthy, and returns that. Past ``timeout`` the test fails
with ``what`` and, if given, ``explain()`` (a log tail, say), so a slow machine
costs time and a broken one a readable failure.
"""

import time
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")


def wait_for(condition: Callable[[], T], *, timeout: float, what: str, interval: float = 0.2, explain: Callable[[], str] | None = None) -> T:
    deadline = time.monotonic() + timeout
    pause = min(0.01, interval)
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() >= deadline:
            detail = f"\n{explain()}" if explain else ""
            pytest.fail(f"waited {timeout:g} s for {what}{detail}")
        time.sleep(pause)
        pause = min(pause * 2, interval)
