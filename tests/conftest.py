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


@pytest.hookimpl(trylast=True)  # after pytest-django's own ordering
def pytest_collection_modifyitems(config, items):
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


@pytest.fixture(scope="session", autouse=True)
def static_files_uncollected():
    """Pages render without ``collectstatic`` here: the production storage
    (WhiteNoise's manifest) names each file by the hash collectstatic gave it,
    and refuses a page whose files were never collected. tests/test_serving.py
    runs ``manage.py serve``, which collects them, and checks those names."""
    from django.conf import settings
    from django.test import override_settings

    plain = {**settings.STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    with override_settings(STORAGES=plain):
        yield


@pytest.fixture(scope="session", autouse=True)
def cache_of_this_worker(tmp_path_factory):
    """Each pytest-xdist worker gets a cache of its own. The file cache under
    VAR_DIR is one directory for every worker, so one test's ``cache.clear()``
    would wipe what another worker's test just stored (a hook's replay marker,
    a rate-limit window) in the middle of it. Child processes have a VAR_DIR,
    and so a cache, of their own already (tests/plugins/processes.py)."""
    from django.conf import settings
    from django.test import override_settings

    if settings.CACHES["default"]["BACKEND"].endswith("FileBasedCache"):
        own = {"default": {**settings.CACHES["default"], "LOCATION": str(tmp_path_factory.mktemp("cache"))}}
    else:  # Redis: a key prefix of this worker's own
        own = {"default": {**settings.CACHES["default"], "KEY_PREFIX": f"test-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"}}
    with override_settings(CACHES=own):
        yield  # Django's setting_changed handler gives the cache handler the new CACHES
