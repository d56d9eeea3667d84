import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from pymongo.errors import PyMongoError

from migrator import source
from migrator.sample import corpus_plan, write_images
from migrator.samples import KindSample, files_write, samples_plan, users_from_corpus


class Command(BaseCommand):
    help = (
        "Write a sample corpus shaped like aesthetic.computer's into the MongoDB at MONGODB_URI "
        "(replacing its paintings, users and @handles collections, and moods, kidlisp, pieces, "
        "tapes and news-posts by the same users), and its PNG files and tapes' MP4s into a "
        "folder that bin/local-images serves at the real storage's URL shape. Deterministic "
        "from --seed; --scale 1.0 gives the plan's statistics (3,903 paintings, 2,730 moods, "
        "4,000 KidLisp programs, 300 pieces, 35 tapes, 40 news posts)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--scale", type=float, default=1.0, help="1.0 = the plan's 3,903 paintings (default 1.0).")
        parser.add_argument("--seed", type=int, default=1, help="Random seed; the same seed writes the same corpus (default 1).")
        parser.add_argument("--images", type=Path, default=None, help="Folder for the PNG and MP4 files (default SAMPLE_IMAGES_DIR, var/sample/images).")
        parser.add_argument("--no-images", action="store_true", help="Write only the MongoDB documents.")
        parser.add_argument("--workers", type=int, default=None, help="Processes drawing images (default: one per core).")
        parser.add_argument(
            "--paintings-only", action="store_true",
            help="Write only the paintings, users and @handles (quicker), leaving the other kinds' collections as they are.",
        )  # fmt: skip

    def handle(self, *args, scale, seed, images, no_images, workers, paintings_only, **options):
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
        if not paintings_only:
            self._write_kinds(corpus, scale=scale, seed=seed, images=None if no_images else images)
        self.stdout.write(f"Done in {time.monotonic() - started:.1f}s.")

    def _write_kinds(self, corpus, *, scale: float, seed: int, images: Path | None) -> None:
        """The other kinds' collections, by the corpus's users, and their files under ``images``."""
        plan = samples_plan(users_from_corpus(corpus), seed=seed, scale=scale)
        for sample in plan:
            try:
                source.collection_replace(sample.collection, sample.documents, indexes=sample.indexes)
            except PyMongoError as error:
                raise CommandError(f"MongoDB could not be written ({type(error).__name__}). Is MONGODB_URI right and the server up?") from error
            self.stdout.write(_kind_line(sample))
        files = [file for sample in plan for file in sample.files]
        if images is not None and files:
            written = files_write(images, files)
            self.stdout.write(f"Files: {written} written, {len(files) - written} already there, under {images}.")


def _kind_line(sample: KindSample) -> str:
    """``Wrote 2730 moods (2730 by 978 users, 0 by guests); planted bad_id 1, ...``"""
    guests = sum(1 for document in sample.documents if not document.get("user"))
    users = len({document["user"] for document in sample.documents if document.get("user")})
    planted = ", ".join(f"{case} {len(refs)}" for case, refs in sorted(sample.planted.items())) or "nothing"
    return (
        f"Wrote {len(sample.documents)} {sample.collection} ({len(sample.documents) - guests} by {users} users, "
        f"{guests} by guests); planted {planted}."
    )
