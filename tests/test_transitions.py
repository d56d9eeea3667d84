import pytest

from migrator.models import MigrationEvent, PaintingMigration, Status
from migrator.services import IllegalTransition, painting_transition, paintings_transition

pytestmark = pytest.mark.django_db


def make_painting(ref="0" * 24, status=Status.PENDING):
    return PaintingMigration.objects.create(ref=ref, slug="2023.8.24.16.21.09.123", code="a3b", status=status)


def test_a_transition_writes_one_event():
    painting = make_painting()
    assert painting_transition(painting, to=Status.QUEUED, actor="command:test", message="queued by test")
    event = MigrationEvent.objects.get(painting=painting)
    assert (event.from_status, event.to_status, event.actor) == ("pending", "queued", "command:test")
    assert PaintingMigration.objects.get().status == Status.QUEUED


def test_it_refuses_an_illegal_transition():
    painting = make_painting()
    with pytest.raises(IllegalTransition):
        painting_transition(painting, to=Status.FAILED, actor="test")
    assert not MigrationEvent.objects.exists()


def test_a_row_moved_by_someone_else_is_left_alone():
    painting = make_painting()
    stale = PaintingMigration.objects.get(pk=painting.pk)
    assert painting_transition(painting, to=Status.RUNNING, actor="worker:1")
    assert not painting_transition(stale, to=Status.RUNNING, actor="worker:2")
    assert MigrationEvent.objects.count() == 1


def test_bulk_transition_moves_only_matching_rows_with_an_event_each():
    for number in range(5):
        make_painting(ref=f"{number:024x}", status=Status.FAILED if number % 2 else Status.PENDING)
    moved = paintings_transition(
        PaintingMigration.objects.all(), from_statuses=[Status.FAILED], to=Status.QUEUED, actor="staff:ann"
    )
    assert len(moved) == 2
    assert MigrationEvent.objects.filter(to_status=Status.QUEUED, actor="staff:ann").count() == 2
    assert PaintingMigration.objects.filter(status=Status.PENDING).count() == 3
