"""Drift and stuck work, watched; staff are told through migrator.alerts.

``verification_run`` (the verification schedule, every
VERIFY_EVERY_HOURS) runs the full comparison, read-only, keeps its result as
a Verification and alerts "drift" while differences remain ("verify-error"
when it cannot run); `manage.py compare` records its result the same way.
It is always the full comparison: an incremental one (new paintings only)
would miss what drift is made of, a record deleted or changed on the PDS or
a painting edited in MongoDB long after it was migrated.

``stuck_watch`` (after each live sync) alerts "stuck" when work that is due
has not moved for STUCK_AFTER_MINUTES.
"""

import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Count, Max, Q
from django.utils import timezone
from pymongo.errors import PyMongoError

from migrator import pds, source
from migrator.alerts import alert_clear, alert_send
from migrator.kinds import KINDS
from migrator.models import TransferEvent, Transfer, Status, Verification
from migrator.selectors import ABANDONED, cluster_health, duration_text
from migrator.services.compare import CompareReport, DifferenceKind, documents_compare
from migrator.services.lifecycle import kind_in_use

log = logging.getLogger("migrator.services.watch")

VERIFY_SCHEDULE = "verification"
VERIFY_ACTOR = "schedule:verification"
DRIFT, VERIFY_ERROR, STUCK = "drift", "verify-error", "stuck"  # alert keys
EXAMPLES_PER_KIND = 3
DETAIL_LENGTH = 300


def verification_run(*, actor: str = VERIFY_ACTOR) -> Verification:
    """Compare MongoDB, the state table and the PDS in full (no repair), keep
    the result, and alert or clear "drift" and "verify-error". A source that
    cannot be read is a failed Verification, not an exception; anything
    else is kept as failed too, then raised."""
    verification = verification_start(actor=actor)
    try:
        kinds = [kind for kind in KINDS.values() if kind_in_use(kind)]
        report = CompareReport.merged([documents_compare(examples=EXAMPLES_PER_KIND, kind=kind) for kind in kinds])
    except (PyMongoError, source.SourceError, pds.PdsError) as error:
        return verification_fail(verification, error=verification_error_text(error))
    except Exception as error:
        verification_fail(verification, error=f"It stopped on an unexpected {type(error).__name__}; the job's log has the traceback.")
        raise
    return verification_finish(verification, report=report, kinds=[kind.name for kind in kinds])


def verification_start(*, actor: str) -> Verification:
    """A Verification under way (written before the comparison reads
    anything). Earlier ones that never finished are closed as failed."""
    now = timezone.now()
    limit = dt.timedelta(seconds=settings.Q_CLUSTER["timeout"])
    Verification.objects.filter(finished_at=None, started_at__lt=now - limit).update(finished_at=now, error=ABANDONED)
    return Verification.objects.create(actor=actor, started_at=now)


def verification_finish(verification: Verification, *, report: CompareReport, kinds: list[str] | None = None) -> Verification:
    """Keep what the comparison found; alert "drift" while it finds
    differences, clear it when clean. A comparison that could list not one
    account met a PDS out of reach, which says nothing about drift: failed."""
    if report.counts[DifferenceKind.ACCOUNT_UNREADABLE] and not report.accounts:
        return verification_fail(verification, error="The PDS could not be read (no account's records could be listed).")
    verification.finished_at = timezone.now()
    verification.kinds = kinds or ["painting"]
    verification.documents, verification.records, verification.differences = report.documents, report.records, report.total
    verification.counts = {str(kind): report.counts[kind] for kind in DifferenceKind if report.counts[kind]}
    verification.examples = [
        {"kind": str(kind), "ref": d.ref, "did": d.did, "rkey": d.rkey, "detail": d.detail[:DETAIL_LENGTH]}
        for kind in DifferenceKind for d in report.examples.get(kind, [])[:EXAMPLES_PER_KIND]
    ]  # fmt: skip
    verification.error = ""
    verification.save()
    alert_clear(key=VERIFY_ERROR)
    if report.clean:
        alert_clear(key=DRIFT)
    else:
        alert_send(subject=drift_subject(verification), message=drift_message(verification), key=DRIFT)
    return verification


def verification_fail(verification: Verification, *, error: str) -> Verification:
    """Keep why it could not run, and alert "verify-error"."""
    verification.finished_at = timezone.now()
    verification.error = error
    verification.save(update_fields=["finished_at", "error"])
    log.warning("The verification failed: %s", error)
    message = (
        f"The verification started {verification.started_at:%Y-%m-%d %H:%M} UTC ({verification.actor}) could not compare "
        f"MongoDB, the state table and the PDS: {error}\n\n"
        "Until one succeeds, drift goes unnoticed. Look at GET /health and the dashboard; the next scheduled "
        "verification tries again, or run `manage.py compare all` once the cause is fixed."
    )
    alert_send(subject=f"Verification failed: {error}", message=message, key=VERIFY_ERROR)
    return verification


def verification_error_text(error: Exception) -> str:
    """Why a comparison could not run, in fixed words and type names: an
    exception's own text may quote a URI with its password."""
    if isinstance(error, pds.PdsError):
        answered = f", it answered {error.status}" if error.status else ", no answer"
        return f"The PDS could not be read ({error.kind}{answered})."
    return f"MongoDB could not be read ({type(error).__name__})."


def drift_subject(verification: Verification) -> str:
    n = verification.differences
    return f"Drift: {n} difference{'s' if n != 1 else ''} between MongoDB, the state table and the PDS"


