import gc
import logging
import signal
import sys
import time
from datetime import UTC, datetime
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from django.utils import timezone

from migrator import logs, pds, selectors, source
from migrator.management.kinds import Words, kind_argument, kinds_named
from migrator.models import Transfer, SkipReason, Status
from migrator.services import engine
from migrator.services.lifecycle import mongodb_verify, run_label
from migrator.services.seed import gone_lines, documents_seed, documents_unseeded
from migrator.source import SourceError
from migrator.tls import tls_context
from pymongo.errors import PyMongoError

PROGRESS_EVERY = 500
log = logging.getLogger("migrator.backfill")


# Database connections a worker inherited from the parent. Closing one would
# end the parent's session (PostgreSQL's Terminate goes over the shared
# socket); letting one be collected would do the same. Kept, never used.
_inherited: list = []


def _worker_start() -> None:
    """In each worker process: nothing inherited that must not cross a fork."""
    for connection in connections.all(initialized_only=True):
        if connection.connection is not None:
            _inherited.append(connection.connection)
            connection.connection = None
    pds.forget_sessions()
    engine.priority_lower()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop


def _batch(ids: list[int], run: str, actor: str) -> dict:
    return engine.transfers_migrate(ids, actor=f"{actor}:{engine.worker_name()}", run=run).as_dict()


