"""Live sync: paintings uploaded (or changed) after the backfill reach
ATProto without staff action.

A django-q2 schedule calls ``paintings_sync`` every minute: it reads the
paintings inserted since the last run (and, every SYNC_FULL_EVERY_MINUTES,
all of them, to catch edits such as nuking), queues what is pending,
re-queues paintings that failed for a passing reason, releases paintings
a dead worker left running and re-queues paintings whose job the broker
lost. Every seed also puts back to pending the migrated paintings whose
record MongoDB has changed since (see migrator.services.seed). The upload function
can also call ``/hooks/painting`` right after its insert, which seeds and
queues that one painting at once (``painting_sync``).
"""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from migrator.models import ErrorKind, PaintingMigration, Status, SyncCursor
from migrator.services.engine import paintings_enqueue, paintings_release_stale, paintings_requeue_lost
from migrator.services.seed import paintings_seed

CURSOR = "paintings_sync"
ACTOR = "schedule:paintings_sync"
# A failure for a passing reason waits this long before its next attempt,
# doubling with each attempt (capped), so a PDS that is down is not hammered.
RETRY_BASE = timedelta(minutes=1)
RETRY_CAP = timedelta(hours=1)


@dataclass
class SyncResult:
    full: bool
    new: int
    updated: int
    queued: int
    retried: int
    released: int = 0  # left running by a worker that died, put back to pending
    lost: int = 0  # queued, but their job was lost by the broker: queued again
    resumed: int = 0  # waited for a rate limit that has now reset: queued again
    gone: int = 0  # found deleted from MongoDB (full re-reads): their records are removed
    held: int = 0  # found deleted, but more than the tripwire allows: none removed

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def paintings_sync(*, actor: str) -> SyncResult:
    cursor, _ = SyncCursor.objects.get_or_create(name=CURSOR)
    full_due = cursor.ran_at is None or timezone.now() - cursor.ran_at >= timedelta(minutes=settings.SYNC_FULL_EVERY_MINUTES)
    full = full_due or not cursor.position
    report = paintings_seed(actor=actor, after_ref=None if full else cursor.position)
    cursor.position = max(cursor.position, report.last_ref)
    cursor.synced_at = timezone.now()  # what GET /health's "sync" check reads
    if full:
        cursor.ran_at = cursor.synced_at
    cursor.save()
    released = paintings_release_stale(actor=actor)
    lost = paintings_requeue_lost(actor=actor)
    retried = paintings_enqueue(_retry_due(), actor=actor)
    resumed = paintings_enqueue(waiting_due(), actor=actor)
    queued = paintings_enqueue(PaintingMigration.objects.filter(status=Status.PENDING), actor=actor)
    gone = report.gone
    return SyncResult(
        full=full, new=report.new, updated=report.updated, queued=queued, retried=retried, resumed=resumed, released=released, lost=lost,
        gone=gone.removing if gone else 0, held=gone.missing if gone and gone.held else 0,
    )  # fmt: skip


def wrong_database_alert(error: Exception) -> None:
    """Live sync refused MONGODB_DB: staff hear of it once, not every minute."""
    from migrator.services.lifecycle import alert

    alert("wrong-database", "Live sync refused the MongoDB database", str(error))


def waiting_due():
    """Paintings whose rate limit has reset: the time the PDS gave, not a guess."""
    return PaintingMigration.objects.filter(status=Status.WAITING).filter(Q(not_before__lte=timezone.now()) | Q(not_before=None))


def _retry_due():
    """Failed paintings whose error was passing and whose wait is over."""
    now = timezone.now()
    due = Q()
    for attempts in range(1, 8):
        wait = min(RETRY_BASE * 2 ** (attempts - 1), RETRY_CAP)
        due |= Q(attempts=attempts, updated_at__lt=now - wait)
    due |= Q(attempts__gte=8, updated_at__lt=now - RETRY_CAP)
    return PaintingMigration.objects.filter(status=Status.FAILED, error_kind__in=[ErrorKind.TRANSIENT, ErrorKind.RATE_LIMITED]).filter(due)


def painting_sync(ref: str, *, actor: str) -> PaintingMigration | None:
    """Seed one painting from MongoDB and queue it. None when MongoDB has no
    such painting."""
    paintings_seed(actor=actor, refs=[ref])
    painting = PaintingMigration.objects.filter(ref=ref).first()
    if painting is not None:
        paintings_enqueue(PaintingMigration.objects.filter(pk=painting.pk), actor=actor)
        painting.refresh_from_db()
    return painting
