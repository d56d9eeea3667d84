"""The console through Django's test client: every page, every filter, every
action, as a staff member who may run the migration and as one who may only
watch."""

import datetime as dt
import re

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from migrator.models import Account, TransferEvent, Transfer, SkipReason, Status
from tests.plugins.console import make_failed, make_migrated, make_painting

CHANGELIST = reverse("admin:migrator_transfer_changelist")
DASHBOARD = reverse("admin:migrator_dashboard")
DASHBOARD_JSON = reverse("admin:migrator_dashboard_json")
RETRY_GROUP = reverse("admin:migrator_retry_group")


def change_url(painting) -> str:
    return reverse("admin:migrator_transfer_change", args=[painting.pk])


def texts(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def run_action(client, action: str, paintings, **extra):
    data = {"action": action, "index": 0, "_selected_action": [p.pk for p in paintings], **extra}
    return client.post(CHANGELIST, data, follow=True)


@pytest.fixture
def corpus(db):
    return {
        "pending": make_painting(),
        "anonymous": make_painting(owner="", owner_handle="", account_did="did:plc:anon"),
        "nuked": make_painting(nuked=True),
        "failed": make_failed(),
        "failed_too": make_failed(),
        "migrated": make_migrated(),
        "skipped": make_painting(status=Status.SKIPPED, skip_reason=SkipReason.IMAGE_MISSING, skip_detail="404"),
    }


def test_the_list_shows_badges_owners_errors_thumbnails_and_record_links(as_runner, corpus):
    html = as_runner.get(CHANGELIST).content.decode()
    assert 'class="painting-status"' in html
    assert "anonymous" in html and "@painter" in html
    assert "Timed out after 30 s" in html
    assert "com.atproto.sync.getBlob?did=did%3Aplc%3Apainter" in html and "cid=bafkreithumb" in html
    assert "com.atproto.repo.getRecord?repo=" in html and "rkey=3kabcdefghij2" in html


@pytest.mark.parametrize(
    "query, expected, left_out",
    [
        ("status__exact=failed", ["failed", "failed_too"], ["pending", "migrated"]),
        ("skip_reason__exact=image_missing", ["skipped"], ["pending"]),
        ("error_kind__exact=transient", ["failed"], ["pending"]),
        ("anonymous=yes", ["anonymous"], ["pending"]),
        ("anonymous=no", ["pending"], ["anonymous"]),
        ("nuked__exact=1", ["nuked"], ["pending"]),
        ("has_error=yes", ["failed"], ["pending"]),
        ("has_error=no", ["pending"], ["failed"]),
        ("account=did:plc:anon", ["anonymous"], ["pending"]),
        ("when__gte=2000-01-01+00:00:00%2B00:00&when__lt=2100-01-01+00:00:00%2B00:00", ["pending"], []),
    ],
)
def test_each_filter_narrows_the_list(as_runner, corpus, query, expected, left_out):
    html = as_runner.get(f"{CHANGELIST}?{query}").content.decode()
    for name in expected:
        assert change_url(corpus[name]) in html, name
    for name in left_out:
        assert change_url(corpus[name]) not in html, name


def test_the_account_filter_takes_a_handle_too(as_runner, corpus):
    handle = corpus["pending"].owner_handle
    html = as_runner.get(f"{CHANGELIST}?account=@{handle}").content.decode()
    assert change_url(corpus["pending"]) in html
    assert change_url(corpus["anonymous"]) not in html


@pytest.mark.parametrize("field", ["slug", "code", "ref", "owner_handle", "rkey", "account_did"])
def test_search_finds_a_painting_by(as_runner, corpus, field):
    painting = corpus["migrated"]
    value = painting.content[field] if field in ("slug", "code") else getattr(painting, field)
    html = as_runner.get(CHANGELIST, {"q": value}).content.decode()
    assert change_url(painting) in html
    assert change_url(corpus["pending"]) not in html


def test_nothing_can_be_added_changed_or_deleted(as_runner, corpus):
    painting = corpus["pending"]
    assert as_runner.get(reverse("admin:migrator_transfer_add")).status_code == 403
    assert as_runner.get(reverse("admin:migrator_transfer_delete", args=[painting.pk])).status_code == 403
    html = as_runner.get(change_url(painting)).content.decode()
    form = html.split('id="transfer_form"')[1].split("</form>")[0]
    assert 'name="_save"' not in form and "<select" not in form and "<textarea" not in form and 'type="text"' not in form


def test_the_painting_page_shows_the_audit_trail_newest_first(as_runner, corpus):
    painting = corpus["failed"]
    TransferEvent.objects.create(transfer=painting, from_status="pending", to_status="queued", actor="command:backfill", message="first step")
    TransferEvent.objects.create(transfer=painting, from_status="queued", to_status="failed", actor="worker:1", message="second step")
    html = as_runner.get(change_url(painting)).content.decode()
    assert html.index("second step") < html.index("first step")
    assert "Transient" in html and "3 attempts" in html and "Traceback" in html
    assert painting.ref in html and painting.content["code"] in html


def test_the_painting_page_fails_soft_when_the_pds_is_unreachable(as_runner, corpus, settings):
    settings.PDS_URL = "http://127.0.0.1:9"  # discard: nothing listens
    html = as_runner.get(change_url(corpus["migrated"])).content.decode()
    assert "could not be read" in html
    assert "3kabcdefghij2" in html


def test_the_dashboard_shows_progress_failures_accounts_and_the_cluster(as_runner, corpus):
    response = as_runner.get(DASHBOARD)
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="count-failed">2<' in html
    assert "Timed out after &lt;n&gt; s reading &lt;url&gt;" in html
    assert "Retry 2" in html
    assert "@painter" in html and "anonymous" in html
    assert "No cluster is running" in html


def test_the_dashboard_reads_the_same_few_queries_whatever_it_counts(as_runner, corpus):
    """Each figure comes from a query of its own kind, not one per kind,
    status or row: more kinds, stale shapes, take-downs, deletions and a
    per-IP rate limit add no query, and each figure is still right."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from migrator.kinds import KINDS
    from migrator.models import RateLimitWindow

    def shown():
        with CaptureQueriesContext(connection) as captured:
            html = as_runner.get(DASHBOARD).content.decode()
        return html, len(captured)

    RateLimitWindow.objects.create(name="uploads a day", scope="ip", limit=1000, window_seconds=86400, reset_at=timezone.now())
    make_painting(status=Status.WAITING, waiting_for="uploads a day", not_before=timezone.now() + dt.timedelta(hours=1))
    as_runner.get(DASHBOARD)  # the session's first reads
    _, few = shown()
    for number, kind in enumerate(KINDS.values()):
        make_migrated(kind=kind.name, ref=f"{number:024x}", rkey=f"3kabcdefghi{number}2", record_shape="an older shape")
    make_painting(status=Status.SKIPPED, skip_reason=SkipReason.GONE, skip_detail="gone")
    make_painting(status=Status.SKIPPED, skip_reason=SkipReason.TAKEN_DOWN, unpublished_at=timezone.now(), unpublished_by="staff")
    make_painting(status=Status.WAITING, waiting_for="uploads a day", not_before=timezone.now() + dt.timedelta(hours=1))
    html, many = shown()
    # The session, its user, its two permission reads and the dashboard's 13.
    assert many == few <= 17, (few, many)
    # One of each kind, and the corpus's migrated painting (made with no shape).
    assert f'id="stale-shape">{len(KINDS) + 1}<' in html and 'id="taken-down">1<' in html and 'id="gone">1<' in html, html
    assert "<td>7 documents: about" in html, html  # a per-IP limit holds every document left: 3 pending, 2 failed, 2 waiting


def test_the_dashboard_json_reports_counts_and_whether_work_is_in_flight(as_runner, corpus):
    status = as_runner.get(DASHBOARD_JSON).json()
    assert status["by_status"]["failed"] == 2
    assert status["total"] == 7
    assert status["in_flight"] is False
    make_painting(status=Status.QUEUED)
    assert as_runner.get(DASHBOARD_JSON).json()["in_flight"] is True


def test_the_admin_index_links_to_the_dashboard(as_runner, corpus):
    assert DASHBOARD in as_runner.get(reverse("admin:index")).content.decode()


def test_migrate_selected_queues_pending_and_failed_and_reports_the_rest(as_runner, corpus):
    chosen = [corpus["pending"], corpus["failed"], corpus["migrated"]]
    response = run_action(as_runner, "migrate_selected", chosen)
    assert "Queued 2 paintings; 1 were not pending or failed." in texts(response)
    assert Transfer.objects.get(pk=corpus["pending"].pk).status == Status.QUEUED
    assert TransferEvent.objects.filter(transfer=corpus["failed"], actor="staff:runner", to_status=Status.QUEUED).exists()


def test_retry_failed_queues_only_the_failed(as_runner, corpus):
    response = run_action(as_runner, "retry_failed", [corpus["failed"], corpus["pending"]])
    assert "Queued 1 painting for another try; 1 had not failed." in texts(response)
    assert Transfer.objects.get(pk=corpus["failed"].pk).status == Status.QUEUED
    assert Transfer.objects.get(pk=corpus["pending"].pk).status == Status.PENDING


def test_skip_asks_for_a_reason_then_skips_with_it(as_runner, corpus):
    chosen = [corpus["pending"], corpus["migrated"]]
    form = run_action(as_runner, "skip_with_reason", chosen)
    assert 'name="skip_detail"' in form.content.decode()
    assert Transfer.objects.get(pk=corpus["pending"].pk).status == Status.PENDING
    done = run_action(as_runner, "skip_with_reason", chosen, skip_detail="Test painting, not art", apply="1")
    assert "Skipped 1 painting; 1 were migrated, running or already skipped." in texts(done)
    skipped = Transfer.objects.get(pk=corpus["pending"].pk)
    assert (skipped.status, skipped.skip_reason, skipped.skip_detail) == (Status.SKIPPED, SkipReason.MANUAL, "Test painting, not art")


def test_skip_across_every_filtered_painting_keeps_the_filter(as_runner, corpus):
    url = f"{CHANGELIST}?status__exact=failed"
    data = {"action": "skip_with_reason", "index": 0, "select_across": "1", "_selected_action": [corpus["failed"].pk]}
    form = as_runner.post(url, data)
    assert 'name="select_across" value="1"' in form.content.decode()
    done = as_runner.post(url, {**data, "skip_detail": "broken uploads", "apply": "1"}, follow=True)
    assert "Skipped 2 paintings." in texts(done)
    assert Transfer.objects.get(pk=corpus["pending"].pk).status == Status.PENDING


def put_image(static_images, painting, size=(96, 64)) -> None:
    from migrator.sample import ImageJob, render_image

    folder = static_images / "media" / f"@{painting.owner_handle}" / "painting"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{painting.content['slug']}.png").write_bytes(render_image(ImageJob("x", *size, seed=1)))


def test_dry_run_previews_then_migrate_these_queues(as_runner, corpus, static_images, django_capture_on_commit_callbacks):
    """The real preview (image over HTTP, thumbnail, record, lexicon), then
    the page's button queues a real job."""
    from django_q.models import OrmQ

    put_image(static_images, corpus["pending"])
    page = run_action(as_runner, "dry_run", [corpus["pending"]])
    html = page.content.decode()
    assert "data:image/png;base64," in html and corpus["pending"].content["slug"] in html
    assert "Valid against the lexicon" in html and "1 would migrate" in html
    assert f"/media/@{corpus['pending'].owner_handle}/painting/{corpus['pending'].content['slug']}.png" in html  # the record's imageUrl
    assert Transfer.objects.get(pk=corpus["pending"].pk).status == Status.PENDING
    with django_capture_on_commit_callbacks(execute=True):
        done = run_action(as_runner, "migrate_selected", [corpus["pending"]])
    assert "Queued 1 painting." in texts(done)
    assert OrmQ.objects.count() == 1


def test_dry_run_through_the_real_engine_reports_a_missing_image(as_runner, corpus, static_images):
    html = run_action(as_runner, "dry_run", [corpus["pending"]]).content.decode()
    assert "0 would migrate" in html and "1 would be skipped" in html
    assert "Image missing:" in html and "answered 404" in html
    assert Transfer.objects.get(pk=corpus["pending"].pk).status == Status.PENDING


def test_verify_reports_counts_and_differences(as_runner, corpus, mongo_db):
    response = run_action(as_runner, "verify_against_pds", [corpus["pending"], corpus["failed"]])
    messages = texts(response)
    assert "Checked 2 paintings: 0 match the PDS, 2 differ." in messages
    assert any("MongoDB has no such painting" in message for message in messages)


def test_retry_a_failure_group_from_the_dashboard(as_runner, corpus):
    board = as_runner.get(DASHBOARD).content.decode()
    key = re.search(r'name="group" value="([0-9a-f]+)"', board).group(1)
    response = as_runner.post(RETRY_GROUP, {"group": key}, follow=True)
    assert "Queued 2 failed documents of the group for another try." in texts(response)
    assert Transfer.objects.filter(status=Status.FAILED).count() == 0


def test_a_watcher_sees_every_page_but_no_actions(as_watcher, corpus):
    for url in (CHANGELIST, DASHBOARD, DASHBOARD_JSON, change_url(corpus["failed"])):
        assert as_watcher.get(url).status_code == 200, url
    assert 'name="action"' not in as_watcher.get(CHANGELIST).content.decode()
    assert "Retry 2" not in as_watcher.get(DASHBOARD).content.decode()


@pytest.mark.parametrize("action", ["migrate_selected", "retry_failed", "recheck_skipped", "dry_run", "skip_with_reason", "verify_against_pds"])
def test_a_watcher_cannot_run_an_action(as_watcher, corpus, action):
    before = dict(Transfer.objects.values_list("id", "status"))
    response = run_action(as_watcher, action, [corpus["pending"], corpus["failed"]], skip_detail="no", apply="1")
    assert response.status_code == 403
    assert dict(Transfer.objects.values_list("id", "status")) == before
    assert not TransferEvent.objects.filter(actor="staff:watcher").exists()


def test_a_watcher_cannot_retry_a_failure_group(as_watcher, corpus):
    from migrator import selectors

    key = selectors.failure_groups()[0].key
    assert as_watcher.post(RETRY_GROUP, {"group": key}).status_code == 403
    assert Transfer.objects.filter(status=Status.FAILED).count() == 2


def test_staff_without_view_permission_are_refused(client, db, corpus):
    from tests.plugins.console import staff_user

    client.force_login(staff_user("stranger"))
    assert client.get(DASHBOARD).status_code == 403
    assert client.get(DASHBOARD_JSON).status_code == 403
    assert client.get(CHANGELIST).status_code == 403


def test_no_page_shows_a_secret(as_runner, corpus):
    password, session = "hunter2-anon-password-XYZ", "eyJhbGciOiJIUzI1NiJ9.session-string-ABC"
    Account.objects.create(did="did:plc:anon", handle="anon.test", is_anonymous=True, password=password, session=session)
    urls = [
        reverse("admin:index"),
        CHANGELIST,
        f"{CHANGELIST}?q=anon",
        DASHBOARD,
        DASHBOARD_JSON,
        reverse("admin:app_list", args=["migrator"]),
        *(change_url(painting) for painting in corpus.values()),
    ]
    for url in urls:
        html = as_runner.get(url).content.decode()
        assert password not in html and session not in html, url
    assert as_runner.get("/admin/migrator/account/").status_code == 404


def test_the_list_costs_the_same_queries_for_a_page_of_few_or_many_rows(as_runner, db):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert as_runner.get(CHANGELIST).status_code == 200
        return len(captured)

    make_failed()
    make_migrated(rkey="")
    # A page of two rows, then a full page of 100 (list_per_page) out of 302:
    # a query per row would add 2 to the first and 100 to the second. The
    # second has one more, and only one, whatever the rows: with several
    # pages NarrowSortPaginator sorts the ids, then fetches the page's rows.
    # (One of them asks which kinds the table has, for the kind filter.)
    assert queries() == 7
    for _ in range(150):
        make_failed()
        make_migrated(rkey="")
    assert queries() == 8


def test_a_migration_that_just_began_shows_its_real_rate(db):
    """60 paintings in the last two minutes is 30 a minute, not 12 (60 over the
    5-minute window) nor 4 (over 15)."""
    import datetime as dt

    from django.utils import timezone

    from migrator.models import Transfer
    from migrator.selectors import migration_eta, transfers_throughput

    now = timezone.now()
    Transfer.objects.bulk_create(
        Transfer(ref=f"{number:024x}", status="migrated", migrated_at=now - dt.timedelta(seconds=2 * number)) for number in range(61)
    )
    throughput = transfers_throughput(now=now)
    assert throughput.per_minute(5) == throughput.per_minute(15) == 30.5
    assert migration_eta(remaining=61, throughput=throughput) == dt.timedelta(minutes=2)
