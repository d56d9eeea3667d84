from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from migrator.services.report import migration_status, migration_status_markdown


class Command(BaseCommand):
    help = (
        "Write the Markdown migration status report (as ATPROTO-MIGRATION-STATUS.md): counts by "
        "status and skip reason, the top accounts, start, end and rate, failures grouped by "
        "error, the edge cases met and thumbnail totals. Read from the state table only, so it "
        "is safe to run while the migration runs. Prints to stdout unless --output."
    )

    def add_arguments(self, parser):
        parser.add_argument("--output", metavar="FILE", help="Write the report to FILE instead of stdout.")
        parser.add_argument("--top", type=int, default=20, metavar="N", help="Accounts listed (default 20, by paintings).")

    def handle(self, *args, output, top, **options):
        markdown = migration_status_markdown(migration_status(top_accounts=top))
        if not output:
            self.stdout.write(markdown, ending="")
            return
        path = Path(output)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(markdown, encoding="utf-8")
        except OSError as error:
            raise CommandError(f"Could not write {path}: {error}") from error
        self.stdout.write(f"Wrote the migration status report to {path}.")
