"""The console in a real browser: Debian's chromium, headless, through
Playwright, against a live server. Install chromium with bin/install-browser."""

import pytest

from migrator.models import Transfer, Status
from tests.plugins.console import PASSWORD, make_failed, make_painting, staff_user

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def log_in(page, live_server, username: str, *, next_url: str) -> None:
    """Log in through the admin's own form, landing on ``next_url``."""
    page.goto(f"{live_server.url}/admin/login/?next={next_url}")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")


def test_a_staff_member_filters_to_failed_paintings_retries_them_and_sees_them_queued(live_server, transactional_db, browser_page):
    staff_user("runner", "view_transfer", "view_transferevent", "run_migration")
    failed = [make_failed(), make_failed()]
    make_painting()
    page = browser_page

    log_in(page, live_server, "runner", next_url="/admin/")
    page.click("#migration-console >> text=Dashboard")
    page.click(".breadcrumbs >> text=Transfers")
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
    assert set(Transfer.objects.filter(pk__in=[p.pk for p in failed]).values_list("status", flat=True)) == {Status.QUEUED}


def test_the_dashboard_says_which_rate_limit_binds_and_how_to_lift_it(live_server, transactional_db, browser_page):
    import datetime as dt

    from django.utils import timezone

    from migrator.models import ErrorKind, RateLimitWindow

    staff_user("watcher", "view_transfer")
    resets = timezone.now() + dt.timedelta(hours=20)
    for _ in range(3):
        painting = make_painting()
        Transfer.objects.filter(pk=painting.pk).update(
            status=Status.WAITING, waiting_for="uploadBlob: 1,000 per day per IP", not_before=resets, error_kind=ErrorKind.RATE_LIMITED
        )
    RateLimitWindow.objects.create(name="uploadBlob: 1,000 per day per IP", scope="ip", limit=1000, window_seconds=86400, reset_at=resets)
    page = browser_page

    log_in(page, live_server, "watcher", next_url="/admin/migrator/transfer/dashboard/")

    section = page.locator("#rate-limits")
    assert section.is_visible()
    text = section.inner_text()
    assert "uploadBlob: 1,000 per day per IP" in text and "PDS_RATE_LIMIT_BYPASS_KEY" in text
    assert "3 paintings: about 19 h 59 min" in text or "3 paintings: about 20 h 00 min" in text
    page.click("#rate-limits >> text=uploadBlob: 1,000 per day per IP")
    page.wait_for_url("**status__exact=waiting**")
    assert page.locator("#result_list tbody tr").count() == 3


def test_a_staff_member_goes_from_the_dashboards_kinds_to_the_failed_moods_and_retries_them(live_server, transactional_db, browser_page):
    staff_user("runner", "view_transfer", "view_transferevent", "run_migration")
    make_painting()
    failed = [make_failed(kind="mood", label=f"feeling {word} 🙂", content={"mood": f"feeling {word} 🙂"}) for word in ("fine", "blue")]
    make_painting(kind="mood", label="sleepy", content={"mood": "sleepy"})
    page = browser_page

    log_in(page, live_server, "runner", next_url="/admin/migrator/transfer/dashboard/")
    row = page.locator("#kind-mood")
    assert row.locator("td").first.inner_text() == "Moods"
    row.locator("td").nth(6).locator("a").click()  # its failed count
    page.wait_for_url("**kind=mood**status__exact=failed**")

    assert page.locator("h1").inner_text() == "Select mood to migrate"
    assert page.locator(".breadcrumbs").inner_text().endswith("Moods")
    assert sorted(page.locator("#result_list .field-label_column").all_inner_texts()) == ["feeling blue 🙂", "feeling fine 🙂"]
    page.check("#action-toggle")
    page.select_option("select[name=action]", "retry_failed")
    page.click("button[name=index]")
    page.wait_for_selector("text=Queued 2 moods for another try.")
    assert set(Transfer.objects.filter(pk__in=[p.pk for p in failed]).values_list("status", flat=True)) == {Status.QUEUED}
