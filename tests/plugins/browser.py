"""Debian's chromium driven by Playwright (sync API), headless, for the
browser tests. Installed by bin/install-browser; never by `playwright install`.
"""

import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def chromium():
    """A headless chromium for the session. Fails (never skips) when Debian's
    chromium is missing, naming the script that installs it."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run bin/install-browser (it installs Debian's chromium).")
    # Playwright's sync API runs an event loop in this thread; Django then
    # refuses ORM calls from it unless told this thread is safe.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()
        # While its loop runs, Django keeps this thread's database connections
        # apart (asgiref's Local uses a context variable when a loop is
        # running), so the ones opened meanwhile are closed while it still
        # runs. Left open, one held the PostgreSQL leg's test database when
        # the session went to drop it ("being accessed by other users").
        from django.db import connections

        connections.close_all()


@pytest.fixture
def browser_page(chromium):
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()
