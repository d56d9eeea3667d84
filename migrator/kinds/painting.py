"""The painting: a ``paintings`` document becomes a
``computer.aesthetic.painting`` record whose blob is a thumbnail made from
the painting's image. Pure transformations (what the state table keeps of
a document, what is wrong with one, the record it becomes); the only I/O is
reading the lexicon file and, for the thumbnail, fetching the image."""

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from bson import ObjectId
from django.conf import settings

from migrator.images import ImageError, fetch_image, painting_image_url, painting_recording_url, resource_exists
from migrator.kinds import Problem, RecordKind, datetime_string, document_ref, key_of, lexicon_path, owner_of as _owner, shown as _shown, text_of as _text
from migrator.kinds import lexicon_limits as kinds_lexicon_limits
from migrator.models import SkipReason
from migrator.thumbnails import Thumbnail, make_thumbnail
from migrator.tid import MAX_MICROS, micros_since_epoch, tid_for_painting


# How this code builds a record from a row. Raise it when a change to
# ``painting_record`` (or what feeds it) changes records already written:
# every record of an older shape is then known to be stale.
RECORD_BUILD = 1


NSID = "computer.aesthetic.painting"


def lexicon_limits() -> dict[str, int]:
    """maxLength of each string property of the painting lexicon (read
    again when the file changes: a new version lifts what it now allows)."""
    return kinds_lexicon_limits(NSID)


def record_shape() -> str:
    """A digest of everything besides the painting's own fields that decides
    the record the console writes: the lexicon, the media URLs the image
    links are built from, and RECORD_BUILD. A migrated row keeps the shape
    its record was written in; a record of another shape is stale."""
    path = lexicon_path(NSID)
    return _record_shape(path, path.stat().st_mtime_ns, settings.USER_MEDIA_URL, settings.GUEST_MEDIA_URL)


@cache
def _record_shape(path, _mtime: int, user_media_url: str, guest_media_url: str) -> str:
    lexicon = json.dumps(json.loads(path.read_text()), sort_keys=True, separators=(",", ":"))
    parts = (str(RECORD_BUILD), lexicon, user_media_url, guest_media_url)
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()


@dataclass(frozen=True)
class SourceFields:
    """What the state table mirrors of a MongoDB painting.

    ``owner`` is the auth0 sub ("" for a guest painting); ``owner_problem``
    says why a ``user`` that is present cannot name an owner, and
    ``nuked_problem`` why ``nuked`` is neither true, false nor absent.
    """

    ref: str
    slug: str
    code: str
    owner: str
    when: dt.datetime | None
    nuked: bool
    has_recording: bool
    rkey: str
    uri: str
    ref_is_object_id: bool = True
    owner_problem: str = ""
    nuked_problem: str = ""

    @property
    def is_anonymous(self) -> bool:
        return not self.owner and not self.owner_problem


def source_fields(document: dict) -> SourceFields:
    """Read a painting document leniently: wrong types become empty values
    (and problems), which ``painting_problem`` then reports. Never raises for
    a document's content."""
    slug = _text(document.get("slug"))
    owner, owner_problem = _owner(document)
    nuked = document.get("nuked")
    rkey, uri = key_of(document, "atproto")
    when = document.get("when")
    return SourceFields(
        ref=document_ref(document.get("_id")),
        slug=slug,
        code=_text(document.get("code")),
        owner=owner,
        when=when if isinstance(when, dt.datetime) else None,
        nuked=nuked is True,
        has_recording=":" in slug,
        rkey=rkey,
        uri=uri,
        ref_is_object_id=isinstance(document.get("_id"), ObjectId),
        owner_problem=owner_problem,
        nuked_problem="" if nuked is None or isinstance(nuked, bool) else f"`nuked` is {_shown(nuked)}, not true or false.",
    )


