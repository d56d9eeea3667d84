import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from migrator.images import ImageError, fetch_image, painting_image_url, parse_painting_address
from migrator.thumbnails import ThumbnailError, make_thumbnail


class Command(BaseCommand):
    help = (
        "Fetch one painting's full image from the image storage and write the 512x512 thumbnail "
        "the migration would upload, printing its size, format, dimensions, fallback and timings. "
        "Nothing is written to the database or the PDS."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--slug",
            required=True,
            metavar="ADDRESS",
            help="@handle/painting/slug for a user's painting (e.g. @jeffrey/painting/2023.8.24.16.21.09.123), "
            "or a bare slug (or image:recording slug) for a guest painting.",
        )
        parser.add_argument(
            "-o",
            "--output",
            metavar="FILE",
            help="Where to write the thumbnail (default: thumbnail.png, or thumbnail.jpg when it falls back to JPEG).",
        )

    def handle(self, *args, slug, output, **options):
        try:
            handle, painting_slug = parse_painting_address(slug)
            url = painting_image_url(handle=handle, slug=painting_slug)
            started = time.perf_counter()
            content = fetch_image(url)
            fetched = time.perf_counter()
            thumbnail = make_thumbnail(content, max_pixels=settings.THUMBNAIL_MAX_PIXELS)
            made = time.perf_counter()
        except (ImageError, ThumbnailError) as error:
            raise CommandError(f"{error.message} ({error.kind})") from error

        path = Path(output or f"thumbnail.{thumbnail.extension}")
        path.write_bytes(thumbnail.content)
        self.stdout.write(
            f"Wrote {path}: {thumbnail.size:,} bytes, {thumbnail.mime_type}, "
            f"{thumbnail.width}x{thumbnail.height} from a {thumbnail.source_width}x{thumbnail.source_height} "
            f"{thumbnail.source_format} of {len(content):,} bytes, fallback {thumbnail.fallback}.\n"
            f"Fetched {url} in {(fetched - started) * 1000:.0f} ms; thumbnail made in {(made - fetched) * 1000:.0f} ms."
        )
        if path.suffix.lower().lstrip(".") not in {"png": ("png",), "jpg": ("jpg", "jpeg")}[thumbnail.extension]:
            self.stderr.write(f"Note: {path} holds a {thumbnail.mime_type} image despite its name.")
