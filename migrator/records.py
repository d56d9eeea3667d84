"""Pure transformations of MongoDB painting documents: what the state table
keeps of one, what is wrong with one, and (later) the ATProto record it
becomes. No I/O here beyond reading the lexicon file once.
"""

import datetime as dt
import json
from dataclasses import dataclass
from functools import cache

from django.conf import settings

from migrator.images import ImageError, painting_image_url, painting_recording_url
from migrator.models import SkipReason


@cache
def lexicon_limits() -> dict[str, int]:
    """maxLength of each string property of the painting lexicon."""
    path = settings.LEXICON_DIR / "computer" / "aesthetic" / "painting.json"
    properties = json.loads(path.read_text())["defs"]["main"]["record"]["properties"]
    return {name: spec["maxLength"] for name, spec in properties.items() if "maxLength" in spec}


@dataclass(frozen=True)
class Problem:
    reason: str  # a SkipReason value
    detail: str


@dataclass(frozen=True)
class SourceFields:
    """What the state table mirrors of a MongoDB painting."""

    ref: str
    slug: str
    code: str
    owner: str
    when: dt.datetime | None
    nuked: bool
    has_recording: bool
    rkey: str
    uri: str


def source_fields(document: dict) -> SourceFields:
    """Read a painting document leniently: wrong types become empty values,
    which ``painting_problem`` then reports."""
    slug = document.get("slug")
    code = document.get("code")
    owner = document.get("user")
    when = document.get("when")
    atproto = document.get("atproto") if isinstance(document.get("atproto"), dict) else {}
    slug = _text(slug)
    return SourceFields(
        ref=str(document["_id"]),
        slug=slug,
        code=_text(code),
        owner=_text(owner),
        when=when if isinstance(when, dt.datetime) else None,
        nuked=document.get("nuked") is True,
        has_recording=":" in slug,
        rkey=_text(atproto.get("rkey")),
        uri=_text(atproto.get("uri")),
    )


def _text(value) -> str:
    return value if isinstance(value, str) else ""


def painting_problem(document: dict, fields: SourceFields, *, duplicate_of: str | None = None) -> Problem | None:
    """Why a painting document cannot become a record, or None.

    ``duplicate_of`` is the ref of the painting that keeps this one's code
    when the code is used more than once.
    """
    limits = lexicon_limits()
    if not fields.slug:
        return Problem(SkipReason.MISSING_SLUG, "The document has no slug.")
    if fields.when is None:
        value = document.get("when")
        shown = "missing" if value is None else f"{type(value).__name__} {str(value)[:40]!r}"
        return Problem(SkipReason.BAD_WHEN, f"`when` is not a date ({shown}).")
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


def datetime_string(when: dt.datetime) -> str:
    """ATProto's datetime format: UTC, milliseconds, a Z."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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
