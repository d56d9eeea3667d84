import random
import time

from django.core.management.base import BaseCommand

from migrator import source
from migrator.services.seed import paintings_seed

EDITS = ("nuke", "un-nuke", "code", "when")


class Command(BaseCommand):
    help = (
        "For the demo: edit random sample paintings in MongoDB while a migration runs (nuke, "
        "un-nuke, a new code, a new date), as aesthetic.computer's users would, and seed the "
        "state table every few edits as live sync does. Never run it against production."
    )

    def add_arguments(self, parser):
        parser.add_argument("--seconds", type=float, default=20.0, help="How long to keep editing (default 20).")
        parser.add_argument("--every", type=float, default=0.05, help="Seconds between edits (default 0.05).")
        parser.add_argument("--seed-every", type=int, default=20, help="Seed the state table after this many edits (default 20).")
        parser.add_argument("--seed", type=int, default=1, help="Random seed (default 1).")

    def handle(self, *args, seconds, every, seed_every, seed, **options):
        rng = random.Random(seed)
        refs = [str(document["_id"]) for document in source.paintings_stream() if source.is_object_id(str(document["_id"]))]
        edits, deadline = 0, time.monotonic() + seconds
        while refs and time.monotonic() < deadline:
            edit = rng.choice(EDITS)
            source.painting_fields_set(rng.choice(refs), _change(edit, rng, edits))
            edits += 1
            if edits % seed_every == 0:
                paintings_seed(actor="command:edit_sample_paintings")
            time.sleep(every)
        paintings_seed(actor="command:edit_sample_paintings")
        self.stdout.write(f"Made {edits} edits to {len(refs)} paintings in MongoDB, seeding every {seed_every}.")


def _change(edit: str, rng: random.Random, number: int) -> dict:
    import datetime as dt

    if edit in ("nuke", "un-nuke"):
        return {"nuked": edit == "nuke"}
    if edit == "code":
        return {"code": f"e{number:x}{rng.randrange(16**3):03x}"[:10]}
    return {"when": dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=rng.randrange(10**8))}
