"""What staff and commands call around the batches: queue, retry, skip, split
into batches, and release the documents a dead worker held."""

import logging
from collections.abc import Iterator
from datetime import timedelta
from itertools import groupby
from operator import itemgetter

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from migrator.kinds import KINDS, RecordKind
from migrator.models import DATA_REASONS, Transfer, SkipReason, Status
from migrator.pds import MAX_WRITES_PER_CALL
from migrator.services.lifecycle import run_label
from migrator.services.state import transfers_transition

from .claims import claimant_gone

log = logging.getLogger("migrator.services.engine")


def transfers_enqueue(transfers: QuerySet, *, actor: str, run: str = "") -> int:
    """Queue pending, failed and waiting documents as django-q2 jobs (after
    commit). ``run`` names the run their records are written for (default:
    ``actor`` and the time). Returns how many were queued."""
    ids = transfers_transition(
        transfers, from_statuses=[Status.PENDING, Status.FAILED, Status.WAITING], to=Status.QUEUED, actor=actor, message="Queued for migration.",
        claimed_by="", claimed_at=timezone.now(),
    )  # fmt: skip
    _jobs_enqueue(ids, actor=actor, run=run)
    return len(ids)


def transfers_retry(transfers: QuerySet, *, actor: str) -> int:
    """Queue failed documents again. Returns how many were queued."""
    ids = transfers_transition(
        transfers, from_statuses=[Status.FAILED], to=Status.QUEUED, actor=actor, message="Retry queued.",
        claimed_by="", claimed_at=timezone.now(),
    )  # fmt: skip
    _jobs_enqueue(ids, actor=actor)
    return len(ids)


def transfers_skip(transfers: QuerySet, *, actor: str, detail: str) -> int:
    """Skip pending, queued or failed documents on a person's word."""
    detail = detail.strip() or "Skipped by staff."
    ids = transfers_transition(
        transfers,
        from_statuses=[Status.PENDING, Status.QUEUED, Status.FAILED, Status.WAITING],
        to=Status.SKIPPED,
        actor=actor,
        message=f"Skipped: {detail}",
        skip_reason=SkipReason.MANUAL,
        skip_detail=detail[:500],
    )
    return len(ids)


def transfers_recheck(transfers: QuerySet, *, actor: str) -> int:
    """Queue skipped documents again to look at them afresh: an image a CDN
    had not yet published, an account completed since, a skip by staff.
    Skips that come from MongoDB's data are left alone: the seed lifts
    them when the document is fixed. Returns how many were queued."""

    ids = transfers_transition(
        transfers.exclude(skip_reason__in=DATA_REASONS | {SkipReason.TAKEN_DOWN}), from_statuses=[Status.SKIPPED], to=Status.QUEUED, actor=actor,
        message="Re-check queued: the reason it was skipped is looked at again.",
        skip_reason="", skip_detail="", claimed_by="", claimed_at=timezone.now(),
    )  # fmt: skip
    _jobs_enqueue(ids, actor=actor)
    return len(ids)


def batch_size_for(kind: RecordKind) -> int:
    """How many rows of ``kind`` a batch holds: MIGRATION_BATCH_SIZE for a
    kind with a blob (each is made and uploaded first), as many as one
    applyWrites takes (200) for a kind without."""
    if kind.blob_make is not None:
        return settings.MIGRATION_BATCH_SIZE
    return max(settings.MIGRATION_BATCH_SIZE, MAX_WRITES_PER_CALL)


def batches_for(transfers: QuerySet, *, size: int | None = None) -> Iterator[list[int]]:
    """Ids of ``transfers`` in batches of at most ``size`` rows (default:
    ``batch_size_for`` the kind), oldest first within each account. A kind
    with a blob has batches of its own; the kinds without one share theirs,
    so that an account's records of all of them are written in the same
    ``applyWrites`` (a mood, three programs and a piece: one commit). Small
    accounts are packed together whole while they fit, so that they share a
    batch's fixed costs (the claim, the lease, the job, a worker's round
    trip); an account with more rows than that fills batches of its own."""
    names = set(transfers.order_by().values_list("kind", flat=True).distinct())
    kinds = [kind for kind in KINDS.values() if kind.name in names]
    for kind in kinds:
        if kind.blob_make is not None:
            yield from _batches_of(transfers.filter(kind=kind.name), size=size or batch_size_for(kind))
    blobless = [kind for kind in kinds if kind.blob_make is None]
    if blobless:
        together = transfers.filter(kind__in=[kind.name for kind in blobless])
        yield from _batches_of(together, size=size or min(batch_size_for(kind) for kind in blobless))


