"""Live sync: the schedule and the signed upload hook."""

import json
import time
from datetime import timedelta

import pytest
from bson import ObjectId
from django.utils import timezone

from migrator.models import ErrorKind, Transfer, Status, SyncCursor
from migrator.services import engine, sync
from migrator.views import signature_for

pytestmark = [pytest.mark.django_db]
SECRET = "test-hook-secret"


def post_hook(client, body: dict, *, secret=SECRET, timestamp=None):
    raw = json.dumps(body).encode()
    timestamp = str(int(time.time()) if timestamp is None else timestamp)
    return client.post(
        "/hooks/painting",
        raw,
        content_type="application/json",
        headers={"X-AC-Timestamp": timestamp, "X-AC-Signature": signature_for(raw, timestamp, secret)},
    )


def in_mongodb(mongo_db, painting: Transfer) -> Transfer:
    """Give a row made by hand its MongoDB document (a guest painting), as
    every row the seed made has: the console refuses a database that has
    none of its paintings, and removes the records of paintings it lost."""
    when = painting.when or timezone.now()
    mongo_db.paintings.insert_one({"_id": ObjectId(painting.ref), "slug": painting.content.get("slug") or "2024.1.1.0.0.00.000", "code": painting.content.get("code") or painting.ref[:3], "when": when})
    return painting


@pytest.fixture
def hook(settings):
    settings.SYNC_WEBHOOK_SECRET = SECRET


@pytest.mark.pds
def test_the_hook_queues_a_new_painting_at_once(world, client, hook):
    ref = world.add_painting(handle=list(world.users)[0])
    response = post_hook(client, {"ref": ref})
    assert response.status_code == 202
    assert response.json() == {"ref": ref, "status": "queued"}
    assert Transfer.objects.get(ref=ref).status == Status.QUEUED


@pytest.mark.pds
def test_a_queued_painting_reaches_the_pds(world, client, hook):
    ref = world.add_painting()
    post_hook(client, {"ref": ref})
    engine.transfers_migrate(Transfer.objects.values_list("id", flat=True), actor="worker:test")
    assert len(world.records()[ref]) == 1


@pytest.mark.parametrize(
    ("secret", "age", "status"),
    [("wrong-secret", 0, 401), (SECRET, 3600, 401), (SECRET, -3600, 401)],
)
def test_the_hook_refuses_bad_signatures_and_stale_timestamps(client, hook, secret, age, status):
    response = post_hook(client, {"ref": "0" * 24}, secret=secret, timestamp=int(time.time()) - age)
    assert response.status_code == status
    assert not Transfer.objects.exists()


def test_the_hook_refuses_a_missing_signature(client, hook):
    response = client.post("/hooks/painting", b'{"ref": "000000000000000000000000"}', content_type="application/json")
    assert response.status_code == 401


def test_the_hook_is_off_without_a_secret(client, settings):
    settings.SYNC_WEBHOOK_SECRET = ""
    assert post_hook(client, {"ref": "0" * 24}).status_code == 503


def test_the_hook_refuses_a_body_without_a_ref(client, hook, mongo_db):
    assert post_hook(client, {"slug": "x"}).status_code == 400
    assert post_hook(client, {"ref": "../../etc"}).status_code == 400


def test_the_hook_answers_404_for_an_unknown_painting(client, hook, mongo_db):
    assert post_hook(client, {"ref": "65f0c0ffee0000000000beef"}).status_code == 404


@pytest.mark.pds
def test_the_schedule_picks_up_new_paintings_incrementally(world):
    first = world.add_painting()
    result = sync.live_sync(actor="schedule:test")
    assert (result.full, result.new, result.queued) == (True, 1, 1)
    engine.transfers_migrate(Transfer.objects.values_list("id", flat=True), actor="worker:test")

    second = world.add_painting()
    result = sync.live_sync(actor="schedule:test")

    assert (result.full, result.new, result.queued) == (False, 1, 1)
    assert SyncCursor.objects.get(name=sync.CURSOR).position == second
    assert Transfer.objects.get(ref=first).status == Status.MIGRATED


@pytest.mark.pds
def test_the_hourly_full_sync_catches_a_nuke(world):
    ref = world.add_painting()
    sync.live_sync(actor="schedule:test")
    engine.transfers_migrate(Transfer.objects.values_list("id", flat=True), actor="worker:test")
    world.mongo.paintings.update_one({"_id": world.paintings[ref]["_id"]}, {"$set": {"nuked": True}})
    SyncCursor.objects.filter(name=sync.CURSOR).update(ran_at=timezone.now() - timedelta(hours=2))

    result = sync.live_sync(actor="schedule:test")
    engine.transfers_migrate(Transfer.objects.values_list("id", flat=True), actor="worker:test")

    assert result.full and result.updated == 1
    assert world.records()[ref][0].value["nuked"] is True


