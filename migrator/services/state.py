"""Every change to the migration state goes through here.

A status is a small state machine: ``painting_transition`` and
``paintings_transition`` are the only code that sets ``status``, each change
is a conditional update (a row that moved under us is left alone and the
call says so), and each change appends a ``MigrationEvent``.
"""

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from migrator.models import MigrationEvent, PaintingMigration, Status

ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    Status.PENDING: frozenset({Status.QUEUED, Status.RUNNING, Status.SKIPPED, Status.MIGRATED}),
    Status.QUEUED: frozenset({Status.RUNNING, Status.PENDING, Status.SKIPPED}),
    Status.RUNNING: frozenset({Status.MIGRATED, Status.FAILED, Status.SKIPPED, Status.PENDING, Status.WAITING}),
    Status.FAILED: frozenset({Status.QUEUED, Status.RUNNING, Status.PENDING, Status.SKIPPED}),
    # Waiting for a rate limit's reset: queued by the schedule once it is due,
    # or claimed by a run an operator starts.
    Status.WAITING: frozenset({Status.QUEUED, Status.RUNNING, Status.PENDING, Status.SKIPPED}),
    Status.SKIPPED: frozenset({Status.PENDING, Status.QUEUED, Status.MIGRATED}),
    # A migrated painting runs again when its source changes (nuked or
    # un-nuked): its record is rewritten under the same key, or removed.
    Status.MIGRATED: frozenset({Status.QUEUED, Status.RUNNING, Status.PENDING, Status.SKIPPED}),
}


class IllegalTransition(ValueError):
    """Raised for a status change the state machine does not allow."""


def _check_transition(from_status: str, to_status: str) -> None:
    if to_status not in ALLOWED_TRANSITIONS.get(from_status, frozenset()):
        raise IllegalTransition(f"A painting cannot go from {from_status} to {to_status}.")


def painting_transition(
    painting: PaintingMigration,
    *,
    to: str,
    actor: str,
    message: str = "",
    holder: str | None = None,
    expect: dict | None = None,
    **fields,
) -> bool:
    """Move one painting from its current status to ``to``.

    Returns False, changing nothing, when the row's status in the database is
    no longer ``painting.status`` (another worker or staff member moved it),
    when ``holder`` is given and the row is no longer claimed by it (its
    lease ran out and another worker took it), or when a field named in
    ``expect`` no longer has the value given there.
    Raises IllegalTransition for a change the state machine forbids.
    On success ``painting`` is updated in memory too.
    """
    from_status = painting.status
    _check_transition(from_status, to)
    now = timezone.now()
    conditions = dict(expect or {})
    if holder is not None:
        conditions["claimed_by"] = holder
    with transaction.atomic():
        updated = PaintingMigration.objects.filter(pk=painting.pk, status=from_status, **conditions).update(
            status=to, updated_at=now, **fields
        )
        if not updated:
            return False
        MigrationEvent.objects.create(
            painting=painting, from_status=from_status, to_status=to, message=message, actor=actor
        )
    painting.status = to
    painting.updated_at = now
    for name, value in fields.items():
        setattr(painting, name, value)
    return True


def paintings_transition(
    paintings,
    *,
    from_statuses: Iterable[str],
    to: str,
    actor: str,
    message: str = "",
    limit: int | None = None,
    **fields,
) -> list[int]:
    """Move every painting of the queryset ``paintings`` that is in one of
    ``from_statuses`` to ``to``, atomically, with one event each.

    Rows are locked while they move (``SKIP LOCKED`` on PostgreSQL; SQLite
    takes the database write lock), so two workers calling this at once never
    move the same painting. Returns the ids that moved.
    """
    from_statuses = [str(status) for status in from_statuses]
    for from_status in from_statuses:
        _check_transition(from_status, to)
    now = timezone.now()
    with transaction.atomic():
        candidates = paintings.filter(status__in=from_statuses).order_by("id")
        if transaction.get_connection().features.has_select_for_update_skip_locked:
            candidates = candidates.select_for_update(skip_locked=True, of=("self",))
        if limit is not None:
            candidates = candidates[:limit]
        moving = list(candidates.values_list("id", "status"))
        if not moving:
            return []
        ids = [painting_id for painting_id, _ in moving]
        PaintingMigration.objects.filter(id__in=ids).update(status=to, updated_at=now, **fields)
        MigrationEvent.objects.bulk_create(
            MigrationEvent(
                painting_id=painting_id,
                from_status=from_status,
                to_status=to,
                message=message,
                actor=actor,
            )
            for painting_id, from_status in moving
        )
    return ids


def painting_note(painting: PaintingMigration, *, actor: str, message: str) -> MigrationEvent:
    """Record a step that does not change the status (e.g. "uploading blob")."""
    return MigrationEvent.objects.create(
        painting=painting,
        from_status=painting.status,
        to_status=painting.status,
        message=message,
        actor=actor,
    )
