"""What staff and commands call around the batches: queue, retry, skip, split
into batches, and release the paintings a dead worker held."""

import os
import socket
from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from migrator.models import PaintingMigration, SkipReason, Status
from migrator.services.state import paintings_transition


def paintings_enqueue(paintings: QuerySet, *, actor: str) -> int:
    """Queue pending and failed paintings as django-q2 jobs (after commit).
    Returns how many were queued."""
    ids = paintings_transition(paintings, from_statuses=[Status.PENDING, Status.FAILED], to=Status.QUEUED, actor=actor, message="Queued for migration.")
    _jobs_enqueue(ids)
    return len(ids)


def paintings_retry(paintings: QuerySet, *, actor: str) -> int:
    """Queue failed paintings again. Returns how many were queued."""
    ids = paintings_transition(paintings, from_statuses=[Status.FAILED], to=Status.QUEUED, actor=actor, message="Retry queued.")
    _jobs_enqueue(ids)
    return len(ids)


def paintings_skip(paintings: QuerySet, *, actor: str, detail: str) -> int:
    """Skip pending, queued or failed paintings on a person's word."""
    detail = detail.strip() or "Skipped by staff."
    ids = paintings_transition(
        paintings,
        from_statuses=[Status.PENDING, Status.QUEUED, Status.FAILED],
        to=Status.SKIPPED,
        actor=actor,
        message=f"Skipped: {detail}",
        skip_reason=SkipReason.MANUAL,
        skip_detail=detail[:500],
    )
    return len(ids)


def batches_for(paintings: QuerySet, *, size: int | None = None) -> Iterator[list[int]]:
    """Ids of ``paintings`` in batches of one account each, oldest first."""
    size = size or settings.MIGRATION_BATCH_SIZE
    batch, account = [], None
    rows = paintings.order_by("owner", "when", "id").values_list("id", "owner").iterator(chunk_size=2000)
    for painting_id, owner in rows:
        if batch and (owner != account or len(batch) >= size):
            yield batch
            batch = []
        batch.append(painting_id)
        account = owner
    if batch:
        yield batch


def _jobs_enqueue(ids: list[int]) -> None:
    if not ids:
        return
    batches = list(batches_for(PaintingMigration.objects.filter(id__in=ids)))

    def send():
        from django_q.tasks import async_task

        for batch in batches:
            async_task("migrator.tasks.painting_batch_migrate", batch, group="migrate", q_options={"ack_failure": True})

    transaction.on_commit(send)


def paintings_release_stale(*, actor: str, lease: timedelta | None = None) -> int:
    """Put back to pending the paintings left running by a worker that died:
    one on this host whose process is gone, or any whose claim is older than
    the lease. Their next run reconciles with what the PDS already has."""
    if lease is None:
        lease = timedelta(seconds=settings.MIGRATION_LEASE_SECONDS)
    host = socket.gethostname() + ":"
    released = 0
    for claimant in PaintingMigration.objects.filter(status=Status.RUNNING).values_list("claimed_by", flat=True).distinct():
        gone = claimant.startswith(host) and not _process_alive(int(claimant.rsplit(":", 1)[1]))
        expired = PaintingMigration.objects.filter(status=Status.RUNNING, claimed_by=claimant, claimed_at__lt=timezone.now() - lease)
        stale = PaintingMigration.objects.filter(status=Status.RUNNING, claimed_by=claimant) if gone else expired
        released += len(
            paintings_transition(stale, from_statuses=[Status.RUNNING], to=Status.PENDING, actor=actor, message=f"Released: worker {claimant} stopped before finishing.")
        )
    return released


def _process_alive(pid: int) -> bool:
    """Whether process ``pid`` on this host still runs. A zombie (killed,
    not yet reaped by its parent) does not."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True
