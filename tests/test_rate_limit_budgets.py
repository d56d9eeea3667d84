"""The PDS's production rate limits are budgets, not failures.

Against a PDS of this module's own, started with production rate limits and
no bypass key (bin/local-pds --rate-limits on). Its day-long uploadBlob
budget and an account's hourly write budget are spent for real, by calls
made straight to the PDS, so the console meets them the way it would in
production; a restart on the same data folder resets the PDS's in-memory
limiter, standing in for the next day. Nothing is mocked.
"""

import datetime as dt
import secrets
from contextlib import closing

import httpx
import pytest
from django.core.management import call_command
from django.utils import timezone

from migrator import pds
from migrator.models import ErrorKind, Transfer, RateLimitWindow, Status
from migrator.selectors import binding_limits, dashboard
from migrator.services import sync
from migrator.services.compare import documents_compare
from migrator.services.report import migration_status, migration_status_markdown
from migrator.kinds import PAINTING
from tests.plugins.pds import RestartablePds, _point_settings_at
from tests.plugins.world import make_world
from tests.test_engine import migrate_all, names

pytestmark = [pytest.mark.pds, pytest.mark.slow, pytest.mark.django_db]
UPLOAD_LIMIT = 1000  # per day per IP (the reference PDS's uploadBlob route)


@pytest.fixture(scope="module")
def limited_pds(tmp_path_factory):
    server = RestartablePds(tmp_path_factory.mktemp("pds-budgets"), PDS_RATE_LIMITS_ENABLED="true")
    yield server
    server.stop()


@pytest.fixture
def limited_world(limited_pds, mongo_db, static_images, settings, db):
    _point_settings_at(limited_pds.server, settings)
    yield make_world(mongo_db, static_images, settings)
    pds.forget_sessions()


def session_for(user) -> httpx.Client:
    client = httpx.Client(base_url=pds_url())
    reply = client.post("/xrpc/com.atproto.server.createSession", json={"identifier": user.did, "password": user.password})
    client.headers["Authorization"] = f"Bearer {reply.json()['accessJwt']}"
    return client


def pds_url():
    from django.conf import settings

    return settings.PDS_URL


def spend_uploads(user, *, leave: int) -> None:
    """Spend this IP's uploadBlob budget down to ``leave``, as other work would."""
    with closing(session_for(user)) as client:
        remaining = UPLOAD_LIMIT
        while remaining > leave:
            reply = client.post("/xrpc/com.atproto.repo.uploadBlob", content=b"x", headers={"Content-Type": "text/plain"})
            remaining = int(reply.headers["ratelimit-remaining"])


def uploads_left(user) -> int:
    """This IP's uploadBlob budget left, as the PDS reports it (the probe spends one)."""
    with closing(session_for(user)) as client:
        reply = client.post("/xrpc/com.atproto.repo.uploadBlob", content=b"x", headers={"Content-Type": "text/plain"})
        return int(reply.headers["ratelimit-remaining"])


def test_a_spent_upload_budget_makes_paintings_wait_and_the_next_day_finishes_them(limited_pds, limited_world, settings):
    world = limited_world
    ann = names(world)[0]
    refs = [world.add_painting(handle=ann) for _ in range(5)]
    spend_uploads(world.users[ann], leave=3)

    first = migrate_all()

    assert (first.migrated, sum(first.failed.values()), sum(first.waiting.values())) == (3, 0, 2)
    waiting = Transfer.objects.filter(ref__in=refs, status=Status.WAITING)
    assert waiting.count() == 2
    row = waiting.first()
    assert row.error_kind == ErrorKind.RATE_LIMITED and row.attempts == 0  # waiting is not a failed attempt
    assert row.waiting_for == "uploadBlob: 1,000 per day per IP"
    # The reset the PDS gave (a day's window), not a guessed backoff.
    assert dt.timedelta(hours=23) < row.not_before - timezone.now() <= dt.timedelta(days=1)
    assert "it resumes by itself then" in row.last_error

    # A second run spends nothing: the spent budget is known before any thumbnail or request.
    requests_before = pds.calls.REQUESTS[0]
    second = migrate_all()
    assert (second.migrated, sum(second.waiting.values())) == (0, 2)
    assert pds.calls.REQUESTS[0] == requests_before

    # The schedule leaves them alone until the reset: nothing is due.
    assert sync.waiting_due().count() == 0

    # Say which limit binds, when it resets, and how to lift it.
    (limit,) = binding_limits()
    assert (limit.name, limit.waiting, limit.left) == ("uploadBlob: 1,000 per day per IP", 2, 2)
    assert "PDS_RATE_LIMIT_BYPASS_KEY" in limit.remedy and "PDS_RATE_LIMIT_BYPASS_IPS" in limit.remedy
    assert dashboard().as_json()["limits"][0]["waiting"] == 2
    report = migration_status_markdown(migration_status())
    assert "uploadBlob: 1,000 per day per IP" in report and "PDS_RATE_LIMIT_BYPASS_KEY" in report
    assert RateLimitWindow.objects.get(name=limit.name).window_seconds == 86400

    # The next day: the PDS restarted on the same data folder (its limiter
    # starts afresh, its sessions still hold) and the reset time has passed.
    limited_pds.restart(settings)
    logins_before = sum(pds.LOGINS.values())
    Transfer.objects.filter(status=Status.WAITING).update(not_before=timezone.now() - dt.timedelta(seconds=1))
    assert sync.waiting_due().count() == 2

    third = migrate_all()

    assert (third.migrated, sum(third.failed.values())) == (2, 0)
    assert sum(pds.LOGINS.values()) == logins_before  # stored sessions survive the restart: no new login
    assert Transfer.objects.filter(ref__in=refs, status=Status.MIGRATED).count() == 5
    assert all(len(world.records()[ref]) == 1 for ref in refs)
    assert documents_compare(kind=PAINTING).clean


