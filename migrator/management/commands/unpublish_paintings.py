from django.core.management.base import BaseCommand, CommandError

from migrator import source
from migrator.admin_lifecycle import transfers_run_now
from migrator.management.kinds import kind_choices, kinds_named
from migrator.models import Transfer
from migrator.services.engine import transfers_enqueue
from migrator.services.lifecycle import transfers_republish, transfers_unpublish

ACTOR = "command:unpublish_paintings"


class Command(BaseCommand):
    help = (
        "Take migrated paintings down (their records removed from the PDS, atproto.rkey cleared in MongoDB), "
        "with a reason kept in each painting's audit trail. They stay unpublished across seeds and syncs until "
        "--republish, which migrates them again under the same record keys. Name paintings by --ref, --code or --user; "
        "--kind moods (or kidlisp, pieces, tapes, news, all) takes down documents of another kind the same way."
    )

    def add_arguments(self, parser):
        parser.add_argument("--ref", action="append", default=[], metavar="OBJECTID", help="A painting's MongoDB _id (repeatable).")
        parser.add_argument("--code", action="append", default=[], help="A painting's code (repeatable).")
        parser.add_argument("--user", metavar="@HANDLE", help="Every painting of this user.")
        parser.add_argument("--reason", default="", help="Why (required to take down).")
        parser.add_argument("--republish", action="store_true", help="Republish instead: undo earlier take-downs.")
        parser.add_argument("--dry-run", action="store_true", help="List the paintings and change nothing.")
        parser.add_argument("--kind", default="paintings", choices=kind_choices(), help="Which kind of document (default paintings).")

    def handle(self, *args, ref, code, user, reason, republish, dry_run, kind, **options):
        paintings = self._selection(refs=ref, codes=code, user=user).filter(kind__in=[one.name for one in kinds_named(kind)])
        count = paintings.count()
        for painting in paintings.order_by("id")[:50]:
            self.stdout.write(f"  {painting}  {painting.get_status_display()}  {painting.record_uri or '(no record)'}")
        if dry_run:
            self.stdout.write(f"Dry run: {count} paintings would be {'republished' if republish else 'taken down'}. No changes made.")
            return
        if republish:
            ids = transfers_republish(paintings, actor=ACTOR)
            queued = transfers_enqueue(Transfer.objects.filter(id__in=ids), actor=ACTOR)
            self.stdout.write(f"Republished {len(ids)} paintings; {queued} queued to be migrated again (run qcluster, or backfill_paintings).")
            return
        if not reason.strip():
            raise CommandError("Say why with --reason: it goes into each painting's audit trail.")
        ids = transfers_unpublish(paintings, actor=ACTOR, reason=reason)
        how = transfers_run_now(ids, actor=ACTOR) if ids else "none had a record"
        self.stdout.write(f"Took down {count} paintings: {how}. They stay unpublished until --republish.")

    def _selection(self, *, refs, codes, user):
        if not (refs or codes or user):
            raise CommandError("Name the paintings: --ref, --code or --user.")
        paintings = Transfer.objects.none()
        if refs:
            paintings |= Transfer.objects.filter(ref__in=refs)
        if codes:
            paintings |= Transfer.objects.filter(content__code__in=codes)
        if user:
            owner = source.owner_for_handle(user)
            if owner is None:
                raise CommandError(f"No aesthetic.computer user has the handle {user}.")
            paintings |= Transfer.objects.filter(owner=owner)
        return paintings
