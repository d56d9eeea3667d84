import json

from django.core.management.base import BaseCommand, CommandError
from pymongo.errors import PyMongoError

from migrator import pds, source
from migrator.management.kinds import kind_argument, kinds_named
from migrator.services import watch
from migrator.services.compare import ACTOR, CompareError, CompareReport, DifferenceKind, documents_compare


class Command(BaseCommand):
    help = (
        "Compare MongoDB's documents of KIND (paintings, moods, kidlisp, pieces, tapes, news, or all), the migration state table and the records on the PDS "
        "(listRecords of every account with migrated paintings, plus the anonymous account). "
        "Reports paintings without a record, records without a painting, duplicate records for "
        "one ref, record fields that differ from MongoDB, MongoDB rkeys that differ from the "
        "record's, records in the wrong account and state rows that disagree. Exits 1 when "
        "differences remain (after --repair: when some could not be repaired), 2 when a source "
        "cannot be read. --repair deletes duplicate records (keeping the one at the painting's "
        "own TID), writes the right rkey/uri back to MongoDB and the state table, rewrites "
        "records whose fields differ (keeping their thumbnail) and sends paintings whose record "
        "is missing back to pending; records without a painting are only reported. Comparing everything "
        "without --repair is what the verification schedule does: its result becomes the dashboard's "
        "last verification, and differences alert the admins (see the README, \"Drift and health are watched\")."
    )
    actor = "command:compare"
    kind_name: str | None = None  # fixed by compare_paintings; else the KIND argument

    def add_arguments(self, parser):
        if self.kind_name is None:
            kind_argument(parser)
        narrow = parser.add_mutually_exclusive_group()
        narrow.add_argument("--user", metavar="@HANDLE", help="Only this user's paintings and account.")
        narrow.add_argument("--anonymous", action="store_true", help="Only guest paintings and the anonymous account.")
        parser.add_argument("--repair", action="store_true", help="Fix what can be fixed, with an audit event for each fix.")
        parser.add_argument("--dry-run", action="store_true", help="With --repair: show what would be repaired and change nothing.")
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print the result as JSON.")
        parser.add_argument("--examples", type=int, default=10, metavar="N", help="Examples shown per kind (default 10; 0 for all).")

    def handle(self, *args, user, anonymous, repair, dry_run, as_json, examples, **options):
        if dry_run and not repair:
            raise CommandError("--dry-run only makes sense with --repair.")
        kinds = kinds_named(self.kind_name or options["kind"])
        # The whole comparison, read-only, is a verification like the schedule's.
        everything = not (user or anonymous or repair)
        verification = watch.verification_start(actor=self.actor) if everything else None
        reports = []
        try:
            for kind in kinds:
                reports.append(documents_compare(
                    handle=user, anonymous=anonymous, repair=repair, dry_run=dry_run, actor=self.actor, examples=examples or None, kind=kind,
                ))  # fmt: skip
        except CompareError as error:
            raise CommandError(str(error), returncode=2) from error
        except source.WrongDatabase as error:
            raise CommandError(str(error), returncode=2) from error
        except (PyMongoError, source.SourceError) as error:
            self._failed(verification, error)
            raise CommandError(f"MongoDB could not be read ({type(error).__name__}: {error}).", returncode=2) from error
        except pds.PdsError as error:
            self._failed(verification, error)
            raise CommandError(f"The PDS could not be read: {error}", returncode=2) from error
        report = CompareReport.merged(reports)
        if verification is not None:
            watch.verification_finish(verification, report=report, kinds=[kind.name for kind in kinds])
        if as_json:
            shown = report.as_dict() if len(kinds) == 1 else {**report.as_dict(), "kinds": {kind.plural: one.as_dict() for kind, one in zip(kinds, reports, strict=True)}}
            self.stdout.write(json.dumps(shown, indent=2, sort_keys=True))
        else:
            for kind, one in zip(kinds, reports, strict=True):
                self._table(one, kind=kind)
        remaining = report.unrepaired if repair and not dry_run else report.total
        if remaining:
            raise CommandError(f"{remaining} difference{'s' if remaining != 1 else ''} between MongoDB, the state table and the PDS.", returncode=1)

    @staticmethod
    def _failed(verification, error: Exception) -> None:
        if verification is not None:
            watch.verification_fail(verification, error=watch.verification_error_text(error))

    def _table(self, report: CompareReport, *, kind) -> None:
        out = self.stdout.write
        out(f"Compared {report.documents} MongoDB {kind.plural} with {report.records} records in {len(report.accounts)} accounts.")
        if report.clean:
            out(self.style.SUCCESS("No differences."))
            return
        mode = "would repair" if report.dry_run else "repaired"
        width = max(len(difference.label_for(kind)) for difference in DifferenceKind)
        out("")
        out(f"{'Difference':<{width}}  {'count':>6}" + (f"  {mode:>12}" if report.repair else ""))
        for difference in DifferenceKind:
            if report.counts[difference]:
                fixed = report.repairable[difference] if report.dry_run else report.repaired[difference]
                out(f"{difference.label_for(kind):<{width}}  {report.counts[difference]:>6}" + (f"  {fixed:>12}" if report.repair else ""))
        out(f"{'Total':<{width}}  {report.total:>6}")
        for difference_kind in DifferenceKind:
            shown = report.examples.get(difference_kind, [])
            if not shown:
                continue
            more = report.counts[difference_kind] - len(shown)
            out("")
            out(f"{difference_kind.label_for(kind)} ({report.counts[difference_kind]}{f', first {len(shown)}' if more else ''}):")
            for difference in shown:
                where = "/".join(part for part in (difference.did, difference.rkey) if part)
                out(f"  {difference.ref or '(no ref)'}  {where}")
                out(f"      {difference.detail}")
                if report.repair and difference.repair:
                    verb = "would" if report.dry_run else ("failed to" if difference.repair_error else "did")
                    out(f"      repair: {verb} {difference.repair}" + (f" ({difference.repair_error})" if difference.repair_error else ""))
                elif report.repair:
                    out("      repair: none (reported only)")
