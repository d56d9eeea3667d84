"""The verification schedule: a full, read-only comparison every
VERIFY_EVERY_HOURS, kept as a Verification, shown on the dashboard and
alerted once while differences remain; against the real local PDS and a
real MongoDB wire-protocol server, on a migration the engine made."""

import datetime as dt
import importlib
import io
import re
import socket

import pytest
from django.apps import apps as django_apps
from django.core import mail
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule

from migrator import pds, tasks
from migrator.models import Alert, Transfer, Verification
from migrator.services.compare import documents_compare
from migrator.kinds import PAINTING
from tests.test_engine import migrate_all, names

pytestmark = pytest.mark.django_db
DASHBOARD = reverse("admin:migrator_dashboard")


@pytest.fixture
def admins(settings):
    settings.ADMINS = [("Ann", "ann@example.test")]


@pytest.fixture
def migrated(world, admins):
    """A few paintings, migrated by the engine: their refs."""
    ann, bo = names(world)
    refs = [world.add_painting(handle=ann), world.add_painting(handle=ann), world.add_painting(handle=bo), world.add_painting()]
    migrate_all()
    return refs


def dashboard_text(client, runner) -> str:
    client.force_login(runner)
    html = client.get(DASHBOARD).content.decode()
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def delete_record(world, ref: str) -> None:
    row = Transfer.objects.get(ref=ref)
    user = next((user for user in world.users.values() if user.did == row.account_did), None)
    repo = pds.repo_for(did=row.account_did, password=user.password if user else "")
    repo.record_delete(collection="computer.aesthetic.painting", rkey=row.rkey)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_migration_schedules_a_verification_every_24_hours_the_first_a_day_on():
    schedule = Schedule.objects.get(name="verification")
    assert (schedule.func, schedule.schedule_type, schedule.minutes, schedule.repeats) == ("migrator.tasks.verification", "I", 24 * 60, -1)

    # The migration itself, on a console that never had the schedule.
    schedule.delete()
    importlib.import_module("migrator.migrations.0008_alerts_verification").create_schedule(django_apps, None)
    importlib.import_module("migrator.migrations.0010_transfer").forwards(django_apps, None)  # names it for what it does

    schedule = Schedule.objects.get(name="verification")
    assert (schedule.func, schedule.minutes) == ("migrator.tasks.verification", 24 * 60)
    assert abs(schedule.next_run - (timezone.now() + dt.timedelta(hours=24))) < dt.timedelta(minutes=1)


def test_migrate_brings_the_schedule_to_verify_every_hours(settings):
    settings.VERIFY_EVERY_HOURS = 6

    call_command("migrate", verbosity=0)

    schedule = Schedule.objects.get(name="verification")
    assert schedule.minutes == 6 * 60
    assert schedule.next_run <= timezone.now() + dt.timedelta(hours=6)


@pytest.mark.pds
def test_a_finished_migration_verifies_clean_and_the_dashboard_says_so(migrated, client, runner):
    assert "Never verified" in dashboard_text(client, runner)

    result = tasks.verification()

    assert result == {"differences": 0, "counts": {}, "error": ""}
    verification = Verification.objects.get()
    assert (verification.actor, verification.documents, verification.records) == ("schedule:verification", 4, 4)
    assert verification.finished_at is not None
    assert re.search(r"Verified \d+ s ago: no differences\.", dashboard_text(client, runner))
    assert mail.outbox == []


@pytest.mark.pds
def test_differences_are_kept_alerted_once_and_cleared_once_clean(world, migrated, client, runner):
    gone = migrated[0]
    delete_record(world, gone)

    tasks.verification()

    verification = Verification.objects.get()
    assert (verification.differences, verification.counts) == (1, {"missing_record": 1})
    assert [example["ref"] for example in verification.examples] == [gone]
    (message,) = mail.outbox
    assert message.subject == "[painting console] Drift: 1 difference between MongoDB, the state table and the PDS"
    assert "Paintings without a record: 1" in message.body and gone in message.body
    board = dashboard_text(client, runner)
    assert re.search(r"Verified \d+ s ago: 1 difference\.", board)
    assert f"Paintings without a record {gone}" in board
    assert "Drift: 1 difference between MongoDB" in board.split("Open alerts")[1]

    tasks.verification()  # the difference persists: not told twice
    assert Verification.objects.count() == 2 and len(mail.outbox) == 1

    documents_compare(repair=True, kind=PAINTING)  # back to pending, and migrated again
    migrate_all()
    tasks.verification()

    assert Verification.objects.first().differences == 0
    assert Alert.objects.get(key="drift").cleared_at is not None
    board = dashboard_text(client, runner)
    assert re.search(r"Verified \d+ s ago: no differences\.", board) and "No open alerts." in board
    assert len(mail.outbox) == 1


@pytest.mark.slow
@pytest.mark.pds
def test_a_verification_that_cannot_read_mongodb_is_kept_as_failed_and_alerted(migrated, client, runner, settings):
    tasks.verification()
    good_uri = settings.MONGODB_URI
    settings.MONGODB_URI = f"mongodb://127.0.0.1:{closed_port()}/?serverSelectionTimeoutMS=300"

    result = tasks.verification()

    assert result["error"] == "MongoDB could not be read (ServerSelectionTimeoutError)."
    (message,) = mail.outbox
    assert message.subject == "[painting console] Verification failed: MongoDB could not be read (ServerSelectionTimeoutError)."
    assert re.search(
        r"The last verification failed \d+ s ago: MongoDB could not be read \(ServerSelectionTimeoutError\)\. "
        r"Before that: verified \d+ s ago: no differences\.",
        dashboard_text(client, runner),
    )
    settings.MONGODB_URI = good_uri
    tasks.verification()
    assert Alert.objects.get(key="verify-error").cleared_at is not None


@pytest.mark.pds
def test_a_pds_out_of_reach_is_a_failed_verification_not_drift(migrated, settings):
    settings.PDS_URL = f"http://127.0.0.1:{closed_port()}"
    pds.forget_sessions()

    result = tasks.verification()

    assert result == {"differences": 0, "counts": {}, "error": "The PDS could not be read (no account's records could be listed)."}
    assert [alert.key for alert in Alert.objects.all()] == ["verify-error"]


def test_a_verification_that_never_finished_is_said_to_have_failed_and_closed_by_the_next(client, runner, mongo_db, pds):
    Verification.objects.create(actor="schedule:verification", started_at=timezone.now() - dt.timedelta(minutes=20))

    assert re.search(r"The last verification failed 20 min \d+ s ago: It did not finish", dashboard_text(client, runner))
    tasks.verification()
    first = Verification.objects.order_by("started_at").first()
    assert first.finished_at is not None and first.error.startswith("It did not finish")


@pytest.mark.pds
def test_compare_paintings_of_everything_keeps_its_result_as_the_last_verification(migrated, world):
    call_command("compare_paintings", stdout=io.StringIO())
    assert Verification.objects.get().actor == "command:compare"

    call_command("compare_paintings", "--anonymous", stdout=io.StringIO())
    call_command("compare_paintings", "--repair", "--dry-run", stdout=io.StringIO())
    assert Verification.objects.count() == 1  # a part, or a repair, is not a verification