def test_uploads_stop_where_the_accounts_write_budget_ends(limited_pds, limited_world, settings):
    """No thumbnail is uploaded for a record the account cannot write."""
    world = limited_world
    bo = names(world)[1]
    refs = [world.add_painting(handle=bo) for _ in range(4)]
    user = world.users[bo]
    # Spend the account's hourly write budget (5,000 points) down to 7 with
    # deletes of records that do not exist: refused, but their points count.
    deletes = [{"$type": "com.atproto.repo.applyWrites#delete", "collection": "x.spend.points", "rkey": f"k{i}"} for i in range(200)]
    with closing(session_for(user)) as client:
        remaining = 5000
        while remaining > 7 + 200:
            reply = client.post("/xrpc/com.atproto.repo.applyWrites", json={"repo": user.did, "writes": deletes})
            remaining = int(reply.headers["ratelimit-remaining"]) if reply.headers["ratelimit-limit"] == "5000" else remaining - 200
        client.post("/xrpc/com.atproto.repo.applyWrites", json={"repo": user.did, "writes": deletes[: remaining - 7]})
    # The console's last write for the account taught it the budget (1 point: 6 left).
    pds.repo_for(did=user.did, password=user.password).record_delete(collection="x.spend.points", rkey="learn")
    uploads_before = uploads_left(user)

    result = migrate_all()

    assert (result.migrated, sum(result.failed.values()), sum(result.waiting.values())) == (2, 0, 2)  # 2 creates = 6 points
    assert uploads_before - uploads_left(user) == 2 + 1  # two thumbnails, and the probe
    (limit,) = binding_limits()
    assert limit.name == "repository writes: 5,000 points per hour per account"
    assert "other accounts go on" in limit.remedy
    waiting = Transfer.objects.get(ref=refs[-1])
    assert waiting.status == Status.WAITING and dt.timedelta(minutes=50) < waiting.not_before - timezone.now() <= dt.timedelta(hours=1)


def test_backfill_says_when_to_resume_and_what_lifts_the_limit(limited_pds, limited_world, settings, capsys):
    world = limited_world
    ann = names(world)[0]
    for _ in range(3):
        world.add_painting(handle=ann)
    limited_pds.restart(settings)  # a fresh upload budget for this test
    spend_uploads(world.users[ann], leave=1)

    call_command("backfill_paintings", "--workers", "1")

    out = capsys.readouterr().out
    assert "migrated: 1" in out and "failed:   0" in out and "waiting for a PDS rate limit: 2" in out
    assert "2 paintings wait for uploadBlob: 1,000 per day per IP, which resets at" in out
    assert "run this command again after that time" in out and "PDS_RATE_LIMIT_BYPASS_KEY" in out
    assert "remain pending or failed" not in out


def test_an_account_whose_paintings_cannot_upload_is_not_logged_in_to(limited_pds, limited_world, settings):
    from migrator.models import Account

    world = limited_world
    ann, bo = names(world)[:2]
    world.add_painting(handle=ann)
    spend_uploads(world.users[ann], leave=0)
    migrate_all()  # ann's painting meets the spent budget: this process now knows it
    assert Transfer.objects.filter(status=Status.WAITING).count() == 1
    # bo has never been opened by this process and has no stored session: a
    # first production run, where opening the account means a login.
    pds.forget_sessions()
    Account.objects.filter(did=world.users[bo].did).update(session="")
    refs = [world.add_painting(handle=bo) for _ in range(2)]
    logins_before, requests_before = sum(pds.LOGINS.values()), pds.calls.REQUESTS[0]

    result = migrate_all()

    assert sum(result.waiting.values()) == 3 and result.migrated == 0
    assert Transfer.objects.filter(ref__in=refs, status=Status.WAITING, waiting_for="uploadBlob: 1,000 per day per IP").count() == 2
    assert sum(pds.LOGINS.values()) == logins_before and pds.calls.REQUESTS[0] == requests_before
    limited_pds.restart(settings)  # the next test starts a new day
