"""A stuck migration is told: work that is due (pending, queued, running, or
long past its rate limit's reset) while nothing has moved for
STUCK_AFTER_MINUTES. Checked after every live sync."""

import datetime as dt

import pytest
from bson import ObjectId
from django.core import mail
from django.utils import timezone
from django_q.tasks import async_task

from migrator import tasks
from migrator.models import Alert, TransferEvent, Status, SyncCursor
from migrator.services import sync
from migrator.services.watch import migration_stuck, stuck_watch
from tests.plugins.console import make_failed, make_painting

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def quiet_period(settings):
    settings.STUCK_AFTER_MINUTES = 30
    settings.ADMINS = [("Ann", "ann@example.test")]


def ago(minutes: float) -> dt.datetime:
    return timezone.now() - dt.timedelta(minutes=minutes)


def last_moved(painting, minutes_ago: float) -> None:
    """The last status change anyone made, ``minutes_ago``."""
    event = TransferEvent.objects.create(transfer=painting, from_status="pending", to_status=painting.status, actor="test")
    TransferEvent.objects.filter(pk=event.pk).update(at=ago(minutes_ago))


def test_queued_work_that_has_not_moved_for_the_quiet_period_is_told_once():
    paintings = [make_painting(status=Status.QUEUED, claimed_at=ago(40)) for _ in range(3)]
    last_moved(paintings[0], 40)

    stuck = stuck_watch()

    assert (stuck.queued, stuck.due) == (3, 3)
    (message,) = mail.outbox
    assert message.subject.startswith("[painting console] Stuck: 3 paintings due and nothing has moved for 40 min")
    assert "3 queued" in message.body and "Job cluster: 0 workers alive" in message.body and "manage.py qcluster" in message.body
    stuck_watch()
    assert len(mail.outbox) == 1


def test_work_that_moves_again_clears_the_alert():
    painting = make_painting(status=Status.QUEUED, claimed_at=ago(40))
    last_moved(painting, 40)
    stuck_watch()

    last_moved(painting, 0)

    assert stuck_watch() is None
    assert Alert.objects.get(key="stuck").cleared_at is not None


def test_a_quiet_spell_shorter_than_the_period_is_not_stuck():
    last_moved(make_painting(status=Status.QUEUED, claimed_at=ago(20)), 20)
    assert migration_stuck() is None


def test_a_long_batch_that_renews_its_lease_is_not_stuck():
    painting = make_painting(status=Status.RUNNING, claimed_by="worker", claimed_at=ago(1))
    last_moved(painting, 45)
    assert migration_stuck() is None


def test_a_running_batch_whose_lease_nobody_renews_or_releases_is_stuck():
    painting = make_painting(status=Status.RUNNING, claimed_by="worker", claimed_at=ago(45))
    last_moved(painting, 45)
    assert migration_stuck().running == 1


def test_paintings_waiting_for_a_reset_still_ahead_are_not_stuck_but_long_past_it_are():
    waiting = make_painting(status=Status.WAITING, not_before=timezone.now() + dt.timedelta(hours=20))
    last_moved(waiting, 60)
    assert migration_stuck() is None

    make_painting(status=Status.WAITING, not_before=ago(40))
    assert migration_stuck().overdue == 1


def test_failed_and_finished_paintings_alone_are_not_stuck():
    last_moved(make_failed(), 120)
    make_painting(status=Status.MIGRATED)
    make_painting(status=Status.SKIPPED)
    assert migration_stuck() is None


def test_live_sync_tells_of_jobs_that_no_cluster_takes(mongo_db):
    painting = make_painting(status=Status.QUEUED, claimed_at=ago(40))
    mongo_db.paintings.insert_one({"_id": ObjectId(painting.ref), "slug": painting.content["slug"], "code": painting.content["code"], "when": painting.when})
    last_moved(painting, 40)
    async_task("migrator.tasks.batch_migrate", [painting.id])  # its job waits in the broker
    SyncCursor.objects.create(name=sync.CURSOR, position="f" * 24, ran_at=timezone.now())  # an incremental run

    tasks.live_sync()

    (message,) = mail.outbox
    assert message.subject.startswith("[painting console] Stuck: 1 painting due")
