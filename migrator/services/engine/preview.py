"""The dry run: what migrating a painting would write, by the batch's own
code path with every external write switched off."""

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from migrator.images import ImageError
from migrator.kinds import PAINTING, RecordKind
from migrator.lexicon import InvalidRecord, record_validate
from migrator.models import PaintingMigration
from migrator.thumbnails import Thumbnail

from .batch import Outcome, Work, prepare, record_for, thumbnail_for, thumbnail_pool


@dataclass
class Preview:
    """What migrating one painting would do, computed by the real code path
    with every external write switched off."""

    painting: PaintingMigration
    outcome: str  # "migrate", "skip" or "fail"
    message: str
    record: dict | None = None
    thumbnail: Thumbnail | None = None
    problems: list[str] = field(default_factory=list)
    rkey: str = ""


def paintings_preview(paintings: Iterable[PaintingMigration], *, kind: RecordKind = PAINTING) -> list[Preview]:
    """Dry-run each painting: fetch its image, make the thumbnail, build and
    validate the record. Writes nothing anywhere (no PDS, no MongoDB, no
    state). The thumbnail's blob reference carries the CID the PDS would
    give it."""
    works, previews = [], {}  # by object: rows not yet seeded have no pk
    for painting in paintings:
        try:
            works.append(prepare(painting, kind=kind))
        except Outcome as outcome:
            previews[id(painting)] = _preview_of(painting, outcome)
    for work, made in zip(works, thumbnail_pool().map(thumbnail_for, works), strict=True):
        if isinstance(made, Outcome):
            previews[id(work.row)] = _preview_of(work.row, made)
        else:
            previews[id(work.row)] = _record_preview(work)
    return list(previews.values())


def _preview_of(painting: PaintingMigration, outcome: Outcome) -> Preview:
    verb = "skip" if outcome.skip_reason else "fail"
    return Preview(painting=painting, outcome=verb, message=outcome.message)


def _record_preview(work: Work) -> Preview:
    row, thumbnail = work.row, work.thumbnail
    blob = {"$type": "blob", "ref": {"$link": blob_cid(thumbnail.content)}, "mimeType": thumbnail.mime_type, "size": thumbnail.size}
    try:
        record = record_for(row, has_recording=work.has_recording, thumbnail=blob, kind=work.kind)
    except ImageError as error:
        return Preview(painting=row, outcome="skip", message=error.message, thumbnail=thumbnail, rkey=work.rkey)
    try:
        record_validate(record, nsid=work.kind.nsid)
    except InvalidRecord as error:
        return Preview(painting=row, outcome="skip", message="The record does not match the lexicon.", record=record, thumbnail=thumbnail, problems=error.problems, rkey=work.rkey)
    verb = "update" if row.rkey else "create"
    message = f"Would {verb} {work.kind.nsid}/{work.rkey} with a {thumbnail.size:,}-byte {thumbnail.fallback} thumbnail."
    return Preview(painting=row, outcome="migrate", message=message, record=record, thumbnail=thumbnail, rkey=work.rkey)


def blob_cid(content: bytes) -> str:
    """The CID a PDS gives a blob: CIDv1, raw codec, sha-256, base32."""
    digest = hashlib.sha256(content).digest()
    return "b" + base64.b32encode(bytes([0x01, 0x55, 0x12, 0x20]) + digest).decode().lower().rstrip("=")
