"""The tape: a ``tapes`` document (a recording made on aesthetic.computer)
becomes a ``computer.aesthetic.tape`` record whose blob is the tape's MP4,
fetched from the media storage at ``{TAPE_MEDIA_URL}/{code}.mp4`` (where
the oven puts it once it has converted the frames). 32 of 35 tapes are by
guests: a guest's tape goes to the anonymous account.

MongoDB's fields: ``slug`` and ``code`` non-empty text (the code names the
MP4: letters, digits, ``-`` and ``_``; a code used twice stays with the
oldest tape), ``when`` a date, ``user`` the owner's auth0 sub (missing or
null: a guest's), ``nuked`` true, false or absent (a nuked tape has no
record: the lexicon cannot say nuked). The key is written back to
``at.rkey``, with ``at.uri`` and ``at.cid`` (not ``atproto``).

The MP4: one that does not exist yet skips the tape (*video missing*) and
the skip lifts by itself at the next full seed after it appears; one that
is not an MP4 skips it (*video unreadable*); one larger than the lexicon's
maxSize (and TAPE_MAX_BYTES) skips it saying both sizes.
"""

import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any
from django.conf import settings

from migrator.images import ImageError, fetch_image, resource_exists
from migrator.kinds import (
    DocumentFields, Problem, RecordKind, common_fields, common_problem, datetime_string, digest, lexicon_path, lexicon_shape, shown,
    text_of, text_problem,
)  # fmt: skip
from migrator.models import ErrorKind, SkipReason
from migrator.video import Video, is_mp4

NSID = "computer.aesthetic.tape"
RECORD_BUILD = 1  # raise it when ``tape_record`` changes records already written
CODE_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")  # one harmless path segment


@dataclass(frozen=True, kw_only=True)
class TapeFields(DocumentFields):
    slug: str
    code: str


def tape_read(document: dict) -> TapeFields:
    return TapeFields(
        **common_fields(document, key_document="at", deleted_flag="nuked"), slug=text_of(document.get("slug")), code=text_of(document.get("code"))
    )


def tape_problem(document: dict, fields: TapeFields, *, duplicate_of: str | None = None) -> Problem | None:
    problem = (
        common_problem(document, fields, key_field="at.rkey")
        or text_problem(document, "slug", shown_as="slug", limit=255)
        or text_problem(document, "code", shown_as="code", limit=64)
    )
    if problem is None and not CODE_PATTERN.fullmatch(fields.code):
        problem = Problem(SkipReason.BAD_FIELD, f"The code {fields.code[:40]!r} cannot name the tape's MP4 on the media storage.")
    if problem is None and duplicate_of and duplicate_of != fields.ref:
        problem = Problem(SkipReason.DUPLICATE_CODE, f"The code {fields.code!r} is also used by tape {duplicate_of}, which keeps it.")
    return problem


def row_values(fields: TapeFields) -> dict:
    return {"label": fields.slug[:255], "content": {"slug": fields.slug[:255], "code": fields.code[:64]}}


def fingerprint(values: Mapping[str, Any]) -> str:
    when, content = values["when"], values["content"]
    return digest(content.get("slug", ""), content.get("code", ""), datetime_string(when) if when else "", "nuked" if values["nuked"] else "", values["owner"])


def tape_record(*, ref: str, slug: str, code: str, when: dt.datetime, video) -> dict:
    return {"$type": NSID, "slug": slug, "code": code, "when": datetime_string(when), "video": video, "ref": ref}


def record_from_row(row, *, has_recording: bool, blob) -> dict:
    return tape_record(ref=row.ref, slug=row.content.get("slug", ""), code=code_of(row), when=row.when, video=blob)


def record_from_source(fields: TapeFields, *, handle: str, has_recording: bool, blob) -> dict:
    return tape_record(ref=fields.ref, slug=fields.slug, code=fields.code, when=fields.when, video=blob)


def code_of(row) -> str:
    return row.content.get("code", "")


def video_url(code: str) -> str:
    if not CODE_PATTERN.fullmatch(code):
        raise ImageError(f"The code {code[:40]!r} cannot name the tape's MP4.", ErrorKind.PERMANENT, SkipReason.BAD_FIELD)
    return f"{settings.TAPE_MEDIA_URL.rstrip('/')}/{code}.mp4"


def max_bytes() -> int:
    """The largest MP4 uploaded: the lexicon's maxSize, or TAPE_MAX_BYTES when lower."""
    path = lexicon_path(NSID)
    return min(_max_size(path, path.stat().st_mtime_ns), settings.TAPE_MAX_BYTES)


@cache
def _max_size(path, _mtime: int) -> int:
    return json.loads(path.read_text())["defs"]["main"]["record"]["properties"]["video"]["maxSize"]


def video_make(row) -> Video:
    """The tape's MP4 from the media storage. Raises ImageError: skipped
    when it does not exist (yet), is too large or is not an MP4."""
    url = video_url(code_of(row))
    limit = max_bytes()
    try:
        content = fetch_image(url, max_bytes=limit, too_big=SkipReason.TOO_LARGE)
    except ImageError as error:
        if error.skip_reason == SkipReason.IMAGE_MISSING:
            raise ImageError(f"The tape's MP4 does not exist yet ({error.message}); the skip lifts when it appears.", error.kind, SkipReason.VIDEO_MISSING, url=url) from None
        if error.skip_reason == SkipReason.TOO_LARGE:
            raise ImageError(f"The tape's MP4 is too large: {error.message} (the lexicon's maxSize and TAPE_MAX_BYTES).", error.kind, error.skip_reason, url=url) from None
        raise
    if not is_mp4(content):
        raise ImageError(f"{url} is not an MP4 (it starts {shown(content[:12])}).", ErrorKind.PERMANENT, SkipReason.INVALID_VIDEO, url=url)
    return Video(content)


def video_ready(row) -> bool:
    """Whether the tape's MP4 exists now (a tape skipped for its missing
    MP4 is migrated once it does)."""
    try:
        return resource_exists(video_url(code_of(row)))
    except ImageError:
        return False


KIND = RecordKind(
    name="tape",
    plural="tapes",
    nsid=NSID,
    mongodb_collection="tapes",
    fields=("_id", "slug", "code", "user", "when", "nuked", "at"),
    key_document="at",
    key_fields=("rkey", "uri", "cid"),
    deleted_flag="nuked",
    unique_field="code",
    blob_field="video",
    compared_fields=("ref", "slug", "code", "when"),
    read=tape_read,
    row_values=row_values,
    problem=tape_problem,
    fingerprint=fingerprint,
    record_from_row=record_from_row,
    record_from_source=record_from_source,
    record_shape=lambda: lexicon_shape(NSID, str(RECORD_BUILD), settings.TAPE_MEDIA_URL),
    blob_make=video_make,
    deleted_why=lambda: "The tape is nuked in MongoDB",
    label_name="slug",
    required=("slug", "code"),
    same_blob=lambda row, value: value.get("code") == code_of(row),
    blob_ready=video_ready,
    waits_for_blob=SkipReason.VIDEO_MISSING,
)
