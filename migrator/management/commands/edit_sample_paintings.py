import random
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from migrator import source
from migrator.kinds import PAINTING
from migrator.services.seed import documents_seed

EDITS = ("nuke", "un-nuke", "code", "when", "delete", "restore")


class Command(BaseCommand):
    help = (
        "For the demo: edit random sample paintings in MongoDB while a migration runs (nuke, "
        "un-nuke, a new code, a new date, delete, restore a deleted one), rename one user, as "
        "aesthetic.computer's users would, and seed the state table every few edits as live sync "
        "does. Never run it against production."
    )

    def add_arguments(self, parser):
        parser.add_argument("--seconds", type=float, default=20.0, help="How long to keep editing (default 20).")
        parser.add_argument("--every", type=float, default=0.05, help="Seconds between edits (default 0.05).")
        parser.add_argument("--seed-every", type=int, default=20, help="Seed the state table after this many edits (default 20).")
        parser.add_argument("--seed", type=int, default=1, help="Random seed (default 1).")

    def handle(self, *args, seconds, every, seed_every, seed, **options):
        rng = random.Random(seed)
        documents = list(source.documents_stream(kind=PAINTING))
        refs = [str(document["_id"]) for document in documents if source.is_object_id(str(document["_id"]))]
        owners = sorted({document["user"] for document in documents if isinstance(document.get("user"), str)})
        deleted: list[dict] = []
        edits, deadline = 0, time.monotonic() + seconds
        if owners:
            self._rename(rng.choice(owners))
        while refs and time.monotonic() < deadline:
            edit = rng.choice(EDITS)
            ref = rng.choice(refs)
            if edit == "delete":
                document = source.painting_delete(ref)
                if document is not None:
                    deleted.append(document)
                    refs.remove(ref)
            elif edit == "restore":
                if deleted:
                    document = deleted.pop(rng.randrange(len(deleted)))
                    source.painting_restore(document)
                    refs.append(str(document["_id"]))
            else:
                source.painting_fields_set(ref, _change(edit, rng, edits))
            edits += 1
            if edits % seed_every == 0:
                documents_seed(actor="command:edit_sample_paintings", kind=PAINTING)
            time.sleep(every)
        documents_seed(actor="command:edit_sample_paintings", kind=PAINTING)
        self.stdout.write(f"Made {edits} edits to {len(refs)} paintings in MongoDB ({len(deleted)} left deleted), seeding every {seed_every}.")

    def _rename(self, owner: str) -> None:
        """Rename one user. The image server keeps their files under the old
        handle; a link makes them answer under the new one too, as storage
        does once it catches up (records rewritten meanwhile keep their
        thumbnails and need no image)."""
        old = source.handle_rename(owner, f"renamed-{owner[-6:].lower()}")
        if old is None:
            return
        new = source.database()["@handles"].find_one({"_id": owner})["handle"]
        folder = settings.SAMPLE_IMAGES_DIR / "media"
        if (folder / f"@{old}").exists() and not (folder / f"@{new}").exists():
            (folder / f"@{new}").symlink_to(f"@{old}", target_is_directory=True)
        self.stdout.write(f"Renamed @{old} to @{new}.")


def _change(edit: str, rng: random.Random, number: int) -> dict:
    import datetime as dt

    if edit in ("nuke", "un-nuke"):
        return {"nuked": edit == "nuke"}
    if edit == "code":
        return {"code": f"e{number:x}{rng.randrange(16**3):03x}"[:10]}
    return {"when": dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=rng.randrange(10**8))}
