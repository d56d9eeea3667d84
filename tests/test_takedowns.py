"""Staff take paintings down (records removed, keys cleared, reason and who
in the audit trail), they stay down across seeds and syncs until staff
republish them, and a run can be undone after a preview. Real PDS,
SecantusDB and images; the admin through Django's test client."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from migrator.models import TransferEvent, Transfer, SkipReason, Status
from migrator.services import lifecycle, sync
from migrator.services.compare import documents_compare
from migrator.kinds import PAINTING
from tests.test_engine import migrate_all

pytestmark = [pytest.mark.pds, pytest.mark.django_db]


def mongo_atproto(world, ref):
    return world.mongo.paintings.find_one({"_id": world.paintings[ref]["_id"]}).get("atproto")


def test_the_admin_takes_paintings_down_with_a_reason(world, client, runner):
    ann = list(world.users)[0]
    down, kept = world.add_painting(handle=ann), world.add_painting(handle=ann)
    migrate_all()
    row = Transfer.objects.get(ref=down)
    client.force_login(runner)
    changelist = reverse("admin:migrator_transfer_changelist")

    form = client.post(changelist, {"action": "take_down", "_selected_action": [row.pk]})
    assert b"Take down 1 painting" in form.content
    refused = client.post(changelist, {"action": "take_down", "_selected_action": [row.pk], "apply": "1", "reason": ""})
    assert b"Say why" in refused.content and Transfer.objects.get(ref=down).status == Status.MIGRATED
    client.post(changelist, {"action": "take_down", "_selected_action": [row.pk], "apply": "1", "reason": "DMCA request 42"})

    row.refresh_from_db()
    assert (row.status, row.skip_reason, row.rkey) == (Status.SKIPPED, SkipReason.TAKEN_DOWN, "")
    assert row.unpublished_by == f"staff:{runner.username}" and row.unpublished_reason == "DMCA request 42"
    assert "DMCA request 42" in row.skip_detail and "Removed record at://" in row.skip_detail
    assert TransferEvent.objects.filter(transfer=row, actor=f"staff:{runner.username}", message__contains="DMCA request 42").exists()
    assert down not in world.records() and len(world.records()[kept]) == 1
    assert mongo_atproto(world, down) is None


def test_a_taken_down_painting_stays_down_until_republished(world):
    ref, _ = world.add_painting(), world.add_painting()
    migrate_all()
    rkey = Transfer.objects.get(ref=ref).rkey
    out = io.StringIO()
    call_command("unpublish_paintings", ref=[ref], reason="asked by its author", stdout=out)
    assert "Took down 1 paintings" in out.getvalue()

    for _ in range(2):  # seeds, a full sync, a recheck of every skip: it stays down
        migrate_all()
        sync.live_sync(actor="schedule:test")
        from migrator.services.engine import transfers_recheck

        transfers_recheck(Transfer.objects.filter(ref=ref), actor="staff:test")
        assert Transfer.objects.get(ref=ref).status == Status.SKIPPED  # a re-check is no republish
        migrate_all()
    assert Transfer.objects.get(ref=ref).skip_reason == SkipReason.TAKEN_DOWN
    assert ref not in world.records()
    assert documents_compare(kind=PAINTING).clean

    call_command("unpublish_paintings", ref=[ref], republish=True, stdout=io.StringIO())
    migrate_all()

    row = Transfer.objects.get(ref=ref)
    assert (row.status, row.rkey, row.unpublished_at) == (Status.MIGRATED, rkey, None)
    assert [record.rkey for record in world.records()[ref]] == [rkey]


def test_a_take_down_needs_a_reason(world):
    ref = world.add_painting()
    migrate_all()
    with pytest.raises(CommandError, match="--reason"):
        call_command("unpublish_paintings", ref=[ref], stdout=io.StringIO())
    assert Transfer.objects.get(ref=ref).status == Status.MIGRATED


def test_undo_removes_exactly_what_one_run_wrote_after_a_preview(world, client, runner):
    first = [world.add_painting(), world.add_painting()]
    call_command("backfill_paintings", workers=1, stdout=io.StringIO())
    second = [world.add_painting(), world.add_painting()]
    out = io.StringIO()
    call_command("backfill_paintings", workers=1, stdout=out)
    run = Transfer.objects.get(ref=second[0]).written_by
    assert run.startswith("command:backfill_paintings ") and f"undo_run --run '{run}'" in out.getvalue()
    assert Transfer.objects.get(ref=first[0]).written_by != run

    preview = io.StringIO()
    call_command("undo_run", run=run, stdout=preview)
    assert "2 records written by" in preview.getvalue()
    assert set(world.records()) == set(first + second)  # the preview changed nothing

    client.force_login(runner)
    page = client.get(reverse("admin:migrator_undo"), {"run": run})
    assert page.status_code == 200 and page.context["count"] == 2
    client.post(reverse("admin:migrator_undo"), {"run": run, "count": "2", "reason": "the second run was a mistake"})

    assert set(world.records()) == set(first)
    for ref in second:
        row = Transfer.objects.get(ref=ref)
        assert (row.status, row.skip_reason) == (Status.SKIPPED, SkipReason.TAKEN_DOWN)
        assert "Undo of command:backfill_paintings" in row.unpublished_reason
        assert mongo_atproto(world, ref) is None


def test_undo_by_an_actor_in_a_time_window(world):
    refs = [world.add_painting(), world.add_painting()]
    migrate_all()  # actor "test"
    since = Transfer.objects.get(ref=refs[0]).migrated_at
    assert lifecycle.transfers_written_by(actor="test", since=since).count() == 2
    assert lifecycle.transfers_written_by(actor="tes").count() == 0  # a whole actor, not a prefix of one

    call_command("undo_run", actor="test", since=since.isoformat(), confirm=True, reason="testing undo", stdout=io.StringIO())

    assert not world.records()
    assert Transfer.objects.filter(skip_reason=SkipReason.TAKEN_DOWN).count() == 2


def test_staff_without_the_run_permission_cannot_take_down_or_undo(world, client, watcher):
    ref = world.add_painting()
    migrate_all()
    row = Transfer.objects.get(ref=ref)
    client.force_login(watcher)
    changelist = reverse("admin:migrator_transfer_changelist")
    assert client.post(changelist, {"action": "take_down", "_selected_action": [row.pk], "apply": "1", "reason": "x"}).status_code == 403
    assert client.post(reverse("admin:migrator_undo"), {"run": row.written_by, "count": "1", "reason": "x"}).status_code == 403
    assert Transfer.objects.get(ref=ref).status == Status.MIGRATED


def test_a_take_down_after_a_crash_past_the_write_back_still_removes_the_record(world):
    """The worker wrote the record and MongoDB's atproto.rkey, then died
    before marking the row: the row has no key, MongoDB has one. Taken down
    then, the seed must not take MongoDB's key for a published painting."""
    ref, _ = world.add_painting(), world.add_painting()
    migrate_all()
    Transfer.objects.filter(ref=ref).update(status=Status.PENDING, rkey="", record_uri="", attempts=1)
    lifecycle.transfers_unpublish(Transfer.objects.filter(ref=ref), actor="staff:test", reason="asked by its author")

    migrate_all()

    row = Transfer.objects.get(ref=ref)
    assert (row.status, row.skip_reason) == (Status.SKIPPED, SkipReason.TAKEN_DOWN)
    assert ref not in world.records() and mongo_atproto(world, ref) is None
