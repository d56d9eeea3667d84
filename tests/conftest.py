"""Shared fixtures. Each outside world has its own plugin module under
tests/plugins/, listed here."""

pytest_plugins = [
    "tests.plugins.mongo",
    "tests.plugins.pds",
    "tests.plugins.world",
    "tests.plugins.kinds",
    "tests.plugins.processes",
    "tests.plugins.console",
    "tests.plugins.browser",
]

import os

import pytest

TRANSACTIONAL_FIXTURES = {"transactional_db", "live_server"}
DATABASE_FIXTURES = {"db", *TRANSACTIONAL_FIXTURES, "console", "console_database", "migrated_console_database"}


def on_postgresql() -> bool:
    return os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))


@pytest.hookimpl(trylast=True)  # after pytest-django's own ordering
def pytest_collection_modifyitems(config, items):
    skip_in_one_leg_what_proves_the_same_in_both(items)
    start_the_slow_tests_first(items)


def skip_in_one_leg_what_proves_the_same_in_both(items):
    """A test marked ``no_console_database`` proves the same on either
    database, so only the SQLite leg runs it; one that asks for a database
    cannot carry the mark."""
    for item in items:
        if not item.get_closest_marker("no_console_database"):
            continue
        if item.get_closest_marker("django_db") or DATABASE_FIXTURES & set(item.fixturenames):
            raise pytest.UsageError(f"{item.nodeid} is marked no_console_database but uses the console's database")
        if on_postgresql():
            item.add_marker(pytest.mark.skip(reason="touches no console database: the SQLite leg runs it"))


def start_the_slow_tests_first(items):
    """The slow tests first, in their files' order. bin/test's workers
    (pytest-xdist, ``--dist load --maxschedchunk 2``) take the tests two at a
    time in this order as they free up, so the long ones start at once,
    spread over the workers, and the quick ones fill in around them, rather
    than one long test starting last and the run waiting for it alone.

    A worker takes its tests in the collection's order, so each keeps
    pytest-django's: every test in a transaction that rolls back before any
    that flushes the database (a live server's), which would empty what the
    migrations wrote (the schedules) for those after it."""
    items.sort(key=lambda item: not item.get_closest_marker("slow") or flushes_the_database(item))


def flushes_the_database(item) -> bool:
    marker = item.get_closest_marker("django_db")
    return bool(TRANSACTIONAL_FIXTURES & set(item.fixturenames) or (marker and marker.kwargs.get("transaction")))
