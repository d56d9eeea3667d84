"""Live sync: documents of every kind (paintings, moods, programs, ...) uploaded or
changed after the backfill reach ATProto without staff action.

The django-q2 schedule ``live_sync`` runs every minute: for each kind it
reads the documents inserted since the last run (and, every
SYNC_FULL_EVERY_MINUTES, all of them, to catch edits such as nuking), a
cursor per kind; then it queues what is pending,
re-queues documents that failed for a passing reason, releases documents
a dead worker left running and re-queues documents whose job the broker
lost. Every seed also puts back to pending the migrated documents whose
record MongoDB has changed since (see migrator.services.seed). The upload function
can also call ``/hooks/painting`` right after its insert, which seeds and
queues that one document at once (``document_sync``).
"""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from migrator.kinds import KINDS, RecordKind
from migrator.models import ErrorKind, Transfer, Status, SyncCursor
from migrator.services.engine import transfers_enqueue, transfers_release_stale, transfers_requeue_lost
from migrator.services.lifecycle import alert, kind_in_use
from migrator.services.seed import documents_seed

CURSOR = "paintings_sync"  # the paintings' cursor; each kind's is "<plural>_sync"
ACTOR = "schedule:live_sync"
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
    keys_restored: int = 0  # keys MongoDB had lost, written back from the state table

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def live_sync(*, actor: str) -> SyncResult:
    """One run of live sync over every kind. Raises source.WrongDatabase
    (nothing changed for that kind and those after it) for a MONGODB_DB
    that is not the migration's."""
    result = SyncResult(full=False, new=0, updated=0, queued=0, retried=0)
    for kind in KINDS.values():
        if not kind_in_use(kind):
            continue
        _kind_sync(kind, actor=actor, result=result)
    result.released = transfers_release_stale(actor=actor)
    result.lost = transfers_requeue_lost(actor=actor)
    result.retried = transfers_enqueue(_retry_due(), actor=actor)
    result.resumed = transfers_enqueue(waiting_due(), actor=actor)
    result.queued = transfers_enqueue(Transfer.objects.filter(status=Status.PENDING), actor=actor)
    return result


def _kind_sync(kind: RecordKind, *, actor: str, result: SyncResult) -> None:
    cursor, _ = SyncCursor.objects.get_or_create(name=f"{kind.plural}_sync")
    full_due = cursor.ran_at is None or timezone.now() - cursor.ran_at >= timedelta(minutes=settings.SYNC_FULL_EVERY_MINUTES)
    full = full_due or not cursor.position
    report = documents_seed(actor=actor, after_ref=None if full else cursor.position, kind=kind)
    cursor.position = max(cursor.position, report.last_ref)
    cursor.synced_at = timezone.now()  # what GET /health's "sync" check reads
    if full:
        cursor.ran_at = cursor.synced_at
    cursor.save()
    result.full = result.full or full
    result.new += report.new
    result.updated += report.updated
    result.keys_restored += report.keys_restored
    gone = report.gone
    result.gone += gone.removing if gone else 0
    result.held += gone.missing if gone and gone.held else 0


def wrong_database_alert(error: Exception) -> None:
    """Live sync refused MONGODB_DB: staff hear of it once, not every minute."""
    alert("wrong-database", "Live sync refused the MongoDB database", str(error))


def waiting_due():
    """Paintings whose rate limit has reset: the time the PDS gave, not a guess."""
    return Transfer.objects.filter(status=Status.WAITING).filter(Q(not_before__lte=timezone.now()) | Q(not_before=None))


def _retry_due():
    """Failed documents whose error was passing and whose wait is over."""
    now = timezone.now()
    due = Q()
    for attempts in range(1, 8):
        wait = min(RETRY_BASE * 2 ** (attempts - 1), RETRY_CAP)
        due |= Q(attempts=attempts, updated_at__lt=now - wait)
    due |= Q(attempts__gte=8, updated_at__lt=now - RETRY_CAP)
    return Transfer.objects.filter(status=Status.FAILED, error_kind__in=[ErrorKind.TRANSIENT, ErrorKind.RATE_LIMITED]).filter(due)


def document_sync(ref: str, *, actor: str, kind: RecordKind) -> Transfer | None:
    """Seed one document of ``kind`` from MongoDB and queue it. None when
    MongoDB has no such document."""
    documents_seed(actor=actor, refs=[ref], kind=kind)
    transfer = Transfer.objects.filter(kind=kind.name, ref=ref).first()
    if transfer is not None:
        transfers_enqueue(Transfer.objects.filter(pk=transfer.pk), actor=actor)
        transfer.refresh_from_db()
    return transfer
