"""The painting: a ``paintings`` document becomes a
``computer.aesthetic.painting`` record whose blob is a thumbnail made from
the painting's image. The pure transformations it declares live in
migrator.records, where they began."""

from collections.abc import Mapping
from typing import Any

from django.conf import settings

from migrator.images import fetch_image, painting_image_url
from migrator.kinds import RecordKind
from migrator.records import SourceFields, painting_fingerprint, painting_problem, painting_record, record_shape, source_fields
from migrator.thumbnails import Thumbnail, make_thumbnail
from migrator.tid import tid_for_painting

FINGERPRINTED = ("slug", "code", "when", "nuked", "owner", "owner_handle")


def fingerprint(values: Mapping[str, Any]) -> str:
    """``painting_fingerprint`` of a row's mirrored fields (``owner_handle``
    "" for a guest painting)."""
    return painting_fingerprint(**{name: values[name] for name in FINGERPRINTED})


def record_from_row(row, *, has_recording: bool, blob) -> dict:
    """The record a painting's state row makes. Raises ImageError for a
    handle or slug unfit for a URL."""
    return painting_record(
        ref=row.ref, slug=row.slug, code=row.code, when=row.when, owner_handle=row.owner_handle or None,
        nuked=row.nuked, has_recording=has_recording, thumbnail=blob,
    )  # fmt: skip


def record_from_source(fields: SourceFields, *, handle: str, has_recording: bool, blob) -> dict:
    """The record MongoDB's document makes, in the account of the owner's
    ``handle`` (unused for a guest painting). A recording counts when a
    guest slug names it or ``has_recording`` (found on storage) says so.
    Raises ImageError for a handle or slug unfit for a URL."""
    return painting_record(
        ref=fields.ref, slug=fields.slug, code=fields.code, when=fields.when,
        owner_handle=handle if fields.owner else None, nuked=fields.nuked,
        has_recording=fields.has_recording or has_recording, thumbnail=blob,
    )  # fmt: skip


def thumbnail_make(row) -> Thumbnail:
    """The thumbnail of the painting's image, fetched from the media
    storage. Raises ImageError or ThumbnailError."""
    image = fetch_image(painting_image_url(handle=row.owner_handle or None, slug=row.slug))
    return make_thumbnail(image, max_pixels=settings.THUMBNAIL_MAX_PIXELS)


PAINTING = RecordKind(
    name="painting",
    nsid="computer.aesthetic.painting",
    mongodb_collection="paintings",
    fields=("_id", "code", "slug", "when", "user", "nuked", "atproto", "bucket"),
    key_document="atproto",
    key_fields=("rkey", "uri"),
    deleted_flag="nuked",
    unique_field="code",
    blob_field="thumbnail",
    compared_fields=("ref", "slug", "code", "when", "imageUrl", "recordingUrl", "nuked"),
    read=source_fields,
    problem=painting_problem,
    fingerprint=fingerprint,
    record_from_row=record_from_row,
    record_from_source=record_from_source,
    record_key=tid_for_painting,
    record_shape=record_shape,
    blob_make=thumbnail_make,
)