def _batches_of(transfers: QuerySet, *, size: int) -> Iterator[list[int]]:
    batch = []
    rows = transfers.order_by("owner", "when", "id").values_list("id", "owner").iterator(chunk_size=2000)
    for _, account_rows in groupby(rows, key=itemgetter(1)):
        ids = [transfer_id for transfer_id, _ in account_rows]
        if batch and len(batch) + len(ids) > size:
            yield batch
            batch = []
        while len(ids) > size:
            yield ids[:size]
            ids = ids[size:]
        batch += ids
    if batch:
        yield batch


def _jobs_enqueue(ids: list[int], *, actor: str, run: str = "") -> None:
    """Send one job per batch once the transaction commits. A batch whose job
    cannot be sent (the broker is down) goes back to pending at once, for
    the schedule to queue again, rather than waiting as queued for a job
    that does not exist."""
    if not ids:
        return
    batches = list(batches_for(Transfer.objects.filter(id__in=ids)))
    run = run or run_label(actor)

    def send():
        from django_q.tasks import async_task

        for batch in batches:
            try:
                async_task("migrator.tasks.batch_migrate", batch, run, group="migrate", q_options={"ack_failure": True})
            except Exception as error:  # noqa: BLE001 - any broker failure: the rows must not stay queued
                log.warning("Could not queue a job for %d documents (%s); they go back to pending.", len(batch), type(error).__name__)
                transfers_transition(
                    Transfer.objects.filter(id__in=batch), from_statuses=[Status.QUEUED], to=Status.PENDING, actor=actor,
                    message=f"Could not queue the job ({type(error).__name__}); the live-sync schedule queues it again.",
                )  # fmt: skip

    transaction.on_commit(send)


def transfers_release_stale(*, actor: str, lease: timedelta | None = None) -> int:
    """Put back to pending the documents left running by a worker that died:
    one whose process, in this process's PID namespace, is gone, or any whose
    claim has not been renewed for the lease. Their next run reconciles with
    what the PDS already has. Returns how many."""
    if lease is None:
        lease = timedelta(seconds=settings.MIGRATION_LEASE_SECONDS)
    released = 0
    running = Transfer.objects.filter(status=Status.RUNNING)
    for claimant in running.order_by().values_list("claimed_by", flat=True).distinct():
        held = running.filter(claimed_by=claimant)
        stale = held if claimant_gone(claimant) else held.filter(Q(claimed_at__lt=timezone.now() - lease) | Q(claimed_at=None))
        released += len(
            transfers_transition(
                stale, from_statuses=[Status.RUNNING], to=Status.PENDING, actor=actor, claimed_by="",
                message=f"Released: worker {claimant or '(unknown)'} stopped before finishing.",
            )  # fmt: skip
        )
    return released


def transfers_requeue_lost(*, actor: str, lease: timedelta | None = None) -> int:
    """Put back to pending the documents queued for longer than the lease
    whose job is gone: a broker without acknowledgement (Redis) loses the
    jobs a killed cluster had fetched. A job is taken as gone once the
    broker has nothing waiting; should it still run, its claim finds the
    documents taken and does nothing. Returns how many."""
    if lease is None:
        lease = timedelta(seconds=settings.MIGRATION_LEASE_SECONDS)
    lost = Transfer.objects.filter(status=Status.QUEUED).filter(Q(claimed_at__lt=timezone.now() - lease) | Q(claimed_at=None))
    if not lost.exists() or jobs_waiting() > 0:
        return 0
    return len(
        transfers_transition(
            lost, from_statuses=[Status.QUEUED], to=Status.PENDING, actor=actor,
            message=f"Queued for over {lease.total_seconds():.0f} s and the queue is empty: its job was lost; queued again.",
        )  # fmt: skip
    )


def jobs_waiting() -> int:
    """Jobs waiting in the django-q2 broker (not yet taken by a cluster).
    Raises the broker's errors."""
    from django_q.brokers import get_broker

    return get_broker().queue_size()
