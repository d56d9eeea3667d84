"""The dry run: what migrating a document (a painting, a mood, ...) would
write, by the batch's own code path with every external write switched off."""

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from migrator.images import ImageError
from migrator.kinds import kind_for
from migrator.lexicon import InvalidRecord, lexicons_load, record_validate
from migrator.models import Transfer
from migrator.thumbnails import Thumbnail

from .blobs import blob_make, blob_pool
from .prepare import prepare
from .work import Outcome, Work


@dataclass
class Preview:
    """What migrating one document would do, computed by the real code path
    with every external write switched off."""

    transfer: Transfer
    outcome: str  # "migrate", "skip" or "fail"
    message: str
    record: dict | None = None
    thumbnail: Thumbnail | None = None
    problems: list[str] = field(default_factory=list)
    rkey: str = ""


def transfers_preview(transfers: Iterable[Transfer]) -> list[Preview]:
    """Dry-run each row (of any kind): make its blob (fetch the image, make
    the thumbnail; fetch the video), build and validate the record. Writes
    nothing anywhere (no PDS, no MongoDB, no state). A blob reference
    carries the CID the PDS would give it."""
    works, previews = [], {}  # by object: rows not yet seeded have no pk
    for transfer in transfers:
        try:
            works.append(prepare(transfer, kind=kind_for(transfer.kind)))
        except Outcome as outcome:
            previews[id(transfer)] = _preview_of(transfer, outcome)
    with_blob = [work for work in works if work.kind.blob_make]
    lexicons = lexicons_load()  # once for the chunk, as a batch reads them
    for work in works:
        if not work.kind.blob_make:
            previews[id(work.row)] = _record_preview(work, lexicons)
    for work, made in zip(with_blob, blob_pool().map(blob_make, with_blob), strict=True):
        if isinstance(made, Outcome):
            previews[id(work.row)] = _preview_of(work.row, made)
        else:
            previews[id(work.row)] = _record_preview(work, lexicons)
    return list(previews.values())


def _preview_of(transfer: Transfer, outcome: Outcome) -> Preview:
    verb = "skip" if outcome.skip_reason else "fail"
    return Preview(transfer=transfer, outcome=verb, message=outcome.message)


def _record_preview(work: Work, lexicons: dict[str, dict]) -> Preview:
    row, thumbnail, kind = work.row, work.thumbnail, work.kind
    blob = None
    if thumbnail is not None:
        blob = {"$type": "blob", "ref": {"$link": blob_cid(thumbnail.content)}, "mimeType": thumbnail.mime_type, "size": thumbnail.size}
    try:
        record = kind.record_from_row(row, has_recording=work.has_recording, blob=blob)
    except ImageError as error:
        return Preview(transfer=row, outcome="skip", message=error.message, thumbnail=thumbnail, rkey=work.rkey)
    try:
        record_validate(record, nsid=work.kind.nsid, lexicons=lexicons)
    except InvalidRecord as error:
        return Preview(transfer=row, outcome="skip", message="The record does not match the lexicon.", record=record, thumbnail=thumbnail, problems=error.problems, rkey=work.rkey)
    verb = "update" if row.rkey else "create"
    made_with = f" with a {thumbnail.size:,}-byte {thumbnail.fallback} {kind.blob_field}" if thumbnail is not None else ""
    message = f"Would {verb} {kind.nsid}/{work.rkey}{made_with}."
    return Preview(transfer=row, outcome="migrate", message=message, record=record, thumbnail=thumbnail, rkey=work.rkey)


def blob_cid(content: bytes) -> str:
    """The CID a PDS gives a blob: CIDv1, raw codec, sha-256, base32."""
    digest = hashlib.sha256(content).digest()
    return "b" + base64.b32encode(bytes([0x01, 0x55, 0x12, 0x20]) + digest).decode().lower().rstrip("=")