@pytest.mark.pds
def test_paintings_that_failed_while_the_pds_was_down_are_retried_with_backoff(world):
    ref = world.add_painting()
    sync.live_sync(actor="schedule:test")
    painting = Transfer.objects.get(ref=ref)
    Transfer.objects.filter(pk=painting.pk).update(status=Status.FAILED, error_kind=ErrorKind.TRANSIENT, attempts=1, last_error="PDS down")

    assert sync.live_sync(actor="schedule:test").retried == 0  # too soon
    Transfer.objects.filter(pk=painting.pk).update(updated_at=timezone.now() - timedelta(minutes=2))
    assert sync.live_sync(actor="schedule:test").retried == 1
    assert Transfer.objects.get(pk=painting.pk).status == Status.QUEUED


@pytest.mark.parametrize(
    ("attempts", "too_soon", "due"),
    [(1, 0.5, 1.5), (2, 1.5, 2.5), (3, 3.5, 4.5), (5, 15, 17), (7, 59, 65), (12, 59, 61)],  # minutes: 1, 2, 4, 16, then the 60 cap
)
def test_each_retry_waits_twice_as_long_as_the_last_up_to_an_hour(mongo_db, attempts, too_soon, due):
    painting = Transfer.objects.create(ref="3" * 24, status=Status.FAILED, error_kind=ErrorKind.TRANSIENT, attempts=attempts)

    Transfer.objects.filter(pk=painting.pk).update(updated_at=timezone.now() - timedelta(minutes=too_soon))
    assert list(sync._retry_due()) == []
    Transfer.objects.filter(pk=painting.pk).update(updated_at=timezone.now() - timedelta(minutes=due))
    assert list(sync._retry_due()) == [painting]


def test_waiting_paintings_are_queued_when_their_rate_limit_resets_not_before(mongo_db):
    painting = in_mongodb(mongo_db, Transfer.objects.create(
        ref="4" * 24, status=Status.WAITING, error_kind=ErrorKind.RATE_LIMITED, waiting_for="uploadBlob: 1,000 per day per IP",
        not_before=timezone.now() + timedelta(hours=5),
    ))  # fmt: skip
    assert sync.live_sync(actor="schedule:test").resumed == 0
    Transfer.objects.filter(pk=painting.pk).update(not_before=timezone.now() - timedelta(seconds=1))
    assert sync.live_sync(actor="schedule:test").resumed == 1
    assert Transfer.objects.get(pk=painting.pk).status == Status.QUEUED


def test_permanent_failures_wait_for_a_person(mongo_db):
    in_mongodb(mongo_db, Transfer.objects.create(ref="1" * 24, status=Status.FAILED, error_kind=ErrorKind.PERMANENT, attempts=1, updated_at=timezone.now()))
    Transfer.objects.filter(ref="1" * 24).update(updated_at=timezone.now() - timedelta(days=1))
    assert sync.live_sync(actor="schedule:test").retried == 0


@pytest.mark.slow
def test_the_schedule_says_so_in_one_line_when_mongodb_is_out_of_reach(settings, db, caplog):
    from migrator import tasks

    settings.MONGODB_URI = "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=200"
    result = tasks.live_sync()
    assert result == {"skipped": "MongoDB out of reach (ServerSelectionTimeoutError)"}
    assert "Live sync skipped: MongoDB is out of reach" in caplog.text


def test_the_schedule_releases_paintings_a_dead_worker_left_running(mongo_db):
    from migrator.services.state import transfer_transition

    painting = in_mongodb(mongo_db, Transfer.objects.create(ref="2" * 24, content={"slug": "2024.1.1.0.0.00.000", "code": "abc"}, when=timezone.now()))
    transfer_transition(painting, to=Status.RUNNING, actor="worker:gone", claimed_by="elsewhere:1", claimed_at=timezone.now() - timedelta(hours=1))

    result = sync.live_sync(actor="schedule:test")

    assert result.released == 1
    assert Transfer.objects.get(pk=painting.pk).status == Status.QUEUED


def test_the_schedule_requeues_paintings_whose_job_the_broker_lost(mongo_db, django_capture_on_commit_callbacks):
    """A killed cluster on the Redis broker takes the jobs it had fetched
    with it; nothing else would ever move these rows again."""
    from django_q.models import OrmQ

    painting = in_mongodb(mongo_db, Transfer.objects.create(ref="3" * 24, content={"slug": "2024.1.1.0.0.00.000", "code": "abc"}, when=timezone.now()))
    engine.transfers_enqueue(Transfer.objects.filter(pk=painting.pk), actor="test")  # its job never sent: "lost"
    Transfer.objects.filter(pk=painting.pk).update(claimed_at=timezone.now() - timedelta(hours=1))

    with django_capture_on_commit_callbacks(execute=True):
        result = sync.live_sync(actor="schedule:test")

    assert result.lost == 1
    painting.refresh_from_db()
    assert painting.status == Status.QUEUED and painting.claimed_at > timezone.now() - timedelta(minutes=1)
    assert painting.events.filter(message__contains="its job was lost").exists()
    assert OrmQ.objects.count() == 1  # the new job, in the broker


