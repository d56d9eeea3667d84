"""Claimed and prepared: each row's record key, and what an earlier
attempt left on the PDS (a record to adopt or update, a blob to keep), so
that a retry never writes a second record."""

from migrator import pds, source
from migrator.kinds import RecordKind
from migrator.models import ErrorKind, Transfer, SkipReason

from .finish import blob_link, finish, pds_outcome
from .work import BatchResult, Outcome, Work
from .writeback import adopt


def prepare(row: Transfer, *, kind: RecordKind) -> Work:
    """The row's way through the batch. Raises Outcome (skipped) for a row
    that cannot make a record, whatever its fields hold."""
    if not (row.when and all(row.content.get(name) for name in kind.required)):
        names = ["date", *kind.required]
        lacks = " or ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
        raise Outcome(f"The {kind.name} lacks a {lacks}; re-run manage.py seed {kind.plural}.", skip_reason=SkipReason.INVALID_RECORD)
    if kept_unpublished(row, kind=kind):
        reason, why = unpublished_because(row, kind=kind)
        raise Outcome(f"{why}.", skip_reason=reason)
    try:
        rkey = row.rkey or kind.record_key(when=row.when, ref=row.ref)
    except ValueError:
        if not source.is_object_id(row.ref):
            raise Outcome(f"`_id` {row.ref!r} is not an ObjectId: no record key can be made.", skip_reason=SkipReason.BAD_REF) from None
        raise Outcome(f"`when` is {row.when:%Y-%m-%d}, outside the dates a record key can hold (1970 to 2255).", skip_reason=SkipReason.BAD_WHEN) from None
    return Work(row=row, rkey=rkey, kind=kind)


def tried_before(row: Transfer) -> bool:
    """Whether an earlier attempt may have written the row's record (it
    has a key, or this is not its first attempt): only then is the PDS
    asked what it holds."""
    return row.attempts > 1 or bool(row.rkey)


def kept_unpublished(row: Transfer, *, kind: RecordKind) -> bool:
    """Whether the document must have no record: staff took it down, or it
    is deleted in MongoDB and its kind keeps no record of one (a nuked
    painting under NUKED_PAINTINGS=skip, a deleted mood)."""
    return row.unpublished_at is not None or (row.nuked and bool(kind.deleted_why()))


def unpublished_because(row: Transfer, *, kind: RecordKind) -> tuple[str, str]:
    """(skip reason, why) of a document that must have no record."""
    if row.unpublished_at is not None:
        return SkipReason.TAKEN_DOWN, f"Taken down by {row.unpublished_by}: {row.unpublished_reason}"
    return SkipReason.NUKED, kind.deleted_why()


def wait_for_uploads(rows: list[Transfer], *, actor: str, result: BatchResult, kind: RecordKind) -> list[Transfer]:
    """When this machine can upload nothing before a reset, the documents
    that need an upload (never tried, so no record to look for) wait without
    their account being opened: no login is spent on them. Returns the rows
    left to run (a nuked painting to unpublish, a retry that may find its
    record written)."""
    blocked = pds.uploads_blocked() if kind.blob_make else None
    if blocked is None:
        return rows
    left = []
    for row in rows:
        if tried_before(row) or kept_unpublished(row, kind=kind):
            left.append(row)
            continue
        try:
            prepare(row, kind=kind)
        except Outcome as outcome:  # skipped for its own fields, as it would be anyway
            finish(row, outcome, actor=actor, result=result)
            continue
        finish(row, pds_outcome(f"Uploading the {kind.blob_field}", blocked), actor=actor, result=result)
    return left


def look_up_earlier_attempts(repo, works: list[Work], *, actor: str, result: BatchResult) -> list[Work]:
    """Reconcile documents tried before with what the PDS already holds, so
    a retry never writes a second record. First attempts skip the lookup."""
    tried, remaining = [], []
    for work in works:
        (tried if tried_before(work.row) else remaining).append(work)
    if not tried:
        return remaining
    try:  # a batch's works are of one account and one kind
        stored_at = repo.records_at(collection=tried[0].kind.nsid, rkeys=[work.rkey for work in tried])
    except pds.PdsError as error:
        for work in tried:
            finish(work.row, pds_outcome(f"Could not look up record {work.rkey}", error), actor=actor, result=result)
        return remaining
    for work in tried:
        stored = stored_at.get(work.rkey)
        if stored is None:
            try:
                work.blob = _blob_still_held(repo, work)
            except pds.PdsError as error:
                finish(work.row, pds_outcome(f"Could not look up the {work.kind.blob_field} {work.row.blob_cid}", error), actor=actor, result=result)
                continue
            remaining.append(work)
        elif stored.value.get("ref") != work.row.ref:
            message = f"Record key {work.rkey} holds another {work.kind.name} ({stored.value.get('ref')}): a TID collision."
            finish(work.row, Outcome(message, kind=ErrorKind.PERMANENT), actor=actor, result=result)
        elif _record_current(work.row, stored.value, kind=work.kind):
            adopt(repo, work, stored, actor=actor, result=result)
        else:
            work.stored, work.action = stored.value, "update"
            work.blob = _reusable_blob(work.row, stored.value, kind=work.kind)
            remaining.append(work)
    return remaining


def _blob_still_held(repo, work: Work) -> dict | None:
    """For a document whose record is gone from the PDS (a restore of an
    older backup, a deletion by hand, a take-down), the blob that record
    held, when the PDS still has it (another record of the account keeps
    the same thumbnail): written again with it, nothing is fetched or
    uploaded. None when the row knows of no blob or the PDS lacks it."""
    row, kind = work.row, work.kind
    if not (kind.blob_field and row.blob_cid and row.blob_mime and row.blob_size):
        return None
    if not repo.blob_has(row.blob_cid):
        return None
    return {"$type": "blob", "ref": {"$link": row.blob_cid}, "mimeType": row.blob_mime, "size": row.blob_size}


def _reusable_blob(row: Transfer, value: dict, *, kind: RecordKind) -> dict | None:
    """The blob of a stored record that is still the document's (for the
    painting: the same painting and slug; a rename, a new code, a new
    lexicon or media URL change the record, not the image), else None."""
    blob = value.get(kind.blob_field) if kind.blob_field else None
    if not isinstance(blob, dict) or not blob_link(blob) or value.get("ref") != row.ref or not kind.same_blob(row, value):
        return None
    return blob


def _record_current(row: Transfer, value: dict, *, kind: RecordKind) -> bool:
    # A recording the row knows of (a guest slug names it, or one found before
    # under these fields) must be in the record; one the record has was found
    # on storage by the attempt that wrote it.
    blob = value.get(kind.blob_field) if kind.blob_field else None
    expected = kind.record_from_row(row, has_recording=row.has_recording or kind.recording_in(value), blob=blob)
    return all(value.get(name) == expected[name] for name in expected if name != "$type")
