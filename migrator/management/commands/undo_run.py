from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from migrator.admin_lifecycle import transfers_run_now
from migrator.services.lifecycle import transfers_of_unknown_runs, transfers_unpublish, transfers_written_by, runs_recent

ACTOR = "command:undo_run"


class Command(BaseCommand):
    help = (
        "Undo a run: remove every record still on the PDS that one run wrote (a backfill_paintings invocation, "
        "an admin action, a live-sync minute; --list names them), or that one actor's runs wrote in a time window, "
        "and clear their keys in MongoDB. The paintings stay taken down until unpublish_paintings --republish. "
        "Without --confirm it only lists what would be removed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--list", action="store_true", help="List the runs whose records are on the PDS.")
        parser.add_argument("--run", default="", help='A run, as listed (e.g. "command:backfill_paintings 2026-12-01T08:30:12Z").')
        parser.add_argument("--actor", default="", help="Every run of this actor (e.g. staff:alice), with --since/--until.")
        parser.add_argument("--since", default="", help="ISO 8601 time: records written from then.")
        parser.add_argument("--until", default="", help="ISO 8601 time: records written until then.")
        parser.add_argument("--reason", default="", help="Why (required with --confirm).")
        parser.add_argument("--confirm", action="store_true", help="Remove them (after reading the preview).")

    def handle(self, *args, list, run, actor, since, until, reason, confirm, **options):
        if list or not (run or actor):
            for written in runs_recent(limit=50):
                self.stdout.write(f"  {written.count:>6}  {written.run}  (last {written.last:%Y-%m-%d %H:%M} UTC)")
            if not (run or actor):
                return
        paintings = transfers_written_by(run=run, actor=actor, since=self._time("--since", since), until=self._time("--until", until))
        count = paintings.count()
        for painting in paintings.order_by("id")[:50]:
            self.stdout.write(f"  {painting}  {painting.record_uri}")
        label = run or f"{actor} between {since or 'the start'} and {until or 'now'}"
        if not count and (unknown := transfers_of_unknown_runs().count()):
            self.stdout.write(
                f"0 records are known to be written by {label}. The console's state table was rebuilt from MongoDB's keys "
                f"since, and which run wrote the {unknown} records it found then is not known (--list shows them as an "
                f"unknown run): a run before the rebuild cannot be undone. Take records down by document or user instead "
                f"(unpublish_paintings)."
            )
            return
        if not confirm:
            self.stdout.write(f"{count} records written by {label} would be removed. Run again with --confirm --reason '…' to remove them.")
            return
        if not reason.strip():
            raise CommandError("Say why with --reason: it goes into each painting's audit trail.")
        ids = transfers_unpublish(paintings, actor=ACTOR, reason=f"Undo of {label}: {reason}")
        self.stdout.write(f"Took down {count} paintings written by {label}: {transfers_run_now(ids, actor=ACTOR)}.")

    def _time(self, flag: str, text: str):
        if not text:
            return None
        moment = parse_datetime(text)
        if moment is None:
            raise CommandError(f"{flag} takes an ISO 8601 time such as 2026-12-01T08:30:00Z, not {text!r}.")
        return moment