def test_queued_paintings_wait_while_the_broker_still_holds_jobs(mongo_db, django_capture_on_commit_callbacks):
    painting = in_mongodb(mongo_db, Transfer.objects.create(ref="4" * 24, content={"slug": "2024.1.1.0.0.00.000", "code": "abc"}, when=timezone.now()))
    with django_capture_on_commit_callbacks(execute=True):
        engine.transfers_enqueue(Transfer.objects.filter(pk=painting.pk), actor="test")
    Transfer.objects.filter(pk=painting.pk).update(claimed_at=timezone.now() - timedelta(hours=1))

    assert engine.jobs_waiting() == 1
    assert sync.live_sync(actor="schedule:test").lost == 0
    assert Transfer.objects.get(pk=painting.pk).status == Status.QUEUED


def test_a_job_that_cannot_be_sent_leaves_its_paintings_pending(mongo_db, monkeypatch, django_capture_on_commit_callbacks):
    """The broker refusing the job is simulated at django-q2's async_task
    (a broker outage on demand is not something this machine can stage for
    one call); the rows must not wait as queued for a job that never was."""
    import django_q.tasks

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(django_q.tasks, "async_task", broker_down)
    painting = in_mongodb(mongo_db, Transfer.objects.create(ref="5" * 24, content={"slug": "2024.1.1.0.0.00.000", "code": "abc"}, when=timezone.now()))

    with django_capture_on_commit_callbacks(execute=True):
        queued = engine.transfers_enqueue(Transfer.objects.filter(pk=painting.pk), actor="test")

    assert queued == 1
    painting.refresh_from_db()
    assert painting.status == Status.PENDING
    assert painting.events.filter(message__contains="Could not queue the job (ConnectionError)").exists()


@pytest.fixture
def fresh_cache():
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


def raw_hook(client, body: bytes, *, timestamp=None, signature=None):
    timestamp = str(int(time.time())) if timestamp is None else timestamp
    signature = signature_for(body, timestamp, SECRET) if signature is None else signature
    return client.post("/hooks/painting", body, content_type="application/json", headers={"X-AC-Timestamp": timestamp, "X-AC-Signature": signature})


@pytest.mark.parametrize(
    ("body", "timestamp", "signature", "status"),
    [
        (b'{"ref": "65f0c0ffee0000000000beef"}', None, "sha256=\u00e9\u00e9", 401),  # non-ASCII signature
        (b'{"ref": "65f0c0ffee0000000000beef"}', "\u0661\u0662\u0663", None, 401),  # unicode digits as a timestamp
        (b'{"ref": "0x65f0c0ffee0000000000be"}', None, None, 400),  # int(ref, 16) took 0x…
        (b'{"ref": "65f0_c0ffee000000000beef"}', None, None, 400),  # … and underscores
        (b'["65f0c0ffee0000000000beef"]', None, None, 400),
        (b"not json", None, None, 400),
        (b'{"ref": "' + b"a" * 2000 + b'"}', None, None, 413),
    ],
    ids=["non-ascii-signature", "unicode-timestamp", "0x-ref", "underscore-ref", "a-list", "not-json", "huge-body"],
)
def test_malformed_hook_calls_get_a_4xx_with_a_reason(client, hook, mongo_db, fresh_cache, body, timestamp, signature, status):
    response = raw_hook(client, body, timestamp=timestamp, signature=signature)
    assert response.status_code == status
    assert response.json()["error"]
    assert not Transfer.objects.exists()


@pytest.mark.pds
def test_a_replayed_hook_call_is_refused(world, client, hook, fresh_cache):
    ref = world.add_painting()
    body = json.dumps({"ref": ref}).encode()
    timestamp = str(int(time.time()))
    assert raw_hook(client, body, timestamp=timestamp).status_code == 202
    replay = raw_hook(client, body, timestamp=timestamp)
    assert replay.status_code == 409 and "replay" in replay.json()["error"]
    assert Transfer.objects.get(ref=ref).events.filter(actor="hook:painting", to_status=Status.QUEUED).count() == 1


@pytest.mark.pds
def test_a_hook_call_looks_up_only_its_own_paintings_code(world, client, hook, fresh_cache, monkeypatch):
    """A spy on the one MongoDB look-up that used to scan the whole collection."""
    from migrator import source

    refs = [world.add_painting() for _ in range(5)]
    calls = []
    real = source.duplicate_codes

    def spy(**kwargs):
        calls.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(source, "duplicate_codes", spy)
    assert post_hook(client, {"ref": refs[2]}).status_code == 202
    assert [call["codes"] for call in calls] == [[world.paintings[refs[2]]["code"]]]