class Command(BaseCommand):
    help = (
        "Migrate KIND (paintings, moods, kidlisp, pieces, tapes, news, or all) from MongoDB to ATProto. "
        "Seeds the state table first, then migrates pending and failed documents in batches (small accounts "
        "packed together) on --workers processes; resumes where it stopped (migrated documents are left alone). "
        "Ctrl-C stops cleanly after the batches in flight."
    )
    actor = "command:backfill"
    kind_name: str | None = None  # fixed by backfill_paintings; else the KIND argument

    def add_arguments(self, parser):
        if self.kind_name is None:
            kind_argument(parser)
        parser.add_argument("--dry-run", action="store_true", help="Show what the run would write, from the same start (documents not seeded yet are read from MongoDB); write nothing anywhere.")
        parser.add_argument("--limit", type=int, default=0, help="Migrate at most N documents.")
        parser.add_argument("--user", help="Only this user's documents (@handle).")
        parser.add_argument("--anonymous", action="store_true", help="Only anonymous (guest) documents.")
        parser.add_argument(
            "--workers", type=int, default=settings.DEFAULT_WORKERS,
            help=f"Processes migrating at once (default {settings.DEFAULT_WORKERS}: two per core and one more).",
        )
        parser.add_argument("--queue", action="store_true", help="Enqueue django-q2 jobs instead of running here (run manage.py qcluster).")
        parser.add_argument("--no-seed", action="store_true", help="Do not re-read MongoDB into the state table first.")

    def handle(self, *args, **options):
        with logs.document_lines_for(options["verbosity"]):
            return self._handle(*args, **options)

    def _handle(self, *args, dry_run, limit, user, anonymous, workers, queue, no_seed, **options):
        if user and anonymous:
            raise CommandError("--user and --anonymous exclude each other.")
        if workers < 1:
            raise CommandError("--workers must be at least 1.")
        self.kinds = kinds_named(self.kind_name or options["kind"])
        self.words = Words(tuple(self.kinds))
        self.run_name = run_label(self.actor)
        for kind in self.kinds:
            try:
                mongodb_verify(kind=kind)
            except SourceError as error:  # WrongDatabase: it names the database and what to check
                raise CommandError(str(error), returncode=2) from error
            except PyMongoError as error:
                raise CommandError(f"MongoDB could not be read ({type(error).__name__}). Is MONGODB_URI right and the server up?", returncode=2) from error
        if not (no_seed or dry_run):
            for kind in self.kinds:
                report = documents_seed(actor=self.actor, kind=kind)
                of = f" {kind.plural}" if len(self.kinds) > 1 else ""
                restored = f", {report.keys_restored} keys MongoDB had lost written back" if report.keys_restored else ""
                self.stdout.write(f"Seeded{of} from MongoDB: {report.new} new, {report.updated} updated, {report.unchanged} unchanged{restored}.")
                for line in gone_lines(report.gone, kind=kind):
                    self.stdout.write(line)
        if dry_run:
            return self._dry_run(self._dry_run_selection(user=user, anonymous=anonymous, limit=limit, seed=not no_seed))
        released = engine.transfers_release_stale(actor=self.actor)
        if released:
            self.stdout.write(f"Released {released} {self.words.plural} left running by a stopped worker.")
        paintings = self._selection(user=user, anonymous=anonymous, limit=limit)
        total = paintings.count()
        if queue:
            queued = engine.transfers_enqueue(paintings, actor=self.actor, run=self.run_name)
            self.stdout.write(f"Queued {queued} {self.words.plural} as django-q2 jobs. Run: python manage.py qcluster")
            return
        self.stdout.write(f"Migrating {total} {self.words.plural} on {workers} worker{'s' if workers > 1 else ''} as run {self.run_name!r}…")
        self._run(paintings, total=total, workers=workers)

    def _selection(self, *, user, anonymous, limit):
        paintings = Transfer.objects.filter(status__in=engine.RUNNABLE, kind__in=self.words.names)
        if user:
            owner = source.owner_for_handle(user)
            if owner is None:
                raise CommandError(f"No aesthetic.computer user has the handle {user}.")
            paintings = paintings.filter(owner=owner)
        if anonymous:
            paintings = paintings.filter(owner="")
        if limit:
            ids = list(paintings.order_by("when", "id").values_list("id", flat=True)[:limit])
            paintings = Transfer.objects.filter(id__in=ids)
        return paintings

    def _dry_run_selection(self, *, user, anonymous, limit, seed: bool) -> list[Transfer]:
        """What the real command would migrate from the same start: the
        runnable rows, plus the paintings its seed would add (read from
        MongoDB, kept in memory), oldest first, at most ``limit``."""
        rows = list(self._selection(user=user, anonymous=anonymous, limit=0))
        if seed:
            filters = {"owner": source.owner_for_handle(user)} if user else {"anonymous": True} if anonymous else {}
            unseeded = [row for kind in self.kinds for row in documents_unseeded(kind=kind, **filters)]
            if unseeded:
                self.stdout.write(f"Not seeded yet: {len(unseeded)} {self.words.plural} in MongoDB; the real run seeds them first.")
            rows += [row for row in unseeded if row.status == Status.PENDING]
        rows.sort(key=lambda row: (row.when or datetime.min.replace(tzinfo=UTC), row.pk or 0, row.ref))
        return rows[:limit] if limit else rows

    def _dry_run(self, paintings: list[Transfer]):
        outcomes = {"migrate": 0, "skip": 0, "fail": 0}
        for start in range(0, len(paintings), settings.MIGRATION_BATCH_SIZE):
            for preview in engine.transfers_preview(paintings[start : start + settings.MIGRATION_BATCH_SIZE]):
                outcomes[preview.outcome] += 1
                self.stdout.write(f"  {preview.outcome:<7} {preview.transfer}  {preview.message}")
                for problem in preview.problems:
                    self.stdout.write(f"          - {problem}")
        self.stdout.write(
            f"Dry run: {outcomes['migrate']} {self.words.plural} would be migrated, {outcomes['skip']} skipped, "
            f"{outcomes['fail']} would fail. No changes made."
        )

    def _run(self, paintings, *, total: int, workers: int) -> None:
        result = engine.BatchResult()
        started = time.monotonic()
        stopping = False
        self._progress_printed = 0

        def stop(*_):
            nonlocal stopping
            if stopping:
                raise KeyboardInterrupt
            stopping = True
            self.stderr.write("\nStopping after the batches in flight (Ctrl-C again to abort)…")

        previous = signal.signal(signal.SIGINT, stop)
        batches = engine.batches_for(paintings)

        def record(counts):
            result.add(engine.BatchResult.from_dict(counts))
            self._progress(result.total, total, started)

        try:
            if workers == 1:  # in this process: simplest to debug
                for batch in batches:
                    if stopping:
                        break
                    record(_batch(batch, self.run_name, self.actor))
                return self._summary(result, time.monotonic() - started, stopped=stopping)
            # The parent reads nothing more while workers run (they fork as
            # batches are submitted): its connections are closed before the
            # first. Its objects (the SDK's models, Django's) are frozen out
            # of the garbage collector's reach: a worker's collections then
            # neither walk them nor copy the pages they are on, and the
            # parent's exit does not walk them either. The TLS context is built
            # here, once, for every worker to inherit.
            batches = iter(list(batches))
            connections.close_all()
            source.clients_close()
            tls_context()
            gc.freeze()
            with ProcessPoolExecutor(max_workers=workers, initializer=_worker_start) as pool:
                running = set()
                while True:
                    while not stopping and len(running) < workers * 2:
                        batch = next(batches, None)
                        if batch is None:
                            break
                        running.add(pool.submit(_batch, batch, self.run_name, self.actor))
                    if not running:
                        break
                    done, running = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        record(future.result())
        finally:
            signal.signal(signal.SIGINT, previous)
        self._summary(result, time.monotonic() - started, stopped=stopping)

    def _progress(self, done: int, total: int, started: float) -> None:
        elapsed = max(time.monotonic() - started, 1e-6)
        rate = done / elapsed
        eta = (total - done) / rate if rate else 0
        width = 30
        filled = int(width * done / total) if total else width
        line = f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}  {rate * 60:,.0f}/min  ETA {eta:,.0f}s "
        if sys.stderr.isatty():
            self.stderr.write(line, ending="")
        elif done == total or done // PROGRESS_EVERY > self._progress_printed:
            # In a log, a log line per PROGRESS_EVERY documents rather than a
            # redrawn bar (one JSON object, like every line, with LOG_FORMAT=json).
            self._progress_printed = done // PROGRESS_EVERY
            progress = {"done": done, "total": total, "per_minute": round(rate * 60), "eta_seconds": round(eta)}
            log.info("%d of %d %s done, %s a minute, %s s to go", done, total, self.words.plural, f"{rate * 60:,.0f}", f"{eta:,.0f}", extra=progress)

    def _summary(self, result, elapsed: float, *, stopped: bool) -> None:
        out = self.stdout.write
        out("")
        out(f"{'Stopped' if stopped else 'Finished'} in {elapsed:.1f}s: {result.total} {self.words.plural} "
            f"({result.total / elapsed * 60 if elapsed else 0:,.0f}/min).")
        out(f"  migrated: {result.migrated}" + (f" ({result.adopted} adopted from earlier attempts)" if result.adopted else ""))
        out(f"  skipped:  {sum(result.skipped.values())}")
        for reason, count in result.skipped.most_common():
            out(f"    {SkipReason(reason).label}: {count}")
        out(f"  failed:   {sum(result.failed.values())}")
        for error, count in result.failed.most_common(10):
            out(f"    {count} × {error}")
        out(f"  waiting for a PDS rate limit: {sum(result.waiting.values())}")
        for limit, count in result.waiting.most_common():
            out(f"    {count} × {limit} (resets {result.resume_at[limit][:19].replace('T', ' ')} UTC)")
        if result.changed:
            out(f"  changed in MongoDB while migrating: {result.changed} (back to pending: their records are rewritten on the next run)")
        if result.lost:
            out(f"  left to another worker (this one's lease ran out): {result.lost}")
        out(f"  PDS requests: {result.pds_requests}; logins: {result.logins}; repository commits: {result.commits}")
        if written := Transfer.objects.filter(written_by=self.run_name).count():
            out(f"The {written} records this run wrote are kept as {self.run_name!r}; to take them all down again: manage.py undo_run --run {self.run_name!r}")
        for limit in selectors.binding_limits():
            out(
                f"{limit.waiting} paintings wait for {limit.name}, which resets at {limit.resets_at:%Y-%m-%d %H:%M:%S} UTC "
                f"(in {selectors.duration_text(limit.resets_at - timezone.now())}); at this limit the {limit.left} paintings left "
                f"take about {selectors.duration_text(limit.rest_takes)}. Live sync resumes them by itself then, or run this "
                f"command again after that time. {limit.remedy}"
            )
        rows = Transfer.objects.filter(kind__in=self.words.names)
        remaining = rows.filter(status__in=[Status.PENDING, Status.QUEUED, Status.FAILED]).count()
        if remaining:
            out(f"{remaining} {self.words.plural} remain pending or failed: run this command again to resume.")
        left = rows.filter(status=Status.RUNNING).count()
        if left:
            out(f"{left} {self.words.plural} are running elsewhere.")