def drift_message(verification: Verification) -> str:
    n = verification.differences
    lines = [
        f"The verification of {verification.finished_at:%Y-%m-%d %H:%M} UTC ({verification.actor}) compared "
        f"{verification.documents} MongoDB documents with {verification.records} records and found "
        f"{n} difference{'s' if n != 1 else ''}:",
        *(f"  {DifferenceKind(kind).label}: {count}" for kind, count in verification.counts.items()),
        "",
        "For example:",
        *(f"  {DifferenceKind(e['kind']).label}: {e['ref'] or '(no ref)'} {'/'.join(p for p in (e['did'], e['rkey']) if p)}\n      {e['detail']}"
          for e in verification.examples),  # fmt: skip
        "",
        "What to do: `manage.py compare all` lists them all (`compare moods` one kind's); `manage.py compare all --repair --dry-run`, "
        "then `--repair`, fixes what can be fixed. The next verification that finds no differences clears this alert.",
    ]
    return "\n".join(lines)


@dataclass(frozen=True)
class Stuck:
    """Work that is due and has not moved: how much, and since when."""

    pending: int
    queued: int
    running: int
    overdue: int  # waiting for a rate limit whose reset passed long ago
    quiet_since: dt.datetime | None

    @property
    def due(self) -> int:
        return self.pending + self.queued + self.running + self.overdue


def migration_stuck(*, now: dt.datetime | None = None) -> Stuck | None:
    """The work that is stuck, or None. Stuck means: paintings are pending,
    queued, running, or waiting for a rate limit that reset more than
    STUCK_AFTER_MINUTES ago, and for STUCK_AFTER_MINUTES no painting has
    changed status (every change is a TransferEvent) and no worker has
    renewed its lease. A long queue being worked through is not stuck; nor
    are paintings waiting for a reset still ahead, nor failures (the
    schedule retries those with a backoff of up to an hour)."""
    now = now or timezone.now()
    quiet = dt.timedelta(minutes=settings.STUCK_AFTER_MINUTES)
    figures = Transfer.objects.order_by().aggregate(
        pending=Count("id", filter=Q(status=Status.PENDING)),
        queued=Count("id", filter=Q(status=Status.QUEUED)),
        running=Count("id", filter=Q(status=Status.RUNNING)),
        overdue=Count("id", filter=Q(status=Status.WAITING, not_before__lt=now - quiet)),
        renewed=Max("claimed_at", filter=Q(status=Status.RUNNING)),
    )
    changed = TransferEvent.objects.order_by().aggregate(last=Max("at"))["last"]
    moved = max((moment for moment in (changed, figures.pop("renewed")) if moment), default=None)
    stuck = Stuck(**figures, quiet_since=moved)
    if not stuck.due or (moved is not None and moved > now - quiet):
        return None
    return stuck


def stuck_watch(*, now: dt.datetime | None = None) -> Stuck | None:
    """Alert "stuck" while ``migration_stuck`` finds stuck work; clear it once
    work moves. Returns what is stuck, or None."""
    now = now or timezone.now()
    stuck = migration_stuck(now=now)
    if stuck is None:
        alert_clear(key=STUCK)
        return None
    quiet = _quiet_text(stuck, now)
    workers = cluster_health().workers
    due = f"{stuck.due} painting{'s' if stuck.due != 1 else ''}"
    message = (
        f"{due} should be moving ({stuck.pending} pending, {stuck.queued} queued, {stuck.running} running, "
        f"{stuck.overdue} long past their rate limit's reset) and no painting has changed status, nor a worker renewed "
        f"its lease, {quiet} (STUCK_AFTER_MINUTES={settings.STUCK_AFTER_MINUTES}). Job cluster: {workers} worker"
        f"{'s' if workers != 1 else ''} alive.\n\n"
        "What to do: open the dashboard. With no worker alive, start `manage.py qcluster`. With workers alive, "
        "read the cluster's log for a job that hangs, and the paintings list filtered to Running or Queued; "
        "this alert is cleared as soon as work moves again."
    )
    alert_send(subject=f"Stuck: {due} due and nothing has moved {quiet}", message=message, key=STUCK)
    return stuck


def _quiet_text(stuck: Stuck, now: dt.datetime) -> str:
    return f"for {duration_text(now - stuck.quiet_since)}" if stuck.quiet_since else "at all"


def verify_schedule_align(*, schedules=None, using: str = "default") -> bool:
    """Bring the verification schedule's interval to VERIFY_EVERY_HOURS
    (run after every `manage.py migrate`), its next run no later than one
    new interval from now. A schedule staff deleted stays deleted. Returns
    whether it changed. ``schedules``: the Schedule model to use (a
    migration state's, from post_migrate)."""
    if schedules is None:
        from django_q.models import Schedule

        schedules = Schedule
    every = dt.timedelta(hours=settings.VERIFY_EVERY_HOURS)
    minutes = int(every.total_seconds() // 60)
    found = schedules.objects.using(using).filter(name=VERIFY_SCHEDULE)
    schedule = found.first()
    if schedule is None or (schedule.schedule_type, schedule.minutes) == ("I", minutes):
        return False
    latest = timezone.now() + every
    found.update(schedule_type="I", minutes=minutes, next_run=min(schedule.next_run, latest) if schedule.next_run else latest)
    log.info("The %s schedule now runs every %d h.", VERIFY_SCHEDULE, settings.VERIFY_EVERY_HOURS)
    return True