def painting_fingerprint(*, slug: str, code: str, when: dt.datetime | None, nuked: bool, owner: str, owner_handle: str) -> str:
    """A digest of the MongoDB fields a painting's record is made of (and of
    the account it lives in). The seed stores it with the mirrored fields;
    the engine stores, with the record it wrote, the fingerprint of the
    fields it wrote it from. When the two differ the record is stale."""
    when_text = datetime_string(when) if when else ""
    parts = (slug, code, when_text, "nuked" if nuked else "", owner, owner_handle)
    return hashlib.blake2b("\x1f".join(parts).encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def painting_problem(document: dict, fields: SourceFields, *, duplicate_of: str | None = None) -> Problem | None:
    """Why a painting document cannot become a record, or None.

    ``duplicate_of`` is the ref of the painting that keeps this one's code
    when the code is used more than once.
    """
    limits = lexicon_limits()
    if not fields.ref_is_object_id:
        return Problem(SkipReason.BAD_REF, f"`_id` is {_shown(document.get('_id'))}, not an ObjectId: no record key can be made and atproto.rkey could not be written back.")
    if fields.owner_problem:
        return Problem(SkipReason.BAD_OWNER, fields.owner_problem)
    if fields.nuked_problem:
        return Problem(SkipReason.BAD_NUKED, fields.nuked_problem)
    if not fields.slug:
        return Problem(SkipReason.MISSING_SLUG, "The document has no slug.")
    if fields.when is None:
        value = document.get("when")
        shown = "missing" if value is None else f"{type(value).__name__} {str(value)[:40]!r}"
        return Problem(SkipReason.BAD_WHEN, f"`when` is not a date ({shown}).")
    if not 0 <= micros_since_epoch(fields.when) <= MAX_MICROS:
        return Problem(SkipReason.BAD_WHEN, f"`when` is {fields.when:%Y-%m-%d}, outside the dates a record key can hold (1970 to 2255).")
    if not fields.code:
        return Problem(SkipReason.BAD_CODE, "The document has no code.")
    if len(fields.slug) > limits["slug"]:
        return Problem(SkipReason.TOO_LONG, f"The slug is {len(fields.slug)} characters; the lexicon allows {limits['slug']}.")
    if len(fields.code) > limits["code"]:
        return Problem(SkipReason.TOO_LONG, f"The code is {len(fields.code)} characters; the lexicon allows {limits['code']}.")
    try:
        painting_image_url(handle=None, slug=fields.slug)
    except ImageError:
        return Problem(SkipReason.BAD_SLUG, f"The slug {fields.slug[:80]!r} cannot be part of an image URL.")
    if duplicate_of and duplicate_of != fields.ref:
        return Problem(SkipReason.DUPLICATE_CODE, f"The code {fields.code!r} is also used by painting {duplicate_of}, which keeps it.")
    return None


def painting_record(
    *,
    ref: str,
    slug: str,
    code: str,
    when: dt.datetime,
    owner_handle: str | None,
    nuked: bool,
    has_recording: bool,
    thumbnail,
) -> dict:
    """The ``computer.aesthetic.painting`` record for a painting.

    ``owner_handle`` is None for a guest painting; ``thumbnail`` is the blob
    reference the PDS returned for the uploaded thumbnail. ``nuked`` is
    always written, so un-nuking is an explicit change of the record.
    Raises ImageError (permanent) for a handle or slug unfit for a URL.
    """
    record = {
        "$type": settings.PAINTING_COLLECTION,
        "slug": slug,
        "code": code,
        "thumbnail": thumbnail,
        "imageUrl": painting_image_url(handle=owner_handle, slug=slug),
        "when": datetime_string(when),
        "ref": ref,
        "nuked": nuked,
    }
    if has_recording:
        record["recordingUrl"] = painting_recording_url(handle=owner_handle, slug=slug)
    return record


def fingerprint(values: Mapping[str, Any]) -> str:
    """``painting_fingerprint`` of a row's mirrored fields (``owner_handle``
    "" for a guest painting)."""
    content = values["content"]
    return painting_fingerprint(
        slug=content.get("slug", ""), code=content.get("code", ""), when=values["when"], nuked=values["nuked"],
        owner=values["owner"], owner_handle=values["owner_handle"],
    )  # fmt: skip


def slug_of(row) -> str:
    return row.content.get("slug", "")


def record_from_row(row, *, has_recording: bool, blob) -> dict:
    """The record a painting's state row makes. Raises ImageError for a
    handle or slug unfit for a URL."""
    return painting_record(
        ref=row.ref, slug=slug_of(row), code=row.content.get("code", ""), when=row.when, owner_handle=row.owner_handle or None,
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


def row_values(fields: SourceFields) -> dict:
    """The painting's own fields of its state row: listed by its slug; a
    guest slug that names a recording says so (``recording``)."""
    content = {"slug": fields.slug[:255], "code": fields.code[:64]} | ({"recording": True} if fields.has_recording else {})
    return {"label": fields.slug[:255], "content": content}


def deleted_why() -> str:
    """A nuked painting keeps its record (saying ``nuked``) unless
    NUKED_PAINTINGS=skip."""
    return "The painting is nuked and NUKED_PAINTINGS=skip" if settings.NUKED_PAINTINGS == "skip" else ""


def same_blob(row, value: dict) -> bool:
    """A stored record's thumbnail is the painting's image still when it is
    the same painting and slug (a rename, a new code, a new lexicon or media
    URL change the record, not the image)."""
    return value.get("ref") == row.ref and value.get("slug") == slug_of(row)


def recording_in(value: dict) -> bool:
    return bool(value.get("recordingUrl"))


def recording_exists(row) -> bool:
    """Whether the storage has the painting's recording (.zip)."""
    return resource_exists(painting_recording_url(handle=row.owner_handle or None, slug=slug_of(row)))


def thumbnail_make(row) -> Thumbnail:
    """The thumbnail of the painting's image, fetched from the media
    storage. Raises ImageError or ThumbnailError."""
    image = fetch_image(painting_image_url(handle=row.owner_handle or None, slug=slug_of(row)))
    return make_thumbnail(image, max_pixels=settings.THUMBNAIL_MAX_PIXELS)


PAINTING = KIND = RecordKind(
    name="painting",
    plural="paintings",
    nsid=NSID,
    mongodb_collection="paintings",
    fields=("_id", "code", "slug", "when", "user", "nuked", "atproto", "bucket"),
    key_document="atproto",
    key_fields=("rkey", "uri"),
    deleted_flag="nuked",
    unique_field="code",
    blob_field="thumbnail",
    compared_fields=("ref", "slug", "code", "when", "imageUrl", "recordingUrl", "nuked"),
    read=source_fields,
    row_values=row_values,
    problem=painting_problem,
    fingerprint=fingerprint,
    record_from_row=record_from_row,
    record_from_source=record_from_source,
    record_key=tid_for_painting,
    record_shape=record_shape,
    blob_make=thumbnail_make,
    deleted_why=deleted_why,
    label_name="slug",
    required=("slug", "code"),
    list_fields=("code",),
    needs_handle=True,
    recordings=True,
    same_blob=same_blob,
    recording_in=recording_in,
    recording_exists=recording_exists,
)
