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
