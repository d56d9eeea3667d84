import time

from django.core.management.base import BaseCommand, CommandError
from pymongo.errors import PyMongoError

from migrator.management.kinds import kind_argument, kinds_named
from migrator.models import SkipReason
from migrator.services.seed import gone_lines, documents_seed
from migrator.source import SourceError, WrongDatabase


class Command(BaseCommand):
    help = (
        "Mirror MongoDB's documents of KIND (paintings, moods, kidlisp, pieces, tapes, news, or all) into the "
        "migration state table. Safe to re-run: new documents are added, changed fields updated, migrated rows "
        "keep their rkey and history. Malformed documents are skipped with a readable reason."
    )
    actor = "command:seed"
    kind_name: str | None = None  # fixed by seed_paintings; else the KIND argument

    def add_arguments(self, parser):
        if self.kind_name is None:
            kind_argument(parser)
        parser.add_argument("--batch-size", type=int, default=1000, help="Documents read and written per batch (default 1000).")

    def handle(self, *args, batch_size, **options):
        for kind in kinds_named(self.kind_name or options["kind"]):
            self._seed(kind, batch_size=batch_size, verbose=options["verbosity"] > 1)

    def _seed(self, kind, *, batch_size: int, verbose: bool) -> None:
        started = time.monotonic()

        def progress(report):
            if verbose:
                self.stderr.write(f"  {report.seen} {kind.plural} read…")

        try:
            report = documents_seed(actor=self.actor, batch_size=batch_size, on_batch=progress, kind=kind)
        except WrongDatabase as error:
            raise CommandError(str(error), returncode=2) from error
        except (PyMongoError, SourceError) as error:
            raise CommandError(f"MongoDB could not be read ({type(error).__name__}: {error}). Is MONGODB_URI right and the server up?", returncode=2) from error
        elapsed = time.monotonic() - started
        out = self.stdout.write
        out(f"Seeded {report.seen} {kind.plural} from MongoDB in {elapsed:.1f}s.")
        out(f"  new:        {report.new}")
        out(f"  updated:    {report.updated}")
        out(f"  unchanged:  {report.unchanged}")
        if report.keys_restored:
            out(f"  keys written back to MongoDB: {report.keys_restored} (MongoDB had lost them; the records are on the PDS)")
        out(f"  anonymous:  {report.anonymous}")
        out(
            f"  by users:   {report.user_paintings} {kind.plural} by {report.users} users "
            f"({report.users_with_account} with ATProto accounts, {report.users - report.users_with_account} without)"
        )
        if report.paintings_by_owner:
            top = ", ".join(f"{handle} ({count})" for handle, count in report.top_users())
            out(f"  top users:  {top}")
        total_problems = sum(report.problems.values())
        out(f"  problems:   {total_problems}")
        for reason, count in report.problems.most_common():
            out(f"    {SkipReason(reason).label}: {count}")
        for line in gone_lines(report.gone, kind=kind):
            out(line)
