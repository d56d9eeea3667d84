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

import pytest


@pytest.hookimpl(trylast=True)  # after pytest-django's own ordering
def pytest_collection_modifyitems(config, items):
    """The slow tests first, in their files' order. Run by several workers
    (bin/test), the long ones start at once, spread over the workers, and the
    quick ones fill in around them, rather than one long test starting last
    and the run waiting for it alone."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
