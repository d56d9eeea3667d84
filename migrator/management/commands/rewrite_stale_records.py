import json

from django.core.management.base import BaseCommand, CommandError

from migrator import pds
from migrator.kinds import KINDS
from migrator.models import Transfer
from migrator.services.engine import transfers_enqueue
from migrator.services.lifecycle import LexiconNotPublished, after_backfill_counts, transfers_reshape, stale_shape_example

ACTOR = "command:rewrite_stale_records"


class Command(BaseCommand):
    help = (
        "Records written in an older shape than the console writes now (a new lexicon version, a new USER_MEDIA_URL "
        "or GUEST_MEDIA_URL, a change to how a field is built): shows how many and one before and after. With "
        "--confirm they go back to pending, to be rewritten in place under their keys by the next backfill_paintings "
        "(or the cluster, with --queue), keeping each thumbnail blob whose image is the same. Publish the new lexicon "
        "first (deploy_lexicon)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--confirm", action="store_true", help="Send them to be rewritten.")
        parser.add_argument("--queue", action="store_true", help="With --confirm: queue django-q2 jobs for them now.")

    def handle(self, *args, confirm, queue, **options):
        stale = [(KINDS[name], count) for name, count in after_backfill_counts().stale_shape.items() if count]
        total = sum(count for _, count in stale)
        self.stdout.write(f"{total} records were written in an older shape." + (
            " (" + ", ".join(f"{count} {kind.plural}" for kind, count in stale) + ")" if len(stale) > 1 else ""
        ))  # fmt: skip
        for kind, _ in stale:
            example = stale_shape_example(kind=kind)
            if example is not None:
                self.stdout.write(f"For example {example.transfer}:")
                self.stdout.write("  before: " + (json.dumps(example.before, sort_keys=True) if example.before else "(could not be read)"))
                self.stdout.write("  after:  " + json.dumps(example.after, sort_keys=True, default=str))
        if not confirm or not total:
            if total:
                self.stdout.write("Run again with --confirm to rewrite them.")
            return
        ids = []
        for kind, _ in stale:
            try:
                ids += transfers_reshape(actor=ACTOR, kind=kind)
            except LexiconNotPublished as error:
                raise CommandError(str(error)) from error
            except pds.PdsError as error:
                raise CommandError(f"The published lexicon could not be read: {error}") from error
        if queue:
            queued = transfers_enqueue(Transfer.objects.filter(id__in=ids), actor=ACTOR)
            self.stdout.write(f"Queued {queued} records to be rewritten.")
        else:
            kinds = " ".join(kind.plural for kind, _ in stale) if len(stale) > 1 else ""
            command = "backfill_paintings" if [kind.name for kind, _ in stale] == ["painting"] else f"backfill all ({kinds})"
            self.stdout.write(f"{len(ids)} records are pending: run {command} to rewrite them.")
