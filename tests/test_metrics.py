"""GET /metrics: who may read it, and that what it says is what the
dashboard says, read back with prometheus_client's own parser."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from migrator.models import Alert, ErrorKind, RateLimitWindow, SkipReason, Status, SyncCursor, Verification
from migrator.services.sync import CURSOR
from tests.plugins.console import make_failed, make_migrated, make_painting, staff_user

pytestmark = pytest.mark.django_db
TOKEN = "metrics-token-4f9a1c"
DASHBOARD_JSON = reverse("admin:migrator_dashboard_json")


@pytest.fixture
def token(settings):
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


def scrape(client, token: str = TOKEN) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of one scrape."""
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    found = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def named(samples: dict, name: str) -> dict[tuple, float]:
    return {labels: value for (sample, labels), value in samples.items() if sample == name}


# --- who may read it ----------------------------------------------------------


def test_without_a_token_it_asks_for_one(client, token):
    response = client.get("/metrics")
    assert response.status_code == 401 and response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"METRICS_TOKEN" in response.content
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}").status_code == 401  # not a bearer token


def test_a_wrong_token_is_refused(client, token):
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token")
    assert response.status_code == 403 and TOKEN.encode() not in response.content
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}x").status_code == 403


def test_with_no_token_set_only_staff_may_read_it(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer anything").status_code == 403
    assert client.get("/metrics").status_code == 401
    client.force_login(staff_user("ops"))
    assert client.get("/metrics").status_code == 200


def test_a_signed_in_person_who_is_not_staff_is_refused(client, token, django_user_model):
    client.force_login(django_user_model.objects.create_user("visitor", password="x"))
    assert client.get("/metrics").status_code == 403


def test_the_right_token_reads_it_and_it_answers_only_reads(client, token):
    assert scrape(client)  # something, parsed
    assert client.head("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200
    assert client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405
    assert "no-cache" in client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")["Cache-Control"]


# --- what it says -------------------------------------------------------------


@pytest.fixture
def state(db):
    """Rows of two kinds in most statuses, a rate limit waited for, a
    verification, an open alert and live sync's cursor."""
    now = timezone.now()
    make_painting(), make_painting(), make_migrated(), make_failed(), make_failed(error_kind=ErrorKind.PERMANENT, last_error="InvalidRecord: bad")
    make_painting(status=Status.SKIPPED, skip_reason=SkipReason.IMAGE_MISSING)
    make_painting(kind="mood", status=Status.SKIPPED, skip_reason=SkipReason.NUKED)
    make_painting(kind="mood", status=Status.MIGRATED)
    make_failed(kind="mood")
    resets = now + dt.timedelta(minutes=4)
    for _ in range(3):
        make_painting(status=Status.WAITING, waiting_for="repo-write (per account)", not_before=resets, error_kind=ErrorKind.RATE_LIMITED)
    RateLimitWindow.objects.create(name="repo-write (per account)", scope="account", limit=5000, window_seconds=3600, reset_at=resets)
    Verification.objects.create(started_at=now - dt.timedelta(hours=3), finished_at=now - dt.timedelta(hours=2, minutes=59), differences=4, counts={"missing": 4})
    Alert.objects.create(key="drift", subject="4 differences", opened_at=now)
    SyncCursor.objects.create(name=CURSOR, synced_at=now - dt.timedelta(seconds=90), ran_at=now - dt.timedelta(minutes=30))
    return now


def test_its_counts_are_the_dashboards(client, token, state):
    samples = scrape(client)
    client.force_login(staff_user("ops", "view_transfer"))
    board = client.get(DASHBOARD_JSON).json()

    documents = named(samples, "migrator_documents")
    for plural, by_status in board["kinds"].items():
        kind = {"paintings": "painting", "moods": "mood"}[plural]
        for status in Status.values:
            assert documents[(("kind", kind), ("status", status))] == by_status.get(status, 0), (kind, status)
    assert sum(documents.values()) == board["total"] == 12
    assert named(samples, "migrator_waiting_documents") == {(("limit", "repo-write (per account)"),): 3}
    assert [limit["waiting"] for limit in board["limits"]] == [3]
    resets = named(samples, "migrator_rate_limit_reset_timestamp_seconds")[(("limit", "repo-write (per account)"),)]
    assert resets == pytest.approx(dt.datetime.fromisoformat(board["limits"][0]["resets_at"]).timestamp())
    assert named(samples, "migrator_cluster_workers") == {(): board["workers"]} and board["workers"] == 0
    assert named(samples, "migrator_job_queue_depth") == {(): board["queued_jobs"]}


def test_it_counts_skips_failures_and_their_classes(client, token, state):
    samples = scrape(client)
    assert named(samples, "migrator_skipped_documents") == {
        (("kind", "mood"), ("reason", "nuked")): 1, (("kind", "painting"), ("reason", "image_missing")): 1,
    }  # fmt: skip
    assert named(samples, "migrator_failed_documents") == {
        (("error_kind", "permanent"), ("kind", "painting")): 1,
        (("error_kind", "transient"), ("kind", "mood")): 1,
        (("error_kind", "transient"), ("kind", "painting")): 1,
    }
    groups = named(samples, "migrator_failure_group_documents")
    assert groups[(("error", "Timed out after <n> s reading <url>"), ("error_kind", "transient"))] == 2
    assert groups[(("error", "InvalidRecord: bad"), ("error_kind", "permanent"))] == 1


def test_it_tells_the_verification_alerts_and_live_sync(client, token, state):
    samples = scrape(client)
    one = {name: value for (name, labels), value in samples.items() if not labels}
    assert one["migrator_verification_differences"] == 4 and one["migrator_verification_failing"] == 0
    assert 2 * 3600 < one["migrator_verification_age_seconds"] < 3 * 3600
    assert one["migrator_verification_last_finished_timestamp_seconds"] == pytest.approx((state - dt.timedelta(hours=2, minutes=59)).timestamp())
    assert one["migrator_alerts_open"] == 1 and named(samples, "migrator_alert_open") == {(("key", "drift"),): 1}
    assert 90 <= one["migrator_live_sync_lag_seconds"] < 150
    assert one["migrator_live_sync_last_full_read_timestamp_seconds"] == pytest.approx((state - dt.timedelta(minutes=30)).timestamp())


def test_a_failed_verification_keeps_the_age_of_the_last_one_that_finished(client, token, state):
    Verification.objects.create(started_at=state - dt.timedelta(minutes=5), finished_at=state, error="MongoDB did not answer")
    one = {name: value for (name, labels), value in scrape(client).items() if not labels}
    assert one["migrator_verification_failing"] == 1
    assert one["migrator_verification_age_seconds"] > 2 * 3600  # the alert on age keeps firing


def test_an_empty_console_tells_what_it_knows_and_leaves_out_the_rest(client, token):
    one = {name: value for (name, labels), value in scrape(client).items() if not labels}
    assert one["migrator_alerts_open"] == 0
    for absent in ("migrator_verification_age_seconds", "migrator_live_sync_lag_seconds", "migrator_verification_differences"):
        assert absent not in one  # never verified, never synced: no made-up zero


def test_no_secret_reaches_a_scrape(client, token, settings, state):
    settings.PDS_ADMIN_PASSWORD = "PLANTED-admin-password"
    make_failed(last_error="Login failed with PLANTED-admin-password for eyJhbGciOiJFUzI1NksifQ.eyJzdWIiOiJwbGFudGVkIn0.c2ln")
    body = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    assert "PLANTED" not in body and "eyJ" not in body and TOKEN not in body
    assert "Login failed with [hidden] for [hidden]" in body
