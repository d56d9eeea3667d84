import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from pymongo.errors import PyMongoError

from migrator import source
from migrator.sample import corpus_plan, write_images


class Command(BaseCommand):
    help = (
        "Write a sample corpus shaped like aesthetic.computer's into the MongoDB at MONGODB_URI "
        "(replacing its paintings, users and @handles collections), and its PNG files into a "
        "folder that bin/local-images serves at the real storage's URL shape. Deterministic "
        "from --seed; --scale 1.0 gives the plan's statistics (3,903 paintings)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--scale", type=float, default=1.0, help="1.0 = the plan's 3,903 paintings (default 1.0).")
        parser.add_argument("--seed", type=int, default=1, help="Random seed; the same seed writes the same corpus (default 1).")
        parser.add_argument("--images", type=Path, default=None, help="Folder for the PNG files (default SAMPLE_IMAGES_DIR, var/sample/images).")
        parser.add_argument("--no-images", action="store_true", help="Write only the MongoDB documents.")
        parser.add_argument("--workers", type=int, default=None, help="Processes drawing images (default: one per core).")

    def handle(self, *args, scale, seed, images, no_images, workers, **options):
        if scale <= 0:
            raise CommandError("--scale must be above 0.")
        images = images or settings.SAMPLE_IMAGES_DIR
        started = time.monotonic()
        corpus = corpus_plan(scale=scale, seed=seed, handle_domain=settings.PDS_HANDLE_DOMAIN)
        try:
            source.corpus_replace(users=corpus.users, handles=corpus.handles, paintings=corpus.paintings)
        except PyMongoError as error:
            raise CommandError(f"MongoDB could not be written ({type(error).__name__}). Is MONGODB_URI right and the server up?") from error
        anonymous = sum(1 for painting in corpus.paintings if "user" not in painting)
        with_account = sum(1 for user in corpus.users if "atproto" in user)
        self.stdout.write(
            f"Wrote {len(corpus.paintings)} paintings ({len(corpus.paintings) - anonymous} by {len(corpus.users)} users, "
            f"{with_account} with ATProto credentials; {anonymous} anonymous) to MongoDB database {settings.MONGODB_DB!r}."
        )
        for kind, refs in sorted(corpus.planted.items()):
            self.stdout.write(f"  planted {kind}: {len(refs)} ({', '.join(refs[:3])}{'…' if len(refs) > 3 else ''})")
        if not no_images:
            drawn = write_images(images, corpus.images, workers=workers)
            total = sum(1 for job in corpus.images if job.path)
            self.stdout.write(f"Images: {drawn} drawn, {total - drawn} already there, under {images}.")
        self.stdout.write(f"Done in {time.monotonic() - started:.1f}s.")
