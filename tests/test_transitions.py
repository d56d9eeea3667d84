import pytest

from migrator.models import TransferEvent, Transfer, Status
from migrator.services import IllegalTransition, transfer_transition, transfers_transition

pytestmark = pytest.mark.django_db


def make_painting(ref="0" * 24, status=Status.PENDING):
    return Transfer.objects.create(ref=ref, label="2023.8.24.16.21.09.123", content={"slug": "2023.8.24.16.21.09.123", "code": "a3b"}, status=status)


def test_a_transition_writes_one_event():
    painting = make_painting()
    assert transfer_transition(painting, to=Status.QUEUED, actor="command:test", message="queued by test")
    event = TransferEvent.objects.get(transfer=painting)
    assert (event.from_status, event.to_status, event.actor) == ("pending", "queued", "command:test")
    assert Transfer.objects.get().status == Status.QUEUED


def test_it_refuses_an_illegal_transition():
    painting = make_painting()
    with pytest.raises(IllegalTransition):
        transfer_transition(painting, to=Status.FAILED, actor="test")
    assert not TransferEvent.objects.exists()


def test_a_row_moved_by_someone_else_is_left_alone():
    painting = make_painting()
    stale = Transfer.objects.get(pk=painting.pk)
    assert transfer_transition(painting, to=Status.RUNNING, actor="worker:1")
    assert not transfer_transition(stale, to=Status.RUNNING, actor="worker:2")
    assert TransferEvent.objects.count() == 1


def test_bulk_transition_moves_only_matching_rows_with_an_event_each():
    for number in range(5):
        make_painting(ref=f"{number:024x}", status=Status.FAILED if number % 2 else Status.PENDING)
    moved = transfers_transition(
        Transfer.objects.all(), from_statuses=[Status.FAILED], to=Status.QUEUED, actor="staff:ann"
    )
    assert len(moved) == 2
    assert TransferEvent.objects.filter(to_status=Status.QUEUED, actor="staff:ann").count() == 2
    assert Transfer.objects.filter(status=Status.PENDING).count() == 3


def test_transition_each_moves_only_rows_still_held_and_unchanged_with_their_own_fields():
    from migrator.services.state import Change, transfers_transition_each

    rows = [make_painting(ref=f"{number:024x}", status=Status.RUNNING) for number in range(5)]
    Transfer.objects.filter(pk__in=[row.pk for row in rows]).update(claimed_by="worker:1", source_fingerprint="v1")
    for row in rows:
        row.refresh_from_db()
    Transfer.objects.filter(pk=rows[1].pk).update(claimed_by="worker:2")  # its lease ran out
    Transfer.objects.filter(pk=rows[2].pk).update(source_fingerprint="v2")  # MongoDB changed
    Transfer.objects.filter(pk=rows[3].pk).update(status=Status.PENDING)  # released

    changes = [Change(row, f"wrote {number}", {"rkey": f"key{number}", "claimed_by": ""}) for number, row in enumerate(rows)]
    unmade = transfers_transition_each(changes, to=Status.MIGRATED, actor="worker:1", holder="worker:1", expect=("source_fingerprint",))

    assert [change.transfer.pk for change in unmade] == [rows[1].pk, rows[2].pk, rows[3].pk]
    stored = {row.pk: row for row in Transfer.objects.all()}
    for number in (0, 4):
        assert (stored[rows[number].pk].status, stored[rows[number].pk].rkey, stored[rows[number].pk].claimed_by) == (Status.MIGRATED, f"key{number}", "")
        assert rows[number].status == Status.MIGRATED  # in memory too
        assert TransferEvent.objects.get(transfer=rows[number], to_status=Status.MIGRATED).message == f"wrote {number}"
    for number in (1, 2, 3):
        assert stored[rows[number].pk].status != Status.MIGRATED and stored[rows[number].pk].rkey == ""
    assert TransferEvent.objects.filter(to_status=Status.MIGRATED).count() == 2


def test_transition_each_gives_every_row_its_own_values_where_values_repeat():
    """The rows' repeated plain values are converted once: each row still
    ends with exactly its own (None, 0 and a number; equal and unequal strings)."""
    from datetime import UTC, datetime

    from migrator.services.state import Change, transfers_transition_each

    rows = [make_painting(ref=f"{number:024x}", status=Status.RUNNING) for number in range(4)]
    Transfer.objects.update(claimed_by="worker:1")
    for row in rows:
        row.refresh_from_db()
    sizes, mimes = [None, 0, 7, 7], ["", "image/png", "", "image/jpeg"]
    changes = [
        Change(row, "wrote", {"blob_size": sizes[number], "blob_mime": mimes[number], "migrated_at": datetime(2026, 1, 1 + number, tzinfo=UTC)})
        for number, row in enumerate(rows)
    ]
    assert transfers_transition_each(changes, to=Status.MIGRATED, actor="worker:1", holder="worker:1") == []
    stored = [Transfer.objects.get(pk=row.pk) for row in rows]
    assert [row.blob_size for row in stored] == sizes
    assert [row.blob_mime for row in stored] == mimes
    assert [row.migrated_at.day for row in stored] == [1, 2, 3, 4]


def test_events_add_writes_what_the_orm_would():
    from django.utils import timezone

    from migrator.services.state import events_add

    first, second = make_painting(ref="a" * 24), make_painting(ref="b" * 24)
    before = timezone.now()
    events_add([(first.pk, "running", "running", "Writing record 3k (create)."), (second.pk, "", "pending", "Seeded: ünïcode ✓")], actor="command:backfill:w1")
    events = list(TransferEvent.objects.order_by("id"))
    assert [(event.transfer_id, event.from_status, event.to_status, event.message, event.actor) for event in events] == [
        (first.pk, "running", "running", "Writing record 3k (create).", "command:backfill:w1"),
        (second.pk, "", "pending", "Seeded: ünïcode ✓", "command:backfill:w1"),
    ]
    assert all(before <= event.at <= timezone.now() for event in events)  # an aware moment, as auto_now_add sets it
    assert list(first.events.all()) == events[:1]
    events_add([], actor="nobody")  # nothing to write: no statement
    assert TransferEvent.objects.count() == 2
