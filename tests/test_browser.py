"""The console in a real browser: Debian's chromium, headless, through
Playwright, against a live server. Install chromium with bin/install-browser."""

import pytest

from migrator.models import PaintingMigration, Status
from tests.plugins.console import PASSWORD, make_failed, make_painting, staff_user

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_staff_member_filters_to_failed_paintings_retries_them_and_sees_them_queued(live_server, transactional_db, browser_page):
    staff_user("runner", "view_paintingmigration", "view_migrationevent", "run_migration")
    failed = [make_failed(), make_failed()]
    make_painting()
    page = browser_page

    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", "runner")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.click("#migration-console >> text=Dashboard")
    page.click(".breadcrumbs >> text=Painting migrations")
    page.click("details[data-filter-title=status] >> text=Failed")
    page.wait_for_url("**status__exact=failed**")

    assert page.locator("#result_list tbody tr").count() == 2
    page.check("#action-toggle")
    page.select_option("select[name=action]", "retry_failed")
    page.click("button[name=index]")

    page.wait_for_selector("text=Queued 2 paintings for another try.")
    page.click("details[data-filter-title=status] >> text=Queued")
    page.wait_for_url("**status__exact=queued**")
    badges = page.locator("#result_list .painting-status").all_inner_texts()
    assert badges == ["Queued", "Queued"]
    assert set(PaintingMigration.objects.filter(pk__in=[p.pk for p in failed]).values_list("status", flat=True)) == {Status.QUEUED}
